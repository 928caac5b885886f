"""Make the embedded demo model from a training checkpoint: weights, held-out metrics, samples, card.

    python scripts/make_demo_model.py --checkpoint RUN/checkpoint-16000 --data ../shared/data/monet2photo \
        --output demo_model --reference "previous demo model (128 px, paper recipe)=OLD_FOLDER"

On the held-out test split (testA: Monet paintings, testB: photos, never trained on) it measures
FID / KID in both directions with the checkerboard index, for this model, the untranslated
images and any --reference model; the cycle reconstruction error; and the median CPU latency of
the demo's path (`--skip_latency` while other work loads the machine). It writes the pair in
float16 (with the discriminators when the checkpoint has them, so training can go on from it),
`metrics.json`, `training_run.json`, `samples.png` and the card (README.md). A slim checkpoint
(trainer state and generators, as `scripts/gpu_recipe_run.py` brings back) is enough.
The domains are stored photo first, so the demo opens on photo -> Monet.

`--monet_to_photo_checkpoint` takes that direction's generator from another run with the same
networks: the two directions are used one at a time, and the run that paints photos best need not
be the one that returns paintings to photos best. The card names both runs. Either flag also takes
a model this script made (e.g. `demo_model`), whose training_run.json says which runs its generators
came from: one direction of the embedded pair can be replaced without the other's run checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan_hub import CycleGAN
from cyclegan_hub.checkpoints import NETWORK_FILES, RUN_FILE, STATE_FILE, TRAIN_CONFIG_FILE, model_from_checkpoint, read_state
from cyclegan_hub.cli import card_values
from cyclegan_hub.config import TrainConfig
from cyclegan_hub.data import DataOptions, MissingSplitError, held_out_images
from cyclegan_hub.evaluate import Evaluation
from cyclegan_hub.images import pil_to_tensor
from cyclegan_hub.model import DISCRIMINATORS_FILE
from cyclegan_hub.samples import sample_grid
from cyclegan_hub.threads import cpu_name
from cyclegan_hub.training import linear_decay, schedule

FIRST_DOMAIN = "photo"
RUN_KEYS = ("config", "step", "seconds")  # what this script records of a run (train_accelerate.py adds its own metrics)


def photo_first(model: CycleGAN) -> CycleGAN:
    """The same pair with the domains in the order the demo shows them (A and B are only names)."""
    return model if model.domain_a == FIRST_DOMAIN else model.swapped()


def config_differences(config: dict, other: dict, prefix: str = "") -> list[str]:
    """The dotted names of the fields in which two models' config.json differ, e.g. "generator.ngf"."""
    names = []
    for key in sorted(config.keys() | other.keys()):
        mine, theirs = config.get(key), other.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            names += config_differences(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            names.append(f"{prefix}{key}")
    return names


def joined(photo_to_monet: CycleGAN, monet_to_photo: CycleGAN) -> CycleGAN:
    """The first pair with the second's Monet -> photo generator, and the discriminator that judged
    its photos (both pairs photo first). One config.json describes both generators (their networks
    and the training resolution that `scale="training"` uses), so the two must agree on it."""
    if differing := config_differences(photo_to_monet.config, monet_to_photo.config):
        raise SystemExit(f"the two checkpoints' configs differ in {', '.join(differing)}: one config.json cannot hold both")
    photo_to_monet.generator_ba.load_state_dict(monet_to_photo.generator_ba.state_dict())
    if photo_to_monet.discriminator_a is not None:
        photo_to_monet.discriminator_a.load_state_dict(monet_to_photo.discriminator_a.state_dict())
    return photo_to_monet


def run_record(checkpoint: Path) -> dict:
    """A checkpoint's run as training_run.json records it: its flags, step and seconds trained."""
    state = read_state(checkpoint)
    config = json.loads((checkpoint.parent / TRAIN_CONFIG_FILE).read_text())
    return {"config": config, "step": state["step"], "seconds": state["seconds"]}


def pair_source(path: Path, with_discriminators: bool) -> tuple[CycleGAN, dict]:
    """A pair, photo first, and the record of the run(s) that trained it: a checkpoint-N folder, or a
    model this script made (its training_run.json, with a "monet_to_photo" entry where that generator
    came from a second run)."""
    made_here = path / RUN_FILE
    if not made_here.is_file():
        return photo_first(model_from_checkpoint(path, with_discriminators=with_discriminators)), run_record(path)
    record = json.loads(made_here.read_text())
    pair = photo_first(CycleGAN.from_pretrained(path, load_discriminators=with_discriminators))
    return pair, {key: record[key] for key in (*RUN_KEYS, "monet_to_photo") if key in record}


def monet_to_photo_run(run: dict) -> dict:
    """The record of the run that trained a pair's Monet -> photo generator."""
    return run.get("monet_to_photo", {key: run[key] for key in RUN_KEYS})


def has_discriminators(path: Path) -> bool:
    """Whether a checkpoint folder, or a saved model, holds the discriminators too."""
    return (path / NETWORK_FILES["discriminator_a"]).is_file() or (path / DISCRIMINATORS_FILE).is_file()


def flags_changed(run: dict, other: dict) -> str:
    """The card's flags of `other` that differ from `run`'s, as typed: "`--lambda_cyc 5.0`, `--compile`,
    without `--diffaugment`, ...", or "" when the two runs share every flag."""
    ours, theirs = card_values(TrainConfig(**run["config"])), card_values(TrainConfig(**other["config"]))

    def as_typed(name: str) -> str:
        value = theirs.get(name)
        if value is None or value is False:  # unset, or a switch left off
            return f"without `--{name}`"
        return f"`--{name}`" if value is True else f"`--{name} {value}`"

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}

    def differs(name: str) -> bool:
        switch = fields[name].metadata.get("needs")
        if switch and not (ours.get(switch) and theirs.get(switch)):  # the switch is named; its settings where not default
            return theirs.get(name, fields[name].default) != fields[name].default
        return ours.get(name) != theirs.get(name)

    return ", ".join(map(as_typed, sorted(filter(differs, ours.keys() | theirs.keys()))))


