"""Gradio demo (and Hugging Face Space): translate an image between a CycleGAN's two domains.

    python app.py                            # the embedded model in demo_model/ (photo <-> Monet)
    python app.py --model org/cyclegan-h2z   # a Hub id or a local folder; or env CYCLEGAN_MODEL
    python app.py --max_side 512 --concurrency 2 --host 0.0.0.0 --port 7860 --share

Images longer than --max_side (env CYCLEGAN_MAX_SIDE, default 1024) on a side are downscaled
first, and the status line says so; otherwise the output has exactly the input's size. The
generators are compiled (torch.compile, one graph for every size) and warmed up at start-up;
`--no_compile` or CYCLEGAN_COMPILE=0 skips that, and a machine where compiling fails runs eager.
`--bf16` or CYCLEGAN_BF16=1 runs them under bfloat16 autocast: about 2x faster on a CPU with
native bf16 (AVX512-BF16 or AMX), outputs about 1 level in 255 off on average.

API: one endpoint, /translate. The direction is a label shown in the UI ("Photo -> Monet",
"Monet -> Photo": the model's domain names, title-cased) or "a2b" / "b2a".

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    image_path, status = client.predict(handle_file("photo.jpg"), "Photo -> Monet", api_name="/translate")

`predict` returns a tuple of two: the local path of the translated image (a PNG the client
downloaded) and the status line, e.g. "Photo -> Monet: 256x256." or "Photo -> Monet: downscaled
from 3000x2000 to 1024x683 (max side 1024) before translating." A file that is not a readable
image, or an unknown direction, raises `gradio_client.exceptions.AppError` with the reason.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import gradio as gr
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from cyclegan_hub import CycleGAN
from cyclegan_hub.images import to_rgb
from cyclegan_hub.translate import fit_max_side

EMBEDDED_MODEL = Path(__file__).resolve().parent / "demo_model"
EXAMPLES = EMBEDDED_MODEL / "examples"  # <source domain>_<name>.jpg, see SOURCES.md there
MAX_UPLOAD_PIXELS = 100_000_000  # ~300 MB as RGB; Pillow's own bomb check stops at 179 megapixels

# Set once by load_model(), read by every request.
model: CycleGAN | None = None
directions: dict[str, str] = {}  # UI label -> "a2b" / "b2a"
max_side = 1024


def load_model(source: str | None = None, max_side_: int = 1024, fast: bool = False, bf16: bool = False) -> CycleGAN:
    """Load the weights once: `source` (Hub id or folder), else $CYCLEGAN_MODEL, else demo_model/.

    With `fast`, both generators are compiled and warmed up now, so no request pays the compile;
    `bf16` adds bfloat16 autocast to them (see `cyclegan_hub.fast`).
    """
    global model, directions, max_side
    source = source or os.environ.get("CYCLEGAN_MODEL") or str(EMBEDDED_MODEL)
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        hint = " The embedded demo model has not been added yet." if Path(source).resolve() == EMBEDDED_MODEL else ""
        raise SystemExit(
            f"No model in {source}: config.json not found.{hint} "
            "Pass --model HUB_ID_OR_FOLDER or set CYCLEGAN_MODEL (a folder from save_pretrained)."
        )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model = CycleGAN.from_pretrained(source, map_location=device)
    except Exception as error:  # a wrong id, no network, files that don't match: say which model failed
        where = "" if os.path.isdir(source) else " (not a local folder, so it was looked up on the Hub)"
        raise SystemExit(f"Could not load the CycleGAN model {source!r}{where}: {error}") from error
    if fast:
        started = time.perf_counter()
        model.enable_fast_inference(bf16=bf16)
        precision = "bf16 autocast" if bf16 else "fp32"
        print(f"Compiled the generators ({precision}) in {time.perf_counter() - started:.0f} s (falls back to eager if unavailable).")
    a, b = model.domain_a.title(), model.domain_b.title()
    directions = {f"{a} -> {b}": "a2b", f"{b} -> {a}": "b2a"}
    max_side = max_side_
    print(f"Loaded {source} ({a} <-> {b}) on {device}; images above {max_side} px are downscaled.")
    return model


def translate_image(image: str | dict | None, direction: str) -> tuple[Image.Image, str]:
    """Translate one image file; returns (translated image, status line). Errors are gr.Error.

    `image` is a file path, or the file payload the UI and API send ({"path": ..., ...}): the
    event runs with preprocess=False so that an unreadable upload reaches this function and
    gets a clear message instead of Gradio's generic preprocessing error.
    """
    if not image:
        raise gr.Error("Please upload an image first.", print_exception=False)
    path, name = (image["path"], image.get("orig_name")) if isinstance(image, dict) else (image, None)
    name = name or Path(path).name
    key = directions.get(direction) or (direction if direction in ("a2b", "b2a") else None)
    if key is None:
        message = f"Unknown direction {direction!r}: use {', '.join(directions)}, 'a2b' or 'b2a'."
        raise gr.Error(message, print_exception=False)
    try:
        with Image.open(path) as file:
            if file.width * file.height > MAX_UPLOAD_PIXELS:  # refuse before decoding: a small file can unpack to GBs
                megapixels = MAX_UPLOAD_PIXELS // 1_000_000
                message = f"{name!r} is {file.width}x{file.height} pixels; images up to {megapixels} megapixels are accepted."
                raise gr.Error(message, print_exception=False)
            rotated = file.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
            original = (file.height, file.width) if rotated else file.size  # as the user sees it
            file.draft("RGB", (max_side, max_side))  # a JPEG decodes at a reduced scale when that is enough
            file.load()  # decode now, so a truncated file fails here and not in the model
            picture = to_rgb(file)  # any mode, EXIF orientation applied
    except gr.Error:
        raise
    except Exception as error:
        reason = "not an image format Pillow recognises" if isinstance(error, UnidentifiedImageError) else str(error)
        message = f"Could not read {name!r} as an image ({reason}). Please upload a JPEG, PNG or WebP image."
        raise gr.Error(message, print_exception=False) from error
    picture = fit_max_side(picture, max_side)
    output = model.translate(picture, key)
    label = next(label for label, value in directions.items() if value == key)
    if picture.size != original:
        return output, (
            f"{label}: downscaled from {original[0]}x{original[1]} to {picture.width}x{picture.height} "
            f"(max side {max_side}) before translating."
        )
    return output, f"{label}: {output.width}x{output.height}."


def example_rows() -> list[list[str]]:
    """[file, direction] for each example whose source domain (its name's prefix) the model has."""
    files = sorted(EXAMPLES.glob("*.jpg"))
    return [
        [str(path), label]
        for label in directions  # the first direction's examples first
        for path in files
        if path.name.split("_")[0].lower() == label.split(" -> ")[0].lower()
    ]


def build_demo(concurrency: int = 1) -> gr.Blocks:
    """The page: input and output side by side, direction, button, status; /translate API."""
    labels = list(directions)
    with gr.Blocks(title=f"CycleGAN {labels[0].replace('->', '<->')}") as demo:
        gr.Markdown(
            f"# CycleGAN: {labels[0].replace('->', '↔')}\n"
            "Unpaired image-to-image translation ([Zhu et al., 2017](https://arxiv.org/abs/1703.10593)). "
            f"Upload an image, pick a direction and press Translate. Images longer than {max_side} px "
            "are downscaled first; otherwise the result has the input's size."
        )
        with gr.Row():
            source = gr.Image(type="filepath", label="Input image")
            result = gr.Image(label="Translated", format="png", interactive=False, elem_id="output-image")
        direction = gr.Radio(labels, value=labels[0], label="Direction")
        button = gr.Button("Translate", variant="primary")
        status = gr.Textbox(label="Status", interactive=False)
        button.click(
            translate_image, [source, direction], [result, status], api_name="translate", preprocess=False
        )
        rows = example_rows()
        if rows:
            gr.Examples(rows, [source, direction], cache_examples=False)
    return demo.queue(default_concurrency_limit=concurrency)


def main():
    parser = argparse.ArgumentParser(description="CycleGAN image-to-image translation demo (Gradio).")
    parser.add_argument("--model", help="Hub id or local folder (default: $CYCLEGAN_MODEL, else demo_model/)")
    parser.add_argument("--max_side", type=int, default=int(os.environ.get("CYCLEGAN_MAX_SIDE", 1024)),
                        help="downscale images longer than this (default: $CYCLEGAN_MAX_SIDE or 1024)")
    parser.add_argument("--concurrency", type=int, help="requests translated at once (default: 1 on CPU, 2 on GPU)")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or the first free from 7860)")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--no_compile", action="store_true", default=os.environ.get("CYCLEGAN_COMPILE") == "0",
                        help="translate eagerly: skip the torch.compile warm-up at start (also CYCLEGAN_COMPILE=0)")
    parser.add_argument("--bf16", action="store_true", default=os.environ.get("CYCLEGAN_BF16") == "1",
                        help="compiled generators under bfloat16 autocast: ~2x faster on CPUs with native bf16, "
                             "outputs ~1/255 off on average (also CYCLEGAN_BF16=1)")
    args = parser.parse_args()
    if args.max_side < 8:
        parser.error("--max_side must be at least 8")
    if args.bf16 and args.no_compile:
        parser.error("--bf16 is part of the compiled path: drop --no_compile (or CYCLEGAN_COMPILE=0)")
    load_model(args.model, args.max_side, fast=not args.no_compile, bf16=args.bf16)
    concurrency = args.concurrency or (2 if torch.cuda.is_available() else 1)
    build_demo(concurrency).launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size="50mb")


if __name__ == "__main__":
    main()
