"""Video translation: throughput, and flicker per frame against the stable mode.

Throughput: frames/s of `FrameTranslator` (what the command, the Video tab and the webcam run) at
256 and 512 px (16:9 frames), per frame and stable, batch 4, each variant in its own process:
fp32 eager (the default), and bf16 as `--bf16` runs it (compiled, bfloat16 autocast). Baseline:
fp32 per frame in the same run. Webcam: the app's own handler, fed 640x480 frames of a pan one
request at a time as the stream sends them, with the app's settings (compiled, fp32 or bf16).

Flicker: mean absolute difference of consecutive output frames over that of the input frames,
on real clips, each encoded as H.264 and decoded as a phone would record it: a real photo held
still (sensor noise, a slow exposure drift), a slow pan across a real photo (2 px a frame), and
Gradio's real clip of a rotating Earth. Per frame, and stable at several filter settings
(`temporal.TemporalFilter` strength / tolerance in levels of 255). Quality: KID (and FID) of the
translated frames of the photo clips against the real target domain, so the filter is seen not
to cost quality; also how far stable frames are from per-frame ones (what a trail would raise).

    python bench/video.py --model demo_model --photos ../shared/data/monet2photo/testB \
        --paintings ../shared/data/monet2photo/testA
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import run_in_child

GRADIO_CLIP = "media_assets/videos/b.mp4"
# (strength, tolerance in levels of 255); None: each frame alone.
SETTINGS = {"per frame": None, "stable 0.8 / 6": (0.8, 6), "stable 0.9 / 6": (0.9, 6), "stable 0.8 / 12": (0.8, 12), "stable 0.9 / 12": (0.9, 12)}


def frames_of_clip(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def pan(photo: Path, frames: int, window=(256, 192), step: int = 2) -> list[np.ndarray]:
    """A camera panning across `photo` (scaled so the pan fits), `step` pixels a frame."""
    width, height = window
    image = Image.open(photo).convert("RGB")
    needed = width + step * (frames - 1)
    scale = max(needed / image.width, height / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    array = np.asarray(image)
    top = (array.shape[0] - height) // 2
    return [array[top : top + height, i * step : i * step + width] for i in range(frames)]


def held_still(photo: Path, frames: int, window=(256, 192), seed: int = 0) -> list[np.ndarray]:
    """`photo` as a camera held still records it: sensor noise (2 levels) and a slow exposure drift (±2%)."""
    base = np.asarray(Image.open(photo).convert("RGB").resize(window, Image.Resampling.LANCZOS), np.float64)
    rng = np.random.default_rng(seed)
    return [np.clip(base * (1 + 0.02 * np.sin(i / 4)) + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8) for i in range(frames)]


def as_recorded(frames: list[np.ndarray], path: Path, crf: int = 23) -> list[np.ndarray]:
    """The frames after H.264 encoding and decoding, as a phone's video gives them."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for pixels in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode(None))
    return frames_of_clip(path)


