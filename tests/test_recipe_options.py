"""The recipe's network options live in config.json: a saved pair comes back with them, and
translate, the compiled path and the ONNX export all run the same network."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from conftest import TINY_DISCRIMINATOR, TINY_GENERATOR
from cyclegan_hub import CycleGAN
from cyclegan_hub.cli import card_values, flag_values
from cyclegan_hub.config import parse_args
from cyclegan_hub.networks import BlurDownsample, LayerInstanceNorm
from cyclegan_hub.export_onnx import export_generator

OPTIONS = [
    dict(upsample="resize"), dict(upsample="antialias", downsample="antialias"),
    dict(norm="layer", upsample="resize", unet_skips=True),
    dict(upsample="resize", input_skip=True), dict(upsample="resize", unet_skips=True),
    dict(norm="layer_instance", upsample="resize", unet_skips=True),  # the embedded model's layout
]


def pair(options) -> CycleGAN:
    return CycleGAN(
        "photo", "monet", generator={**TINY_GENERATOR, **options},
        discriminator={**TINY_DISCRIMINATOR, "downsample": options.get("downsample", "stride")}, with_discriminators=True,
    ).eval()


@pytest.mark.slow
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_options_survive_saving_and_every_inference_path(options, tmp_path):
    model = pair(options)
    model.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    for key, value in options.items():
        assert config["generator"][key] == value
    loaded = CycleGAN.from_pretrained(tmp_path / "model", load_discriminators=True)
    assert [type(m) for m in loaded.generator_ab.modules()] == [type(m) for m in model.generator_ab.modules()]
    assert any(isinstance(m, torch.nn.GroupNorm) for m in loaded.modules()) == (options.get("norm") == "layer")
    assert loaded.discriminator_config == model.discriminator_config
    assert torch.equal(loaded.discriminator_a.model[0].weight, model.discriminator_a.model[0].weight)

    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (145, 162, 3), dtype=np.uint8))
    expected = np.asarray(model.translate(picture, "monet"), dtype=np.int16)
    assert np.array_equal(np.asarray(loaded.translate(picture, "monet"), dtype=np.int16), expected)
    loaded.enable_fast_inference(warmup_side=128)
    compiled = np.asarray(loaded.translate(picture, "monet"), dtype=np.int16)
    assert np.abs(compiled - expected).max() <= 1

    export_generator(loaded.generator_ab, tmp_path / "g.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    images = torch.rand(2, 3, 40, 76) * 2 - 1  # not the export's shape
    (translated,) = session.run(None, {"images": images.numpy()})
    with torch.inference_mode():
        assert np.abs(translated - model.generator_ab(images).numpy()).max() < 1e-4


def blurs(network: torch.nn.Module) -> bool:
    return any(isinstance(m, BlurDownsample) for m in network.modules())


@pytest.mark.parametrize(
    "flags, blur_in_g, blur_in_d",
    [([], False, False), (["--downsample", "antialias"], True, True), (["--downsample_d", "antialias"], False, True),
     (["--downsample", "antialias", "--downsample_d", "stride"], True, False)],
)
def test_discriminators_can_downsample_apart_from_the_generators(flags, blur_in_g, blur_in_d):
    config = parse_args(["--dataset", "unused", "--output_dir", "unused", "--ngf", "4", "--ndf", "4", *flags])
    model = CycleGAN(generator=config.generator_kwargs(), discriminator=config.discriminator_kwargs(), with_discriminators=True)
    assert blurs(model.generator_ab) == blur_in_g
    assert blurs(model.discriminator_a) == blurs(model.discriminator_b) == blur_in_d


@pytest.mark.parametrize("skip", ["input_skip", "unet_skips"])
def test_the_skip_flags_reach_both_generators(skip):
    config = parse_args(["--dataset", "unused", "--ngf", "4", f"--{skip}"])
    model = CycleGAN(generator=config.generator_kwargs())
    assert getattr(model.generator_ab, skip) and getattr(model.generator_ba, skip)
    assert not getattr(CycleGAN(generator=parse_args(["--dataset", "unused", "--ngf", "4"]).generator_kwargs()).generator_ab, skip)


def test_one_patch_size_is_stored_as_the_papers_single_discriminator():
    config = parse_args(["--dataset", "unused", "--n_layers_d", "4"])
    assert config.discriminator_kwargs()["n_layers"] == 4  # an int in config.json, as before list flags
    assert card_values(config)["n_layers_d"] == 4 and flag_values(config)["n_layers_d"] == 4
    several = parse_args(["--dataset", "unused", "--n_layers_d", "3", "4"])
    assert several.discriminator_kwargs()["n_layers"] == [3, 4] and card_values(several)["n_layers_d"] == "3 4"


def test_the_card_lists_diffaugments_settings_only_with_diffaugment():
    plain = card_values(parse_args(["--dataset", "unused"]))
    assert "diffaugment" in plain and not any(name.startswith("diffaugment_") for name in plain)
    augmented = card_values(parse_args(["--dataset", "unused", "--diffaugment", "--diffaugment_domains", "a"]))
    assert augmented["diffaugment_domains"] == "a" and augmented["diffaugment_p"] == 1.0


@pytest.mark.parametrize(
    "flags, norm_in_g, norm_in_d",
    [([], torch.nn.InstanceNorm2d, torch.nn.InstanceNorm2d), (["--norm_g", "layer"], torch.nn.GroupNorm, torch.nn.InstanceNorm2d),
     (["--norm_g", "layer_instance"], LayerInstanceNorm, torch.nn.InstanceNorm2d),
     (["--norm", "batch", "--norm_g", "instance"], torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)],
)
def test_generators_can_normalise_apart_from_the_discriminators(flags, norm_in_g, norm_in_d):
    config = parse_args(["--dataset", "unused", "--output_dir", "unused", "--ngf", "4", "--ndf", "4", *flags])
    model = CycleGAN(generator=config.generator_kwargs(), discriminator=config.discriminator_kwargs(), with_discriminators=True)
    norms = (torch.nn.InstanceNorm2d, torch.nn.GroupNorm, torch.nn.BatchNorm2d, LayerInstanceNorm)
    assert {type(m) for m in model.generator_ab.modules() if isinstance(m, norms)} == {norm_in_g}
    assert {type(m) for m in model.discriminator_b.modules() if isinstance(m, norms)} == {norm_in_d}
