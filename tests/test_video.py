"""Videos in, videos out: frame count, rate, size and audio kept in every container; the output
kept still where the input did not change (no flicker), and per-frame when asked."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cyclegan_hub.temporal import TemporalFilter
from cyclegan_hub.video import FrameTranslator, UnreadableVideoError, fit_size, probe, translate_video
from videos import audio_packets, decoded_frames, pan_frames, scene, write_gif, write_video

GRADIO_CLIP = Path(pytest.importorskip("gradio").__file__).parent / "media_assets" / "videos" / "b.mp4"


def noisy_still(count: int, size=(64, 48), noise: float = 4.0) -> list[np.ndarray]:
    """A still scene as a camera records it: the same picture with fresh sensor noise each frame."""
    base = scene(*size).astype(np.float64)
    rng = np.random.default_rng(0)
    return [np.clip(base + rng.normal(0, noise, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def flicker(frames) -> float:
    """Mean absolute change between consecutive frames."""
    stack = np.stack(frames).astype(np.float64)
    return float(np.abs(np.diff(stack, axis=0)).mean())


def test_strength_zero_is_per_frame_translation(make_cyclegan):
    model, frames = make_cyclegan(), noisy_still(4)
    assert all(np.array_equal(a, b) for a, b in zip(FrameTranslator(model, "a2b", strength=0.0)(frames), FrameTranslator(model, "a2b", stable=False)(frames)))


def test_a_batch_of_frames_equals_the_frames_one_at_a_time(make_cyclegan):
    model, frames = make_cyclegan(), noisy_still(5)
    together = FrameTranslator(model, "a2b")(frames)
    first = FrameTranslator(model, "a2b")
    one_by_one = [first([frame])[0] for frame in frames[:3]]
    rest = FrameTranslator(model, "a2b", state=first.state)  # a webcam session goes on like this between requests
    one_by_one += [rest([frame])[0] for frame in frames[3:]]
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(together, one_by_one))


def test_a_still_noisy_scene_flickers_far_less(make_cyclegan):
    """A camera held still: only sensor noise changes. Each frame alone re-paints the noise."""
    model, frames = make_cyclegan(), noisy_still(10, noise=3.0)
    per_frame = flicker(FrameTranslator(model, "a2b", stable=False)(frames))
    stable = flicker(FrameTranslator(model, "a2b")(frames))
    assert stable < 0.6 * per_frame


def test_what_moves_is_translated_at_once_with_no_trail(make_cyclegan):
    """The right of the frame cuts to another scene each frame: there the output is the frame's
    own translation; the still left keeps its last output."""
    model = make_cyclegan()
    still = scene(64, 48)
    frames = []
    for index in range(6):
        frame = still.copy()
        cut = scene(24, 48, seed=100 + index)
        frame[:, 40:] = 255 - cut if index % 2 else cut
        frames.append(frame)
    stable = FrameTranslator(model, "a2b")(frames)
    per_frame = FrameTranslator(model, "a2b", stable=False)(frames)
    right = np.abs(np.stack(stable)[1:, :, 48:].astype(int) - np.stack(per_frame)[1:, :, 48:]).mean()
    assert right < 1.0  # (the 5x5 neighbourhood reaches 2 px past the cut: measured from 8 px on)
    # the left's input never changes, but its translation does (the generator sees the whole frame)
    assert flicker([f[:, :24] for f in stable]) < 0.5 * flicker([f[:, :24] for f in per_frame])


def test_filter_arguments_are_checked():
    with pytest.raises(ValueError, match="strength must be in"):
        TemporalFilter(strength=1.0)
    with pytest.raises(ValueError, match="tolerance must be > 0"):
        TemporalFilter(tolerance=0)


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
