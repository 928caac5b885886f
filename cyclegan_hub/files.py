"""Translate files and folders of images and videos, as `python -m cyclegan_hub.translate` does.

Folders are walked recursively; each output keeps its input's name relative to the folder given,
and its format. Images of one size go through the generator as one batch. A file that cannot be
read is reported and skipped while the rest are done. Outputs are written to a temporary name and
renamed, so an interrupted run leaves only whole files, and `skip_existing` continues it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from .images import UnreadableImageError, open_image
from .video import VIDEO_SUFFIXES, FrameTranslator, UnreadableVideoError, is_video, translate_video

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
# Save options per format: the written file should look like the input, not like a new JPEG.
SAVE_OPTIONS = {"JPEG": dict(quality=95, subsampling=0), "WEBP": dict(quality=95)}
IMAGES_AT_ONCE = 32  # opened images held at a time; same-size ones among them form batches


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class Report:
    """What a run did: written outputs, outputs that already existed, and inputs that failed (with why)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def plan(inputs: Sequence[str | os.PathLike], output_dir: str | os.PathLike) -> list[Job]:
    """Each input file, or each image or video inside an input folder (recursively, sorted),
    with its output path: `output_dir` / its path relative to the folder (a file: its name)."""
    output_dir = Path(output_dir)
    jobs = []
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))
            jobs += [Job(path, output_dir / path.relative_to(given)) for path in found]
        elif given.is_file():
            jobs.append(Job(given, output_dir / given.name))
        else:
            raise FileNotFoundError(f"{given}: no such file or folder")
    targets: dict[Path, Path] = {}
    for job in jobs:
        if job.target in targets:
            raise ValueError(f"{targets[job.target]} and {job.source} would both be written to {job.target}: translate them into different --output_dir")
        if job.target.resolve() == job.source.resolve():
            raise ValueError(f"{job.source} would be overwritten: choose an --output_dir apart from the inputs")
        targets[job.target] = job.source
    return jobs


def save_atomically(image: Image.Image, target: Path) -> None:
    """Save in the format the target's suffix names, via a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    image_format = Image.registered_extensions().get(target.suffix.lower(), "PNG")
    handle, partial = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(handle)
    try:
        image.save(partial, format=image_format, **SAVE_OPTIONS.get(image_format, {}))
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)


def translate_files(
    model,
    direction: str,
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    skip_existing: bool = False,
    max_side: int | None = None,
    scale: str = "input",
    tile_size: int | None = 1024,
    batch_size: int = 8,
    stable: bool = True,
    progress: bool = True,
) -> Report:
    """Translate images and videos (files, or folders of them) with `model` into `output_dir`.

    Args:
        model: a `CycleGAN`; after `model.enable_fast_inference()` images and frames run compiled.
        direction: "a2b", "b2a", a domain name or a label.
        inputs: files and folders.
        skip_existing: leave outputs that exist (from an interrupted run) as they are.
        max_side: downscale images and video frames longer than this on a side; None: full size.
        scale: "input" or "training", as `CycleGAN.translate` takes it.
        tile_size: images longer than this on a side go in tiles with whole-image statistics
            (bounded memory) when translated at their own scale; None: one pass.
        batch_size: images of one size, or video frames, per forward pass.
        stable: videos steadied where the input did not change (no flicker; `temporal.TemporalFilter`).
        progress: show tqdm progress bars.

    Returns:
        A `Report`; unreadable inputs are in `failed`, with the reason, and did not stop the rest.
    """
    report = Report()
    jobs = plan(inputs, output_dir)
    todo = []
    for job in jobs:
        if skip_existing and job.target.exists():
            report.skipped.append(job.target)
        else:
            todo.append(job)
    short_side = model.short_side(scale)  # an unknown scale, or one the model cannot do, before any work
    bar = tqdm(total=len(todo), unit="file", disable=not progress)
    images = [job for job in todo if not is_video(job.source)]
    for start in range(0, len(images), IMAGES_AT_ONCE):
        _translate_images(model, direction, images[start : start + IMAGES_AT_ONCE], report, max_side, scale,
                          tile_size if scale == "input" else None, batch_size)
        bar.update(len(images[start : start + IMAGES_AT_ONCE]))
    for job in (job for job in todo if is_video(job.source)):
        frames = FrameTranslator(model, direction, stable=stable, max_side=max_side, short_side=short_side)
        with tqdm(unit="frame", desc=job.source.name, leave=False, disable=not progress) as frame_bar:
            try:
                translate_video(frames, job.source, job.target, batch_size=batch_size, progress=frame_bar.update)
                report.written.append(job.target)
            except UnreadableVideoError as error:
                report.failed.append((job.source, str(error)))
        bar.update(1)
    bar.close()
    return report


def _translate_images(model, direction, jobs: Iterable[Job], report: Report, max_side, scale, tile_size, batch_size) -> None:
    opened = []
    for job in jobs:
        try:
            opened.append((job, open_image(job.source).image))
        except UnreadableImageError as error:
            report.failed.append((job.source, str(error)))
    if not opened:
        return
    translated = model.translate([image for _, image in opened], direction, scale=scale, max_side=max_side,
                                 tile_size=tile_size, batch_size=batch_size)
    for (job, _), output in zip(opened, translated):
        save_atomically(output, job.target)
        report.written.append(job.target)
