"""Images/s of the training data pipeline (decode, resize, crop, flip, collate) with N workers.

Compares what the DataLoader delivers with what a training step consumes (2 images per sample,
one per domain). Each worker count runs in its own process, so they don't skew each other.
Throughput is also given in output megapixels/s; there is no FLOP count, as decoding and resizing
run inside Pillow and libjpeg, where torch's counter cannot see.

    python bench/data.py --dataset ../shared/data/monet2photo --workers 0 1 2 --step_seconds 2.79
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import run_in_child


def measure(dataset_path: str, workers: int, samples: int, load_size: int, crop_size: int) -> dict:
    from cyclegan_hub.data import DataOptions, Preprocess, unpaired_dataset

    dataset = unpaired_dataset(DataOptions(dataset=dataset_path), Preprocess(load_size, crop_size), seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=True, num_workers=workers)
    iterator = iter(loader)
    next(iterator)  # worker start-up is paid once per epoch, not per image
    started, count = time.perf_counter(), 0
    for batch in iterator:
        count += 1
        if count == samples:
            break
    seconds = time.perf_counter() - started
    return {
        "workers": workers,
        "samples": count,
        "images_per_s": 2 * count / seconds,
        "output_megapixels_per_s": 2 * count * crop_size**2 / seconds / 1e6,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset id or folder with trainA/ trainB/")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--load_size", type=int, default=286)
    parser.add_argument("--crop_size", type=int, default=256)
    parser.add_argument("--step_seconds", type=float, help="measured seconds per training step of the run to compare with")
    parser.add_argument("--output", default=str(Path(__file__).with_name("data.json")))
    parser.add_argument("--_child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child is not None:
        print(json.dumps(measure(args.dataset, args._child, args.samples, args.load_size, args.crop_size)))
        return
    options = ["--dataset", args.dataset, "--samples", str(args.samples), "--load_size", str(args.load_size),
               "--crop_size", str(args.crop_size)]
    rows = [run_in_child(__file__, [*options, "--_child", str(workers)]) for workers in args.workers]
    consumed = 2 / args.step_seconds if args.step_seconds else None
    print(f"{'workers':>8} {'images/s':>10} {'MPixel/s':>10} {'x training need':>16}")
    for row in rows:
        ratio = row["images_per_s"] / consumed if consumed else float("nan")
        row["ratio_to_training"] = ratio
        print(f"{row['workers']:>8} {row['images_per_s']:>10.1f} {row['output_megapixels_per_s']:>10.1f} {ratio:>16.1f}")
    best = max(rows, key=lambda row: row["images_per_s"])
    summary = f"data pipeline: {best['images_per_s']:.1f} images/s with {best['workers']} workers"
    if consumed:
        summary += f", {best['images_per_s'] / consumed:.0f}x the {consumed:.2f} images/s a training step consumes"
    print(summary)
    with open(args.output, "w") as f:
        json.dump({"rows": rows, "training_consumes_images_per_s": consumed, "summary": summary}, f, indent=2)


if __name__ == "__main__":
    main()
