"""The fast inference path: a generator compiled once with dynamic shapes, eager as the fallback.

`torch.compile(dynamic=True)` compiles one graph that serves every image size, so a demo pays
the compile (about 20 s for the paper's generator on a 2-core CPU, less with Inductor's on-disk
cache on later starts) once at start-up. On this CPU it is 1.2-1.65x faster than eager
with outputs within 2e-5 (bench/infer.py).

With `bf16`, convolutions run under bfloat16 autocast: about 2x faster again on this CPU, which
has native bf16 (AVX512-BF16), at the cost of outputs about 1 level in 255 off on average (up to
about 8). Opt-in for that reason; CPUs without native bf16 emulate it, slowly. GPUs with bf16
units should gain as well; that is not measured here.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


# Below this side convolutions take another code path (oneDNN is skipped for small inputs), and
# a compiled graph guards on that choice per layer: small images would each compile a graph of
# their own. They run eager instead, where they take milliseconds anyway.
EAGER_BELOW = 128


class CompiledGenerator(nn.Module):
    """Runs `generator` compiled, under bfloat16 autocast if `bf16`; if compiling fails (no C++
    compiler, an unsupported backend or device), warns once and runs the eager generator from
    then on. Images with a side under `EAGER_BELOW` run eager. Outputs keep the input's dtype."""

    def __init__(self, generator: nn.Module, backend="inductor", bf16: bool = False):
        super().__init__()
        self.generator = generator
        self.compiled = torch.compile(generator, dynamic=True, backend=backend)
        self.bf16 = bf16
        self.fallen_back = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.bf16:  # leaves any autocast of the caller's in force
            return self._run(images)
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return self._run(images).to(images.dtype)

    def _run(self, images: torch.Tensor) -> torch.Tensor:
        if min(images.shape[-2:]) < EAGER_BELOW:
            return self.generator(images)
        if not self.fallen_back:
            try:
                # The graph guards on strides: a channels-last batch (video frames) would compile another.
                return self.compiled(images.contiguous())
            except Exception as error:  # Dynamo and Inductor raise many types; any of them means "run eager"
                warnings.warn(f"torch.compile is unavailable here, translating eagerly instead: {error}", stacklevel=2)
                self.fallen_back = True
        return self.generator(images)