def flicker(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    def change(frames):
        stack = np.stack(frames).astype(np.float64)
        return np.abs(np.diff(stack, axis=0)).mean()

    return float(change(outputs) / change(inputs))


def translate_clip(model, frames, setting, direction: str) -> list[np.ndarray]:
    from cyclegan_hub.video import FrameTranslator

    translator = FrameTranslator(model, direction, stable=setting is not None, **({} if setting is None else dict(strength=setting[0])))
    if setting is not None:
        translator.filter.tolerance = setting[1] / 127.5
    out = []
    for start in range(0, len(frames), 4):
        out += translator(frames[start : start + 4])
    return out


def measure_throughput(model_path: str, side: int, bf16: bool, stable: bool, frames: int) -> dict:
    from cyclegan_hub import CycleGAN
    from cyclegan_hub.video import FrameTranslator

    model = CycleGAN.from_pretrained(model_path).eval()
    height = side * 9 // 16 // 4 * 4
    clip = [np.random.default_rng(i).integers(0, 256, (height, side, 3), dtype=np.uint8) for i in range(4)]
    if bf16:  # as `--bf16` runs it: compiled generators under bfloat16 autocast
        model.enable_fast_inference(bf16=True)
    translator = FrameTranslator(model, "a2b", stable=stable)
    for _ in range(2):  # warm-up
        translator(clip)
    started = time.perf_counter()
    for _ in range(frames // 4):
        translator(clip)
    seconds = time.perf_counter() - started
    return dict(side=side, height=height, bf16=bf16, stable=stable, frames_per_s=(frames // 4) * 4 / seconds, threads=torch.get_num_threads())


def measure_webcam(model_path: str, photo: Path, bf16: bool, frames: int) -> dict:
    """The Webcam tab's own handler, one 640x480 camera frame a request as the stream sends them,
    with the app's default settings (compiled; bf16 when asked): the rate the tab shows."""
    import os
    import sys

    os.environ.update(CYCLEGAN_MODEL=model_path, CYCLEGAN_BF16="1" if bf16 else "0")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # app.py lives in the repository root
    import app

    tab = app.VideoTab(app.translator)
    camera = pan(photo, frames + 4, window=(640, 480))
    session = None
    for frame in camera[:4]:  # warm-up
        _, shown, session = tab.webcam(frame, app.translator.labels["a2b"], session)
    started = time.perf_counter()
    for frame in camera[4:]:
        _, shown, session = tab.webcam(frame, app.translator.labels["a2b"], session)
    seconds = time.perf_counter() - started
    return dict(camera="640x480", bf16=bf16, frames_per_s=frames / seconds, shown=shown, threads=torch.get_num_threads())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo_model")
    parser.add_argument("--photos", default="../shared/data/monet2photo/testB")
    parser.add_argument("--paintings", default="../shared/data/monet2photo/testA")
    parser.add_argument("--pans", type=int, default=12, help="photos to pan across")
    parser.add_argument("--pan_frames", type=int, default=48)
    parser.add_argument("--throughput_frames", type=int, default=24)
    parser.add_argument("--output", default=str(Path(__file__).with_name("video.json")))
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child and args._child.startswith("webcam"):
        photo = sorted(Path(args.photos).glob("*.jpg"))[0]
        print(json.dumps(measure_webcam(args.model, photo, args._child.endswith("bf16"), args.throughput_frames)))
        return
    if args._child:
        side, bf16, stable = args._child.split(",")
        print(json.dumps(measure_throughput(args.model, int(side), bf16 == "bf16", stable == "stable", args.throughput_frames)))
        return

    from cyclegan_hub import CycleGAN
    from cyclegan_hub.metrics import distance, shared_features

    throughput = []
    for side in (256, 512):
        for precision in ("fp32", "bf16"):
            for mode in ("per_frame", "stable"):
                row = run_in_child(__file__, ["--model", args.model, "--throughput_frames", str(args.throughput_frames), "--_child", f"{side},{precision},{mode}"])
                throughput.append(row)
                print(f"{side}x{row['height']} {precision} {mode}: {row['frames_per_s']:.2f} frames/s", flush=True)
    webcam = []
    for precision in ("fp32", "bf16"):
        flags = ["--model", args.model, "--photos", args.photos, "--throughput_frames", str(args.throughput_frames)]
        webcam.append(run_in_child(__file__, [*flags, "--_child", f"webcam,{precision}"]))
        print(f"webcam {precision}: {webcam[-1]['frames_per_s']:.2f} frames/s; the tab shows {webcam[-1]['shown']!r}", flush=True)

    model = CycleGAN.from_pretrained(args.model).eval()
    direction = model.resolve_direction("monet") if "monet" in (model.domain_a, model.domain_b) else "a2b"
    every_photo = sorted(Path(args.photos).glob("*.jpg"))
    photos = every_photo[:: max(1, len(every_photo) // args.pans)][: args.pans]  # spread over the folder
    work = Path(tempfile.mkdtemp(prefix="bench-video-"))
    clips = {}
    for index, photo in enumerate(photos):
        clips[f"still {photo.name}"] = as_recorded(held_still(photo, args.pan_frames, seed=index), work / f"still{index}.mp4")
        clips[f"pan {photo.name}"] = as_recorded(pan(photo, args.pan_frames), work / f"pan{index}.mp4")
    import gradio

    earth = Path(gradio.__file__).parent / GRADIO_CLIP
    if earth.exists():
        clips["earth (Gradio's b.mp4)"] = frames_of_clip(earth)[:90]
    flickers = {name: {} for name in SETTINGS}
    sampled = {name: [] for name in SETTINGS}  # every 4th translated frame of the photo clips, for KID
    departure = {name: [] for name in SETTINGS}  # mean |stable - per frame|: what a trail would raise
    for clip, frames in clips.items():
        per_frame = None
        for name, setting in SETTINGS.items():
            out = translate_clip(model, frames, setting, direction if not clip.startswith("earth") else "a2b")
            per_frame = out if setting is None else per_frame
            flickers[name][clip] = flicker(out, frames)
            departure[name].append(float(np.abs(np.stack(out).astype(np.float64) - np.stack(per_frame)).mean()))
            if not clip.startswith("earth"):
                sampled[name] += [Image.fromarray(f) for f in out[::4]]
        print(clip, " ".join(f"{name}: {flickers[name][clip]:.3f}" for name in SETTINGS), flush=True)

    features = shared_features("cpu")
    paintings = features([Image.open(p).convert("RGB") for p in sorted(Path(args.paintings).glob("*.jpg"))])
    quality = {name: distance(features(images), paintings) for name, images in sampled.items()}
    for name, result in quality.items():
        print(f"{name}: KID {result['kid']:.4f} ± {result['kid_std']:.4f}, FID {result['fid']:.1f} ({result['num_x']} frames)", flush=True)
    inputs = [Image.fromarray(f) for clip, frames in clips.items() if not clip.startswith("earth") for f in frames[::4]]
    untranslated = distance(features(inputs), paintings)

    summary = []
    for name in list(SETTINGS)[1:]:
        by_kind = {kind: np.median([flickers[name][c] / flickers["per frame"][c] for c in clips if c.startswith(kind)]) for kind in ("still", "pan", "earth")}
        summary.append(f"{name}: flicker x{by_kind['still']:.2f} (still), x{by_kind['pan']:.2f} (pan), x{by_kind['earth']:.2f} (earth) of per-frame")
    print("; ".join(summary))
    Path(args.output).write_text(json.dumps(dict(
        model=args.model, throughput=throughput, webcam=webcam, flicker=flickers, departure_from_per_frame=departure,
        quality=quality, untranslated_frames=untranslated, summary=summary,
    ), indent=2))


if __name__ == "__main__":
    main()
