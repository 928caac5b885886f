"""Translated video that does not flicker: a recursive filter guided by the input's own changes.

A generator translates each frame on its own, and small changes between input frames (sensor
noise, compression, exposure) come out as larger ones: strokes and colours re-painted every
frame. Where a pixel of the input has not changed since the last frame, nothing in the scene
moved there, so its output should not change either: it keeps most of its last value,

    y_t = (1 - w) * G(x_t) + w * y_(t-1),    w = strength * exp(-|x_t - x_(t-1)| / tolerance),

with |x_t - x_(t-1)| the input's change at that pixel (mean over channels, averaged over a 5x5
neighbourhood so noise does not decide it). Where the input changed (motion, a cut) w is near 0
and the frame's own translation shows at once, so nothing trails behind moving things.

Smoothing the instance-norm statistics across frames, the other obvious fix, was the first
version and was dropped: per-frame statistics remove exposure changes that smoothed ones let
through, so on clips held still it flickered more than this filter (that comparison's figures
were not kept; bench/video.py measures this filter against per-frame translation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_STRENGTH = 0.8
DEFAULT_TOLERANCE = 6 / 127.5  # about 6 levels in 255: the noise of a phone video


class TemporalFilter:
    """Steadies a stream of translated frames, batch after batch, frames in order.

    Args:
        strength: the most weight the last output keeps, in [0, 1); 0 turns the filter off.
        tolerance: input change (in the [-1, 1] scale) at which that weight falls to 1/e of it.
        state: `state` of an earlier filter, to go on from its last frame (a webcam session's
            frames come one request at a time); None starts afresh.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH, tolerance: float = DEFAULT_TOLERANCE,
                 state: tuple[torch.Tensor, torch.Tensor] | None = None):
        if not 0 <= strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {strength!r}")
        if tolerance <= 0:
            raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
        self.strength, self.tolerance = strength, tolerance
        self.state = state  # (last input frame, last output frame), each (3, H, W)

    def __call__(self, inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """inputs, outputs: (B, 3, H, W) frames in [-1, 1] and their translations -> steadied outputs."""
        steadied = []
        for frame, translated in zip(inputs.float(), outputs.float()):
            if self.state is not None and self.state[0].shape == frame.shape:  # a new size starts afresh
                last_input, last_output = self.state
                change = F.avg_pool2d((frame - last_input).abs().mean(0, keepdim=True)[None], 5, stride=1, padding=2,
                                      count_include_pad=False)[0]
                weight = self.strength * torch.exp(-change / self.tolerance)
                translated = (1 - weight) * translated + weight * last_output
            self.state = (frame, translated)
            steadied.append(translated)
        return torch.stack(steadied).to(outputs.dtype)
