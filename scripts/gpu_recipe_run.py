"""The recipe pilot and the long run together, on one lent GPU, inside a fixed time budget.

    python scripts/gpu_recipe_run.py --data DATA --runs /tmp/runs --export "$OUT" --seconds 430
    python scripts/gpu_recipe_run.py ... --variant seed0 "$RECIPE" --variant seed1 "$RECIPE --seed 1" --long seed0
    python scripts/gpu_recipe_run.py ... --steps 2000 --variant seed0 "$RECIPE" --variant seed1 "$RECIPE --seed 1"

Variants train side by side, each in its own `train_accelerate.py` process with the same data and
seed 0 unless its flags say otherwise: the recorded pilot's five of docs/recipe.md, or each
--variant given. At batch 1 a step is bound by kernel launches rather than by the GPU, so
processes share it well (on an H200: 10 steps/s alone, 5.4-8.3 each with five).
All start at the constant learning rate. Once every run has written two checkpoints their
speeds are known, and from them the pilot step (the largest multiple of 500 that every run
reaches by the deadline, or by half-way to it for a long run; at least 2,000); the long runs
(--long) are stopped and resumed with a schedule that ends at the deadline, constant to its
half-way point (or to the pilot step, if later) and then decaying linearly to 0. The other runs
stop at the pilot step, at the constant rate. With --steps N instead, every run trains N steps on
the trainer's own schedule (constant, then decaying over the second half, as the CPU pilots of
docs/recipe.md), which makes seeds and options comparable with those pilots.

What comes back (the device's limits: 8 files of at most 16 MiB) are slim checkpoints of every
run at the pilot step and of each long run half-way and at its end (the averaged generators where
a run keeps an average), the trainer state and the generators in float16, two to a tar file, readable by
`cyclegan_hub.checkpoints.model_from_checkpoint` and so by `python -m cyclegan_hub.evaluate`;
and one tar of logs, losses, timings and the schedule chosen.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not an install
from cyclegan_hub.checkpoints import EMA_FILE, NETWORK_FILES, STATE_FILE, TRAIN_CONFIG_FILE, list_checkpoints  # noqa: E402

ANTIALIAS = ["--upsample", "antialias", "--downsample", "antialias"]
AUGMENT_AND_AVERAGE = ["--diffaugment", "--ema_decay", "0.999"]
RECORDED_VARIANTS = {  # the GPU pilot of docs/recipe.md, run when no --variant is given: name: (flags, trained long)
    "paper": ([], False),
    "resize": (["--upsample", "resize"], False),
    "antialias": (ANTIALIAS, False),
    "antialias_diffaugment_ema": (ANTIALIAS + AUGMENT_AND_AVERAGE, True),
    "resize_diffaugment_ema": (["--upsample", "resize"] + AUGMENT_AND_AVERAGE, True),
}
CONSTANT_FOREVER = ["--max_steps", "10000000", "--decay_epochs", "0"]
PILOT_MULTIPLE = 500
MAX_FILES = 8  # what the device brings back: the log tar and the snapshot tars, two snapshots to a tar


def parse_variants(named_flags: list[list[str]] | None, long_names: list[str]) -> dict[str, tuple[list[str], bool]]:
    """--variant NAME FLAGS (repeatable) and --long NAME, or the recorded pilot when no --variant is given."""
    if not named_flags:
        return RECORDED_VARIANTS
    variants = {name: (shlex.split(flags), name in long_names) for name, flags in named_flags}
    if len(variants) < len(named_flags):
        raise SystemExit("each --variant needs its own name")
    unknown = set(long_names) - set(variants)
    if unknown:
        raise SystemExit(f"--long names no --variant: {', '.join(sorted(unknown))}")
    return variants


def slot_names(variants: dict[str, tuple[list[str], bool]], pilot_step: int, long_steps: dict[str, int]) -> list[tuple[str, str, int, bool]]:
    """The snapshots that come back, in packing order: (variant, folder name, step, averaged).

    Every variant at the pilot step; a long run also half-way through its schedule and at its end.
    A snapshot holds the averaged generators where the variant keeps an average, else the raw ones.
    """
    slots = []
    for name, (flags, long) in variants.items():
        averaged = "--ema_decay" in flags
        slots.append((name, name, pilot_step, averaged))
        if long:
            slots += [(name, f"{name}_half", long_steps[name] // 2, averaged), (name, f"{name}_final", long_steps[name], averaged)]
    return slots


def check_fits(variants: dict[str, tuple[list[str], bool]]) -> None:
    snapshots = len(slot_names(variants, pilot_step=0, long_steps=dict.fromkeys(variants, 0)))  # steps do not matter here
    files = (snapshots + 1) // 2 + 1  # the snapshot tars and the log tar
    if files > MAX_FILES:
        raise SystemExit(f"{snapshots} snapshots need {files} files; the device returns {MAX_FILES}: "
                         "fewer variants or fewer long runs")


class Run:
    """One train_accelerate.py process and the times its checkpoints appeared."""

    def __init__(self, name: str, flags: list[str], args):
        self.name, self.flags, self.args = name, flags, args
        self.output_dir = args.runs / name
        self.seen: dict[int, float] = {}  # step: when its checkpoint was written
        self.process = None
        self.launched = 0.0

    def start(self, schedule: list[str], resume: bool = False):
        env = dict(os.environ, HF_DATASETS_CACHE=str(self.args.runs / "hf_cache" / self.name), TQDM_MININTERVAL="10")
        command = [sys.executable, "train_accelerate.py", "--dataset", str(self.args.data), "--domain_a", "monet",
                   "--domain_b", "photo", "--seed", "0", "--ngf", "32", "--n_blocks", "6", "--num_workers", "2",
                   "--checkpointing_steps", str(self.args.checkpointing_steps), "--checkpoints_total_limit", "100000",
                   "--sample_steps", "1000", "--logging_steps", "100", "--save_dtype", "float16",
                   "--output_dir", str(self.output_dir), *self.flags, *schedule, *self.args.extra]
        if resume:
            command += ["--resume_from_checkpoint", "latest"]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_dir / "log.txt", "a") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.launched = time.time()

    def poll(self) -> None:
        # When each checkpoint was written, not when it was first seen: fast runs write several a poll.
        for path in list_checkpoints(self.output_dir):
            self.seen.setdefault(int(path.name.split("-")[1]), (path / STATE_FILE).stat().st_mtime)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # checkpoints are renamed into place whole: a kill is safe
            self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rate(self) -> float | None:
        """Steps per second between the first and the last checkpoint written since the (re)start."""
        recent = sorted((step, seen) for step, seen in self.seen.items() if seen > self.launched)
        if len(recent) < 2:
            return None
        (first_step, first_time), (last_step, last_time) = recent[0], recent[-1]
        return (last_step - first_step) / max(last_time - first_time, 1e-6)

    def latest(self) -> int:
        return max(self.seen, default=0)


def slim_checkpoint(run_dir: Path, step: int, averaged: bool, target: Path) -> None:
    """The trainer state and the generators (averaged or raw) of checkpoint-step, in float16."""
    source = run_dir / f"checkpoint-{step}"
    folder = target / f"checkpoint-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / STATE_FILE, folder / STATE_FILE)
    shutil.copy(run_dir / TRAIN_CONFIG_FILE, target / TRAIN_CONFIG_FILE)
    half = lambda tensors: {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}  # noqa: E731
    if averaged:
        save_file(half(load_file(str(source / EMA_FILE))), str(folder / EMA_FILE))
    else:
        for name in ("generator_ab", "generator_ba"):
            save_file(half(load_file(str(source / NETWORK_FILES[name]))), str(folder / NETWORK_FILES[name]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="folder with trainA/ (Monet) trainB/ (photos) testA/ testB/")
    parser.add_argument("--runs", type=Path, required=True, help="where the runs' checkpoints go")
    parser.add_argument("--export", type=Path, required=True, help="where the packed snapshots and logs go")
    parser.add_argument("--seconds", type=float, required=True, help="from now until the long runs must have finished")
    parser.add_argument("--steps", type=int, default=None,
                        help="train every run to this step on the trainer's own schedule (decaying over the second "
                             "half, as the CPU pilots), instead of calibrating a pilot step; no --long")
    parser.add_argument("--checkpointing_steps", type=int, default=250)
    parser.add_argument("--pilot_multiple", type=int, default=PILOT_MULTIPLE)
    parser.add_argument("--min_pilot_step", type=int, default=2000)
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "FLAGS"),
                        help="a run and its train_accelerate.py flags in one string, e.g. --variant seed1 '--seed 1' "
                             "(repeatable; default: the recorded pilot's five)")
    parser.add_argument("--long", action="append", default=[], metavar="NAME",
                        help="train this --variant on to the deadline, decaying over its second half (repeatable)")
    parser.add_argument("extra", nargs="*", help="more train_accelerate.py flags for every run (after --)")
    args = parser.parse_args()
    variants = parse_variants(args.variant, args.long)
    if args.steps and any(long for _, long in variants.values()):
        parser.error("--steps trains every run to the same step: no --long runs (nor the recorded pilot's)")
    if args.steps and args.steps % args.checkpointing_steps:
        parser.error(f"--steps {args.steps} must be a multiple of --checkpointing_steps ({args.checkpointing_steps})")
    check_fits(variants)
    started = time.time()
    deadline = started + args.seconds
    staging = args.runs / "export"
    args.export.mkdir(parents=True, exist_ok=True)
    report = {"seconds_budget": args.seconds, "events": []}

    def note(message: str, **values):
        report["events"].append({"t": round(time.time() - started, 1), "message": message, **values})
        print(f"[{time.time() - started:6.1f} s] {message} {values if values else ''}", flush=True)

    runs = {name: Run(name, flags, args) for name, (flags, _) in variants.items()}
    if args.steps:
        for run in runs.values():
            run.start(["--max_steps", str(args.steps)])
        note("started", variants=list(runs), max_steps=args.steps)
        pilot_step, long_steps = args.steps, {}
    else:
        for run in runs.values():
            run.start(CONSTANT_FOREVER)
        note("started", variants=list(runs))
        pilot_step, long_steps = calibrate_and_schedule(runs, variants, args, deadline, report, note)
    slots = slot_names(variants, pilot_step, long_steps)
    note("pilot step", pilot_step=pilot_step, slots=[s[1] for s in slots])

    # train; export each snapshot as soon as its checkpoint exists; pack them two by two
    wanted = {(variant, step) for variant, _, step, _ in slots}
    pairs = [[slot[1] for slot in slots[i : i + 2]] for i in range(0, len(slots), 2)]
    exported: set[str] = set()
    packed: set[int] = set()
    hard_stop = deadline + args.seconds * 0.08
    while time.time() < hard_stop:
        for name, run in runs.items():
            run.poll()
            if not variants[name][1] and pilot_step in run.seen and run.running():
                run.stop()
                note("pilot run stopped", run=name, step=pilot_step)
            for path in list_checkpoints(run.output_dir)[:-2]:  # a checkpoint with optimiser state is ~130 MB
                if (name, int(path.name.split("-")[1])) not in wanted:
                    shutil.rmtree(path)
        for variant, folder, step, averaged in slots:
            if folder not in exported and step in runs[variant].seen:
                slim_checkpoint(runs[variant].output_dir, step, averaged, staging / folder)
                exported.add(folder)
                note("exported", snapshot=folder, step=step)
        for index, pair in enumerate(pairs):  # packed as soon as both are there: a killed command still returns them
            if index not in packed and set(pair) <= exported:
                pack(args.export / f"snapshots_{index}.tar", pair, staging)
                packed.add(index)
        if len(packed) == len(pairs) and not any(run.running() for run in runs.values()):
            break
        time.sleep(1)
    for run in runs.values():
        run.stop()
    for index in set(range(len(pairs))) - packed:  # what came of an incomplete pair
        pack(args.export / f"snapshots_{index}.tar", [folder for folder in pairs[index] if folder in exported], staging)
    report["pilot_step"], report["long_steps"] = pilot_step, long_steps
    report["missing"] = [s[1] for s in slots if s[1] not in exported]
    note("done", missing=report["missing"])
    (args.runs / "report.json").write_text(json.dumps(report, indent=2))
    with tarfile.open(args.export / "logs.tar.gz", "w:gz") as tar:
        tar.add(args.runs / "report.json", arcname="report.json")
        for name, run in runs.items():
            (run.output_dir / "losses.json").write_text(json.dumps(logged_scalars(run.output_dir / "cyclegan")))
            for path in [run.output_dir / "log.txt", run.output_dir / TRAIN_CONFIG_FILE, run.output_dir / "losses.json"]:
                if path.is_file():
                    tar.add(path, arcname=f"{name}/{path.name}")


def calibrate_and_schedule(runs: dict[str, Run], variants, args, deadline: float, report: dict, note) -> tuple[int, dict[str, int]]:
    """Measure every run's speed, choose the pilot step and resume the long runs with a schedule
    that ends at the deadline. Returns the pilot step and each long run's last step."""
    while any(run.rate() is None for run in runs.values()):
        time.sleep(1)
        for run in runs.values():
            run.poll()
            if not run.running():
                note("a run died before calibration: stopping all", run=run.name, log_tail=(run.output_dir / "log.txt").read_text()[-3000:])
                for other in runs.values():
                    other.stop()
                (args.export / "report.json").write_text(json.dumps(report, indent=2))
                raise SystemExit(1)
        if time.time() > deadline:
            raise SystemExit("no speed measured before the deadline")
    rates = {name: run.rate() for name, run in runs.items()}
    overhead = {name: run.seen[min(run.seen)] - run.launched - min(run.seen) / rates[name] for name, run in runs.items()}
    report["rates"] = rates
    note("calibrated", steps_per_s=rates, startup_s=overhead)

    # the pilot step: the largest multiple every pilot run reaches at the constant rate by the deadline,
    # and every long run by half-way to it, so that the long runs still have their second half to decay
    reach = {n: rates[n] * (deadline - runs[n].launched - overhead[n]) for n in variants}
    reachable = [reach[n] / 2 if long else reach[n] for n, (_, long) in variants.items()]
    pilot_step = max(args.min_pilot_step, int(min(reachable) // args.pilot_multiple * args.pilot_multiple))

    # the long runs: resume with a schedule that ends at the deadline, decaying over its second half,
    # but not before the pilot step, which they must reach at the constant rate like the others
    long_steps = {}
    grain = 2 * args.checkpointing_steps  # the half-way point is a checkpoint too
    for name, (_, long) in variants.items():
        if not long:
            continue
        run = runs[name]
        run.stop()
        run.poll()
        resumed_at = run.latest()
        left = deadline - time.time() - max(overhead[name], 5) - 10  # start-up, final save
        total = max(resumed_at + grain, int((resumed_at + rates[name] * left) // grain * grain))
        constant = max(total // 2, resumed_at, pilot_step)
        total = max(total, -(-(constant + grain) // grain) * grain)
        long_steps[name] = total
        run.start(["--max_steps", str(total), "--num_epochs", str(constant), "--decay_epochs", str(total - constant)], resume=True)
        note("long run resumed", run=name, at=resumed_at, max_steps=total, constant_steps=constant)
    return pilot_step, long_steps


def pack(tar_path: Path, folders: list[str], staging: Path) -> None:
    if folders:
        with tarfile.open(tar_path, "w") as tar:
            for folder in folders:
                tar.add(staging / folder, arcname=folder)


def logged_scalars(tensorboard_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The losses a run logged, without the sample images that make its TensorBoard files large."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tensorboard_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}


if __name__ == "__main__":
    main()
