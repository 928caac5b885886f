"""Unpaired training data from Hub datasets or local folders.

Every layout people publish ends up as two lists of undecoded images, one per domain:
- (a) one split with two image columns (huggan's `imageA`, `imageB`); None padding is skipped;
- (b) one dataset / config per domain (`--dataset_a ... --config_a ...`), each with an image column;
- (c) one image column and a label column naming the domain (`trainA` / `trainB` / `testA` / `testB`);
- (d) a local folder with `trainA/ trainB/ testA/ testB/`, which `datasets`' imagefolder reads as (c).

Images stay encoded until a DataLoader worker needs them. Random choices (which B, crop, flip)
come from an RNG seeded by (seed, epoch, index), so a resumed run sees exactly the same samples,
whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import datasets
import torch
from PIL import Image

from .cli import option
from .images import pil_to_tensor, to_rgb

PREPROCESS_MODES = ("resize_and_crop", "scale_width_and_crop", "none")


@dataclass
class DataOptions:
    """Where the two domains come from; each field is a command-line flag of the same name."""

    dataset: str | None = option(None, "Hub dataset id, local dataset folder, or folder with trainA/ trainB/", card=False)
    dataset_a: str | None = option(None, "dataset of domain A, when each domain is its own dataset or config", card=False)
    dataset_b: str | None = option(None, "dataset of domain B", card=False)
    config_a: str | None = option(None, "config (subset) of --dataset_a, or of --dataset", card=False)
    config_b: str | None = option(None, "config (subset) of --dataset_b", card=False)
    split: str = option("train", "split to read; labels {split}A/{split}B are picked in labelled layouts", card=False)
    image_column_a: str | None = option(None, "image column of domain A (auto-detected when unambiguous)", card=False)
    image_column_b: str | None = option(None, "image column of domain B", card=False)
    label_column: str | None = option(None, "column naming each row's domain (auto: the ClassLabel column)", card=False)
    label_a: str | None = option(None, "label value of domain A (auto: {split}A or A)", card=False)
    label_b: str | None = option(None, "label value of domain B (auto: {split}B or B)", card=False)
    streaming: bool = option(False, "stream the dataset instead of downloading it", card=False)


class DatasetLayoutError(ValueError):
    """The dataset does not have the columns, splits or labels the options ask for."""


STREAMED_HELD_OUT_IMAGES = 500  # per domain, when a stream is scored without a limit


class MissingSplitError(DatasetLayoutError):
    """The dataset has no split of that name."""


def _describe(ds) -> str:
    features = {name: type(feature).__name__ for name, feature in ds.features.items()} if ds.features else "unknown"
    return f"columns {features}"


def _image_columns(ds) -> list[str]:
    return [name for name, feature in (ds.features or {}).items() if isinstance(feature, datasets.Image)]


def _load_split(path: str, config: str | None, split: str, streaming: bool):
    try:
        loaded = datasets.load_dataset(path, config, streaming=streaming)
    except (FileNotFoundError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as error:
        raise DatasetLayoutError(f"cannot load dataset {path!r}: {error}") from None
    except ValueError as error:  # e.g. a config name that does not exist
        raise DatasetLayoutError(f"cannot load dataset {path!r} (config {config!r}): {error}") from None
    if split not in loaded:
        raise MissingSplitError(f"dataset {path!r} has no split {split!r}; it has splits {sorted(loaded)}")
    return loaded[split]


def _image_column(ds, column: str | None, what: str) -> str:
    columns = _image_columns(ds)
    if column is not None:
        if column not in (ds.features or {}):
            raise DatasetLayoutError(f"{what}: no column {column!r}; the dataset has {_describe(ds)}")
        return column
    if len(columns) != 1:
        raise DatasetLayoutError(
            f"{what}: cannot tell which column holds the images ({len(columns)} image columns); "
            f"pass --image_column_a/--image_column_b. The dataset has {_describe(ds)}"
        )
    return columns[0]


def _only_images(ds, column: str, what: str):
    """Keep one column, undecoded, without the None padding of shorter domains."""
    ds = ds.select_columns([column]).rename_column(column, "image") if column != "image" else ds.select_columns(["image"])
    ds = ds.cast_column("image", datasets.Image(decode=False))
    if isinstance(ds, datasets.Dataset):
        nulls = ds.data.column("image").is_null().to_pylist()
        if any(nulls):
            ds = ds.select([i for i, null in enumerate(nulls) if not null])
        if len(ds) == 0:
            raise DatasetLayoutError(f"{what} has no images")
    else:
        ds = ds.filter(lambda row: row["image"] is not None)
    return ds


def _label_values(ds, label_column: str) -> list[str]:
    feature = ds.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    if not isinstance(ds, datasets.Dataset):
        raise DatasetLayoutError(f"streaming needs a ClassLabel column for labels, {label_column!r} is {feature}")
    return sorted({str(value) for value in ds.unique(label_column)})


def _split_by_label(ds, options: DataOptions):
    features = ds.features or {}
    label_column = options.label_column or next(
        (name for name, f in features.items() if isinstance(f, datasets.ClassLabel)),
        next((name for name in ("label", "domain") if name in features), None),
    )
    if label_column is None or label_column not in features:
        raise DatasetLayoutError(
            f"cannot tell the domains apart: need two image columns, a label column (--label_column) "
            f"or --dataset_a/--dataset_b; the dataset has {_describe(ds)}"
        )
    values = _label_values(ds, label_column)
    split = options.split
    label_a = options.label_a or next((v for v in (f"{split}A", "A") if v in values), None)
    label_b = options.label_b or next((v for v in (f"{split}B", "B") if v in values), None)
    for label, flag in ((label_a, "--label_a"), (label_b, "--label_b")):
        if label not in values:
            raise DatasetLayoutError(
                f"label column {label_column!r} has values {values}; pass {flag} to say which is which domain"
                if label is None
                else f"label {label!r} ({flag}) is not among the values {values} of column {label_column!r}"
            )
    feature = features[label_column]
    image_column = _image_column(ds, options.image_column_a, "the dataset")
    ds = ds.cast_column(image_column, datasets.Image(decode=False))  # else filtering a stream decodes every image

    def rows_with(label):
        target = str(feature.str2int(label) if isinstance(feature, datasets.ClassLabel) else label)
        if isinstance(ds, datasets.Dataset):
            column = ds.data.column(label_column).to_pylist()
            return ds.select([i for i, value in enumerate(column) if str(value) == target])
        return ds.filter(lambda row: str(row[label_column]) == target)

    return (
        _only_images(rows_with(label_a), image_column, f"domain A (label {label_a!r})"),
        _only_images(rows_with(label_b), image_column, f"domain B (label {label_b!r})"),
    )


def load_domains(options: DataOptions):
    """Return (images_a, images_b): datasets with one undecoded "image" column each."""
    if options.dataset_a or options.dataset_b:  # layout (b)
        if not (options.dataset_a and options.dataset_b):
            raise DatasetLayoutError("--dataset_a and --dataset_b go together")
        ds_a = _load_split(options.dataset_a, options.config_a, options.split, options.streaming)
        ds_b = _load_split(options.dataset_b, options.config_b, options.split, options.streaming)
        return (
            _only_images(ds_a, _image_column(ds_a, options.image_column_a, "--dataset_a"), "domain A"),
            _only_images(ds_b, _image_column(ds_b, options.image_column_b, "--dataset_b"), "domain B"),
        )
    if not options.dataset:
        raise DatasetLayoutError("pass --dataset, or --dataset_a and --dataset_b")
    try:
        ds = _load_split(options.dataset, options.config_a, options.split, options.streaming)
    except MissingSplitError as missing:
        # imagefolder reads trainA/ testA/ ... all into "train": there, --split test means labels testA/testB
        if options.split == "train":
            raise
        labels = dict(label_a=options.label_a or f"{options.split}A", label_b=options.label_b or f"{options.split}B")
        try:
            ds = _load_split(options.dataset, options.config_a, "train", options.streaming)
            return _split_by_label(ds, dataclasses.replace(options, **labels))
        except DatasetLayoutError:
            raise missing from None
    image_columns = _image_columns(ds)
    if options.image_column_a and options.image_column_b or len(image_columns) == 2:  # layout (a)
        column_a = options.image_column_a or next(c for c in image_columns if c != options.image_column_b)
        column_b = options.image_column_b or next(c for c in image_columns if c != column_a)
        for column in (column_a, column_b):
            if column not in (ds.features or {}):
                raise DatasetLayoutError(f"no column {column!r}; the dataset has {_describe(ds)}")
        return _only_images(ds, column_a, "domain A"), _only_images(ds, column_b, "domain B")
    return _split_by_label(ds, options)  # layouts (c) and (d)


def decode(entry: dict) -> Image.Image:
    """An undecoded `datasets.Image` entry ({"bytes", "path"}, local or remote) -> RGB PIL image."""
    image = datasets.Image().decode_example(entry)
    image.load()
    return to_rgb(image)


def try_decode(entry: dict) -> Image.Image | None:
    """`decode`, or None for a corrupt or unreadable image (what Pillow raises for those)."""
    try:
        return decode(entry)
    except (OSError, ValueError, SyntaxError):
        return None


@dataclass
class Preprocess:
    """The original's training augmentation: resize, random crop, horizontal flip."""

    load_size: int = 286
    crop_size: int = 256
    mode: str = "resize_and_crop"
    flip: bool = True

    def __post_init__(self):
        if self.mode not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {self.mode!r}")
        if self.mode != "none" and not 0 < self.crop_size <= self.load_size:
            raise ValueError(f"need 0 < crop_size <= load_size, got crop_size={self.crop_size}, load_size={self.load_size}")

    def __call__(self, image: Image.Image, rng: random.Random) -> torch.Tensor:
        if self.mode == "resize_and_crop":
            image = image.resize((self.load_size, self.load_size), Image.Resampling.BICUBIC)
        elif self.mode == "scale_width_and_crop":
            height = max(self.crop_size, round(image.height * self.load_size / image.width))
            image = image.resize((self.load_size, height), Image.Resampling.BICUBIC)
        if self.mode != "none":
            left = rng.randint(0, image.width - self.crop_size)
            top = rng.randint(0, image.height - self.crop_size)
            image = image.crop((left, top, left + self.crop_size, top + self.crop_size))
        else:  # sides must divide by 4 for the generator's two downsamplings: round to the nearest multiple
            size = (max(4, round(image.width / 4) * 4), max(4, round(image.height / 4) * 4))
            image = image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image
        if self.flip and rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil_to_tensor(image)


