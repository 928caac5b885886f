"""Gradio demo (and Hugging Face Space): translate an image between a CycleGAN's two domains.

    python app.py                            # the embedded model in demo_model/ (photo <-> Monet)
    python app.py --model org/cyclegan-h2z   # a Hub id or a local folder; or env CYCLEGAN_MODEL
    python app.py --max_side 512 --concurrency 2 --host 0.0.0.0 --port 7860 --share

Images longer than --max_side (env CYCLEGAN_MAX_SIDE, default 1024) on a side are downscaled
first, and the status line says so; otherwise the output has exactly the input's size. The
generator works at the image's own size (--scale input, the default: on 1024 px uploads it scored
better by KID and looked more painted at 1:1 than the alternative, docs/recipe.md); with --scale training it works
at the resolution the model records in its config and its output is upscaled to the image's
size. The generators are compiled (torch.compile, one graph for every size) and warmed up at
start-up; --no_compile or CYCLEGAN_COMPILE=0 skips that, and a machine where compiling fails runs eager. --bf16 or
CYCLEGAN_BF16=1 runs them under bfloat16 autocast: about 2x faster on a CPU with native bf16
(AVX512-BF16 or AMX), outputs about 1 level in 255 off on average.

Three tabs: Image; Video, a clip of up to 10 s (MP4, MOV, WebM) translated at up to 512 px
with its sound and a progress bar; Webcam, the camera translated live at up to 256 px with the
frame rate this machine reaches. Video and webcam keep the output still where the input did not
change, so the style does not flicker.

API: /translate (an image), /full_resolution (an image at its own size, for download) and
/translate_video (a clip). The direction is a label shown in the UI ("Photo -> Monet"), the
target domain's name, or "a2b" / "b2a".

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    image_path, status = client.predict(handle_file("photo.jpg"), "Photo -> Monet", api_name="/translate")

`predict` returns the local path of the translated PNG and the status line, e.g. "Photo -> Monet:
256x256." A file that is not a readable image, or an unknown direction, raises
`gradio_client.exceptions.AppError` with the reason.

`gradio app.py` and Hugging Face Spaces import this module and serve its `demo`, configured from
the environment variables above.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
import torch
from PIL import Image

from cyclegan_hub import CycleGAN
from cyclegan_hub.images import UnreadableImageError, open_image
from cyclegan_hub.model import SCALES
from cyclegan_hub.model_card import card_summary
from cyclegan_hub.tiling import receptive_margin, window_pixels
from cyclegan_hub.translate import fit_max_side
from cyclegan_hub.video import FrameTranslator, UnreadableVideoError, fit_size, probe, translate_video

EMBEDDED_MODEL = Path(__file__).resolve().parent / "demo_model"
TILE_SIZE = 1024  # full-resolution translations at the image's own scale run in tiles this large
# Seconds per pixel of the tiles' windows (`window_pixels`: the image and the tiles' overlap) over
# those of the on-screen translation (compiled, 1024 px): tiles run eager, layer by layer, their
# activations written to disk and read back. bench/tiled.py: 2.8 at 8000x6000, 3.0 at 4000x3000.
TILED_COST = 3.0
EXAMPLES = EMBEDDED_MODEL / "examples"  # <source domain>_<name>.jpg, see SOURCES.md there
IMAGE_HEIGHT = 360  # both images: Translate and the result stay on screen with a portrait upload
# Videos: short clips at a reduced size, so that a CPU translates one in about a minute.
VIDEO_SUFFIXES = {".mp4": ".mp4", ".mov": ".mp4", ".m4v": ".mp4", ".webm": ".webm"}  # upload -> what the browser plays
VIDEO_MAX_SECONDS = 10
VIDEO_MAX_SIDE = 512
WEBCAM_MAX_SIDE = 256  # live frames: small enough for several frames a second on a CPU


@dataclasses.dataclass(frozen=True)
class Settings:
    """How the demo runs; every field has a command-line flag and an environment variable."""

    model: str = str(EMBEDDED_MODEL)
    max_side: int = 1024
    scale: str = "input"  # or "training": at the model's training resolution, upscaled (docs/recipe.md measures both)
    compile: bool = True
    bf16: bool = False
    concurrency: int | None = None  # None: 1 on a CPU, 2 on a GPU

    def __post_init__(self):
        # Checked here so that both start-ups, flags (`python app.py`) and the environment alone
        # (`gradio app.py`, a Space), refuse the same settings.
        if self.max_side < 8:
            raise ValueError(f"--max_side (CYCLEGAN_MAX_SIDE) must be at least 8, got {self.max_side}")
        if self.scale not in SCALES:
            raise ValueError(f"--scale (CYCLEGAN_SCALE) must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.bf16 and not self.compile:
            raise ValueError("--bf16 (CYCLEGAN_BF16=1) is part of the compiled path: drop --no_compile (CYCLEGAN_COMPILE=0)")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {self.concurrency}")

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        max_side = env.get("CYCLEGAN_MAX_SIDE", str(cls.max_side))
        if not max_side.strip().isdigit():
            raise ValueError(f"CYCLEGAN_MAX_SIDE must be a whole number of pixels, got {max_side!r}")
        return cls(
            model=env.get("CYCLEGAN_MODEL") or cls.model,
            max_side=int(max_side),
            scale=env.get("CYCLEGAN_SCALE") or cls.scale,
            compile=env.get("CYCLEGAN_COMPILE") != "0",
            bf16=env.get("CYCLEGAN_BF16") == "1",
        )


class Translator:
    """The model behind the page: loaded once, then one call per request."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.model = load_model(settings)
        self.scale = settings.scale
        try:
            self.short_side = self.model.short_side(settings.scale)  # refused at start-up, not on every request
        except ValueError as error:
            raise SystemExit(f"--scale {settings.scale} (CYCLEGAN_SCALE) with the model {settings.model!r}: {error}") from None
        # UI labels, e.g. "Photo -> Monet"; the model resolves them, like "a2b" or a domain name.
        self.labels = {key: label.title() for key, label in self.model.directions.items()}
        self.seconds_per_megapixel = 1.0  # measured by every on-screen translation
        self.downloads = Downloads()
        self.failures = Failures()

    def __call__(self, upload: str | dict | None, direction: str) -> tuple[Image.Image, str]:
        """Translate one uploaded file; returns (translated image, status line). Errors are gr.Error."""
        with self.failures.noted(upload, (UnreadableImageError, ValueError)):
            return self.translate(upload, direction)

    def request(self, upload: str | dict | None, direction: str, max_side: int | None):
        """(direction key, the opened upload) for a request; ValueErrors say what is wrong."""
        if not upload:
            raise ValueError("Please upload an image first.")
        # The UI and API send a file payload ({"path", "orig_name", ...}); the events run with
        # preprocess=False so that an unreadable upload reaches open_image and its clear message.
        path, name = upload_path(upload), upload.get("orig_name") if isinstance(upload, dict) else None
        try:
            key = self.model.resolve_direction(direction)
        except ValueError:
            raise ValueError(f"Unknown direction {direction!r}: use {', '.join(self.labels.values())}, 'a2b' or 'b2a'.") from None
        return key, open_image(path, name=name, reduce_to=max_side)

    def translate(self, upload: str | dict | None, direction: str) -> tuple[Image.Image, str]:
        key, opened = self.request(upload, direction, self.settings.max_side)
        picture = fit_max_side(opened.image, self.settings.max_side)
        started = time.perf_counter()
        output = self.model.translate(picture, key, scale=self.scale)
        self.seconds_per_megapixel = (time.perf_counter() - started) / megapixels(output.size)
        # Identical requests must not share one cached file (Gradio rewrites it in place while
        # another client may be downloading it): a request id makes every PNG's bytes unique.
        output.info.update(Software="cyclegan-hub", Comment=f"{self.labels[key]}, request {uuid.uuid4()}")
        return output, self.status(key, opened, picture)

    def full_resolution(self, upload: str | dict | None, direction: str):
        """Translate the upload at its own size, for download; says first how long it will take."""
        try:
            key, opened = self.request(upload, direction, None)
        except (UnreadableImageError, ValueError) as error:
            raise gr.Error(str(error), print_exception=False) from None
        width, height = opened.image.size
        label = self.labels[key]
        yield None, f"{label}: translating {width}x{height} at full resolution, {self.estimate(key, opened.image.size)}..."
        started = time.perf_counter()
        output = self.model.translate(opened.image, key, scale=self.scale, tile_size=TILE_SIZE if self.scale == "input" else None)
        path = self.downloads.add(output)
        yield path, f"{label}: {width}x{height} at full resolution in {time.perf_counter() - started:.0f} s, ready to download."

    def estimate(self, key: str, size: tuple[int, int]) -> str:
        """How long a full-resolution translation will take, from the last on-screen one's pace."""
        if self.scale == "training":  # one pass at the training resolution, then an upscale
            return "a few seconds"
        width, height = size
        overlap = window_pixels(height, width, TILE_SIZE, receptive_margin(self.model.generator(key))) / (width * height)
        pace = self.seconds_per_megapixel * TILED_COST * overlap
        return f"about {max(1, round(pace * megapixels(size) / 60))} min (in tiles, {pace:.0f} s per megapixel on this machine)"

    def status(self, key: str, opened, picture: Image.Image) -> str:
        parts = []
        if picture.size != opened.original_size:
            width, height = opened.original_size
            parts.append(f"downscaled from {width}x{height} to {picture.width}x{picture.height} (max side {self.settings.max_side}) before translating")
        if opened.frames > 1:
            parts.append(f"an animation of {opened.frames} frames: its first frame was translated")
        if not parts:
            return f"{self.labels[key]}: {picture.width}x{picture.height}."
        return f"{self.labels[key]}: {'; '.join(parts)}."

    def example_rows(self) -> list[list[str]]:
        """[file, direction label] for each example whose source domain (its name's prefix) the model has."""
        files = sorted(EXAMPLES.glob("*.jpg"))
        return [
            [str(path), label]
            for key, label in self.labels.items()  # the first direction's examples first
            for path in files
            if path.name.startswith(f"{self.model.source_domain(key)}_")
        ]

    def description(self) -> str:
        """What the model is and how good it is: its card's first paragraph, else its domains."""
        summary = card_summary(self.settings.model)
        if not summary:
            summary = f"A CycleGAN between {self.model.domain_a} and {self.model.domain_b} ({self.settings.model}); it has no model card."
        scale = (
            f"It translates at its training resolution ({self.short_side} px short side), then scales the result to your image's size."
            if self.scale == "training"
            else "It translates at your image's own size."
        )
        return f"{summary}\n\n{scale} Images longer than {self.settings.max_side} px are downscaled first."


