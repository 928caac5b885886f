"""Training data: every dataset layout, clear errors, the unpaired sampler, image modes, preprocessing.

The datasets are real files, written the way they sit in a Hub dataset repo (parquet under data/,
configs declared in the README) or in a local folder; `tests/helpers.py` builds them.
"""

from __future__ import annotations

import io
import random
import threading

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

import helpers
from cyclegan_hub.data import (
    DataOptions,
    DatasetLayoutError,
    MissingSplitError,
    Preprocess,
    StreamingUnpairedDataset,
    UnpairedDataset,
    decode,
    held_out_images,
    load_domains,
    unpaired_dataset,
)

pytestmark = pytest.mark.usefixtures("datasets_cache")


@pytest.fixture
def quick_streams(monkeypatch):
    """`datasets` waits 5 s each time a parquet stream ends (apache/arrow#45214); tiny streams end often."""
    monkeypatch.setattr(datasets.config, "SLEEP_TIME_ON_THREADS_SHUTDOWN", 0.05)


def options_for(layouts, layout: str, **kwargs) -> DataOptions:
    """DataOptions reading `layout`; layout "b" names each config as its own domain."""
    if layout == "b":
        kwargs = dict(dataset_a=str(layouts["b"]), config_a="horse", dataset_b=str(layouts["b"]), config_b="zebra", **kwargs)
    else:
        kwargs = dict(dataset=str(layouts[layout]), **kwargs)
    return DataOptions(**kwargs)


def colours(images) -> list[str]:
    """"red" or "blue" for each undecoded image of a domain (the helpers paint A red, B blue)."""
    result = []
    for row in images:
        mean = np.asarray(decode(row["image"]), dtype=np.float64).mean(axis=(0, 1))
        result.append("red" if mean[0] > mean[2] else "blue")
    return result


# --- the four layouts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout, kwargs, expected",
    [
        ("a", {}, (5, 3)),  # imageB is padded with two None, which are not images
        ("a", {"split": "test"}, (3, 2)),
        ("a", {"image_column_a": "imageA", "image_column_b": "imageB"}, (5, 3)),
        ("b", {}, (4, 3)),
        ("b", {"split": "test"}, (2, 2)),
        ("c", {}, (4, 3)),
        ("c", {"split": "test"}, (2, 2)),  # testA / testB rows live in the only split, "train"
        ("c_classlabel", {}, (4, 3)),
        ("c_classlabel", {"split": "test"}, (2, 2)),
        ("d", {}, (4, 3)),
        ("d", {"split": "test"}, (2, 2)),  # imagefolder reads testA/ and testB/ into "train"
    ],
)
def test_layouts_give_each_domain_its_images(layouts, layout, kwargs, expected):
    images_a, images_b = load_domains(options_for(layouts, layout, **kwargs))
    assert (len(images_a), len(images_b)) == expected
    assert list(images_a.features) == list(images_b.features) == ["image"]
    assert colours(images_a) == ["red"] * expected[0]
    assert colours(images_b) == ["blue"] * expected[1]


def test_none_padding_is_skipped(layouts):
    table = datasets.load_dataset(str(layouts["a"]), split="train")
    assert table["imageB"][-2:] == [None, None]  # the padding is really there
    _, images_b = load_domains(options_for(layouts, "a"))
    assert len(images_b) == 3
    assert all(row["image"] is not None and row["image"]["bytes"] for row in images_b)


@pytest.mark.parametrize(
    "layout, kwargs, expected",
    [
        ("a", {"image_column_a": "imageB", "image_column_b": "imageA"}, ("blue", 3, "red", 5)),
        ("c", {"label_a": "testA", "label_b": "trainB"}, ("red", 2, "blue", 3)),
        ("c", {"label_column": "domain", "label_a": "trainB", "label_b": "trainA"}, ("blue", 3, "red", 4)),
        ("d", {"label_a": "trainB", "label_b": "trainA"}, ("blue", 3, "red", 4)),
        ("b", {"config_a": "zebra", "config_b": "horse"}, ("blue", 3, "red", 4)),
    ],
)
def test_explicit_columns_labels_and_configs(layouts, layout, kwargs, expected):
    if layout == "b":
        options = DataOptions(dataset_a=str(layouts["b"]), dataset_b=str(layouts["b"]), **kwargs)
    else:
        options = options_for(layouts, layout, **kwargs)
    images_a, images_b = load_domains(options)
    colour_a, count_a, colour_b, count_b = expected
    assert colours(images_a) == [colour_a] * count_a
    assert colours(images_b) == [colour_b] * count_b