def second_run_sentence(run: dict, other: dict) -> str:
    """The card's sentence on the run the Monet -> photo generator comes from."""
    differences = flags_changed(run, other)
    return (f"The Monet → photo generator comes from step {other['step']:,} of a second run ({other['seconds'] / 3600:.1f} h) "
            + (f"whose flags differ in {differences}" if differences else "with the same flags")
            + f": {schedule_so_far(TrainConfig(**other['config']), other['step'])}")


def cycle_error(model: CycleGAN, images, there: str, back: str) -> float:
    """Mean absolute difference, in 8-bit levels, between images and their round trip."""
    round_trip = model.translate(model.translate(images, there), back)
    return float(np.mean([np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean() for a, b in zip(images, round_trip)]))


def median_latency(model: CycleGAN, side: int, runs: int = 5, **options) -> float:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8))
    model.translate(image, "a2b", **options)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        model.translate(image, "a2b", **options)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def schedule_so_far(config: TrainConfig, step: int) -> str:
    """The learning rate this checkpoint trained with, in words: the run may have stopped mid-schedule."""
    if config.max_steps is None:  # a schedule in epochs, whose steps depend on the data
        return (f"a schedule in epochs: the learning rate {config.lr:g} for {config.num_epochs}, then decayed linearly "
                f"to 0 over {config.decay_epochs} more.")
    total, constant = schedule(config, None)
    if step >= total:
        return f"the learning rate {config.lr:g} for {constant:,} steps, then decayed linearly to 0."
    if step <= constant:
        return (f"all at the constant learning rate {config.lr:g}: the first {step:,} steps of a {total:,}-step schedule, "
                f"before its linear decay (from step {constant:,}) began.")
    reached = config.lr * linear_decay(step, constant, total - constant)
    return f"the learning rate {config.lr:g} for {constant:,} steps, then decayed linearly, to {reached:.2g} at step {step:,} of {total:,}."


def untranslated(metrics: dict) -> dict:
    """KID and FID are symmetric: untranslated A against real B also scores untranslated B against
    real A; the detail ratio of B against A is the inverse of A's against B."""
    rows = {"num_a": metrics["num_a"], "num_b": metrics["num_b"]}
    details = {"a2b": metrics["detail_baseline"], "b2a": 1 / metrics["detail_baseline"]}
    for key in ("a2b", "b2a"):
        rows |= {f"fid_{key}": metrics["fid_baseline"], f"kid_{key}": metrics["kid_baseline"],
                 f"kid_{key}_std": metrics["kid_baseline_std"], f"checkerboard_{key}": 1.0, f"detail_{key}": details[key]}
    return rows


