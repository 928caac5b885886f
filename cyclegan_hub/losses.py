"""CycleGAN losses (paper section 3): adversarial (eq. 1, least-squares form), cycle (eq. 2), identity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "hinge")


def generator_adversarial_loss(fake_logits: torch.Tensor, gan_mode: str = "lsgan") -> torch.Tensor:
    """What G minimises to fool D: lsgan E[(D(G(x)) - 1)^2], vanilla BCE(D(G(x)), 1), hinge -E[D(G(x))]."""
    if gan_mode == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if gan_mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if gan_mode == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, gan_mode: str = "lsgan") -> torch.Tensor:
    """What D minimises, halved as in the paper to slow D down: (loss on real + loss on fake) / 2."""
    if gan_mode == "lsgan":
        real = F.mse_loss(real_logits, torch.ones_like(real_logits))
        fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    elif gan_mode == "vanilla":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    elif gan_mode == "hinge":
        real = F.relu(1.0 - real_logits).mean()
        fake = F.relu(1.0 + fake_logits).mean()
    else:
        raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")
    return 0.5 * (real + fake)


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor, downscale: int = 1) -> torch.Tensor:
    """E|F(G(x)) - x|_1 for one direction (eq. 2), both average-pooled by `downscale` first.

    Pooled, detail finer than `downscale` pixels need not survive the round trip, so a generator
    gains nothing from hiding it in its translation (1: the paper, every pixel).
    """
    if downscale > 1:
        reconstructed = F.avg_pool2d(reconstructed, downscale, ceil_mode=True)
        real = F.avg_pool2d(real, downscale, ceil_mode=True)
    return F.l1_loss(reconstructed, real)


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """E|G(y) - y|_1: keeps colours when a target-domain image is fed in (section 5.2)."""
    return F.l1_loss(same, real)