class UnpairedDataset(torch.utils.data.Dataset):
    """Index i gives A image i and a random B image, as the original's unaligned dataset does.

    An epoch is max(|A|, |B|) samples; the shorter domain wraps around. A corrupt image is
    replaced by the next good one and counted in the sample's "skipped" field.
    """

    def __init__(self, images_a, images_b, preprocess: Preprocess, seed: int = 0):
        self.images_a, self.images_b = images_a, images_b
        self.preprocess, self.seed, self.epoch = preprocess, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def _load(self, images, index: int, rng: random.Random) -> tuple[torch.Tensor, int]:
        for skipped in range(min(len(images), 100)):
            image = try_decode(images[(index + skipped) % len(images)]["image"])
            if image is not None:
                return self.preprocess(image, rng), skipped
        raise RuntimeError(f"100 images in a row could not be decoded, from index {index}: is the dataset corrupt?")

    def __getitem__(self, index: int) -> dict:
        rng = random.Random(hash((self.seed, self.epoch, index)))
        a, skipped_a = self._load(self.images_a, index % len(self.images_a), rng)
        b, skipped_b = self._load(self.images_b, rng.randrange(len(self.images_b)), rng)
        return {"a": a, "b": b, "skipped": skipped_a + skipped_b}


class StreamingUnpairedDataset(torch.utils.data.IterableDataset):
    """Streaming variant: A in (shuffled) stream order, B from its own shuffled stream, cycled.

    In DataLoader workers `datasets` gives each worker its own shards of both streams, so there
    can be at most as many workers as the smaller stream has shards (`max_workers`).
    """

    def __init__(self, images_a, images_b, preprocess: Preprocess, seed: int = 0, buffer_size: int = 1000):
        self.images_a, self.images_b = images_a, images_b
        self.preprocess, self.seed, self.buffer_size, self.epoch = preprocess, seed, buffer_size, 0

    @property
    def max_workers(self) -> int:
        return min(self.images_a.num_shards, self.images_b.num_shards)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _images(self, images, epoch: int):
        """(image or None if corrupt) for each row of one pass over a shuffled stream."""
        for row in images.shuffle(seed=self.seed + epoch, buffer_size=self.buffer_size):
            yield try_decode(row["image"])

    def _endless_b(self):
        """Good B images forever, reshuffled each pass; (image, corrupt images skipped before it)."""
        epoch, skipped = self.epoch, 0
        while True:
            found = False
            for image in self._images(self.images_b, epoch):
                if image is None:
                    skipped += 1
                    if skipped >= 100:
                        raise RuntimeError("100 images of domain B in a row could not be decoded: is the dataset corrupt?")
                    continue
                found = True
                yield image, skipped
                skipped = 0
            if not found:
                raise DatasetLayoutError("domain B has no images")
            epoch += 1

    def __iter__(self):
        rng = random.Random(hash((self.seed, self.epoch)))
        images_b, skipped = self._endless_b(), 0
        for a in self._images(self.images_a, self.epoch):
            if a is None:
                skipped += 1
                continue
            b, skipped_b = next(images_b)
            yield {"a": self.preprocess(a, rng), "b": self.preprocess(b, rng), "skipped": skipped + skipped_b}
            skipped = 0


