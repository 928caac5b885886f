"""Translate videos: the same container, frame count and frame rate out, the audio copied.

mp4, mov, mkv, webm and avi go through PyAV (FFmpeg, bundled in its wheels); animated GIFs
through Pillow, which keeps each frame's duration. Frames stream through in small batches, so
memory does not grow with the video's length (a GIF is held whole, as Pillow writes it).

Each frame translated on its own flickers: small input changes come out re-painted.
`FrameTranslator(stable=True)` (the default) steadies the output where the input did not
change (`temporal.TemporalFilter`); `bench/video.py` measures both.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence

from .images import to_rgb
from .temporal import DEFAULT_STRENGTH, TemporalFilter
from .translate import eval_mode, translate

# Video codec per container, in yuv420p: what browsers and players decode. The audio is copied
# as it is, so a container other than the source's must be able to hold its codec.
ENCODERS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9", ".avi": "mpeg4"}
VIDEO_SUFFIXES = (*ENCODERS, ".gif")


class UnreadableVideoError(ValueError):
    """A video that cannot be read or written; the message names the file and says why."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int  # counted by decoding, not read from the header
    fps: Fraction  # average frame rate
    width: int
    height: int
    has_audio: bool

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps) if self.fps else 0.0


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _describe(path: str | os.PathLike) -> str:
    return repr(os.path.basename(os.fspath(path)))


@contextlib.contextmanager
def _open_video(path: str | os.PathLike):
    """A PyAV container with a video stream, or an `UnreadableVideoError` that names the file."""
    try:
        container = av.open(os.fspath(path))
    except (av.FFmpegError, OSError) as error:
        raise UnreadableVideoError(f"{_describe(path)} is not a video file that can be read ({error}).") from None
    with container:
        if not container.streams.video:
            raise UnreadableVideoError(f"{_describe(path)} has no video stream.")
        yield container


def probe(path: str | os.PathLike, max_frames: int | None = None) -> VideoInfo:
    """Frame count (decoded, up to `max_frames`), rate, size and audio of a video or animated GIF."""
    if Path(path).suffix.lower() == ".gif":
        with _open_gif(path) as gif:
            frames = getattr(gif, "n_frames", 1)
            seconds = sum(frame.info.get("duration", 100) for frame in ImageSequence.Iterator(gif)) / 1000
            return VideoInfo(frames, Fraction(frames / seconds).limit_denominator(1000) if seconds else Fraction(10), gif.width, gif.height, False)
    with _open_video(path) as container:
        stream = container.streams.video[0]
        frames = 0
        try:
            for _ in container.decode(stream):
                frames += 1
                if max_frames is not None and frames > max_frames:
                    break
        except av.FFmpegError as error:
            raise UnreadableVideoError(f"{_describe(path)} is incomplete or damaged ({error}).") from None
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return VideoInfo(frames, Fraction(rate), stream.codec_context.width, stream.codec_context.height, bool(container.streams.audio))


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size a frame is translated at: its own, or downscaled within max_side (aspect kept,
    sides even, as video encoders want them)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return tuple(max(2, 2 * int(side * scale / 2)) for side in (width, height))


class FrameTranslator:
    """Translates batches of video frames, (H, W, 3) uint8 arrays, with one of a model's generators.

    Args:
        model: a `CycleGAN`.
        direction: "a2b", "b2a", a domain name or a label, as `CycleGAN.translate` takes.
        stable: steady the output where the input did not change (no flicker); False: each frame alone.
        strength: the filter's most weight on the last output (see `temporal.TemporalFilter`).
        max_side: frames longer than this on a side are downscaled first (`fit_size`).
        short_side: translate at this shorter side and upscale back (a model's training scale).
        state: the filter's `state` from an earlier call, to go on from it (a webcam
            session's frames come one request at a time).

    Call it on consecutive batches of one video: with `stable` the filter carries over. A model
    whose `enable_fast_inference` ran uses its compiled generators (and their bf16 setting).
    """

    def __init__(self, model, direction: str, *, stable: bool = True, strength: float = DEFAULT_STRENGTH,
                 max_side: int | None = None, short_side: int | None = None, state=None):
        key = model.resolve_direction(direction)
        self.generator = model.compiled.get(key) or model.generator(key)
        self.filter = TemporalFilter(strength, state=state) if stable else None
        self.max_side, self.short_side = max_side, short_side

    @property
    def state(self):
        """The filter's last frame (None without `stable`): pass it as `state` to go on."""
        return self.filter.state if self.filter else None

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        height, width = batch.shape[-2:]
        fitted_width, fitted_height = fit_size(width, height, self.max_side)
        if (fitted_width, fitted_height) != (width, height):
            batch = F.interpolate(batch, size=(fitted_height, fitted_width), mode="bilinear", antialias=True, align_corners=False)
        with eval_mode(self.generator):
            outputs = translate(self.generator, batch, batch_size=len(frames), short_side=self.short_side)
        if self.filter:
            outputs = self.filter(batch, outputs)
        pixels = outputs.float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1)  # as tensor_to_pil
        return list(pixels.numpy())