class VideoTab:
    """The Video and Webcam tabs: clips and live frames, steadied where the input did not change
    so the style does not flicker (`cyclegan_hub.video`, `cyclegan_hub.temporal`)."""

    def __init__(self, translator: Translator):
        self.translator = translator
        self.model = translator.model
        self.short_side = translator.short_side
        self.downloads = translator.downloads
        self.failures = translator.failures

    def video(self, upload: str | dict | None, direction: str, progress=gr.Progress()):
        """Translate an uploaded clip; returns (video file, status). Errors are gr.Error."""
        with self.failures.noted(upload, (UnreadableVideoError, ValueError)):
            return self._video(upload, direction, progress)

    def _check(self, upload, direction):
        """(path, container suffix, direction key, VideoInfo) of an acceptable clip; else a ValueError."""
        if not upload:
            raise ValueError("Please upload a video first.")
        path, name = upload_path(upload), upload.get("orig_name") if isinstance(upload, dict) else None
        name = name or os.path.basename(path)
        suffix = Path(name).suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise ValueError(f"{name!r}: videos can be MP4, MOV or WebM.")
        key = self.model.resolve_direction(direction)
        info = probe(path, max_frames=VIDEO_MAX_SECONDS * 120)
        if info.seconds > VIDEO_MAX_SECONDS:
            raise ValueError(f"{name!r} is {info.seconds:.0f} s long; this demo translates clips of up to {VIDEO_MAX_SECONDS} s.")
        return path, suffix, key, info

    def _video(self, upload, direction, progress):
        path, suffix, key, info = self._check(upload, direction)
        width, height = fit_size(info.width, info.height, VIDEO_MAX_SIDE)
        frames = FrameTranslator(self.model, key, max_side=VIDEO_MAX_SIDE, short_side=self.short_side)
        target = self.downloads.path(VIDEO_SUFFIXES[suffix])
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            progress(done / max(info.frames, 1), desc=f"frame {done} of {info.frames}")

        started = time.perf_counter()
        # One frame a pass: the compiled graph was warmed up at batch 1 (a batch of 4 would compile
        # another, for a minute), and on a CPU batching frames is no faster.
        written = translate_video(frames, path, target, batch_size=1, progress=advance)
        self.downloads.add_file(target)
        seconds = time.perf_counter() - started
        scaled = f", downscaled from {info.width}x{info.height}" if (width, height) != (info.width, info.height) else ""
        return str(target), (
            f"{self.translator.labels[key]}: {written.frames} frames at {float(written.fps):.3g} frames/s, "
            f"{written.width}x{written.height}{scaled}, {'with' if written.has_audio else 'no'} sound; "
            f"translated in {seconds:.0f} s ({written.frames / seconds:.1f} frames/s)."
        )

    def webcam(self, frame: np.ndarray | None, direction: str, session: dict | None):
        """One live frame: (translated frame, frame-rate line, session). The session carries the
        filter's last frame from request to request and the recent frame times."""
        if frame is None:
            return None, "Waiting for the camera...", session
        key = self.model.resolve_direction(direction)
        if not session or session["direction"] != key:  # a new stream, or the direction changed
            session = dict(direction=key, state=None, seconds=collections.deque(maxlen=20))
        started = time.perf_counter()
        frames = FrameTranslator(self.model, key, max_side=WEBCAM_MAX_SIDE, state=session["state"])
        (translated,) = frames([np.ascontiguousarray(frame[..., :3])])
        session["state"] = frames.state
        session["seconds"].append(time.perf_counter() - started)
        pace = statistics.median(session["seconds"])  # a slow first frame does not linger in the figure
        height, width = translated.shape[:2]
        return translated, f"{1 / pace:.1f} frames/s on this machine ({width}x{height}, {pace * 1000:.0f} ms a frame)", session


