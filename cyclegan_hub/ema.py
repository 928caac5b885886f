"""An exponential moving average of the generators' weights.

GAN weights oscillate around a good solution rather than settle in it; an average of recent
weights (Yazıcı et al. 2019, "The unusual effectiveness of averaging in GAN training") usually
translates better than any single step's. The average is what a run samples, evaluates and saves
as its model; the raw weights keep training and stay in the checkpoints, so resuming is exact.
"""

from __future__ import annotations

import torch

from .model import CycleGAN

GENERATORS = ("generator_ab", "generator_ba")


class GeneratorEMA:
    """Both generators of `model`, averaged with `decay` per update.

    Early on the decay is min(decay, (1 + n) / (10 + n)) after n updates, so the average forgets
    the random initial weights within the first hundreds of steps instead of thousands.

    `self.model` is a `CycleGAN` holding the averaged generators and, shared rather than copied,
    `model`'s discriminators: saved, it is a model that training can continue from.
    """

    def __init__(self, model: CycleGAN, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be between 0 and 1 (exclusive), got {decay!r}")
        self.decay = decay
        self.updates = 0
        with torch.random.fork_rng(devices=[]):  # building draws random weights: leave the run's random stream as it was
            self.model = CycleGAN(**model.config)
        for name in GENERATORS:
            getattr(self.model, name).load_state_dict(getattr(model, name).state_dict())
        self.model.requires_grad_(False).to(next(model.parameters()).device)
        self.model.discriminator_a, self.model.discriminator_b = model.discriminator_a, model.discriminator_b

    @torch.no_grad()
    def update(self, model: CycleGAN) -> None:
        """Move the average towards `model`'s current generator weights (call after each G step)."""
        self.updates += 1
        weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name in GENERATORS:
            averaged, current = getattr(self.model, name), getattr(model, name)
            for average_parameter, parameter in zip(averaged.parameters(), current.parameters()):
                average_parameter.lerp_(parameter, weight)
            for average_buffer, buffer in zip(averaged.buffers(), current.buffers()):
                average_buffer.copy_(buffer)  # batch-norm statistics are not averaged, as in timm's ModelEmaV2

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged generators' tensors, and the update count as a tensor (one safetensors file)."""
        state = {key: value for key, value in self.model.state_dict().items() if key.startswith(GENERATORS)}
        return {**state, "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.updates = int(state.pop("updates"))
        for name in GENERATORS:
            prefix = f"{name}."
            getattr(self.model, name).load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