def translate_video(
    frame_translator: Callable[[list[np.ndarray]], list[np.ndarray]],
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> VideoInfo:
    """Translate the video `source` into `target` (written whole or not at all), frame by frame.

    `target`'s suffix picks its container, usually `source`'s own; the audio is copied unchanged,
    so another container must be able to hold the source's audio codec (mp4 holds AAC and MP3).
    `progress(n)` is called after each batch of n frames. Returns what was written.
    """
    source, target = Path(source), Path(target)
    suffix = source.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise UnreadableVideoError(f"{_describe(source)}: videos must be one of {', '.join(VIDEO_SUFFIXES)}")
    if (suffix == ".gif") != (target.suffix.lower() == ".gif") or target.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{target.name!r}: an animated GIF is translated into a GIF, a video into a video ({', '.join(ENCODERS)})")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target, then renamed: an interrupted run leaves no half-written video.
    handle, partial = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix.lower(), dir=target.parent)
    os.close(handle)
    try:
        if suffix == ".gif":
            frames = _translate_gif(frame_translator, source, Path(partial), batch_size, progress or (lambda n: None))
        else:
            frames = _translate_with_av(frame_translator, source, Path(partial), batch_size, progress or (lambda n: None))
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return frames


def _batches(frames: Iterator, size: int) -> Iterator[list]:
    batch = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def even_sides(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) with a last row / column repeated where a side is odd: yuv420p needs even sides."""
    pad = ((0, pixels.shape[0] % 2), (0, pixels.shape[1] % 2), (0, 0))
    return np.pad(pixels, pad, mode="edge") if any(p[1] for p in pad) else pixels


def _translate_with_av(frame_translator, source: Path, target: Path, batch_size: int, progress) -> VideoInfo:
    with _open_video(source) as inp:
        video_in = inp.streams.video[0]
        audio_in = inp.streams.audio[0] if inp.streams.audio else None
        rate = Fraction(video_in.average_rate or video_in.guessed_rate or 25)
        with av.open(os.fspath(target), "w") as out:
            video_out = out.add_stream(ENCODERS[target.suffix.lower()], rate=rate)
            video_out.pix_fmt = "yuv420p"
            if video_out.codec_context.name == "libx264":
                video_out.options = {"crf": "18", "preset": "medium"}
            audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
            written, size = 0, None
            held_audio = []  # audio that comes before the first frame waits: muxing opens the encoders

            def mux_audio(packet) -> None:
                packet.stream = audio_out
                out.mux(packet)

            def encode(batch: list) -> None:
                nonlocal written, size
                translated = frame_translator([frame.to_ndarray(format="rgb24") for frame in batch])
                for frame, pixels in zip(batch, translated):
                    pixels = even_sides(pixels)
                    if size is None:  # the encoder's size comes from the first translated frame
                        size = pixels.shape[1], pixels.shape[0]
                        video_out.width, video_out.height = size
                    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                    # The source's timestamps, so the frame rate (even a variable one) is kept.
                    if frame.pts is not None:
                        picture.pts, picture.time_base = frame.pts, frame.time_base
                    else:
                        picture.pts, picture.time_base = written, 1 / rate
                    out.mux(video_out.encode(picture))
                    written += 1
                    while held_audio:
                        mux_audio(held_audio.pop(0))
                progress(len(batch))

            def video_frames() -> Iterator:
                for packet in inp.demux(*(s for s in (video_in, audio_in) if s is not None)):
                    if packet.stream.type == "audio":
                        if packet.dts is None:  # the demuxer's final empty packet
                            continue
                        held_audio.append(packet) if size is None else mux_audio(packet)
                        continue
                    yield from packet.decode()

            try:
                for batch in _batches(video_frames(), batch_size):
                    encode(batch)
            except av.FFmpegError as error:
                raise UnreadableVideoError(f"{_describe(source)} is incomplete or damaged ({error}).") from None
            if written == 0:
                raise UnreadableVideoError(f"{_describe(source)} has no frames that can be decoded.")
            out.mux(video_out.encode(None))  # flush the encoder's delayed frames
    return VideoInfo(written, rate, *size, audio_in is not None)


@contextlib.contextmanager
def _open_gif(path: Path):
    try:
        gif = Image.open(path)
    except (OSError, ValueError) as error:
        raise UnreadableVideoError(f"{_describe(path)} is not a GIF that can be read ({error}).") from None
    with gif:
        yield gif


def _translate_gif(frame_translator, source: Path, target: Path, batch_size: int, progress) -> VideoInfo:
    with _open_gif(source) as gif:
        loop = gif.info.get("loop")
        durations, translated = [], []
        try:
            # The iterator seeks one image object: each frame is copied before the next seek.
            for batch in _batches((frame.copy() for frame in ImageSequence.Iterator(gif)), batch_size):
                durations += [frame.info.get("duration", 100) for frame in batch]
                translated += frame_translator([np.asarray(to_rgb(frame)) for frame in batch])
                progress(len(batch))
        except OSError as error:
            raise UnreadableVideoError(f"{_describe(source)} is incomplete or damaged ({error}).") from None
    images = [Image.fromarray(pixels) for pixels in translated]
    # Pillow merges identical consecutive frames unless told otherwise; every frame stays a frame.
    options = dict(save_all=True, append_images=images[1:], duration=durations, optimize=False, disposal=1)
    if loop is not None:
        options["loop"] = loop
    images[0].save(target, format="GIF", **options)
    seconds = sum(durations) / 1000
    return VideoInfo(len(images), Fraction(len(images) / seconds).limit_denominator(1000) if seconds else Fraction(10),
                     images[0].width, images[0].height, False)