class Failures:
    """Why the last request for each upload failed. A failed event pops up its error, then its
    failure event fills the status box from here, without running the request again."""

    def __init__(self):
        self.reasons: dict[str | None, str] = {}  # upload path -> reason

    @contextlib.contextmanager
    def noted(self, upload: str | dict | None, plain: tuple[type[Exception], ...]):
        """Note any error of the block; `plain` ones (bad input) become a gr.Error with just their message."""
        try:
            yield
        except plain as error:
            self.reasons[upload_path(upload)] = str(error)
            raise gr.Error(str(error), print_exception=False) from None
        except Exception as error:
            self.reasons[upload_path(upload)] = f"Translation failed: {error}"
            raise

    def explain(self, upload: str | dict | None, direction: str) -> str:
        """The status line after a failed request: the reason the pop-up showed."""
        return self.reasons.pop(upload_path(upload), "Translation failed; please try again.")


def upload_path(upload: str | dict | None) -> str | None:
    """The local path of an upload, given as a path or as the file payload the UI and API send."""
    return upload.get("path") if isinstance(upload, dict) else upload


def megapixels(size: tuple[int, int]) -> float:
    return size[0] * size[1] / 1e6


class Downloads:
    """Full-resolution results as PNG files for Gradio to serve; only the latest few are kept."""

    def __init__(self, keep: int = 8):
        self.folder = tempfile.TemporaryDirectory(prefix="cyclegan-downloads-")
        self.files: collections.deque[Path] = collections.deque()
        self.keep = keep

    def path(self, suffix: str) -> Path:
        """A fresh file name in the folder."""
        return Path(self.folder.name) / f"translated-{uuid.uuid4().hex[:8]}{suffix}"

    def add(self, image: Image.Image) -> str:
        path = self.path(".png")
        image.save(path)
        return self.add_file(path)

    def add_file(self, path: Path) -> str:
        """Keep `path` among the latest few; older files go."""
        self.files.append(path)
        while len(self.files) > self.keep:
            self.files.popleft().unlink(missing_ok=True)
        return str(path)


