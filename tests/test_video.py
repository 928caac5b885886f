"""Videos in, videos out: frame count, rate, size and audio kept in every container; norm
statistics smoothed across frames (no flicker) and exactly per-frame when asked."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub.norms import SmoothedNorms
from cyclegan_hub.translate import translate
from cyclegan_hub.video import FrameTranslator, UnreadableVideoError, fit_size, probe, translate_video
from videos import audio_packets, decoded_frames, pan_frames, scene, write_gif, write_video

GRADIO_CLIP = Path(pytest.importorskip("gradio").__file__).parent / "media_assets" / "videos" / "b.mp4"


def as_batch(frames) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def flicker(frames) -> float:
    """Mean absolute change between consecutive frames."""
    stack = np.stack(frames).astype(np.float64)
    return float(np.abs(np.diff(stack, axis=0)).mean())


def test_momentum_zero_is_per_frame_instance_norm(tiny_generator):
    frames = as_batch(pan_frames(4))
    with SmoothedNorms(tiny_generator, momentum=0.0):
        smoothed = translate(tiny_generator, frames)
    assert torch.allclose(smoothed, translate(tiny_generator, frames), atol=1e-5)


def test_a_batch_of_frames_equals_the_frames_one_at_a_time(tiny_generator):
    frames = as_batch(pan_frames(5))
    with SmoothedNorms(tiny_generator, momentum=0.8):
        together = translate(tiny_generator, frames)
    one_by_one = SmoothedNorms(tiny_generator, momentum=0.8)
    with one_by_one:
        first = [translate(tiny_generator, frames[i : i + 1]) for i in range(3)]
    # the state goes on in a new block, as a webcam session's does between requests
    with SmoothedNorms(tiny_generator, momentum=0.8, state=one_by_one.state):
        rest = [translate(tiny_generator, frames[i : i + 1]) for i in range(3, 5)]
    assert torch.allclose(together, torch.cat(first + rest), atol=1e-5)
    assert not torch.allclose(together, translate(tiny_generator, frames), atol=1e-3)  # it did smooth


def test_a_still_region_stays_still_when_the_rest_of_the_frame_changes(make_cyclegan):
    """The left of the frame never changes, the right alternates between dark and bright scenes.
    Per-frame statistics follow the right and recolour the left with it; smoothed ones barely."""
    model = make_cyclegan()
    still = scene(64, 48)
    frames = []
    for index in range(10):
        frame = still.copy()
        frame[:, 40:] = scene(24, 48, seed=100 + index) // (1 if index % 2 else 3)
        frames.append(frame)
    left = lambda translated: [frame[:, :16] for frame in translated]  # noqa: E731 - away from the changing part
    per_frame = flicker(left(FrameTranslator(model, "a2b", stable=False)(frames)))
    stable = flicker(left(FrameTranslator(model, "a2b", stable=True)(frames)))
    assert stable < 0.5 * per_frame


def test_state_from_another_generator_is_refused(tiny_generator, make_cyclegan):
    state = SmoothedNorms(tiny_generator).state
    with pytest.raises(ValueError, match="state has"):
        SmoothedNorms(make_cyclegan(generator=dict(ngf=8, n_blocks=1)).generator_ab, state=state)
    with pytest.raises(ValueError, match="momentum must be in"):
        SmoothedNorms(tiny_generator, momentum=1.0)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".mkv", ".avi"])
def test_every_container_keeps_frames_rate_size_and_audio(make_cyclegan, tmp_path, suffix):
    source = write_video(tmp_path / f"pan{suffix}", pan_frames(12), fps=Fraction(25))
    target = tmp_path / "out" / f"pan{suffix}"
    written = translate_video(FrameTranslator(make_cyclegan(), "monet"), source, target)
    read_back = probe(target)
    assert read_back == written == probe(source)  # frames, rate, size, audio
    assert (read_back.frames, read_back.fps, read_back.width, read_back.height) == (12, 25, 64, 48)
    assert audio_packets(target) == audio_packets(source) != []  # copied, not re-encoded
    difference = np.abs(np.stack(decoded_frames(target)).astype(int) - np.stack(decoded_frames(source))).mean()
    assert difference > 10  # it did translate
    assert not list((tmp_path / "out").glob(".*"))  # no partial file left behind


def test_a_real_clip_from_an_installed_package(make_cyclegan, tmp_path):
    """Gradio ships a real 5 s clip (a rotating Earth, 480x270, 30 fps, AAC audio)."""
    if not GRADIO_CLIP.exists():
        pytest.skip("this gradio has no b.mp4")
    target = tmp_path / "earth.mp4"
    written = translate_video(FrameTranslator(make_cyclegan(), "a2b", max_side=240), GRADIO_CLIP, target, batch_size=8)
    source = probe(GRADIO_CLIP)
    assert (written.frames, written.fps, written.has_audio) == (source.frames, source.fps, True) == (150, 30, True)
    assert (written.width, written.height) == fit_size(480, 270, 240) == (240, 134)  # even sides
    assert probe(target) == written
    assert audio_packets(target) == audio_packets(GRADIO_CLIP)


def test_an_animated_gif_keeps_its_frames_and_durations(make_cyclegan, tmp_path):
    frames = pan_frames(6, size=(40, 30))
    source = write_gif(tmp_path / "pan.gif", frames, [80, 80, 120, 80, 80, 200])
    target = tmp_path / "out.gif"
    written = translate_video(FrameTranslator(make_cyclegan(), "a2b"), source, target, batch_size=4)
    assert written.frames == 6 == probe(target).frames
    with Image.open(target) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert durations == [80, 80, 120, 80, 80, 200] and gif.size == (40, 30)


def test_broken_and_wrong_videos_say_what_is_wrong(make_cyclegan, tmp_path):
    translator = FrameTranslator(make_cyclegan(), "a2b")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 5000)
    with pytest.raises(UnreadableVideoError, match="'junk.mp4' is not a video file that can be read"):
        translate_video(translator, junk, tmp_path / "out.mp4")
    source = write_video(tmp_path / "cut.mp4", pan_frames(20, size=(64, 48)), audio=False)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size // 2])  # the index at the end is gone
    with pytest.raises(UnreadableVideoError, match="'truncated.mp4'"):
        translate_video(translator, truncated, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    with pytest.raises(ValueError, match="a video into a video"):
        translate_video(translator, source, tmp_path / "out.gif")
