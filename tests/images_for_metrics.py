"""Images the metric and evaluation tests share: two clearly different distributions."""

from __future__ import annotations

import numpy as np
from PIL import Image


def smooth_images(count: int, size=(64, 64), seed: int = 0) -> list[Image.Image]:
    """Colour gradients: one distribution."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp_x, ramp_y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    images = []
    for _ in range(count):
        colour = rng.uniform(0, 255, size=3)
        array = colour * ramp_x[..., None] + (255 - colour) * ramp_y[..., None] * rng.uniform(0.3, 1)
        images.append(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB"))
    return images


def noise_images(count: int, size=(64, 64), seed: int = 1) -> list[Image.Image]:
    """Uniform noise: a very different distribution."""
    rng = np.random.default_rng(seed)
    width, height = size
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB") for _ in range(count)]