def test_a_config_holds_only_its_own_domain(layouts):
    """Layout (b) through `--dataset --config_a horse`: one image column and no label is no layout."""
    with pytest.raises(DatasetLayoutError, match="cannot tell the domains apart") as error:
        load_domains(DataOptions(dataset=str(layouts["b"]), config_a="horse"))
    assert "'image'" in str(error.value)


# --- clear errors ------------------------------------------------------------------------------


def test_missing_column_lists_the_columns(layouts):
    with pytest.raises(DatasetLayoutError) as error:
        load_domains(options_for(layouts, "a", image_column_a="imageA", image_column_b="photo"))
    message = str(error.value)
    assert "'photo'" in message and "'imageA'" in message and "'imageB'" in message

    with pytest.raises(DatasetLayoutError) as error:
        load_domains(options_for(layouts, "b", image_column_b="img"))
    assert "--dataset_b" in str(error.value) and "'img'" in str(error.value) and "'image'" in str(error.value)


def test_unknown_layout_lists_the_columns(tmp_path, quick_streams):
    helpers.write_parquet(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {"image": helpers.images(helpers.RED, 2), "caption": ["a", "b"]},
        image_columns=["image"],
    )
    for streaming in (False, True):
        with pytest.raises(DatasetLayoutError, match="cannot tell the domains apart") as error:
            load_domains(DataOptions(dataset=str(tmp_path), streaming=streaming))
        assert "'image'" in str(error.value) and "'caption'" in str(error.value)


def test_three_image_columns_need_explicit_columns(tmp_path):
    helpers.write_parquet(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {name: helpers.images(helpers.RED, 2) for name in ("x", "y", "z")},
        image_columns=["x", "y", "z"],
    )
    with pytest.raises(DatasetLayoutError, match="cannot tell the domains apart") as error:
        load_domains(DataOptions(dataset=str(tmp_path)))
    assert "{'x': 'Image', 'y': 'Image', 'z': 'Image'}" in str(error.value)
    images_a, images_b = load_domains(DataOptions(dataset=str(tmp_path), image_column_a="z", image_column_b="x"))
    assert len(images_a) == len(images_b) == 2


def test_bad_label_lists_the_values(layouts):
    with pytest.raises(DatasetLayoutError, match="--label_a") as error:
        load_domains(options_for(layouts, "c", label_a="trainC"))
    assert "'trainC'" in str(error.value)
    assert all(repr(label) in str(error.value) for label in helpers.LABELS)
    with pytest.raises(DatasetLayoutError, match="--label_b"):
        load_domains(options_for(layouts, "d", label_b="zebra"))


def test_labels_that_name_no_domain(tmp_path):
    helpers.write_parquet(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {"image": helpers.images(helpers.RED, 2), "style": ["monet", "photo"]},
        image_columns=["image"],
    )
    with pytest.raises(DatasetLayoutError, match="pass --label_a") as error:
        load_domains(DataOptions(dataset=str(tmp_path), label_column="style"))
    assert "'monet'" in str(error.value) and "'photo'" in str(error.value)
    images_a, images_b = load_domains(DataOptions(dataset=str(tmp_path), label_column="style", label_a="photo", label_b="monet"))
    assert len(images_a) == len(images_b) == 1


