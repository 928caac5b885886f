"""Saving and loading: folders, half-precision files, strict keys, a real offline Hub cache, directions."""

from __future__ import annotations

import copy
import json
import re
import time

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import TINY_GENERATOR
from cyclegan_hub import CycleGAN, PatchDiscriminator, ResnetGenerator, translate
from cyclegan_hub.hub import WEIGHTS_FILE
from cyclegan_hub.model import DISCRIMINATORS_FILE

X = torch.linspace(-1, 1, 2 * 3 * 32 * 40).reshape(2, 3, 32, 40)


@torch.no_grad()
def outputs(model: CycleGAN) -> tuple[torch.Tensor, ...]:
    """Both generators' outputs, plus the discriminators' where the model has them."""
    model.eval()
    result = [model(X, "a2b"), model(X, "b2a")]
    if model.discriminator_a is not None:
        result += [model.discriminator_a(X), model.discriminator_b(X)]
    return tuple(result)


def assert_same_outputs(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def half_rounded(model):
    """A copy of `model` whose float weights went through float16 and back: what a float16 file holds."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    return rounded


# --- folders ---------------------------------------------------------------------------------


def test_cyclegan_round_trip_float32(make_cyclegan, tmp_path):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", WEIGHTS_FILE, DISCRIMINATORS_FILE}

    loaded = CycleGAN.from_pretrained(tmp_path)
    assert loaded.discriminator_a is None and loaded.discriminator_b is None  # inference: generators only
    assert not loaded.training
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert_same_outputs(outputs(loaded), outputs(model)[:2])

    full = CycleGAN.from_pretrained(tmp_path, load_discriminators=True)
    assert isinstance(full.discriminator_a, PatchDiscriminator)
    assert_same_outputs(outputs(full), outputs(model))


def test_spectral_norm_discriminators_round_trip(make_cyclegan, tmp_path):
    model = make_cyclegan(discriminator={"ndf": 8, "n_layers": 2, "spectral_norm": True}, with_discriminators=True)
    model.discriminator_b.train()(torch.rand(1, 3, 32, 32))  # moves the power iteration's vectors on
    model.eval().save_pretrained(tmp_path)
    full = CycleGAN.from_pretrained(tmp_path, load_discriminators=True)
    assert full.config["discriminator"]["spectral_norm"] is True
    saved, loaded = model.discriminator_b.state_dict(), full.discriminator_b.state_dict()
    assert saved.keys() == loaded.keys() and any(key.endswith("._u") for key in saved)
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)  # the power iteration resumes where it was
    assert_same_outputs(outputs(full), outputs(model))


def test_multi_patch_discriminators_round_trip(make_cyclegan, tmp_path):
    model = make_cyclegan(discriminator={"ndf": 8, "n_layers": [2, 3]}, with_discriminators=True)
    model.eval().save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["discriminator"] == {"ndf": 8, "n_layers": [2, 3]}
    assert any(key.startswith("discriminator_a.members.1.") for key in load_file(tmp_path / DISCRIMINATORS_FILE))
    full = CycleGAN.from_pretrained(tmp_path, load_discriminators=True)
    assert [len(member.model) for member in full.discriminator_b.members] == [len(m.model) for m in model.discriminator_b.members]
    for saved, loaded in zip(outputs(model)[2:], outputs(full)[2:]):
        assert_same_outputs(saved, loaded)  # each discriminator's verdicts, member by member


def test_generators_are_stored_apart_from_discriminators(make_cyclegan, tmp_path):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path)
    generators = load_file(tmp_path / WEIGHTS_FILE)
    discriminators = load_file(tmp_path / DISCRIMINATORS_FILE)
    assert all(k.startswith(("generator_ab.", "generator_ba.")) for k in generators)
    assert all(k.startswith(("discriminator_a.", "discriminator_b.")) for k in discriminators)
    assert set(generators) | set(discriminators) == set(model.state_dict())


@pytest.mark.parametrize("passed", [{}, {"config": None}], ids=["save_pretrained", "as push_to_hub calls it"])
def test_config_json(make_cyclegan, tmp_path, passed):
    make_cyclegan(with_discriminators=True).save_pretrained(tmp_path, **passed)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["domain_a"] == "photo"
    assert config["domain_b"] == "monet"
    assert config["generator"] == {"ngf": 8, "n_blocks": 2}
    assert config["discriminator"] == {"ndf": 8, "n_layers": 2}
    assert "with_discriminators" not in config


def test_discriminators_file_only_when_there_are_discriminators(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path / "plain")
    assert (tmp_path / "plain" / WEIGHTS_FILE).exists()
    assert not (tmp_path / "plain" / DISCRIMINATORS_FILE).exists()

    model = make_cyclegan()
    model.add_discriminators()
    model.save_pretrained(tmp_path / "added")
    assert (tmp_path / "added" / DISCRIMINATORS_FILE).exists()


def test_load_discriminators_from_folder_without_them(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match=DISCRIMINATORS_FILE):
        CycleGAN.from_pretrained(tmp_path, load_discriminators=True)


def test_loaded_model_keeps_its_config(make_cyclegan, tmp_path):
    make_cyclegan(domain_a="horse", domain_b="zebra").save_pretrained(tmp_path / "one")
    loaded = CycleGAN.from_pretrained(tmp_path / "one")
    assert (loaded.domain_a, loaded.domain_b) == ("horse", "zebra")
    assert loaded.generator_ab.stem.conv.out_channels == 8
    assert len(loaded.generator_ab.blocks) == 2
    loaded.save_pretrained(tmp_path / "two")
    assert json.loads((tmp_path / "two" / "config.json").read_text()) == json.loads(
        (tmp_path / "one" / "config.json").read_text()
    )


def test_generator_round_trip(tmp_path):
    gen = ResnetGenerator(ngf=8, n_blocks=2, norm="batch", padding="zeros").eval()
    gen.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["ngf"] == 8 and config["norm"] == "batch" and config["padding"] == "zeros"
    loaded = ResnetGenerator.from_pretrained(tmp_path)
    assert loaded.head.padding_mode == "zeros"
    with torch.no_grad():
        assert torch.equal(loaded(X), gen(X))
    # Batch-norm running statistics are buffers, and they travel too.
    for key, value in gen.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# --- half-precision files --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", torch.float16])
def test_cyclegan_half_precision_files(make_cyclegan, tmp_path, dtype):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "half", dtype=dtype)
    expected_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float16

    for name in (WEIGHTS_FILE, DISCRIMINATORS_FILE):
        ratio = (tmp_path / "half" / name).stat().st_size / (tmp_path / "full" / name).stat().st_size
        assert 0.45 < ratio < 0.56, (name, ratio)
        assert all(t.dtype == expected_dtype for t in load_file(tmp_path / "half" / name).values())

    loaded = CycleGAN.from_pretrained(tmp_path / "half", load_discriminators=True)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    if expected_dtype == torch.float16:
        assert_same_outputs(outputs(loaded), outputs(half_rounded(model)))
    full = outputs(model)
    for got, want in zip(outputs(loaded), full):
        torch.testing.assert_close(got, want, atol=0.05, rtol=0.05)  # close to the unrounded model
    # The model itself was not converted by saving.
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_generator_float16_file(tmp_path):
    gen = ResnetGenerator(ngf=8, n_blocks=2).eval()
    gen.save_pretrained(tmp_path / "full")
    gen.save_pretrained(tmp_path / "half", dtype="float16")
    ratio = (tmp_path / "half" / WEIGHTS_FILE).stat().st_size / (tmp_path / "full" / WEIGHTS_FILE).stat().st_size
    assert 0.45 < ratio < 0.56
    loaded = ResnetGenerator.from_pretrained(tmp_path / "half")
    assert next(loaded.parameters()).dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(loaded(X), half_rounded(gen)(X))
        assert not torch.equal(loaded(X), gen(X))  # the rounding is real


def test_save_dtype_does_not_stick(make_cyclegan, tmp_path):
    model = make_cyclegan()
    model.save_pretrained(tmp_path / "half", dtype="float16")
    model.save_pretrained(tmp_path / "again")
    assert all(t.dtype == torch.float32 for t in load_file(tmp_path / "again" / WEIGHTS_FILE).values())


def test_bad_save_dtype(make_cyclegan, tmp_path):
    with pytest.raises(ValueError, match=r"dtype must be one of \['bfloat16', 'float16', 'float32'\], got 'int8'"):
        make_cyclegan().save_pretrained(tmp_path, dtype="int8")


def test_torch_dtype_on_load(make_cyclegan, tmp_path):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path)
    loaded = CycleGAN.from_pretrained(tmp_path, torch_dtype="float16", load_discriminators=True)
    assert {p.dtype for p in loaded.parameters()} == {torch.float16}
    # A float16 model still translates float32 tensors, returning float32 close to the float32 model's.
    out = loaded.translate(X[:1])
    assert out.dtype == torch.float32 and out.shape == X[:1].shape
    error = (out - outputs(model)[0][:1]).abs()
    assert error.mean() < 0.03 and error.max() < 0.2  # float16 arithmetic, not float16 storage only
    with pytest.raises(ValueError, match="dtype must be one of"):
        CycleGAN.from_pretrained(tmp_path, torch_dtype="float64")

    ResnetGenerator(ngf=8, n_blocks=1).save_pretrained(tmp_path / "generator")
    gen = ResnetGenerator.from_pretrained(tmp_path / "generator", torch_dtype=torch.bfloat16)
    assert {p.dtype for p in gen.parameters()} == {torch.bfloat16}


# --- strict loading --------------------------------------------------------------------------


def test_extra_key_is_an_error(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path)
    state = load_file(tmp_path / WEIGHTS_FILE)
    state["generator_ab.stem.conv.extra"] = torch.zeros(1)
    save_file(state, tmp_path / WEIGHTS_FILE)
    with pytest.raises(ValueError, match=r"unexpected \['generator_ab\.stem\.conv\.extra'\]"):
        CycleGAN.from_pretrained(tmp_path)


def test_missing_key_is_an_error(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path)
    state = load_file(tmp_path / WEIGHTS_FILE)
    del state["generator_ba.head.bias"]
    save_file(state, tmp_path / WEIGHTS_FILE)
    with pytest.raises(ValueError, match=r"model\.safetensors does not match CycleGAN: missing \['generator_ba\.head\.bias'\]"):
        CycleGAN.from_pretrained(tmp_path)


def test_renamed_discriminator_key_is_an_error(make_cyclegan, tmp_path):
    make_cyclegan(with_discriminators=True).save_pretrained(tmp_path)
    state = load_file(tmp_path / DISCRIMINATORS_FILE)
    state["discriminator_b.model.0.w"] = state.pop("discriminator_b.model.0.weight")
    save_file(state, tmp_path / DISCRIMINATORS_FILE)
    CycleGAN.from_pretrained(tmp_path)  # inference does not read the file
    with pytest.raises(ValueError, match=r"missing \['discriminator_b\.model\.0\.weight'\], unexpected \['discriminator_b\.model\.0\.w'\]"):
        CycleGAN.from_pretrained(tmp_path, load_discriminators=True)


def test_generator_file_for_other_architecture_is_an_error(tmp_path):
    ResnetGenerator(ngf=8, n_blocks=3).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"missing \[\].*unexpected \['blocks\.2\."):
        ResnetGenerator.from_pretrained(tmp_path, n_blocks=2)


# --- loading by Hub id from a real (offline) Hugging Face cache ------------------------------


def test_hub_id_from_offline_cache(make_cyclegan, tmp_path, hub_cache):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path / "saved")
    cache_dir, commit = hub_cache("org/name", tmp_path / "saved", ["config.json", WEIGHTS_FILE, DISCRIMINATORS_FILE])
    snapshot = cache_dir / "models--org--name" / "snapshots" / commit
    assert (snapshot / WEIGHTS_FILE).is_symlink()

    loaded = CycleGAN.from_pretrained("org/name", cache_dir=cache_dir)
    assert (loaded.domain_a, loaded.domain_b) == ("photo", "monet")
    assert loaded.discriminator_a is None
    assert_same_outputs(outputs(loaded), outputs(model)[:2])

    full = CycleGAN.from_pretrained("org/name", cache_dir=cache_dir, load_discriminators=True)
    assert_same_outputs(outputs(full), outputs(model))

    pinned = CycleGAN.from_pretrained("org/name", cache_dir=cache_dir, revision=commit)
    assert_same_outputs(outputs(pinned), outputs(model)[:2])


def test_inference_loading_reads_no_discriminator_file(make_cyclegan, tmp_path, hub_cache):
    model = make_cyclegan(with_discriminators=True)
    model.save_pretrained(tmp_path / "saved")
    # The snapshot holds the generators only: a partial download, as an inference user has.
    cache_dir, _ = hub_cache("org/name", tmp_path / "saved", ["config.json", WEIGHTS_FILE])

    loaded = CycleGAN.from_pretrained("org/name", cache_dir=cache_dir)
    assert_same_outputs(outputs(loaded), outputs(model)[:2])

    with pytest.raises(OSError, match="discriminators.safetensors|Hub cache has no copy"):
        CycleGAN.from_pretrained("org/name", cache_dir=cache_dir, load_discriminators=True)


def test_unknown_hub_id_offline_says_where_it_looked_and_what_to_do(tmp_path):
    with pytest.raises(OSError, match=r"'org/missing': it is not a local folder, so it was looked up on the Hugging Face Hub.*pass a local folder"):
        CycleGAN.from_pretrained("org/missing", cache_dir=tmp_path)


@pytest.mark.parametrize("path", ["./demo_modle", "/abs/path/model", "demo_modle", "runs/h2z/model", "org/name/", "~/model"])
def test_a_missing_local_path_is_reported_at_once_without_asking_the_hub(path):
    started = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=rf"no folder '{re.escape(path)}': it is not a Hub id either"):
        CycleGAN.from_pretrained(path)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: {**c, "colour": 3}, r"has unknown settings \['colour'\]; a CycleGAN takes"),
        (lambda c: {**c, "generator": {**c["generator"], "ngf": "32"}}, r"does not describe a CycleGAN: generator: ngf must be a positive integer, got '32'"),
        (lambda c: {**c, "generator": {**c["generator"], "width": 8}}, r"generator has unknown settings \['width'\]"),
        (lambda c: {**c, "discriminator": "big"}, r"discriminator must be a dict of PatchDiscriminator settings, got 'big'"),
        (lambda c: {**c, "domain_a": 7}, r"domain names must be two different non-empty strings"),
        (lambda c: [c], r"must hold a JSON object, got list"),
        (lambda c: "{not json", r"is not valid JSON"),
    ],
)
def test_a_bad_config_json_names_the_problem(make_cyclegan, tmp_path, edit, message):
    make_cyclegan().save_pretrained(tmp_path)
    config = edit(json.loads((tmp_path / "config.json").read_text()))
    (tmp_path / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    with pytest.raises(ValueError, match=message):
        CycleGAN.from_pretrained(tmp_path)


def test_weights_with_non_finite_values_are_refused(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state["generator_ba.head.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model.safetensors: tensor 'generator_ba.head.weight' holds NaN or infinite values"):
        CycleGAN.from_pretrained(tmp_path)


def test_generator_by_hub_id(tmp_path, hub_cache):
    gen = ResnetGenerator(ngf=8, n_blocks=2).eval()
    gen.save_pretrained(tmp_path / "saved", dtype="float16")
    cache_dir, _ = hub_cache("someone/gen", tmp_path / "saved", ["config.json", WEIGHTS_FILE])
    loaded = ResnetGenerator.from_pretrained("someone/gen", cache_dir=cache_dir)
    with torch.no_grad():
        assert torch.equal(loaded(X), half_rounded(gen)(X))


# --- directions ------------------------------------------------------------------------------


def test_translate_directions(make_cyclegan):
    model = make_cyclegan()
    image = Image.new("RGB", (24, 20), (200, 120, 40))
    to_b = model.translate(image, "a2b")
    to_a = model.translate(image, "b2a")
    assert to_b.tobytes() == model.translate(image, "monet").tobytes() == model.translate(image).tobytes()
    assert to_a.tobytes() == model.translate(image, "photo").tobytes()
    assert to_b.tobytes() == translate(model.generator_ab, image).tobytes()
    assert to_a.tobytes() == translate(model.generator_ba, image).tobytes()
    assert to_b.tobytes() != to_a.tobytes()
    assert model.generator("monet") is model.generator_ab and model.generator("photo") is model.generator_ba
    assert model.directions == {"a2b": "photo -> monet", "b2a": "monet -> photo"}
    assert torch.equal(model(X, "photo"), model.generator_ba(X))


def test_bad_direction_lists_the_choices(make_cyclegan):
    model = make_cyclegan()
    with pytest.raises(ValueError) as error:
        model.translate(Image.new("RGB", (8, 8)), "b2b")
    message = str(error.value)
    for choice in ("'a2b'", "'b2a'", "'monet'", "'photo'", "'b2b'"):
        assert choice in message


@pytest.mark.parametrize("names", [("A", "A"), ("", "B"), ("A", "")])
def test_bad_domain_names(names):
    with pytest.raises(ValueError, match="domain names must be two different non-empty strings"):
        CycleGAN(*names, generator=dict(ngf=4, n_blocks=0))


def test_a_new_card_replaces_the_folders_card(make_cyclegan, tmp_path):
    """The mixin keeps a README.md it finds; a card given to save_pretrained must replace it, or a
    training run saved twice to one folder would keep its first card."""
    model = make_cyclegan()
    for summary in ("Trained for 3 steps.", "Trained for 300 steps."):
        model.save_pretrained(tmp_path, model_card_kwargs=dict(summary=summary))
        assert summary in (tmp_path / "README.md").read_text()
    assert "3 steps" not in (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text("A card written by hand.\n")
    model.save_pretrained(tmp_path)  # no card given: the folder's own stays
    assert (tmp_path / "README.md").read_text() == "A card written by hand.\n"


@pytest.mark.parametrize(
    "skips, words",
    [({}, "Generators: ResNet, "), ({"unet_skips": True}, "Generators: ResNet with U-Net skips, "),
     ({"unet_skips": True, "input_skip": True}, "Generators: ResNet with U-Net skips and an input skip, ")],
)
def test_the_card_names_the_generators_skips(make_cyclegan, skips, words):
    card = make_cyclegan(generator={**TINY_GENERATOR, **skips}).generate_model_card()
    assert words in str(card)
