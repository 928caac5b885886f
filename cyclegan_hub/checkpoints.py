"""Resumable training checkpoints that survive a kill at any moment.

A checkpoint is `output_dir/checkpoint-<step>/`: Accelerate's state (weights as safetensors,
optimizers, RNG states of every process), each process's image pools as safetensors, the
generators' moving average when the run keeps one (`ema.safetensors`), and
`trainer_state.json` (step, epoch, seed, seconds, the model's config, the run's training flags).
It is written under a temporary name and renamed when complete, so the newest `checkpoint-*`
folder is always whole. Nothing is unpickled on load
beyond what `torch.load(weights_only=True)` allows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from safetensors.torch import load_file, save_file

from .image_pool import ImagePool
from .model import DISCRIMINATORS_FILE, CycleGAN

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"
TRAIN_CONFIG_FILE = "train_config.json"  # every flag of the run's latest start, beside its checkpoints
# The run summary saved beside a finished model (its flags, step and seconds), read back by scripts/make_demo_model.py.
RUN_FILE = "training_run.json"
EMA_FILE = "ema.safetensors"
# Accelerate numbers the prepared models' files in the order train_accelerate.py prepares them: G, F, D_X, D_Y.
NETWORK_FILES = {
    "generator_ab": "model.safetensors",
    "generator_ba": "model_1.safetensors",
    "discriminator_a": "model_2.safetensors",
    "discriminator_b": "model_3.safetensors",
}


class CheckpointError(ValueError):
    """--resume_from_checkpoint or --init_from names nothing a run can start from."""


def network_differences(asked: dict, saved: dict) -> list[str]:
    """Where saved networks' settings ({"generator": {...}, ...}) differ from the ones asked for;
    settings the saved config lacks (older models) are not compared."""
    return [
        f"{network} {key} {value!r} where the flags ask for {asked[network][key]!r}"
        for network, settings in saved.items()
        for key, value in settings.items()
        if key in asked[network] and asked[network][key] != value
    ]


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [path for _, path in sorted(found)]


def resolve_resume(output_dir: str | Path, resume_from_checkpoint: str | None) -> Path | None:
    """'latest' -> newest checkpoint (None if there is none yet); a path -> that folder, checked."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(output_dir)
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not (path / STATE_FILE).is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint folder (no {STATE_FILE} in it)")
    return path