def known_limits(metrics: dict, untranslated: dict, looked_at: str | None, from_two_runs: bool) -> str:
    """The card's "Known limits" paragraph: what was seen on the held-out samples, each direction that
    does not score below its untranslated inputs, and a pair whose cycle does not close; "" if none."""
    sentences = [looked_at] if looked_at else []
    for key, direction, inputs in (("a2b", "Photo → Monet", "photos"), ("b2a", "Monet → photo", "paintings")):
        if metrics[f"kid_{key}"] >= untranslated[f"kid_{key}"]:
            sentences.append(f"{direction} (KID {metrics[f'kid_{key}']:.3f}) is not below the untranslated {inputs} "
                             f"({untranslated[f'kid_{key}']:.3f}).")
    if from_two_runs:
        sentences.append("The two generators come from different runs and never trained together, so a round trip "
                         "through both (the cycle error below) does not return its input as a pair trained together does.")
    return "Known limits: " + " ".join(sentences) if sentences else ""


def labelled_model(text: str) -> tuple[str, Path]:
    """--reference's LABEL=FOLDER, checked when parsed rather than after the evaluation."""
    label, _, folder = text.partition("=")
    if not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {text!r}")
    if not (Path(folder) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"{folder} has no config.json: not a saved model")
    return label, Path(folder)


