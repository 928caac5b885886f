"""The full CycleGAN training step (both G, both D, pool, identity loss) at 256 px.

Variants, each in its own process, on synthetic images, from the same initial weights:
- plain: the baseline, the update as the original release writes it (every generator loss
  summed into one backward), fp32 eager, batch 1, torch's default Adam.
- eager: our `CycleGANStep` (the generator loss back-propagated in three parts), fused Adam.
- compile: the same on torch.compile'd networks (`train_accelerate.py --compile`).
- bf16: compile plus bf16 autocast through Accelerate, as
  `accelerate launch --mixed_precision bf16 train_accelerate.py --compile` runs it.
--batch_size applies to every variant but the baseline. Reports seconds per step (median),
images/s, FLOPs of one step (forward and backward, counted by torch), GFLOP/s, peak memory of the
process (and of the GPU) up to the end of the timed steps, the GPU model, and the losses of the
second step, which agree between variants only if their first updates agree.

    python bench/train.py
    python bench/train.py --variants plain bf16 --batch_size 32   # e.g. on a GPU
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from common import DEVICE, count_flops, peak_memory, result, run_in_child, time_runs

VARIANTS = ("plain", "eager", "compile", "bf16")


def plain_step(G, F, D_X, D_Y, optimizer_g, optimizer_d, pool_a, pool_b):
    """The baseline: the original release's update, one backward of eq. 3 plus identity (weights 10, 5)."""
    from cyclegan_hub.losses import cycle_loss, discriminator_loss, generator_adversarial_loss, identity_loss

    def step(real_a, real_b):
        D_X.requires_grad_(False), D_Y.requires_grad_(False)
        fake_b, fake_a = G(real_a), F(real_b)
        loss_g = (
            generator_adversarial_loss(D_Y(fake_b))
            + generator_adversarial_loss(D_X(fake_a))
            + 10 * (cycle_loss(F(fake_b), real_a) + cycle_loss(G(fake_a), real_b))
            + 5 * (identity_loss(F(real_a), real_a) + identity_loss(G(real_b), real_b))
        )
        optimizer_g.zero_grad(set_to_none=True)
        loss_g.backward()
        optimizer_g.step()
        D_X.requires_grad_(True), D_Y.requires_grad_(True)
        loss_d_b = discriminator_loss(D_Y(real_b), D_Y(pool_b.query(fake_b)))
        loss_d_a = discriminator_loss(D_X(real_a), D_X(pool_a.query(fake_a)))
        optimizer_d.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        optimizer_d.step()
        return {"loss_g": loss_g.item(), "loss_d_a": loss_d_a.item(), "loss_d_b": loss_d_b.item()}

    return step


def measure(variant: str, steps: int, side: int, batch_size: int) -> dict:
    from accelerate import Accelerator

    from cyclegan_hub import CycleGAN
    from cyclegan_hub.image_pool import ImagePool
    from cyclegan_hub.training import CycleGANStep, adam

    torch.manual_seed(0)
    model = CycleGAN(with_discriminators=True).to(DEVICE)  # the paper's networks
    nets = [model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b]
    if variant == "plain":
        batch_size = 1
        optimizer_g, optimizer_d = (
            torch.optim.Adam([p for net in pair for p in net.parameters()], lr=2e-4, betas=(0.5, 0.999)) for pair in (nets[:2], nets[2:])
        )
        step = plain_step(*nets, optimizer_g, optimizer_d, ImagePool(50), ImagePool(50))
    else:
        optimizer_g, optimizer_d = adam(nets[:2]), adam(nets[2:])
        fast_nets = [torch.compile(net) for net in nets] if variant in ("compile", "bf16") else nets
        accelerator = None
        if variant == "bf16":  # prepared as train_accelerate.py prepares them
            accelerator = Accelerator(mixed_precision="bf16", cpu=DEVICE == "cpu")
            *fast_nets, optimizer_g, optimizer_d = accelerator.prepare(*fast_nets, optimizer_g, optimizer_d)
        step = CycleGANStep(*fast_nets, optimizer_g, optimizer_d, accelerator=accelerator)
    real_a, real_b = (torch.rand(batch_size, 3, side, side, device=DEVICE) * 2 - 1 for _ in range(2))
    step(real_a, real_b)
    # The second step's losses come from weights the first step updated: in every variant the
    # same weights and images, so they agree only if the updates (the gradients) agree too.
    second_losses = step(real_a, real_b)
    times = time_runs(lambda: step(real_a, real_b), 0, steps)
    memory = peak_memory()  # before counting FLOPs, which runs an extra eager step
    flops = count_flops(lambda: CycleGANStep(*nets, optimizer_g, optimizer_d)(real_a, real_b))
    return result(variant, times, flops, 2 * batch_size, memory, side=side, batch_size=batch_size, second_step_losses=second_losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after 2 warm-up steps")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=1, help="for every variant but the plain baseline")
    parser.add_argument("--output", default=str(Path(__file__).with_name("train.json")))
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(measure(args._child, args.steps, args.side, args.batch_size)))
        return

    rows = []
    for variant in args.variants:
        options = ["--steps", str(args.steps), "--side", str(args.side), "--batch_size", str(args.batch_size)]
        rows.append(run_in_child(__file__, [*options, "--_child", variant]))
        row = rows[-1]
        print(
            f"{variant:>8} batch {row['batch_size']}: {row['median_s']:.2f} s/step  {row['images_per_s']:.3f} img/s  "
            f"{row['gflop']:.0f} GFLOP  {row['gflop_per_s']:.0f} GFLOP/s  peak {row['peak_rss_gib']:.2f} GiB"
            + (f" (GPU {row['peak_gpu_gib']:.2f} GiB on {row['gpu']})" if "gpu" in row else ""),
            flush=True,
        )
    peak = "peak_gpu_gib" if "gpu" in rows[0] else "peak_rss_gib"
    summary = "training step: " + ", ".join(f"{row['variant']} {row['median_s']:.2f} s {row[peak]:.2f} GiB" for row in rows)
    baseline = rows[0]
    for row in rows[1:]:
        summary += f"; {row['variant']}/{baseline['variant']}: {row['images_per_s'] / baseline['images_per_s']:.2f}x images/s"
        if row["batch_size"] == baseline["batch_size"]:  # the same work and images: memory and losses compare
            shared = baseline["second_step_losses"].keys() & row["second_step_losses"].keys()
            difference = max(abs(baseline["second_step_losses"][k] - row["second_step_losses"][k]) for k in shared)
            summary += f", {row[peak] / baseline[peak]:.2f}x peak memory, second-step losses within {difference:.1e}"
    print(summary)
    Path(args.output).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
