"""Shared test setup: offline Hub, fixed seeds, tiny networks and a hand-built Hugging Face cache.

Every test runs without a network: `HF_HUB_OFFLINE=1` is set here, at import time, before any
test module imports `huggingface_hub` (which reads the variable once, on import).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
# Importing app.py builds its demo from the environment: without the compile warm-up in tests.
os.environ.setdefault("CYCLEGAN_COMPILE", "0")

import pytest  # noqa: E402
import torch  # noqa: E402
from huggingface_hub import constants  # noqa: E402

if not constants.HF_HUB_OFFLINE:  # huggingface_hub was imported before this file (by a plugin)
    constants.HF_HUB_OFFLINE = True

torch.manual_seed(0)
# The test networks are tiny: one thread is as fast, and on a shared 2-core machine intra-op
# threads waiting on each other made the same run 2x to 20x slower. OMP_NUM_THREADS overrides.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

# Small enough that a forward pass on a 64 px image takes milliseconds.
TINY_GENERATOR = dict(ngf=8, n_blocks=2)
TINY_DISCRIMINATOR = dict(ndf=8, n_layers=2)


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, whatever ran before it."""
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _offline():
    assert constants.is_offline_mode(), "tests must not reach the Hub"


@pytest.fixture
def make_cyclegan():
    """Factory: a tiny CycleGAN in eval mode; keyword arguments override the defaults."""
    from cyclegan_hub import CycleGAN

    def make(**kwargs):
        kwargs.setdefault("domain_a", "photo")
        kwargs.setdefault("domain_b", "monet")
        kwargs.setdefault("generator", dict(TINY_GENERATOR))
        kwargs.setdefault("discriminator", dict(TINY_DISCRIMINATOR))
        return CycleGAN(**kwargs).eval()

    return make


@pytest.fixture
def tiny_generator():
    from cyclegan_hub import ResnetGenerator

    return ResnetGenerator(**TINY_GENERATOR).eval()


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def fill_hub_cache(cache_dir: Path, repo_id: str, source: Path, filenames, commit: str = "0123456789abcdef" * 2 + "01234567"):
    """Lay out `source/<filenames>` in `cache_dir` exactly as `hf_hub_download` leaves a download.

    models--{org}--{name}/
        refs/main                  -> the commit hash (no newline)
        blobs/<etag>               the file contents; LFS files (.safetensors) are named by their
                                   sha256, regular git files by their git blob sha1
        snapshots/<commit>/<file>  relative symlink to ../../blobs/<etag>
    """
    assert len(commit) == 40
    repo = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    blobs = repo / "blobs"
    snapshot = repo / "snapshots" / commit
    blobs.mkdir(exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for filename in filenames:
        data = (Path(source) / filename).read_bytes()
        etag = hashlib.sha256(data).hexdigest() if filename.endswith(".safetensors") else _git_blob_sha1(data)
        (blobs / etag).write_bytes(data)
        link = snapshot / filename
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blobs / etag, snapshot))
    return commit


@pytest.fixture
def hub_cache(tmp_path):
    """Factory: fill a fresh cache folder from a saved model folder; returns (cache_dir, commit)."""
    cache_dir = tmp_path / "hf-cache"

    def fill(repo_id: str, source: Path, filenames):
        commit = fill_hub_cache(cache_dir, repo_id, source, filenames)
        return cache_dir, commit

    return fill


# --- unpaired datasets in every layout (built by tests/helpers.py) ----------------------------


@pytest.fixture(scope="session")
def datasets_cache(tmp_path_factory):
    """A private `datasets` cache for the session: tests neither read nor fill the user's."""
    import datasets

    cache = tmp_path_factory.mktemp("datasets-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
        yield cache


@pytest.fixture(scope="session")
def layouts(tmp_path_factory, datasets_cache):
    """One small dataset per layout, built once: {"a", "b", "c", "c_classlabel", "d"} -> folder."""
    import helpers

    root = tmp_path_factory.mktemp("layouts")
    return {
        "a": helpers.layout_a(root / "a"),
        "b": helpers.layout_b(root / "b"),
        "c": helpers.layout_c(root / "c"),
        "c_classlabel": helpers.layout_c(root / "c_classlabel", class_label=True, label_column="label"),
        "d": helpers.layout_d(root / "d"),
    }