def unpaired_dataset(options: DataOptions, preprocess: Preprocess, seed: int = 0):
    """The training dataset for these options: map-style, or iterable when streaming."""
    images_a, images_b = load_domains(options)
    dataset_class = StreamingUnpairedDataset if options.streaming else UnpairedDataset
    return dataset_class(images_a, images_b, preprocess, seed)


def held_out_images(
    options: DataOptions, eval_split: str, limit: int | None = None, *, fallback: bool = True
) -> tuple[list, list, str]:
    """The first `limit` decoded RGB images of both domains, from `eval_split` if the dataset has it.

    A streamed dataset has no known length: without `limit` it gives its first
    `STREAMED_HELD_OUT_IMAGES`. Falls back to the training split (and says so in the returned
    split name) for datasets that publish no such split; with `fallback=False` (figures that must
    be held out) raises `MissingSplitError` instead. Corrupt images are left out.
    """
    split = eval_split
    try:
        images_a, images_b = load_domains(dataclasses.replace(options, split=eval_split))
    except MissingSplitError:
        if not fallback:
            raise
        split = options.split
        images_a, images_b = load_domains(options)

    def take(images):
        if isinstance(images, datasets.IterableDataset):  # a stream is read only as far as needed
            rows = images.take(limit if limit is not None else STREAMED_HELD_OUT_IMAGES)
        else:
            rows = images.select(range(len(images) if limit is None else min(limit, len(images))))
        return [image for row in rows if (image := try_decode(row["image"])) is not None]

    return take(images_a), take(images_b), split
