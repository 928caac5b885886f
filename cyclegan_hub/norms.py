"""Instance norm with statistics from elsewhere.

Each InstanceNorm2d layer of the generator normalises every channel by the mean and variance of
its own input. Two jobs need other statistics: tiles of one image must share the whole image's
(`tiling.WholeImageNorms`), and the frames of a video should change theirs smoothly rather than
jump from frame to frame (`SmoothedNorms`, below). Both are `NormHooks`: forward hooks that
replace each norm layer's output, installed for the duration of a `with` block.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def normalise(x: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, eps: float) -> torch.Tensor:
    """(B, C, H, W) normalised per channel by `mean` and `variance` of shape (C,), (1, C) or (B, C)."""
    shape = (-1, x.shape[1], 1, 1)
    return (x - mean.to(x.dtype).view(shape)) / torch.sqrt(variance.to(x.dtype).view(shape) + eps)


class NormHooks:
    """Forward hooks on every InstanceNorm2d layer of `generator`, in the order it runs them.

    Subclasses implement `replace(index, module, x, output)`, returning the layer's new output
    (or None to keep it). Use as a context manager."""

    def __init__(self, generator: nn.Module):
        self.norms = [m for m in generator.modules() if isinstance(m, nn.InstanceNorm2d)]
        self._handles = []

    def __enter__(self):
        self._handles = [norm.register_forward_hook(functools.partial(self._hook, index)) for index, norm in enumerate(self.norms)]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, index: int, module: nn.Module, inputs, output):
        replaced = self.replace(index, module, inputs[0], output)
        return None if replaced is None else replaced.to(output.dtype)

    def replace(self, index: int, module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError


class SmoothedNorms(NormHooks):
    """Statistics that follow a stream of frames smoothly: every norm layer normalises frame t by
    an exponential moving average of its per-channel mean and variance over frames 0..t,

        m_t = momentum * m_(t-1) + (1 - momentum) * mean(frame t),

    instead of frame t's own, so the colours and contrast of a translated video do not jump
    between frames. The state carries over between calls (frames may come one at a time, as from
    a webcam, or in batches, whose frames count in order); `momentum=0` is per-frame instance
    norm. The first frame uses its own statistics.

    Args:
        generator: a generator with InstanceNorm2d layers, run eagerly inside the `with` block.
        momentum: weight of the past, in [0, 1).
        state: what `state` returned for an earlier stream, to go on from it (e.g. a webcam
            session's); None starts afresh.
    """

    def __init__(self, generator: nn.Module, momentum: float = 0.9, state: list | None = None):
        super().__init__(generator)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.state: list[tuple[torch.Tensor, torch.Tensor] | None] = list(state) if state else [None] * len(self.norms)
        if len(self.state) != len(self.norms):
            raise ValueError(f"state has {len(self.state)} layers, the generator {len(self.norms)} norm layers")

    def replace(self, index, module, x, output):
        frames = x.float()
        means, variances = frames.mean(dim=(2, 3)), frames.var(dim=(2, 3), unbiased=False)  # (B, C) each
        previous = self.state[index]
        smoothed_means, smoothed_variances = [], []
        for mean, variance in zip(means, variances):  # the recurrence runs over the batch in order
            if previous is not None:
                mean = self.momentum * previous[0] + (1 - self.momentum) * mean
                variance = self.momentum * previous[1] + (1 - self.momentum) * variance
            previous = (mean, variance)
            smoothed_means.append(mean)
            smoothed_variances.append(variance)
        self.state[index] = previous
        return normalise(frames, torch.stack(smoothed_means), torch.stack(smoothed_variances), module.eps)
