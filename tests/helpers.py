"""Tiny unpaired datasets, laid out on disk the way they sit in Hub dataset repos or local folders.

Domain A images are reddish, domain B bluish (random noise around a colour), so a test can tell
which domain, and often which image, a training sample came from. Every builder returns the folder
to pass as `--dataset` (or `--dataset_a`/`--dataset_b`) and the expected number of images.

- layout_a: one split per parquet file under data/, two image columns, the shorter padded with None;
- layout_b: one config per domain, declared in the README's YAML `configs:` section;
- layout_c: one image column and a label column with trainA / trainB / testA / testB;
- layout_d: a plain folder with trainA/ trainB/ testA/ testB/ of PNG and JPEG files.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train_accelerate.py"
RED, BLUE = (200, 40, 40), (40, 40, 200)
LABELS = ["trainA", "trainB", "testA", "testB"]


def noisy(colour, seed: int, size=(40, 36)) -> Image.Image:
    """An RGB image of uniform noise (+-30) around `colour`."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(colour, dtype=np.int16) + rng.integers(-30, 31, size=(size[1], size[0], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def entry(image: Image.Image, fmt: str = "PNG") -> dict:
    """What a `datasets.Image` column stores for an embedded image."""
    return {"bytes": encode(image, fmt), "path": None}


def images(colour, count: int, seed: int = 0, fmt: str = "PNG") -> list[dict]:
    return [entry(noisy(colour, seed + i), fmt) for i in range(count)]


def write_parquet(path: Path, columns: dict, image_columns=(), class_label: tuple[str, list[str]] | None = None) -> None:
    """`columns` -> one parquet file, with `datasets.Image` (and optionally ClassLabel) features."""
    import datasets

    ds = datasets.Dataset.from_dict(columns)
    for name in image_columns:
        ds = ds.cast_column(name, datasets.Image())
    if class_label is not None:
        ds = ds.cast_column(class_label[0], datasets.ClassLabel(names=class_label[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))


def layout_a(root: Path, n_a: int = 5, n_b: int = 3, n_test: int = 2, columns=("imageA", "imageB")) -> Path:
    """huggan style: columns imageA / imageB in one table; B, the shorter, is padded with None."""
    for split, count_a, count_b, seed in (("train", n_a, n_b, 0), ("test", n_test + 1, n_test, 100)):
        write_parquet(
            root / "data" / f"{split}-00000-of-00001.parquet",
            {
                columns[0]: images(RED, count_a, seed),
                columns[1]: images(BLUE, count_b, seed) + [None] * (count_a - count_b),
            },
            image_columns=columns,
        )
    return root


CONFIGS_README = """\
---
configs:
- config_name: horse
  data_files:
  - split: train
    path: data/horse/train-*.parquet
  - split: test
    path: data/horse/test-*.parquet
- config_name: zebra
  data_files:
  - split: train
    path: data/zebra/train-*.parquet
  - split: test
    path: data/zebra/test-*.parquet
---

# horse2zebra, one config per domain
"""


def layout_b(root: Path, n_a: int = 4, n_b: int = 3, n_test: int = 2) -> Path:
    """gigant/horse2zebra style: configs "horse" and "zebra", each with train and test splits."""
    for config, colour, count in (("horse", RED, n_a), ("zebra", BLUE, n_b)):
        for split, k, seed in (("train", count, 0), ("test", n_test, 100)):
            write_parquet(
                root / "data" / config / f"{split}-00000-of-00001.parquet",
                {"image": images(colour, k, seed)},
                image_columns=["image"],
            )
    (root / "README.md").write_text(CONFIGS_README)
    return root


def layout_c(root: Path, counts=(4, 3, 2, 2), class_label: bool = False, label_column: str = "domain") -> Path:
    """One train split, one image column, a label column with trainA / trainB / testA / testB.

    counts: images per label, in LABELS order. `class_label` stores the labels as a ClassLabel.
    """
    rows, labels = [], []
    for label, count in zip(LABELS, counts):
        colour = RED if label.endswith("A") else BLUE
        rows += images(colour, count, seed=len(rows))
        labels += [label] * count
    write_parquet(
        root / "data" / "train-00000-of-00001.parquet",
        {"image": rows, label_column: labels},
        image_columns=["image"],
        class_label=(label_column, LABELS) if class_label else None,
    )
    return root


def layout_d(root: Path, counts=(4, 3, 2, 2), size=(40, 36)) -> Path:
    """trainA/ trainB/ testA/ testB/ of PNG and JPEG files (every other file is a JPEG)."""
    for label, count in zip(LABELS, counts):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        colour = RED if label.endswith("A") else BLUE
        for i in range(count):
            suffix = "jpg" if i % 2 else "png"
            noisy(colour, seed=100 * LABELS.index(label) + i, size=size).save(folder / f"{i:03d}.{suffix}")
    return root


def script_env(hf_home: Path, **extra) -> dict:
    """Environment for running the training script: offline, CPU only, quiet, its own HF_HOME."""
    env = dict(os.environ)
    env.update(
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        CUDA_VISIBLE_DEVICES="",
        OMP_NUM_THREADS="1",
        TQDM_DISABLE="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
    )
    env.pop("HF_DATASETS_CACHE", None)
    env.update(extra)
    return env


PYTHON = sys.executable


def run_checked(command, env: dict, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run `command` from the repository root; with `check`, fail the test with its stderr's end if it fails."""
    command = list(map(str, command))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(command)}\nexit code {result.returncode}\n{result.stderr[-6000:]}")
    return result