def save_checkpoint(accelerator, output_dir, state: dict, pools: dict[str, ImagePool], total_limit=None, ema=None) -> Path:
    """Write checkpoint-<state["step"]> atomically; every process must call this. Returns the final path.

    `ema`: the run's `GeneratorEMA`, if any (the same on every process, so rank 0 writes it)."""
    step = state["step"]
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    temporary = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process and temporary.exists():
        shutil.rmtree(temporary)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    # Not accelerator.register_for_checkpointing: Accelerate unpickles those with weights_only=False.
    tensors = {f"{name}.{i}": image.contiguous() for name, pool in pools.items() for i, image in enumerate(pool.state_dict()["images"])}
    save_file(tensors, str(temporary / f"image_pools_{accelerator.process_index}.safetensors"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema is not None:
            save_file({key: value.contiguous() for key, value in ema.state_dict().items()}, str(temporary / EMA_FILE))
        (temporary / STATE_FILE).write_text(json.dumps(state))
        if final.exists():
            shutil.rmtree(final)
        temporary.rename(final)
        if total_limit:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def read_state(path: Path) -> dict:
    """The trainer state saved with a checkpoint (step, epoch, model config)."""
    return json.loads((Path(path) / STATE_FILE).read_text())


def load_checkpoint(accelerator, path: Path, pools: dict[str, ImagePool], ema=None) -> dict:
    """Restore Accelerate's state, this process's pools and the moving average; return the trainer state."""
    accelerator.load_state(str(path))
    if ema is not None:
        if not (path / EMA_FILE).is_file():
            raise CheckpointError(f"{path} holds no moving average ({EMA_FILE}): resume it without --ema_decay")
        ema.load_state_dict(load_file(str(path / EMA_FILE), device=str(accelerator.device)))
    pool_file = path / f"image_pools_{accelerator.process_index}.safetensors"
    if pool_file.exists():  # a run resumed on more processes than it was saved with starts those pools empty
        tensors = load_file(str(pool_file))
        for name, pool in pools.items():
            count = sum(1 for key in tensors if key.startswith(f"{name}."))
            pool.load_state_dict({"size": pool.size, "images": [tensors[f"{name}.{i}"] for i in range(count)]})
    return read_state(path)


def model_from_checkpoint(path: str | Path, *, averaged: bool = True, with_discriminators: bool = False) -> CycleGAN:
    """The pair as it stood at a checkpoint, in eval mode.

    Args:
        path: a `checkpoint-<step>` folder.
        averaged: take the generators' moving average when the run kept one (what the run
            would have saved as its model); False takes the trained weights themselves.
        with_discriminators: also load D_X and D_Y (to continue training from the model).
    """
    path = Path(path)
    model = CycleGAN(**read_state(path)["model_config"], with_discriminators=with_discriminators)
    average = load_file(str(path / EMA_FILE)) if averaged and (path / EMA_FILE).is_file() else None
    for name, filename in NETWORK_FILES.items():
        if name.startswith("discriminator") and not with_discriminators:
            continue
        if average is not None and name.startswith("generator"):
            state = {key.removeprefix(f"{name}."): value for key, value in average.items() if key.startswith(f"{name}.")}
        else:
            # Runs before in-place compiling wrapped the networks, which prefixed every name.
            state = {key.removeprefix("_orig_mod."): value for key, value in load_file(str(path / filename)).items()}
        getattr(model, name).load_state_dict(state)
    return model.eval()


def load_model(name: str | Path, *, averaged: bool = True, map_location: str = "cpu") -> CycleGAN:
    """A saved model (local folder or Hub id) or a training run's checkpoint folder, in eval mode."""
    if os.path.isfile(os.path.join(name, STATE_FILE)):
        return model_from_checkpoint(name, averaged=averaged).to(map_location)
    return CycleGAN.from_pretrained(name, map_location=map_location).eval()


def start_from_pretrained(model: CycleGAN, source: str | Path) -> bool:
    """Fine-tuning: copy a saved model's weights (a folder or Hub id, as `from_pretrained` takes)
    into `model`, a fresh pair about to train.

    Domains are matched by name, in either order: a photo -> monet model starts a run whose
    domain A is monet with its monet -> photo generator as G. The generators must have the
    flags' settings. The discriminators are taken too when the model was saved with them (a
    training run's model is) with the flags' settings; else they start fresh. Returns whether
    they were taken."""
    try:
        saved = CycleGAN.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--init_from: {error}") from None
    differences = network_differences({"generator": model.generator_config}, {"generator": saved.generator_config})
    if differences:
        raise CheckpointError(f"--init_from {source} has {'; '.join(differences)}: train with the flags it was trained with")
    names = (saved.domain_a, saved.domain_b)
    if set(names) != {model.domain_a, model.domain_b}:
        raise CheckpointError(
            f"--init_from {source} translates {names[0]} <-> {names[1]}: name the run's domains the same "
            f"(--domain_a {names[0]} --domain_b {names[1]}, or the other way round)"
        )
    same_discriminators = not network_differences({"discriminator": model.discriminator_config}, {"discriminator": saved.discriminator_config})
    took_discriminators = False
    if same_discriminators and model.discriminator_a is not None:
        saved.add_discriminators()
        try:
            saved.load_weights_file(str(source), DISCRIMINATORS_FILE)
            took_discriminators = True
        except (FileNotFoundError, EntryNotFoundError, LocalEntryNotFoundError):
            pass  # a model saved without them (e.g. pushed for inference): they start fresh
    if names != (model.domain_a, model.domain_b):
        saved = saved.swapped()
    for name in ("generator_ab", "generator_ba", *(("discriminator_a", "discriminator_b") if took_discriminators else ())):
        getattr(model, name).load_state_dict(getattr(saved, name).state_dict())
    return took_discriminators
