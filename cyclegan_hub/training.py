"""The CycleGAN update (paper section 3 and 4) as one callable, and the learning-rate schedule.

`CycleGANStep` works on plain modules and optimizers, so it can be checked step for step
against the original release's `optimize_parameters`; given an `Accelerator` it uses its
backward (loss scaling), autocast and unwrapping, and works under DDP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from .augment import AUGMENTED_DOMAINS
from .cli import as_values
from .image_pool import ImagePool
from .losses import check_gan_mode, cycle_loss, discriminator_loss, generator_adversarial_loss, identity_loss, r1_penalty

if TYPE_CHECKING:
    from .config import TrainConfig

LOSS_NAMES = (
    "loss_g",
    "loss_gan_ab",
    "loss_gan_ba",
    "loss_cycle_a",
    "loss_cycle_b",
    "loss_identity_a",
    "loss_identity_b",
    "loss_d_a",
    "loss_d_b",
    "loss_r1",
)


def unchanged(images: torch.Tensor) -> torch.Tensor:
    return images


def set_requires_grad(modules, flag: bool) -> None:
    for module in modules:
        module.requires_grad_(flag)


def adam(modules, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)) -> torch.optim.Adam:
    """One Adam over the modules' parameters, with section 4's settings by default.

    Fused: one kernel updates every parameter instead of one per tensor.
    """
    return torch.optim.Adam([p for module in modules for p in module.parameters()], lr=lr, betas=betas, fused=True)


def schedule(cfg: TrainConfig, steps_per_epoch: int | None) -> tuple[int, int]:
    """(total steps, steps at the initial lr): epochs constant then epochs of decay, or --max_steps split alike."""
    if cfg.max_steps is not None:
        return cfg.max_steps, round(cfg.max_steps * cfg.num_epochs / max(1, cfg.num_epochs + cfg.decay_epochs))
    return (cfg.num_epochs + cfg.decay_epochs) * steps_per_epoch, cfg.num_epochs * steps_per_epoch


def linear_decay(step: int, constant_steps: int, decay_steps: int) -> float:
    """A factor of 1 for `constant_steps`, then linear to 0 over `decay_steps`: the learning rate's
    (section 4), and the identity weights' with --identity_decay_steps (`identity_schedule`).

    Per step, so it is smooth and reaches 0; the original release steps it once per epoch as
    1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1), which stops just above 0.
    """
    if step < constant_steps:
        return 1.0
    if decay_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - (step - constant_steps) / decay_steps)


def identity_schedule(step: int, start_step: int = 0, decay_steps: int | None = None) -> float:
    """The identity weights' share at `step`: 0 before `start_step`, then 1, or faded linearly to 0
    over `decay_steps` from there. The defaults keep the paper's constant term."""
    if step < start_step:
        return 0.0
    return linear_decay(step, start_step, decay_steps) if decay_steps else 1.0


