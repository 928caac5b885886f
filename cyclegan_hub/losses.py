"""CycleGAN losses (paper section 3): adversarial (eq. 1, least-squares form), cycle (eq. 2), identity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "hinge")


def check_gan_mode(gan_mode: str) -> None:
    if gan_mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {GAN_MODES}, got {gan_mode!r}")


def _verdicts(logits: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    """A discriminator's output as a list: one tensor of patch logits per PatchGAN it holds."""
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def _fooling_loss(fake: torch.Tensor, gan_mode: str) -> torch.Tensor:
    if gan_mode == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if gan_mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    return -fake.mean()  # hinge


def _judging_loss(real: torch.Tensor, fake: torch.Tensor, gan_mode: str) -> torch.Tensor:
    if gan_mode == "lsgan":
        return 0.5 * (F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake)))
    if gan_mode == "vanilla":
        real_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        return 0.5 * (real_loss + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())  # hinge


def generator_adversarial_loss(fake_logits: torch.Tensor | list[torch.Tensor], gan_mode: str = "lsgan") -> torch.Tensor:
    """What G minimises to fool D: lsgan E[(D(G(x)) - 1)^2], vanilla BCE(D(G(x)), 1), hinge -E[D(G(x))].

    Given several PatchGANs' logits (a `MultiPatchDiscriminator`), the mean of their losses, so
    the adversarial term keeps its weight against the cycle loss."""
    check_gan_mode(gan_mode)
    return torch.stack([_fooling_loss(fake, gan_mode) for fake in _verdicts(fake_logits)]).mean()


def discriminator_loss(
    real_logits: torch.Tensor | list[torch.Tensor], fake_logits: torch.Tensor | list[torch.Tensor], gan_mode: str = "lsgan"
) -> torch.Tensor:
    """What D minimises, halved as in the paper to slow D down: (loss on real + loss on fake) / 2.

    Given several PatchGANs' logits (lists, member by member), the mean over the members."""
    check_gan_mode(gan_mode)
    pairs = zip(_verdicts(real_logits), _verdicts(fake_logits), strict=True)
    return torch.stack([_judging_loss(real, fake, gan_mode) for real, fake in pairs]).mean()


def r1_penalty(discriminator, real: torch.Tensor) -> torch.Tensor:
    """E||grad_x D(x)||^2 over real images x (Mescheder et al. 2018, "Which training methods for GANs
    actually converge?"): how sharply the discriminator's verdict changes around the real data.

    D(x) is an image's mean patch logit (over several PatchGANs, the mean of theirs), the quantity
    the losses above average, so the penalty keeps its scale across image and patch sizes.
    """
    real = real.detach().requires_grad_(True)
    verdicts = _verdicts(discriminator(real))
    score = torch.stack([logits.flatten(1).mean(1) for logits in verdicts]).mean(0).sum()
    (gradient,) = torch.autograd.grad(score, real, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def _pooled_l1(output: torch.Tensor, target: torch.Tensor, downscale: int) -> torch.Tensor:
    """E|output - target|_1 after average-pooling both by `downscale` (1: every pixel)."""
    if downscale > 1:
        output = F.avg_pool2d(output, downscale, ceil_mode=True)
        target = F.avg_pool2d(target, downscale, ceil_mode=True)
    return F.l1_loss(output, target)


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor, downscale: int = 1) -> torch.Tensor:
    """E|F(G(x)) - x|_1 for one direction (eq. 2), both average-pooled by `downscale` first.

    Pooled, detail finer than `downscale` pixels need not survive the round trip, so a generator
    gains nothing from hiding it in its translation (1: the paper, every pixel).
    """
    return _pooled_l1(reconstructed, real, downscale)


def identity_loss(same: torch.Tensor, real: torch.Tensor, downscale: int = 1) -> torch.Tensor:
    """E|G(y) - y|_1: keeps colours when a target-domain image is fed in (section 5.2).

    Pooled by `downscale`, it holds the colours of areas that size and leaves finer texture (strokes)
    free to change (1: the paper, every pixel)."""
    return _pooled_l1(same, real, downscale)
