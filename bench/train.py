"""The full CycleGAN training step (both G, both D, pool, identity loss) at 256 px, batch 1.

Plain fp32 eager (the baseline) against torch.compile of the four networks, each variant in its
own process, on synthetic images: seconds per step (median), images/s, FLOPs of one step
(forward and backward, counted by torch), GFLOP/s and peak memory.

    python bench/train.py
    python bench/train.py --variants eager --steps 5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import count_flops, result, run_in_child, time_runs

VARIANTS = ("eager", "compile")


def measure(variant: str, steps: int, side: int) -> dict:
    from cyclegan_hub import CycleGAN
    from cyclegan_hub.training import CycleGANStep

    torch.manual_seed(0)
    model = CycleGAN(with_discriminators=True)  # the paper's networks
    nets = [model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b]
    optimizer_g = torch.optim.Adam([*nets[0].parameters(), *nets[1].parameters()], lr=2e-4, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam([*nets[2].parameters(), *nets[3].parameters()], lr=2e-4, betas=(0.5, 0.999))
    if variant == "compile":
        nets = [torch.compile(net) for net in nets]
    step = CycleGANStep(*nets, optimizer_g, optimizer_d)
    real_a, real_b = torch.rand(1, 3, side, side) * 2 - 1, torch.rand(1, 3, side, side) * 2 - 1
    # FLOPs are counted on the eager networks: the counter does not see inside compiled graphs.
    eager_step = CycleGANStep(
        model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b, optimizer_g, optimizer_d
    )
    state = {k: v.clone() for k, v in model.state_dict().items()}  # counting runs a step: undo it afterwards
    flops = count_flops(lambda: eager_step(real_a, real_b))
    model.load_state_dict(state)
    optimizer_g.state.clear(), optimizer_d.state.clear()
    first_losses = step(real_a, real_b)  # from the same weights and images in every variant: comparable
    times = time_runs(lambda: step(real_a, real_b), 1, steps)
    return result(variant, times, flops, 2, side=side, first_step_losses=first_losses)  # one A and one B image per step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up steps")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--output", default=str(Path(__file__).with_name("train.json")))
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(measure(args._child, args.steps, args.side)))
        return

    rows = []
    for variant in args.variants:
        rows.append(run_in_child(__file__, ["--steps", str(args.steps), "--side", str(args.side), "--_child", variant]))
        row = rows[-1]
        print(
            f"{variant:>8}: {row['median_s']:.2f} s/step  {row['images_per_s']:.3f} img/s  {row['gflop']:.0f} GFLOP  "
            f"{row['gflop_per_s']:.0f} GFLOP/s  peak {row['peak_rss_gib']:.2f} GiB",
            flush=True,
        )
    by_variant = {row["variant"]: row for row in rows}
    summary = "training step: " + ", ".join(f"{row['variant']} {row['median_s']:.2f} s" for row in rows)
    if {"eager", "compile"} <= by_variant.keys():
        eager, compiled = by_variant["eager"], by_variant["compile"]
        difference = max(abs(eager["first_step_losses"][k] - compiled["first_step_losses"][k]) for k in eager["first_step_losses"])
        summary += f"; compile/eager speed-up {eager['median_s'] / compiled['median_s']:.2f}x"
        summary += f"; first-step losses differ by at most {difference:.1e}"
    print(summary)
    Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
