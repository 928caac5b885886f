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
    images = [torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)) * 2 - 1 for h, w in ((128, 128), (136, 180))]
    eager = [model.translate(image, "a2b") for image in images]
    model.enable_fast_inference(warmup_side=128)
    assert isinstance(model.compiled["a2b"], CompiledGenerator) and not model.compiled["a2b"].fallen_back
    for image, expected in zip(images, eager):
        assert (model.translate(image, "a2b") - expected).abs().max() < 1e-4
    picture = Image.new("RGB", (137, 221), (200, 30, 90))
    assert model.translate(picture, "b2a").size == (137, 221)
    assert not model.compiled["b2a"].fallen_back


@pytest.mark.slow
def test_bf16_fast_inference_is_close_to_fp32_and_returns_fp32(make_cyclegan):
    model = make_cyclegan()
    images = torch.rand(2, 3, 136, 152, generator=torch.Generator().manual_seed(0)) * 2 - 1
    expected = model.translate(images, "a2b")
    model.enable_fast_inference(warmup_side=128, bf16=True)
    assert model.compiled["a2b"].bf16 and not model.compiled["a2b"].fallen_back
    output = model.translate(images, "a2b")
    assert output.dtype == torch.float32 and output.shape == expected.shape
    difference = (output - expected).abs()
    assert 0 < difference.max() < 0.1 and difference.mean() < 0.01  # bf16 rounding: ~8 and ~1 levels in 255


@pytest.mark.slow
@pytest.mark.parametrize("upsample", ["transpose", "resize", "antialias"])  # the embedded model resizes
def test_after_warm_up_no_size_recompiles(make_cyclegan, upsample):
    model = make_cyclegan(generator=dict(ngf=8, n_blocks=2, upsample=upsample))
    model.enable_fast_inference(warmup_side=256)
    with torch.compiler.set_stance("fail_on_recompile"):  # a recompile raises, and the path falls back to eager
        for size in [(150, 400), (400, 150), (130, 130), (1, 1), (3, 7), (100, 60), (1024, 700)]:
            assert model.translate(Image.new("RGB", size, (90, 20, 200)), "a2b").size == size
        frame = torch.rand(1, 144, 256, 3).permute(0, 3, 1, 2)  # a webcam frame: channels-last strides
        assert model.translate(frame * 2 - 1, "a2b").shape == (1, 3, 144, 256)
    assert not model.compiled["a2b"].fallen_back  # portrait, landscape, square, tiny and small: no new graph


def broken_backend(graph, example_inputs):
    raise RuntimeError("no C++ compiler on this machine")


@pytest.mark.parametrize("bf16", [False, True])
def test_a_failing_compiler_falls_back_to_eager_with_a_warning(make_cyclegan, bf16):
    generator = make_cyclegan().generator_ab
    fast = CompiledGenerator(generator, backend=broken_backend, bf16=bf16)
    images = torch.rand(2, 3, 128, 128) * 2 - 1
    with pytest.warns(UserWarning, match="translating eagerly"):
        output = fast(images)
    assert fast.fallen_back and output.dtype == torch.float32
    with torch.no_grad():
        expected = generator(images)
    if bf16:  # the fallback keeps the autocast
        assert 0 < (output - expected).abs().max() < 0.1
    else:
        assert torch.equal(output, expected)


def test_enable_fast_inference_is_not_saved(make_cyclegan, tmp_path):
    model = make_cyclegan()
    model.enable_fast_inference(warmup_side=None)
    model.save_pretrained(tmp_path)
    assert CycleGAN.from_pretrained(tmp_path).compiled == {}
