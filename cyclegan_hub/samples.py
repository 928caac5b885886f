"""Sample grids: real / translated / reconstructed for fixed validation images, both directions."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .images import tensor_to_pil
from .translate import eval_mode, run_generator


def sample_grid(generator_ab, generator_ba, real_a: torch.Tensor, real_b: torch.Tensor) -> Image.Image:
    """One image: for A then B, a row of reals, a row of translations, a row of reconstructions.

    real_a, real_b: (N, 3, H, W) in [-1, 1], the same N and size.
    """
    with eval_mode(generator_ab, generator_ba):
        fake_b = run_generator(generator_ab, real_a)
        fake_a = run_generator(generator_ba, real_b)
        rows = [real_a, fake_b, run_generator(generator_ba, fake_b), real_b, fake_a, run_generator(generator_ab, fake_a)]
    grid = torch.cat([torch.cat(list(row.cpu()), dim=2) for row in rows], dim=1)  # (3, 6H, N*W)
    return tensor_to_pil(grid)


def log_sample_grid(accelerator, grid: Image.Image, step: int) -> None:
    """Send the grid to every tracker Accelerate runs (each wants its own image format)."""
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({"samples": np.asarray(grid)[None]}, step=step, dataformats="NHWC")
        elif hasattr(tracker, "log_images"):
            tracker.log_images({"samples": [grid]}, step=step)
