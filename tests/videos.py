"""Small real video files for the tests, written with PyAV: a slow pan over a textured picture,
with a sine tone as audio, in any container; and an animated GIF."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageFilter

CODECS = {".mp4": ("libx264", "aac"), ".mov": ("libx264", "aac"), ".mkv": ("libx264", "aac"),
          ".webm": ("libvpx-vp9", "libopus"), ".avi": ("mpeg4", "aac")}  # fmt: skip


def scene(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A picture with texture at every scale (blurred noise over colour ramps), uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
    ramp = np.zeros((height, width, 3), np.float64)
    ramp[..., 0] = np.linspace(40, 220, width)[None]
    ramp[..., 1] = np.linspace(200, 60, height)[:, None]
    ramp[..., 2] = 120
    return np.clip(0.6 * ramp + 0.4 * np.asarray(noise), 0, 255).astype(np.uint8)


def pan_frames(count: int, size=(64, 48), step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """`count` frames of a camera panning right over a wider scene, `step` pixels a frame."""
    width, height = size
    wide = scene(width + step * count, height, seed)
    return [wide[:, i * step : i * step + width] for i in range(count)]


def write_video(path: Path, frames: list[np.ndarray], fps=Fraction(15), audio: bool = True) -> Path:
    """Encode `frames` at `fps` into `path` (its suffix picks the container), with a stereo tone."""
    video_codec, audio_codec = CODECS[path.suffix]
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        sound = out.add_stream(audio_codec, rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, 1 / Fraction(fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = int(48000 * len(frames) / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            chunk = sound.codec_context.frame_size or 1024
            for start in range(0, samples, chunk):
                part = np.stack([tone[start : start + chunk]] * 2)
                frame = av.AudioFrame.from_ndarray(part, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 48000, start
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return path


def audio_packets(path: Path) -> list[bytes]:
    """The audio stream's packets, as bytes: equal lists mean the audio was copied unchanged."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(packet) for packet in container.demux(container.streams.audio[0]) if packet.size]


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def write_gif(path: Path, frames: list[np.ndarray], durations: list[int]) -> Path:
    images = [Image.fromarray(pixels) for pixels in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False, disposal=1)
    return path
