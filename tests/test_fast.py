"""The compiled inference path: same results as eager, any size, and an eager fallback."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from cyclegan_hub import CycleGAN
from cyclegan_hub.fast import CompiledGenerator


@pytest.mark.slow
def test_fast_inference_matches_eager_at_every_size(make_cyclegan):
    model = make_cyclegan()
    images = [torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1 for h, w in ((32, 32), (36, 52))]
    eager = [model.translate(image, "a2b") for image in images]
    model.enable_fast_inference(warmup_side=32)
    assert isinstance(model._fast["a2b"], CompiledGenerator) and not model._fast["a2b"].fallen_back
    for image, expected in zip(images, eager):
        assert (model.translate(image, "a2b") - expected).abs().max() < 1e-4
    picture = Image.new("RGB", (37, 21), (200, 30, 90))
    assert model.translate(picture, "b2a").size == (37, 21)
    assert not model._fast["b2a"].fallen_back


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(make_cyclegan):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler on this machine")

    generator = make_cyclegan().generator_ab
    fast = CompiledGenerator(generator, backend=broken_backend)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with pytest.warns(UserWarning, match="translating eagerly"):
        output = fast(images)
    assert fast.fallen_back
    with torch.no_grad():
        assert torch.equal(output, generator(images))


def test_enable_fast_inference_is_not_saved(make_cyclegan, tmp_path):
    model = make_cyclegan()
    model.enable_fast_inference(warmup_side=None)
    model.save_pretrained(tmp_path)
    assert CycleGAN.from_pretrained(tmp_path)._fast == {}
