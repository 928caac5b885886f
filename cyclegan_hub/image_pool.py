"""The history of generated images the discriminators see (paper section 4, after Shrivastava et al.)."""

from __future__ import annotations

import random

import torch


class ImagePool:
    """Keeps up to `size` generated images.

    Until full, each image is stored and returned as is. Once full, each image is, with
    probability 1/2, swapped with a random stored one (the stored one is returned), else
    returned as is, as the original release does. Uses Python's `random`, whose state
    `accelerator.save_state` checkpoints.
    """

    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) fresh fakes -> (B, C, H, W) mix of fresh and historical fakes, detached."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif random.random() > 0.5:  # the original's test: the same draws give the same swaps
                index = random.randrange(self.size)
                out.append(self.images[index].to(image.device))
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.size = state["size"]
        self.images = list(state["images"])