def test_empty_domain(tmp_path, quick_streams):
    helpers.write_parquet(
        tmp_path / "data" / "train-00000-of-00001.parquet",
        {"imageA": helpers.images(helpers.RED, 2), "imageB": [None, None]},
        image_columns=["imageA", "imageB"],
    )
    with pytest.raises(DatasetLayoutError, match="domain B has no images"):
        load_domains(DataOptions(dataset=str(tmp_path)))
    # A stream only finds out while reading: it must fail, not wait forever for a B image.
    images_a, images_b = load_domains(DataOptions(dataset=str(tmp_path), streaming=True))
    stream = StreamingUnpairedDataset(images_a, images_b, Preprocess(36, 32))
    outcome = {}

    def first_sample():
        try:
            outcome["sample"] = next(iter(stream))
        except Exception as error:  # noqa: BLE001 - checked below
            outcome["error"] = error

    reader = threading.Thread(target=first_sample, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "the stream waits forever for an image of domain B"
    assert isinstance(outcome.get("error"), DatasetLayoutError) and "domain B has no images" in str(outcome["error"])


def test_missing_split_config_and_dataset(layouts, tmp_path):
    with pytest.raises(DatasetLayoutError, match="no split 'validation'") as error:
        load_domains(options_for(layouts, "a", split="validation"))
    assert "['test', 'train']" in str(error.value)
    with pytest.raises(DatasetLayoutError, match="no split 'validation'"):
        load_domains(options_for(layouts, "d", split="validation"))  # no validationA/B labels either
    with pytest.raises(DatasetLayoutError, match="'horse'"):
        load_domains(DataOptions(dataset_a=str(layouts["b"]), config_a="hors", dataset_b=str(layouts["b"]), config_b="zebra"))
    with pytest.raises(DatasetLayoutError, match="cannot load dataset"):
        load_domains(DataOptions(dataset=str(tmp_path / "no-such-folder")))
    with pytest.raises(DatasetLayoutError, match="cannot load dataset"):
        load_domains(DataOptions(dataset="no-such-org/no-such-dataset"))  # offline: not on disk, Hub unreachable
    with pytest.raises(DatasetLayoutError, match="go together"):
        load_domains(DataOptions(dataset_a=str(layouts["b"]), config_a="horse"))
    with pytest.raises(DatasetLayoutError, match="pass --dataset"):
        load_domains(DataOptions())


def test_held_out_images_come_from_the_test_split(layouts, tmp_path):
    for layout in ("a", "b", "c", "d"):
        held_a, held_b, split = held_out_images(options_for(layouts, layout), "test")
        assert split == "test"
        assert all(isinstance(image, Image.Image) and image.mode == "RGB" for image in held_a + held_b)
        assert (len(held_a), len(held_b)) == ((3, 2) if layout == "a" else (2, 2))
    held_a, held_b, _ = held_out_images(options_for(layouts, "d"), "test", limit=1)
    assert len(held_a) == len(held_b) == 1
    # No test images at all: the training split stands in, and says so.
    no_test = helpers.layout_c(tmp_path / "no-test", counts=(4, 3, 0, 0))
    held_a, held_b, split = held_out_images(DataOptions(dataset=str(no_test)), "test")
    assert split == "train" and (len(held_a), len(held_b)) == (4, 3)
    with pytest.raises(MissingSplitError, match="has no split 'test'"):  # figures that must be held out
        held_out_images(DataOptions(dataset=str(no_test)), "test", fallback=False)


# --- the unpaired sampler ----------------------------------------------------------------------


def grey_images(levels, fmt="PNG", size=(40, 36)) -> datasets.Dataset:
    """One undecoded image per grey level, so a sample's level tells which image it came from."""
    rows = [helpers.entry(Image.new("RGB", size, (level,) * 3), fmt) for level in levels]
    return datasets.Dataset.from_dict({"image": rows}).cast_column("image", datasets.Image(decode=False))


def level(tensor: torch.Tensor) -> int:
    return round(float(tensor.mean()) * 127.5 + 127.5)


A_LEVELS = [10, 20, 30]
B_LEVELS = [100, 120, 140, 160, 180, 200, 220]


def test_length_is_the_larger_domain_and_a_is_walked_in_order():
    preprocess = Preprocess(36, 32)
    dataset = UnpairedDataset(grey_images(A_LEVELS), grey_images(B_LEVELS), preprocess, seed=3)
    assert len(dataset) == 7
    assert len(UnpairedDataset(grey_images(B_LEVELS), grey_images(A_LEVELS), preprocess)) == 7
    assert [level(dataset[i]["a"]) for i in range(7)] == [A_LEVELS[i % 3] for i in range(7)]


def test_b_is_drawn_at_random_and_deterministically():
    preprocess = Preprocess(36, 32)
    dataset = UnpairedDataset(grey_images(A_LEVELS), grey_images(B_LEVELS), preprocess, seed=3)
    picks = [B_LEVELS.index(level(dataset[i]["b"])) for i in range(7)]
    assert picks != list(range(7))  # not paired by index
    assert len(set(picks)) > 2

    # The same (seed, epoch, index) gives the same sample, in a fresh dataset too (a resumed run).
    again = UnpairedDataset(grey_images(A_LEVELS), grey_images(B_LEVELS), preprocess, seed=3)
    for i in range(7):
        first, second = dataset[i], again[i]
        assert torch.equal(first["a"], second["a"]) and torch.equal(first["b"], second["b"])

    def picks_for(seed, epoch):
        other = UnpairedDataset(grey_images(A_LEVELS), grey_images(B_LEVELS), preprocess, seed=seed)
        other.set_epoch(epoch)
        return [level(other[i]["b"]) for i in range(7)]

    assert picks_for(3, 0) == picks_for(3, 0)
    assert picks_for(3, 1) != picks_for(3, 0)  # a new epoch pairs differently
    assert picks_for(4, 0) != picks_for(3, 0)


def test_crop_and_flip():
    # Left half black, right half white: a flip shows as a white left column.
    half = np.zeros((36, 40, 3), dtype=np.uint8)
    half[:, 20:] = 255
    rows = [helpers.entry(Image.fromarray(half))]
    images = datasets.Dataset.from_dict({"image": rows}).cast_column("image", datasets.Image(decode=False))

    flipping = UnpairedDataset(images, images, Preprocess(36, 32, flip=True), seed=0)
    flipped = []
    for epoch in range(12):
        flipping.set_epoch(epoch)
        sample = flipping[0]
        assert sample["a"].shape == sample["b"].shape == (3, 32, 32)
        flipped.append(bool(sample["a"][:, :, 0].mean() > 0))
    assert any(flipped) and not all(flipped)

    still = UnpairedDataset(images, images, Preprocess(36, 32, flip=False), seed=0)
    for epoch in range(12):
        still.set_epoch(epoch)
        assert still[0]["a"][:, :, 0].mean() < 0 and still[0]["a"][:, :, -1].mean() > 0

    # With load_size > crop_size the crop window moves: the black/white edge lands in different columns.
    moving = UnpairedDataset(images, images, Preprocess(64, 32, flip=False), seed=0)
    edges = set()
    for epoch in range(12):
        moving.set_epoch(epoch)
        edges.add(int((moving[0]["a"][0, 0] > 0).float().argmax()))
    assert len(edges) > 1


def mode_images() -> dict[str, bytes]:
    """The same 40x36 picture in modes people's datasets hold, encoded as such files are."""
    palette = Image.new("P", (40, 36), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # index 1 is red
    transparent_palette = palette.copy()
    transparent_palette.info["transparency"] = 1
    return {
        "L": helpers.encode(Image.new("L", (40, 36), 128)),
        "LA": helpers.encode(Image.new("LA", (40, 36), (0, 0))),  # fully transparent: white
        "RGBA": helpers.encode(Image.new("RGBA", (40, 36), (255, 0, 0, 255))),
        "RGBA-transparent": helpers.encode(Image.new("RGBA", (40, 36), (0, 0, 0, 0))),
        "CMYK": helpers.encode(Image.new("CMYK", (40, 36), (0, 255, 255, 0)), "JPEG"),  # red
        "I;16": helpers.encode(Image.new("I;16", (40, 36), 65535)),  # white
        "P": helpers.encode(palette),
        "P-transparent": helpers.encode(transparent_palette),
        "1": helpers.encode(Image.new("1", (40, 36), 1)),
    }


EXPECTED_RGB = {
    "L": (128, 128, 128),
    "LA": (255, 255, 255),
    "RGBA": (255, 0, 0),
    "RGBA-transparent": (255, 255, 255),
    "CMYK": (255, 0, 0),
    "I;16": (255, 255, 255),
    "P": (255, 0, 0),
    "P-transparent": (255, 255, 255),
    "1": (255, 255, 255),
}


def test_every_image_mode_becomes_an_rgb_tensor():
    encoded = mode_images()
    for name, data in encoded.items():
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.mode == name.split("-")[0], name  # the file really holds that mode
    rows = [{"bytes": data, "path": None} for data in encoded.values()]
    images = datasets.Dataset.from_dict({"image": rows}).cast_column("image", datasets.Image(decode=False))
    dataset = UnpairedDataset(images, grey_images([0]), Preprocess(36, 32), seed=0)
    for index, name in enumerate(encoded):
        sample = dataset[index]
        tensor = sample["a"]
        assert sample["skipped"] == 0
        assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32, name
        assert tensor.min() >= -1 and tensor.max() <= 1, name
        rgb = tuple(round(float(channel.mean()) * 127.5 + 127.5) for channel in tensor)
        assert np.allclose(rgb, EXPECTED_RGB[name], atol=3), (name, rgb)


def test_corrupt_images_are_skipped_and_counted():
    good = helpers.encode(Image.new("RGB", (40, 36), (10, 10, 10)))
    later = helpers.encode(Image.new("RGB", (40, 36), (30, 30, 30)))
    rows = [
        {"bytes": good, "path": None},
        {"bytes": good[: len(good) // 2], "path": None},  # truncated PNG
        {"bytes": b"not an image at all", "path": None},
        {"bytes": later, "path": None},
    ]
    images = datasets.Dataset.from_dict({"image": rows}).cast_column("image", datasets.Image(decode=False))
    dataset = UnpairedDataset(images, grey_images([200]), Preprocess(36, 32), seed=0)
    sample = dataset[1]
    assert sample["skipped"] == 2 and level(sample["a"]) == 30  # the next good image stands in
    assert dataset[0]["skipped"] == 0

    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=0)
    assert sum(int(batch["skipped"].sum()) for batch in loader) == 2 + 1  # indices 1 and 2

    broken = datasets.Dataset.from_dict({"image": rows[1:3]}).cast_column("image", datasets.Image(decode=False))
    with pytest.raises(RuntimeError, match="could not be decoded"):
        UnpairedDataset(broken, grey_images([200]), Preprocess(36, 32))[0]


def test_corrupt_files_in_a_folder_are_skipped(tmp_path, datasets_cache):
    root = helpers.layout_d(tmp_path / "d", counts=(3, 2, 0, 0))
    (root / "trainA" / "001.jpg").write_bytes((root / "trainA" / "001.jpg").read_bytes()[:40])  # truncated JPEG
    dataset = unpaired_dataset(DataOptions(dataset=str(root)), Preprocess(36, 32), seed=0)
    assert len(dataset) == 3
    samples = [dataset[i] for i in range(3)]
    assert sum(sample["skipped"] for sample in samples) == 1
    assert all(sample["a"].shape == (3, 32, 32) for sample in samples)


# --- preprocessing -----------------------------------------------------------------------------


def vertical_gradient(width, height) -> Image.Image:
    rows = np.linspace(0, 255, height).round().astype(np.uint8)
    return Image.fromarray(np.repeat(rows[:, None], width, axis=1)).convert("RGB")


def test_preprocess_modes():
    rng = random.Random(0)
    tall = vertical_gradient(40, 80)

    out = Preprocess(32, 32, "resize_and_crop", flip=False)(tall, rng)
    assert out.shape == (3, 32, 32)
    assert float(out[0, -1, 0] - out[0, 0, 0]) > 1.8  # squashed to a square: the whole gradient

    out = Preprocess(32, 32, "scale_width_and_crop", flip=False)(tall, rng)
    assert out.shape == (3, 32, 32)
    assert 0.7 < float(out[0, -1, 0] - out[0, 0, 0]) < 1.3  # width to 32 keeps the aspect: half the height

    wide = Preprocess(48, 32, "scale_width_and_crop", flip=False)(vertical_gradient(80, 40), rng)
    assert wide.shape == (3, 32, 32)  # 48x24 is too short to crop: the height is raised to 32

    out = Preprocess(286, 256, "none", flip=False)(vertical_gradient(41, 38), rng)
    assert out.shape == (3, 40, 40)  # no crop; sides rounded to the nearest multiple of 4, as the original does

    assert Preprocess(36, 32, "resize_and_crop")(Image.new("RGB", (5, 300)), rng).shape == (3, 32, 32)


def test_preprocess_rejects_bad_settings():
    with pytest.raises(ValueError, match="preprocess must be one of"):
        Preprocess(36, 32, "zoom")
    with pytest.raises(ValueError, match="crop_size <= load_size"):
        Preprocess(286, 300)
    Preprocess(16, 300, "none")  # sizes do not matter without a crop


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, expected", [("a", (5, 3)), ("c_classlabel", (4, 3))])
def test_streaming(layouts, layout, expected, quick_streams):
    images_a, images_b = load_domains(options_for(layouts, layout, streaming=True))
    assert isinstance(images_a, datasets.IterableDataset) and isinstance(images_b, datasets.IterableDataset)
    assert (len(list(images_a)), len(list(images_b))) == expected

    dataset = unpaired_dataset(options_for(layouts, layout, streaming=True), Preprocess(36, 32), seed=0)
    assert isinstance(dataset, StreamingUnpairedDataset)
    samples = list(dataset)
    assert len(samples) == expected[0]  # one pass over A; B cycles as long as needed
    for sample in samples:
        assert sample["a"].shape == sample["b"].shape == (3, 32, 32)
        assert sample["a"][0].mean() > sample["a"][2].mean() and sample["b"][2].mean() > sample["b"][0].mean()
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, drop_last=True)
    assert [batch["a"].shape for batch in loader] == [(2, 3, 32, 32)] * (expected[0] // 2)


def test_streaming_string_labels_need_a_classlabel(layouts):
    with pytest.raises(DatasetLayoutError, match="ClassLabel"):
        load_domains(options_for(layouts, "c", streaming=True))