def load_model(settings: Settings) -> CycleGAN:
    """The model of `settings`, compiled and warmed up unless told otherwise; exits with a clear message on failure."""
    source = settings.model
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise SystemExit(
            f"No model in {source}: config.json not found. "
            "Pass --model HUB_ID_OR_FOLDER or set CYCLEGAN_MODEL (a folder from save_pretrained)."
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = CycleGAN.from_pretrained(source, map_location=device)
    except (OSError, ValueError) as error:  # a wrong id or path, no network, files that don't match
        raise SystemExit(f"Could not load the CycleGAN model {source!r}: {error}") from error
    if settings.compile:
        precision = "bf16 autocast" if settings.bf16 else "fp32"
        print(f"Compiling the generators ({precision}) so requests run fast: about a minute on a small CPU the first "
              "time, seconds on later starts (torch caches the result)...", flush=True)
        started = time.perf_counter()
        model.enable_fast_inference(bf16=settings.bf16)
        print(f"Compiled in {time.perf_counter() - started:.0f} s (falls back to eager if unavailable).", flush=True)
    print(f"Loaded {source} ({model.domain_a} <-> {model.domain_b}) on {device}.", flush=True)
    return model


def build_demo(translator: Translator) -> gr.Blocks:
    """The page. Image tab: input, direction, Translate and status on the left, the result on the
    right (below them on a narrow screen). Video tab: a short clip. Webcam tab: live frames.
    APIs: /translate, /full_resolution, /translate_video."""
    labels = list(translator.labels.values())
    title = labels[0].replace("->", "↔")
    videos = VideoTab(translator)
    with gr.Blocks(title=f"CycleGAN {title}", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# CycleGAN: {title}\n"
            "Unpaired image-to-image translation ([Zhu et al., 2017](https://arxiv.org/abs/1703.10593)). "
            "Upload an image or a video, or turn on your webcam; pick a direction and press Translate.\n\n" + translator.description()
        )
        with gr.Tabs():
            with gr.Tab("Image"):
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300):
                        source = gr.Image(type="filepath", label="Input image", height=IMAGE_HEIGHT)
                        direction = gr.Radio(labels, value=labels[0], label="Direction")
                        button = gr.Button("Translate", variant="primary")
                        status = gr.Textbox(label="Status", interactive=False, lines=1)
                    with gr.Column(min_width=300):
                        result = gr.Image(label="Translated", format="png", interactive=False, height=IMAGE_HEIGHT, elem_id="output-image")
                        full_button = gr.Button("Full resolution (download)", variant="secondary")
                        download = gr.File(label="Full-resolution result", interactive=False)
                rows = translator.example_rows()
                if rows:
                    gr.Examples(rows, [source, direction], cache_examples=False)
            with gr.Tab("Video"):
                gr.Markdown(
                    f"A clip of up to {VIDEO_MAX_SECONDS} s (MP4, MOV or WebM), translated at up to {VIDEO_MAX_SIDE} px with its sound. "
                    "Where the picture does not change, the translation is kept still, so the style does not flicker."
                )
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300):
                        clip = gr.Video(label="Input video", sources=["upload"], height=IMAGE_HEIGHT, elem_id="input-video")
                        clip_direction = gr.Radio(labels, value=labels[0], label="Direction")
                        clip_button = gr.Button("Translate video", variant="primary")
                        clip_status = gr.Textbox(label="Video status", interactive=False, lines=1)
                    with gr.Column(min_width=300):
                        clip_result = gr.Video(label="Translated video", interactive=False, height=IMAGE_HEIGHT, elem_id="output-video")
            with gr.Tab("Webcam"):
                gr.Markdown(f"Your camera, translated live at up to {WEBCAM_MAX_SIDE} px. Press the record button to start.")
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=300):
                        camera = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy", height=IMAGE_HEIGHT)
                        camera_direction = gr.Radio(labels, value=labels[0], label="Direction")
                    with gr.Column(min_width=300):
                        live = gr.Image(label="Translated live", interactive=False, height=IMAGE_HEIGHT, elem_id="output-webcam")
                        frame_rate = gr.Textbox(label="Frame rate", interactive=False, lines=1)
                session = gr.State(None)
        event = button.click(translator, [source, direction], [result, status], api_name="translate", preprocess=False)
        # After the error pop-up fades, the status box keeps the reason.
        event.failure(translator.failures.explain, [source, direction], status, api_visibility="private", preprocess=False)
        full_button.click(translator.full_resolution, [source, direction], [download, status], api_name="full_resolution", preprocess=False)
        clip_event = clip_button.click(videos.video, [clip, clip_direction], [clip_result, clip_status], api_name="translate_video", preprocess=False)
        clip_event.failure(videos.failures.explain, [clip, clip_direction], clip_status, api_visibility="private", preprocess=False)
        camera.stream(videos.webcam, [camera, camera_direction, session], [live, frame_rate, session], stream_every=0.1,
                      time_limit=120, concurrency_limit=2, api_visibility="private")
    concurrency = translator.settings.concurrency or (2 if torch.cuda.is_available() else 1)
    return demo.queue(default_concurrency_limit=concurrency)