class CycleGANStep:
    """One training step: G and F with D_X, D_Y frozen, then D_X and D_Y on pooled fakes.

    Args:
        generator_ab, generator_ba: G (A->B) and F (B->A), possibly DDP-wrapped.
        discriminator_a, discriminator_b: D_X (judges A) and D_Y (judges B), possibly DDP-wrapped.
        optimizer_g: one optimizer over both generators.
        optimizer_d: one optimizer over both discriminators.
        gan_mode: "lsgan" (paper), "vanilla" or "hinge".
        lambda_cyc: weight of the cycle loss (eq. 3), 10 in the paper.
        lambda_identity: identity loss weight as a fraction of lambda_cyc (0.5 in the paper's
            painting experiments), 0 to skip it; or two: G's (|G(y) - y|) and F's (|F(x) - x|).
            The term holds a generator near the identity; G and F can be held apart, e.g. F free
            to repaint photos while G keeps its colours.
            `identity_scale` multiplies both for one step: the train script sets it from
            `identity_schedule` (--identity_start_step, --identity_decay_steps), so the term can
            start late or fade out.
        pool_size: generated-image history per discriminator, 50 in the paper.
        cycle_noise: std of Gaussian noise added to G(x) and F(y) on their way back through the
            cycle only. A generator can satisfy the cycle by hiding the input in a faint
            high-frequency pattern (Chu et al. 2017, "CycleGAN, a Master of Steganography");
            noise drowns such a code. 0 (the paper): none.
        cycle_downscale: compare each round trip with its input average-pooled by this factor, so
            the cycle asks nothing of detail finer than it and a code for it gains nothing. 1 (the
            paper): every pixel.
        identity_downscale: the same for the identity term: pooled, it keeps the colours of areas
            that size and leaves a generator free to paint finer texture. 1 (the paper): every pixel.
        source_as_fake: share of each discriminator's fake side given to real images of the
            other domain: D_Y also learns to call x fake, D_X to call y fake. Without them a
            discriminator learns what tells a generator's output from the domain, which need
            not be the domain's style: it may rate an untranslated input as real. (CartoonGAN,
            Chen et al. 2018, shows its discriminator edge-smoothed cartoons as fakes for the
            same reason.) 0 (the paper): generated images only.
        r1_gamma: weight gamma of the R1 penalty, gamma / 2 * E||grad_x D(x)||^2 on real
            (augmented) images, added to each discriminator's loss.
            It keeps a discriminator from answering sharply to details of the few real images it
            sees, the overfitting that leaves it judging a generator's artefacts rather than the
            domain (StyleGAN2-ADA's regulariser for small data sets). 0 (the paper): none.
        r1_interval: the penalty joins one update in this many, weighted up as much (StyleGAN2's
            lazy regularisation): its gradient changes slowly, and its double backward is the cost.
        augment: applied to every image the discriminators of `augmented_domains` judge, real or
            generated, in both updates but never in the cycle or identity terms
            (`augment.diff_augment`); None: none.
        augmented_domains: whose discriminators see `augment`: "a" (D_X alone), "b" (D_Y alone)
            or "both". A domain with thousands of images gives its discriminator little to
            overfit in a short run, and augmenting its images only hides what tells them apart.
        accelerator: an `accelerate.Accelerator`, or None for plain PyTorch.
    """

    def __init__(
        self,
        generator_ab: nn.Module,
        generator_ba: nn.Module,
        discriminator_a: nn.Module,
        discriminator_b: nn.Module,
        optimizer_g: torch.optim.Optimizer,
        optimizer_d: torch.optim.Optimizer,
        *,
        gan_mode: str = "lsgan",
        lambda_cyc: float = 10.0,
        lambda_identity: float | tuple[float, ...] = 0.5,
        pool_size: int = 50,
        cycle_noise: float = 0.0,
        cycle_downscale: int = 1,
        identity_downscale: int = 1,
        source_as_fake: float = 0.0,
        r1_gamma: float = 0.0,
        r1_interval: int = 16,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        augmented_domains: str = "both",
        accelerator=None,
    ):
        check_gan_mode(gan_mode)
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.gan_mode = gan_mode
        self.lambda_cyc = lambda_cyc
        weights = as_values(lambda_identity)
        self.identity_ab, self.identity_ba = weights * 2 if len(weights) == 1 else weights  # G's, F's
        self.identity_scale = 1.0  # the share of those weights in the next step
        self.pool_a = ImagePool(pool_size)  # history of F(y), shown to D_X
        self.pool_b = ImagePool(pool_size)  # history of G(x), shown to D_Y
        self.cycle_noise, self.cycle_downscale = cycle_noise, cycle_downscale
        self.identity_downscale = identity_downscale
        self.source_as_fake = source_as_fake
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.step = 0  # updates done, which places the lazy R1 steps: a resumed run sets it
        self.loss_r1 = torch.zeros(())  # the mean penalty of the two discriminators at the last R1 step
        if augmented_domains not in AUGMENTED_DOMAINS:
            raise ValueError(f"augmented_domains must be one of {tuple(AUGMENTED_DOMAINS)}, got {augmented_domains!r}")
        augment_for = {domain: augment for domain in AUGMENTED_DOMAINS[augmented_domains] if augment is not None}
        self.augment_a = augment_for.get("a", unchanged)  # what D_X judges
        self.augment_b = augment_for.get("b", unchanged)  # what D_Y judges
        self.accelerator = accelerator

    def _backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def _autocast(self):
        return contextlib.nullcontext() if self.accelerator is None else self.accelerator.autocast()

    @contextlib.contextmanager
    def _no_sync(self, *modules: nn.Module, enabled: bool = True):
        """Under DDP: forward and backward passes in this block accumulate gradients locally."""
        with contextlib.ExitStack() as stack:
            if enabled and self.accelerator is not None:
                for module in modules:
                    stack.enter_context(self.accelerator.no_sync(module))
            yield

    def _on_cycle_path(self, translated: torch.Tensor) -> torch.Tensor:
        """A translation as the cycle sees it before translating it back."""
        if self.cycle_noise == 0:
            return translated
        return translated + self.cycle_noise * torch.randn_like(translated)

    def _unwrapped(self, discriminator: nn.Module) -> nn.Module:
        # Under DDP a discriminator used only to pass gradients to G must bypass its wrapper:
        # its own parameters get no gradient in this backward, which DDP would wait for. R1's
        # pass bypasses it too: its penalty joins the loss of a DDP pass, whose all-reduce carries it.
        return discriminator if self.accelerator is None else self.accelerator.unwrap_model(discriminator)

    def _r1_penalty(self, discriminator: nn.Module, real: torch.Tensor, augment: Callable) -> torch.Tensor:
        """R1 in fp32, outside autocast, as the gradient it measures is small; through `forward`,
        since torch.compile cannot take the second derivative."""
        return r1_penalty(self._unwrapped(discriminator).forward, augment(real))

    def _judging_loss(
        self, discriminator: nn.Module, augment: Callable, real: torch.Tensor, fake: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """What a discriminator minimises: real as real, fakes as fake, and with source_as_fake
        that share of the fake side taken by the other domain's real images."""
        real_logits = discriminator(augment(real))
        loss = discriminator_loss(real_logits, discriminator(augment(fake)), self.gan_mode)
        if self.source_as_fake == 0:
            return loss
        on_source = discriminator_loss(real_logits, discriminator(augment(source)), self.gan_mode)
        return (1 - self.source_as_fake) * loss + self.source_as_fake * on_source

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, float]:
        """real_a, real_b: (B, 3, H, W) in [-1, 1]. Returns every loss term as a float."""
        G, F = self.generator_ab, self.generator_ba
        D_X, D_Y = self.discriminator_a, self.discriminator_b
        # 1) Generators. D_X and D_Y are frozen; they only pass gradients back to G and F.
        # Eq. 3 plus identity is back-propagated in three independent parts, each freeing its
        # activations before the next runs: the gradients of one backward of the sum, with two
        # generator passes held in memory instead of six. The passes run in the original
        # release's order, so batch-norm statistics and dropout masks come out the same.
        # Under DDP the gradients of all parts are all-reduced once, in the last part's backward.
        set_requires_grad((D_X, D_Y), False)
        self.optimizer_g.zero_grad(set_to_none=True)
        identity_ab, identity_ba = self.identity_scale * self.identity_ab, self.identity_scale * self.identity_ba
        with_identity = identity_ab > 0 or identity_ba > 0
        with self._no_sync(G, F):
            with self._autocast():  # forward passes only; backward and step run outside autocast
                fake_b = G(real_a)  # G(x)
                loss_gan_ab = generator_adversarial_loss(self._unwrapped(D_Y)(self.augment_b(fake_b)), self.gan_mode)  # eq. 1
                loss_cycle_a = cycle_loss(F(self._on_cycle_path(fake_b)), real_a, self.cycle_downscale)  # eq. 2: F(G(x)) ~ x
                part_a = loss_gan_ab + self.lambda_cyc * loss_cycle_a
            self._backward(part_a)
        with self._no_sync(G, F, enabled=with_identity):
            with self._autocast():
                fake_a = F(real_b)  # F(y)
                loss_gan_ba = generator_adversarial_loss(self._unwrapped(D_X)(self.augment_a(fake_a)), self.gan_mode)
                loss_cycle_b = cycle_loss(G(self._on_cycle_path(fake_a)), real_b, self.cycle_downscale)  # G(F(y)) ~ y
                part_b = loss_gan_ba + self.lambda_cyc * loss_cycle_b
            self._backward(part_b)
        loss_identity_a = loss_identity_b = part_identity = torch.zeros((), device=real_a.device)
        if with_identity:
            with self._autocast():
                if identity_ab > 0:
                    loss_identity_b = identity_loss(G(real_b), real_b, self.identity_downscale)  # section 5.2: G(y) ~ y
                if identity_ba > 0:
                    loss_identity_a = identity_loss(F(real_a), real_a, self.identity_downscale)
                part_identity = self.lambda_cyc * (identity_ab * loss_identity_b + identity_ba * loss_identity_a)
            self._backward(part_identity)
        self.optimizer_g.step()
        loss_g = (part_a + part_b + part_identity).detach()

        # 2) Discriminators, on a history of generated images rather than only the latest.
        set_requires_grad((D_X, D_Y), True)
        pooled_fake_b = self.pool_b.query(fake_b)  # in the original's order: both pools draw from `random`
        pooled_fake_a = self.pool_a.query(fake_a)
        with self._autocast():
            loss_d_a = self._judging_loss(D_X, self.augment_a, real_a, pooled_fake_a, source=real_b)
            loss_d_b = self._judging_loss(D_Y, self.augment_b, real_b, pooled_fake_b, source=real_a)
        loss_d = loss_d_a + loss_d_b
        if self.r1_gamma > 0 and self.step % self.r1_interval == 0:
            penalty = self._r1_penalty(D_X, real_a, self.augment_a) + self._r1_penalty(D_Y, real_b, self.augment_b)
            loss_d = loss_d + self.r1_gamma / 2 * self.r1_interval * penalty
            self.loss_r1 = penalty.detach() / 2
        self.optimizer_d.zero_grad(set_to_none=True)
        self._backward(loss_d)
        self.optimizer_d.step()
        self.step += 1

        losses = torch.stack(
            [loss_g, loss_gan_ab, loss_gan_ba, loss_cycle_a, loss_cycle_b, loss_identity_a, loss_identity_b, loss_d_a, loss_d_b,
             self.loss_r1.to(loss_g.device)]
        )
        return dict(zip(LOSS_NAMES, losses.detach().float().tolist()))  # one device sync per step
