"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

With a few hundred training images a discriminator soon memorises them and its gradients stop
teaching the generator anything. DiffAugment applies the same random, differentiable transforms to
every image a discriminator sees, real and generated, in its own update and in the generator's
adversarial term: D cannot learn the augmentations as a feature of either domain, and the
gradients reach the generator through them. The default policy is the paper's "color,
translation, cutout" for small data sets; each call draws new parameters for every image.

A probability below 1 applies each transform to each image only that often, as ADA does (Karras
et al. 2020, "Training Generative Adversarial Networks with Limited Data"): the rest of the time a
discriminator sees images as they are, e.g. their true brightness and palette, which the colour
transform's draws otherwise cover.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(images: torch.Tensor) -> torch.Tensor:
    """One draw from U(0, 1) per image, shaped to broadcast over it."""
    return torch.rand(images.shape[0], 1, 1, 1, device=images.device, dtype=images.dtype)


def colour(images: torch.Tensor) -> torch.Tensor:
    """Brightness shift in [-0.5, 0.5], saturation x [0, 2], contrast x [0.5, 1.5], per image."""
    images = images + (_uniform(images) - 0.5)
    grey = images.mean(dim=1, keepdim=True)
    images = (images - grey) * (2 * _uniform(images)) + grey
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * (_uniform(images) + 0.5) + mean


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in each axis, filling with zeros."""
    batch, _, height, width = images.shape
    max_dy, max_dx = round(height * ratio), round(width * ratio)
    shifts_y = torch.randint(-max_dy, max_dy + 1, (batch,)).tolist()
    shifts_x = torch.randint(-max_dx, max_dx + 1, (batch,)).tolist()
    padded = F.pad(images, (max_dx, max_dx, max_dy, max_dy))
    return torch.stack(
        [padded[i, :, max_dy - dy : max_dy - dy + height, max_dx - dx : max_dx - dx + width] for i, (dy, dx) in enumerate(zip(shifts_y, shifts_x))]
    )


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a rectangle of `ratio` of each side at a random centre (it may reach past the border)."""
    batch, _, height, width = images.shape
    cut_h, cut_w = round(height * ratio), round(width * ratio)
    top = torch.randint(0, height + 1, (batch, 1)) - cut_h // 2
    left = torch.randint(0, width + 1, (batch, 1)) - cut_w // 2
    rows = torch.arange(height)[None]
    cols = torch.arange(width)[None]
    inside_rows = (rows >= top) & (rows < top + cut_h)  # (B, H)
    inside_cols = (cols >= left) & (cols < left + cut_w)  # (B, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return images * keep[:, None].to(images.device, images.dtype)


# The DiffAugment paper's names for its transforms, in the order its default policy applies them.
TRANSFORMS = {"color": colour, "translation": translation, "cutout": cutout}
# Whose discriminators the augmentation reaches, by --diffaugment_domains: the small domain's alone,
# since a domain with thousands of images gives its discriminator little to memorise in a short run.
AUGMENTED_DOMAINS = {"both": ("a", "b"), "a": ("a",), "b": ("b",)}


def diff_augment(images: torch.Tensor, policy: tuple[str, ...] = tuple(TRANSFORMS), probability: float = 1.0) -> torch.Tensor:
    """(B, C, H, W) images in [-1, 1] -> the same shape, through the policy's transforms in order.

    `probability`: the chance that each transform is applied to each image, drawn independently.
    """
    for name in policy:
        transformed = TRANSFORMS[name](images)
        if probability < 1:  # at 1 nothing is drawn, so the random stream stays DiffAugment's own
            chosen = torch.rand(images.shape[0], 1, 1, 1, device=images.device) < probability
            transformed = torch.where(chosen, transformed, images)
        images = transformed
    return images


def parse_policy(text: str) -> tuple[str, ...]:
    """"color,translation" -> ("color", "translation"); a clear error for names DiffAugment lacks."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown DiffAugment transform(s) {unknown} in {text!r}; choose from {', '.join(TRANSFORMS)}")
    return names
