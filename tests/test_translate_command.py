"""`python -m cyclegan_hub.translate` and `translate_files`: folders kept as they are, formats kept,
same-size images batched, broken files reported and skipped, interrupted runs continued."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from cyclegan_hub.files import plan, translate_files
from cyclegan_hub.video import probe
from videos import pan_frames, scene, write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def inputs(tmp_path):
    """photos/ with images in three formats and two sizes, a nested folder, a video, a broken
    JPEG and a text file that is not an image."""
    root = tmp_path / "photos"
    (root / "trip" / "day2").mkdir(parents=True)
    Image.fromarray(scene(48, 32, 1)).save(root / "a.jpg")
    Image.fromarray(scene(48, 32, 2)).save(root / "trip" / "b.png")
    Image.fromarray(scene(48, 32, 3)).save(root / "trip" / "day2" / "c.webp")
    Image.fromarray(scene(30, 50, 4)).save(root / "trip" / "tall.png")
    write_video(root / "trip" / "clip.mp4", pan_frames(6), fps=Fraction(12))
    (root / "trip" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image, not looked at")
    return root


def test_a_folder_keeps_its_layout_and_formats_and_reports_the_broken_file(make_cyclegan, inputs, tmp_path):
    out = tmp_path / "out"
    report = translate_files(make_cyclegan(), "monet", [inputs], out, progress=False)
    expected = {"a.jpg": "JPEG", "trip/b.png": "PNG", "trip/day2/c.webp": "WEBP", "trip/tall.png": "PNG"}
    for name, image_format in expected.items():
        with Image.open(out / name) as image:
            assert image.format == image_format
            assert image.size == Image.open(inputs / name).size
    assert (out / "trip" / "clip.mp4").exists() and probe(out / "trip" / "clip.mp4").frames == 6
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted([*expected, "trip/clip.mp4"])
    assert [(path.name, "incomplete or damaged" in reason or "not an image" in reason) for path, reason in report.failed] == [("broken.jpg", True)]
    assert len(report.written) == 5


def test_same_size_images_are_translated_together(make_cyclegan, inputs, tmp_path):
    model = make_cyclegan()
    sizes = []
    hook = model.generator_ab.register_forward_hook(lambda module, args, output: sizes.append(tuple(args[0].shape)))
    translate_files(model, "a2b", [inputs / "a.jpg", inputs / "trip" / "b.png", inputs / "trip" / "tall.png"], tmp_path / "out", progress=False)
    hook.remove()
    assert sorted(sizes) == sorted([(2, 3, 32, 48), (1, 3, 52, 32)])  # two 48x32 in one batch; 30x50 padded to 32x52


def test_skip_existing_continues_an_interrupted_run(make_cyclegan, inputs, tmp_path):
    out = tmp_path / "out"
    model = make_cyclegan()
    translate_files(model, "a2b", [inputs / "a.jpg"], out, progress=False)  # the run got this far
    first = (out / "a.jpg").stat().st_mtime_ns
    report = translate_files(model, "a2b", [inputs], out, skip_existing=True, progress=False)
    assert report.skipped == [out / "a.jpg"] and (out / "a.jpg").stat().st_mtime_ns == first
    assert (out / "trip" / "b.png").exists()
    again = translate_files(model, "a2b", [inputs], out, progress=False)  # without the flag, all again
    assert out / "a.jpg" in again.written


def test_outputs_that_would_collide_or_overwrite_are_refused(inputs, tmp_path):
    (tmp_path / "other").mkdir()
    Image.fromarray(scene(8, 8)).save(tmp_path / "other" / "a.jpg")
    with pytest.raises(ValueError, match="would both be written to"):
        plan([inputs, tmp_path / "other"], tmp_path / "out")
    with pytest.raises(ValueError, match="would be overwritten"):
        plan([inputs / "a.jpg"], inputs)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        plan([tmp_path / "missing"], tmp_path / "out")


def run_command(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan_hub.translate", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"), **kwargs)


@pytest.mark.slow
def test_the_command_translates_a_folder_and_exits_1_for_the_broken_file(make_cyclegan, inputs, tmp_path):
    model_dir = tmp_path / "model"
    make_cyclegan().save_pretrained(model_dir)
    out = tmp_path / "out"
    result = run_command("--model", model_dir, "--direction", "monet", inputs, "--output_dir", out, "--quiet")
    assert result.returncode == 1, result.stderr
    assert "broken.jpg" in result.stderr and "5 translated, 0 already there, 1 could not be read" in result.stdout
    assert probe(out / "trip" / "clip.mp4").fps == 12
    again = run_command("--model", model_dir, "--direction", "a2b", inputs, "--output_dir", out, "--skip_existing", "--quiet")
    assert "0 translated, 5 already there" in again.stdout
    wrong = run_command("--model", model_dir, "--direction", "sideways", inputs, "--output_dir", out)
    assert wrong.returncode == 2 and "direction must be" in wrong.stderr
    missing = run_command("--model", tmp_path / "no-model", "--direction", "a2b", inputs, "--output_dir", out)
    assert missing.returncode == 2 and "no-model" in missing.stderr
    clean = run_command("--model", model_dir, "--direction", "a2b", inputs / "a.jpg", "--output_dir", tmp_path / "one", "--quiet")
    assert clean.returncode == 0 and np.asarray(Image.open(tmp_path / "one" / "a.jpg")).shape == (32, 48, 3)
