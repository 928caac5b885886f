"""Generator inference: plain fp32 eager (the baseline) against the fast paths, each in its own process.

Variants: eager (the baseline: our `ResnetGenerator`, fp32, `torch.inference_mode`); compile
(`cyclegan_hub.fast.CompiledGenerator`: torch.compile with dynamic shapes, fp32, the app's default
path); bf16 (the same under bfloat16 autocast: `--bf16` in the app). Cases: 256x256 batch 1,
512x512 batch 1, 256x256 batch 8, and `CycleGAN.translate()` end to end on a 256 px PIL image.
Reports the median of --runs timed runs after warm-up, images/s, FLOPs, GFLOP/s, peak memory
(and the GPU model and its peak memory), and the fast variants' max and mean abs difference from
eager on the same input.

    python bench/infer.py                      # the paper's 9-block generator
    python bench/infer.py --cases 256x1 --runs 10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import DEVICE, count_flops, result, run_in_child, time_runs

VARIANTS = ("eager", "compile", "bf16")


def build(variant: str, side: int, batch: int):
    """(the eager generator, the variant's callable, the input images)."""
    from cyclegan_hub import ResnetGenerator
    from cyclegan_hub.fast import CompiledGenerator

    torch.manual_seed(0)
    generator = ResnetGenerator().eval().to(DEVICE)
    images = torch.rand(batch, 3, side, side, device=DEVICE) * 2 - 1
    fast = generator if variant == "eager" else CompiledGenerator(generator, bf16=variant == "bf16")
    return generator, fast, images


def measure(variant: str, case: str, runs: int) -> dict:
    if case == "translate":  # the demo's path: CycleGAN.translate on a PIL image
        import numpy as np
        from PIL import Image

        from cyclegan_hub import CycleGAN

        torch.manual_seed(0)
        model = CycleGAN().eval().to(DEVICE)
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
        with torch.inference_mode():
            flops = count_flops(lambda: model.generator_ab(torch.zeros(1, 3, 256, 256, device=DEVICE)))
        expected = np.asarray(model.translate(image), np.int16)
        if variant != "eager":
            model.enable_fast_inference(bf16=variant == "bf16")
        difference = np.abs(np.asarray(model.translate(image), np.int16) - expected)
        times = time_runs(lambda: model.translate(image), 2, runs)
        return result(
            variant, times, flops, 1, case=case, units="8-bit levels",
            max_abs_diff_vs_eager=int(difference.max()), mean_abs_diff_vs_eager=float(difference.mean()),
        )
    side, batch = map(int, case.split("x"))
    generator, fast, images = build(variant, side, batch)
    with torch.inference_mode():
        flops = count_flops(lambda: generator(images))
        times = time_runs(lambda: fast(images), 2, runs)
        difference = (fast(images) - generator(images)).abs()
    return result(
        variant, times, flops, batch, case=case,
        max_abs_diff_vs_eager=difference.max().item(), mean_abs_diff_vs_eager=difference.mean().item(),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["256x1", "512x1", "256x8", "translate"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--output", default=str(Path(__file__).with_name("infer.json")))
    parser.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(measure(*args._child, args.runs)))
        return

    rows = []
    for case in args.cases:
        for variant in args.variants:
            rows.append(run_in_child(__file__, ["--runs", str(args.runs), "--_child", variant, case]))
            row = rows[-1]
            print(
                f"{case:>9} {row['variant']:>30}: {row['median_s']:.3f} s  {row['images_per_s']:.2f} img/s  "
                f"{row['gflop']:.1f} GFLOP  {row['gflop_per_s']:.0f} GFLOP/s  peak {row['peak_rss_gib']:.2f} GiB  "
                f"diff {row.get('max_abs_diff_vs_eager', 0):.1e}",
                flush=True,
            )
    speedups = {}  # variant -> case -> eager time / variant time, both from this run
    for case in args.cases:
        by_variant = {row["variant"]: row for row in rows if row["case"] == case}
        for variant, row in by_variant.items():
            if variant != "eager" and "eager" in by_variant:
                speedups.setdefault(variant, {})[case] = by_variant["eager"]["median_s"] / row["median_s"]
    summary = "; ".join(
        f"{variant} vs eager speed-up: " + ", ".join(f"{case} {ratio:.2f}x" for case, ratio in ratios.items())
        for variant, ratios in speedups.items()
    )
    print(summary)
    Path(args.output).write_text(json.dumps({"rows": rows, "speedup_over_eager": speedups, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
