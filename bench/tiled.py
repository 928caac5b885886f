"""Tiled translation (`cyclegan_hub.tiling`) against one pass: exactness, seams, time per megapixel, memory.

Each case runs in its own process (peak memory is per process) on the embedded demo model,
photo -> Monet, fp32 eager, at the image's own scale:
- one pass at 2048x1536 (the baseline), at 1024x768 and at 4000x3000, and compiled at 1024x768
  (the demo's on-screen path, whose pace the demo scales by the tiled cost to estimate a
  full-resolution download);
- tiles of --tile_size at 2048x1536, 4000x3000 and 8000x6000;
- naive tiles at 2048x1536: each tile translated alone, no overlap, its own statistics.
The 2048x1536 image is a held-out photo upscaled (smooth, so a seam shows); the larger ones are
mosaics of held-out photos (real texture everywhere). Reports seconds, s/megapixel, peak RSS, the
largest difference of the tiled output from one pass, and the seam score of each 2048 px output;
for tiles also their overlap (pixels the windows cover over the image's), so that tiled s/MP /
overlap / compiled-1024 s/MP gives the demo's TILED_COST. The tiles' activations wait in TMPDIR.

    python bench/tiled.py --data ../shared/data/monet2photo
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import peak_memory, run_in_child

CASES = ("one-pass-2048", "tiled-2048", "naive-2048", "one-pass-1024", "compiled-1024", "one-pass-4000", "tiled-4000", "tiled-8000")
SIZES = {"1024": (1024, 768), "2048": (2048, 1536), "4000": (4000, 3000), "8000": (8000, 6000)}


def test_image(size: str, data: str) -> np.ndarray:
    from PIL import Image

    photos = sorted(Path(data, "testB").glob("*.jpg"))
    width, height = SIZES[size]
    if size == "2048":
        return np.asarray(Image.open(photos[0]).convert("RGB").resize((width, height), Image.Resampling.LANCZOS))
    canvas = Image.new("RGB", (width, height))
    for index, (top, left) in enumerate((t, l) for t in range(0, height, 256) for l in range(0, width, 256)):
        canvas.paste(Image.open(photos[index % len(photos)]).convert("RGB"), (left, top))
    return np.asarray(canvas)


def measure(case: str, data: str, tile_size: int, output: str) -> dict:
    import torch
    from PIL import Image

    from cyclegan_hub import CycleGAN
    from cyclegan_hub.tiling import receptive_margin, translate_tiled, window_pixels

    kind, size = case.rsplit("-", 1)
    model = CycleGAN.from_pretrained(str(Path(__file__).resolve().parents[1] / "demo_model"))
    generator = model.generator(model.resolve_direction("monet"))
    image = test_image(size, data)
    if kind == "compiled":  # the demo's on-screen path, warmed up as at its start-up
        model.enable_fast_inference()
        model.translate(Image.fromarray(image), "monet")
    started = time.perf_counter()
    if kind in ("one-pass", "compiled"):
        result = np.asarray(model.translate(Image.fromarray(image), "monet"))
    elif kind == "tiled":
        result = translate_tiled(generator, image, tile_size)
    else:  # naive tiles
        result = np.empty_like(image)
        for top in range(0, image.shape[0], tile_size):
            for left in range(0, image.shape[1], tile_size):
                part = Image.fromarray(image[top : top + tile_size, left : left + tile_size])
                result[top : top + tile_size, left : left + tile_size] = np.asarray(model.translate(part, "monet"))
    seconds = time.perf_counter() - started
    if size == "2048":
        np.save(output, result)
    megapixels = image.shape[0] * image.shape[1] / 1e6
    row = dict(case=case, seconds=seconds, megapixels=megapixels, s_per_megapixel=seconds / megapixels,
               threads=torch.get_num_threads(), **peak_memory())
    if kind == "tiled":
        row["overlap"] = window_pixels(*image.shape[:2], tile_size, receptive_margin(generator)) / 1e6 / megapixels
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with testB/ (held-out photos)")
    parser.add_argument("--tile_size", type=int, default=1024)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--output", default=str(Path(__file__).with_name("tiled.json")))
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(measure(args._child, args.data, args.tile_size, args._save)))
        return

    from cyclegan_hub.tiling import seam_score

    rows, outputs = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            save = str(Path(folder) / f"{case}.npy")
            rows.append(run_in_child(__file__, ["--data", args.data, "--tile_size", str(args.tile_size), "--_child", case, "--_save", save]))
            if Path(save).exists():
                outputs[case] = np.load(save)
                rows[-1]["seam_score"] = seam_score(outputs[case], args.tile_size)
            row = rows[-1]
            print(f"{case:>14}: {row['seconds']:7.1f} s  {row['s_per_megapixel']:5.2f} s/MP  peak {row['peak_rss_gib']:.2f} GiB"
                  + (f"  seams {row['seam_score']:.3f}" if "seam_score" in row else ""), flush=True)
    summary = {}
    if "one-pass-2048" in outputs and "tiled-2048" in outputs:
        difference = np.abs(outputs["tiled-2048"].astype(np.int16) - outputs["one-pass-2048"].astype(np.int16))
        summary.update(tiled_vs_one_pass_max_levels=int(difference.max()), tiled_vs_one_pass_differing_pixels=float((difference > 0).mean()))
    by_case = {row["case"]: row for row in rows}
    if "compiled-1024" in by_case:  # what app.TILED_COST should be: tiled s/MP over the tiles' overlap and the on-screen pace
        summary["tiled_cost_vs_compiled_1024"] = {
            case: row["s_per_megapixel"] / row["overlap"] / by_case["compiled-1024"]["s_per_megapixel"] for case, row in by_case.items() if "overlap" in row
        }
    if "one-pass-2048" in by_case:
        base = by_case["one-pass-2048"]["s_per_megapixel"]
        summary["s_per_megapixel_vs_one_pass_2048"] = {case: row["s_per_megapixel"] / base for case, row in by_case.items()}
    print(json.dumps(summary, indent=2))
    Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary, "tile_size": args.tile_size}, indent=2))


if __name__ == "__main__":
    main()