def parse_settings(argv: list[str] | None = None) -> tuple[Settings, dict]:
    """The command line over the environment: the demo's settings and `launch()`'s keyword arguments."""
    try:
        defaults = Settings.from_env()
    except ValueError as error:
        raise SystemExit(f"app.py: error: {error}") from None
    parser = argparse.ArgumentParser(description="CycleGAN image-to-image translation demo (Gradio).")
    parser.add_argument("--model", help="Hub id or local folder (default: $CYCLEGAN_MODEL, else demo_model/)")
    parser.add_argument("--max_side", type=int, help=f"downscale images longer than this (default: $CYCLEGAN_MAX_SIDE or {defaults.max_side})")
    parser.add_argument("--scale", choices=SCALES, help="translate at the model's training resolution or at the image's size "
                        f"(default: $CYCLEGAN_SCALE, else {defaults.scale})")
    parser.add_argument("--concurrency", type=int, help="requests translated at once (default: 1 on CPU, 2 on GPU)")
    parser.add_argument("--no_compile", action="store_true", help="translate eagerly: skip the compile at start (also CYCLEGAN_COMPILE=0)")
    parser.add_argument("--bf16", action="store_true", help="compiled generators under bfloat16 autocast: ~2x faster on CPUs "
                        "with native bf16, outputs ~1/255 off on average (also CYCLEGAN_BF16=1)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or the first free from 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args(argv)
    try:
        settings = dataclasses.replace(
            defaults,
            **{k: v for k, v in dict(model=args.model, max_side=args.max_side, scale=args.scale, concurrency=args.concurrency).items() if v is not None},
            compile=defaults.compile and not args.no_compile,
            bf16=defaults.bf16 or args.bf16,
        )
    except ValueError as error:
        parser.error(str(error))
    return settings, dict(server_name=args.host, server_port=args.port, share=args.share, max_file_size="50mb")


# Imported (by `gradio app.py` or a test), the demo is configured by the environment alone.
settings, launch_options = parse_settings() if __name__ == "__main__" else (Settings.from_env(), {})
translator = Translator(settings)
demo = build_demo(translator)

if __name__ == "__main__":
    demo.launch(**launch_options)