def checkpoint_or_made_model(text: str) -> Path:
    """--checkpoint and --monet_to_photo_checkpoint, checked when parsed: a training run's checkpoint-N
    folder, or a model this script made."""
    if not any((Path(text) / name).is_file() for name in (STATE_FILE, RUN_FILE)):
        raise argparse.ArgumentTypeError(f"{text} is neither a checkpoint-N folder of train_accelerate.py (no {STATE_FILE}) "
                                         f"nor a model this script made (no {RUN_FILE})")
    return Path(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=checkpoint_or_made_model,
                        help="a checkpoint-N folder of train_accelerate.py, or a model this script made (to rebuild it, "
                        "e.g. with another Monet -> photo generator)")
    parser.add_argument("--monet_to_photo_checkpoint", type=checkpoint_or_made_model,
                        help="take the Monet -> photo generator (and the discriminator that judged it) from this "
                        "checkpoint of another run with the same networks, or from a model this script made "
                        "(default: --checkpoint's)")
    parser.add_argument("--data", required=True, help="folder with testA/ (Monet) and testB/ (photos)")
    parser.add_argument("--output", default="demo_model", type=Path)
    parser.add_argument("--hub_model_id", default="cyclegan-hub/cyclegan-photo-monet")
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=FOLDER", type=labelled_model,
                        help="another model to score on the same images, shown as a baseline row")
    parser.add_argument("--recipe_doc", default="docs/recipe.md", help="where the card says the recipe is explained")
    parser.add_argument("--machine", default=f"{cpu_name()}, bf16 autocast",
                        help="what the run trained on and in which precision, for the card (default: this machine's CPU)")
    parser.add_argument("--train_sizes", help="what it trained on, for the card (default: the counts in --data's "
                        "trainA/ and trainB/)")
    parser.add_argument("--limits", help="what the held-out samples show that the figures do not, opening the card's "
                        "\"Known limits\" (e.g. \"photo → Monet repaints the scene's own colours\")")
    parser.add_argument("--skip_latency", action="store_true", help="leave the CPU latency out (the machine is busy)")
    args = parser.parse_args()

    sources = [args.checkpoint] + ([args.monet_to_photo_checkpoint] if args.monet_to_photo_checkpoint else [])
    lacking = [str(source) for source in sources if not has_discriminators(source)]
    with_discriminators = not lacking
    if lacking:
        print(f"{', '.join(lacking)}: no discriminators; the model is saved without them")
    model, run = pair_source(args.checkpoint, with_discriminators)
    config = run["config"]
    if args.monet_to_photo_checkpoint:
        returner, returner_run = pair_source(args.monet_to_photo_checkpoint, with_discriminators)
        model = joined(model, returner)
        run["monet_to_photo"] = monet_to_photo_run(returner_run)
    try:
        monets, photos, _ = held_out_images(DataOptions(dataset=args.data), "test", fallback=False)
    except MissingSplitError:
        raise SystemExit(f"{args.data} has no testA/ testB/ held-out images") from None

    evaluation = Evaluation(photos, monets)
    metrics = evaluation(model, baseline=True)
    baselines = {"untranslated input": untranslated(metrics)}
    for label, folder in args.reference:
        baselines[label] = evaluation(photo_first(CycleGAN.from_pretrained(folder)))
    results = {
        "this model": metrics,
        **baselines,
        "cycle_error_photo": cycle_error(model, photos, "a2b", "b2a"),
        "cycle_error_monet": cycle_error(model, monets, "b2a", "a2b"),
        "torch_threads": torch.get_num_threads(),
    }
    if not args.skip_latency:
        results["latency_s"] = {f"{side} px, scale {scale}": median_latency(model, side, scale=scale)
                                for side, scale in ((256, "input"), (1024, "training"), (1024, "input"))}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "metrics.json").write_text(json.dumps(results, indent=2))
    (args.output / RUN_FILE).write_text(json.dumps(run, indent=2))

    grid_images = [torch.stack([pil_to_tensor(image) for image in images[:4]]) for images in (photos, monets)]
    sample_grid(model.generator_ab, model.generator_ba, *grid_images).save(args.output / "samples.png")

    hours = run["seconds"] / 3600
    base = baselines["untranslated input"]
    train_sizes = args.train_sizes or (
        f"{len(list(Path(args.data, 'trainA').iterdir()))} Monet paintings, {len(list(Path(args.data, 'trainB').iterdir()))} photos"
    )
    other = run.get("monet_to_photo")
    second_run = f" {second_run_sentence(run, other)}" if other else ""
    from_two_runs = "; its Monet → photo generator comes from a second run (see Training)" if other else ""
    summary = (
        f"Trained here on the monet2photo training split ({train_sizes}) for {run['step']:,} steps on {config['crop_size']} px crops "
        f"of images resized to {config['load_size']} px, on {args.machine} ({hours:.1f} h){from_two_runs}. On {metrics['num_a']} held-out photos, photo → Monet KID is "
        f"{metrics['kid_a2b']:.3f} (untranslated photos: {base['kid_a2b']:.3f}; lower is closer to Monet's paintings), "
        f"Monet → photo KID {metrics['kid_b2a']:.3f}, checkerboard index {metrics['checkerboard_a2b']:.2f} / "
        f"{metrics['checkerboard_b2a']:.2f} (1 = no grid), detail ratio {metrics['detail_a2b']:.2f} / "
        f"{metrics['detail_b2a']:.2f} (1 = as much fine texture as the real images)."
    )
    limits = known_limits(metrics, base, args.limits, from_two_runs=bool(other))
    notes = (
        f"Held out from training: the official monet2photo test split, {metrics['num_a']} photos and "
        f"{metrics['num_b']} Monet paintings, at 256x256. With about a hundred paintings FID carries a large "
        "sample-size bias, so compare rows by KID.\n\n"
        + (f"{limits}\n\n" if limits else "")
        + f"Cycle reconstruction error (mean absolute difference, 0-255 levels): photo → Monet → photo "
        f"{results['cycle_error_photo']:.1f}, Monet → photo → Monet {results['cycle_error_monet']:.1f}.\n\n"
        + (f"Latency on {cpu_name()} (torch {torch.__version__}, {results['torch_threads']} threads, fp32, eager), "
           "median: " + ", ".join(f"{k}: {v:.2f} s" for k, v in results["latency_s"].items()) + ". " if "latency_s" in results else "")
        + "`scale=\"input\"` (the default of `translate` and the demo) translates at the image's own size; "
        "`scale=\"training\"` at the training resolution, upscaling the result.\n\n"
        f"How the recipe was chosen, with the pilot runs it was measured against: `{args.recipe_doc}` in the "
        "cyclegan-hub repository."
    )
    hyperparameters = card_values(TrainConfig(**config))
    model.save_pretrained(
        args.output,
        dtype="float16",
        model_card_kwargs=dict(
            model_id=args.hub_model_id,
            summary=summary,
            dataset="monet2photo (train split here; official test split held out)",
            train_sizes=None,
            samples_image="samples.png",
            samples_source="held out from training (the official test split)",
            metrics=metrics,
            baselines=baselines,
            metrics_notes=notes,
            hyperparameters=hyperparameters,
            training_summary=(
                f"{run['step']:,} steps of batch 1 ({hours:.1f} h wall-clock on {args.machine}"
                f"{', `torch.compile`' if config.get('compile') else ''}); {schedule_so_far(TrainConfig(**config), run['step'])}"
                + (f" The run's domain A was {config['domain_a']} (the table's flags); the saved pair lists "
                   f"{FIRST_DOMAIN} first, so its `a2b` is {FIRST_DOMAIN} → {config['domain_a']}." if config["domain_a"] != FIRST_DOMAIN else "")
                + second_run
            ),
        ),
    )
    print(summary)
    for name in ("this model", *baselines):
        row = results[name]
        print(f"{name:>40}: " + " | ".join(
            f"{label} KID {row[f'kid_{key}']:.4f} FID {row[f'fid_{key}']:.1f} cb {row.get(f'checkerboard_{key}', 1):.2f} "
            f"detail {row[f'detail_{key}']:.2f}" for key, label in (("a2b", "photo->monet"), ("b2a", "monet->photo"))))


if __name__ == "__main__":
    main()
