"""Train a CycleGAN with Accelerate: one GPU, several (DDP), or the CPU.

    accelerate launch train_accelerate.py --dataset huggan/horse2zebra --output_dir runs/h2z \
        --push_to_hub --hub_model_id org/cyclegan-h2z

Defaults are the paper's recipe as the original release runs it; `--help` lists every option.
The pieces live in `cyclegan_hub/`: this file wires them together in the order of a run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, InitProcessGroupKwargs, broadcast_object_list, set_seed
from huggingface_hub import create_repo, upload_folder
from tqdm.auto import tqdm

from cyclegan_hub import CycleGAN
from cyclegan_hub.checkpoints import (
    RUN_FILE, TRAIN_CONFIG_FILE, CheckpointError, load_checkpoint, network_differences, read_state, resolve_resume, save_checkpoint, start_from_pretrained,
)
from cyclegan_hub.cli import card_values, flag_values
from cyclegan_hub.config import TrainConfig, parse_args
from cyclegan_hub.data import DatasetLayoutError, Preprocess, held_out_images, unpaired_dataset
from cyclegan_hub.ema import GeneratorEMA
from cyclegan_hub.images import pil_to_tensor, resize_square
from cyclegan_hub.samples import log_sample_grid, sample_grid
from cyclegan_hub.threads import cpu_name, cpu_threads_per_process
from cyclegan_hub.training import CycleGANStep, adam, identity_schedule, linear_decay, schedule

logger = get_logger(__name__, log_level="INFO")
SAMPLE_IMAGES = 4  # held-out images per direction in the sample grids


def run_seed(cfg: TrainConfig, resumed_state: dict | None) -> int:
    """--seed, else the seed of the run being resumed (its trainer state), else one drawn on rank 0 and shared."""
    if cfg.seed is not None:
        return cfg.seed
    if resumed_state is not None:
        return resumed_state["seed"]
    return broadcast_object_list([int(torch.randint(0, 2**31 - 1, ()).item())])[0]


def check_same_networks(cfg: TrainConfig, resume_path: Path, saved: dict) -> None:
    """Resuming goes on training the checkpoint's networks: flags that ask for other ones are a
    mistake to report, not a wish to drop without a word (the card would list them)."""
    asked = {"generator": cfg.generator_kwargs(), "discriminator": cfg.discriminator_kwargs()}
    differences = network_differences(asked, {network: saved.get(network, {}) for network in asked})
    if differences:
        raise CheckpointError(
            f"{resume_path} has {'; '.join(differences)}: resume with the flags it was trained with, or start a new --output_dir"
        )


def warn_of_changed_flags(cfg: TrainConfig, resume_path: Path, resumed_state: dict) -> None:
    """A resumed run goes on with the flags given now. Other training flags than the checkpoint's
    may be meant (a longer --max_steps) or forgotten (a --lambda_identity 0 left out), so they are named."""
    saved = resumed_state.get("flags")
    if saved is None:  # checkpoints from before the flags were saved with them
        return
    now = card_values(cfg)
    changed = [
        f"--{name} {saved.get(name, 'unset')} -> {now.get(name, 'unset')}"
        for name in sorted(saved.keys() | now.keys())
        if saved.get(name) != now.get(name)
    ]
    if changed:
        logger.warning(
            f"{resume_path} was trained with other flags; going on with those given now: {'; '.join(changed)}",
            main_process_only=True,
        )


def build_model(cfg: TrainConfig, resumed_config: dict | None) -> CycleGAN:
    """A fresh pair with discriminators, started from --init_from's weights if given; on resume,
    the architecture comes from the checkpoint's model config (`resumed_config`) and the weights
    from the checkpoint."""
    if resumed_config is not None:
        config = dict(resumed_config)
        config.setdefault("training_resolution", cfg.training_resolution())  # checkpoints from before the field
        return CycleGAN(**config, with_discriminators=True)
    model = CycleGAN(
        cfg.domain_a,
        cfg.domain_b,
        generator=cfg.generator_kwargs(),
        discriminator=cfg.discriminator_kwargs(),
        training_resolution=cfg.training_resolution(),
        with_discriminators=True,
    )
    if cfg.init_from:
        took_discriminators = start_from_pretrained(model, cfg.init_from)
        logger.info(
            f"started from {cfg.init_from}: its generators, {'its' if took_discriminators else 'fresh'} discriminators",
            main_process_only=True,
        )
    return model


def held_out_evaluation(held_out: tuple[list, list], cfg: TrainConfig):
    """FID/KID/checkerboard of both directions on the held-out images, at the training resolution;
    the real images go through Inception once, here."""
    from cyclegan_hub.evaluate import Evaluation  # loads scipy and the Inception net only when asked

    return Evaluation(*held_out, image_size=cfg.crop_size)


def save_model(model: CycleGAN, target: Path, cfg: TrainConfig, samples: tuple, run: dict) -> None:
    """Write the pair, its card, samples and run summary to `target`; push the folder if asked."""
    target.mkdir(parents=True, exist_ok=True)
    sample_grid(model.generator_ab, model.generator_ba, *samples).save(target / "samples.png")
    (target / RUN_FILE).write_text(json.dumps({"config": dataclasses.asdict(cfg), **run}, indent=2))
    card = dict(
        model_id=cfg.hub_model_id,
        dataset=cfg.dataset or f"{cfg.dataset_a} + {cfg.dataset_b}",
        train_sizes=run["train_sizes"],
        samples_image="samples.png",
        samples_source=(
            f"held out from training (the `{run['eval_split']}` split)"
            if run["eval_split"] != cfg.split
            else f"from the training split: the dataset has no `{cfg.eval_split}` split"
        ),
        metrics=run["metrics"],
        metrics_notes=f"Computed on the `{run['eval_split']}` split." if run["metrics"] else None,
        hyperparameters=card_values(cfg),
        training_summary=run["summary"],
    )
    model.save_pretrained(target, dtype=cfg.save_dtype, model_card_kwargs=card)
    if cfg.push_to_hub:  # the folder as saved (dtype, card, samples) in one commit
        repo_id = create_repo(cfg.hub_model_id, private=cfg.hub_private, exist_ok=True).repo_id
        upload_folder(repo_id=repo_id, folder_path=target, commit_message=f"cyclegan-hub: step {run['step']}")


def main(cfg: TrainConfig) -> Path:
    trackers = {"none": None, "all": "all"}.get(cfg.report_to, [cfg.report_to])
    accelerator = Accelerator(
        cpu=not torch.accelerator.is_available(),  # lets `--multi_gpu` run gloo DDP on a CPU-only machine
        log_with=trackers,
        project_dir=cfg.output_dir,
        # Rank 0 alone evaluates, samples and pushes while the others wait in the next all-reduce.
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=2))],
    )
    if accelerator.device.type == "cpu":
        torch.set_num_threads(cpu_threads_per_process(cfg.cpu_threads))
    elif accelerator.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one crop size for the whole run: time the convolution algorithms once
    output_dir = Path(cfg.output_dir)
    resume_path = resolve_resume(output_dir, cfg.resume_from_checkpoint)
    resumed_state = None if resume_path is None else read_state(resume_path)  # read once: seed and networks
    resumed_config = None if resumed_state is None else resumed_state["model_config"]
    if resumed_config is not None:
        check_same_networks(cfg, resume_path, resumed_config)
    cfg = dataclasses.replace(cfg, seed=run_seed(cfg, resumed_state))
    if resumed_state is not None:
        warn_of_changed_flags(cfg, resume_path, resumed_state)
    # One shuffle for all processes (each takes its own slice); model init may differ, DDP broadcasts rank 0's.
    accelerator.dataloader_config = DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed)
    set_seed(cfg.seed, device_specific=True)

    # Data: decoding and augmentation (seeded per sample) run in DataLoader workers.
    preprocess = Preprocess(cfg.load_size, cfg.crop_size, cfg.preprocess, flip=not cfg.no_flip)
    dataset = unpaired_dataset(cfg.data_options(), preprocess, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=not cfg.streaming,
        num_workers=min(cfg.num_workers, getattr(dataset, "max_workers", cfg.num_workers)),
        drop_last=True,  # instance norm and the pool want full batches
        # Its own generator: each new iterator draws a seed, which must not come from the global
        # stream that DiffAugment draws from, or a resumed run would see other augmentations.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    held_out_limit = cfg.eval_max_images if cfg.eval_steps else SAMPLE_IMAGES
    *held_out, eval_split = held_out_images(cfg.data_options(), cfg.eval_split, held_out_limit)
    count = min(SAMPLE_IMAGES, *map(len, held_out))  # the grid's rows must match
    samples = tuple(torch.stack([pil_to_tensor(i) for i in resize_square(images[:count], cfg.crop_size)]) for images in held_out)

    # Networks and optimizers: one Adam for G and F, one for D_X and D_Y (section 4).
    model = build_model(cfg, resumed_config)
    optimizer_g = adam([model.generator_ab, model.generator_ba], cfg.lr, (cfg.beta1, 0.999))
    lr_d = cfg.lr if cfg.lr_d is None else cfg.lr_d
    optimizer_d = adam([model.discriminator_a, model.discriminator_b], lr_d, (cfg.beta1, 0.999))
    nets = [model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b]
    if cfg.compile:
        for net in nets:
            net.compile()  # in place, so the weights keep their names: checkpoints resume with or without --compile
    *nets, optimizer_g, optimizer_d, loader = accelerator.prepare(*nets, optimizer_g, optimizer_d, loader)
    train_step = CycleGANStep(*nets, optimizer_g, optimizer_d, **cfg.step_kwargs(), accelerator=accelerator)
    pools = {"pool_a": train_step.pool_a, "pool_b": train_step.pool_b}
    # What the run samples, evaluates and saves: the generators' moving average if asked, else the generators.
    ema = GeneratorEMA(model, cfg.ema_decay) if cfg.ema_decay else None
    published = ema.model if ema else model

    if not cfg.streaming and len(loader) == 0:  # else the loop below would never end
        raise DatasetLayoutError(f"{len(dataset)} images give no full batch of {cfg.batch_size} per process")
    total_steps, constant_steps = schedule(cfg, None if cfg.streaming else len(loader))
    step, epoch, seconds_before = 0, 0, 0.0
    if resume_path is not None:
        state = load_checkpoint(accelerator, resume_path, pools, ema)
        step, epoch, seconds_before = state["step"], state["epoch"], state["seconds"]
        train_step.step = step
        logger.info(f"resumed from {resume_path} at step {step}, epoch {epoch}", main_process_only=True)

    if accelerator.is_main_process:
        (output_dir / "samples").mkdir(parents=True, exist_ok=True)
        (output_dir / TRAIN_CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    accelerator.init_trackers("cyclegan", config=flag_values(cfg))
    progress = tqdm(total=total_steps, initial=step, disable=not accelerator.is_local_main_process, unit="step")
    images_per_step = 2 * cfg.batch_size * accelerator.num_processes  # one A and one B per sample
    skipped_images, started, start_step, metrics, evaluation = 0, time.time(), step, None, None

    while step < total_steps:
        dataset.set_epoch(epoch)
        batches = loader
        if not cfg.streaming:
            loader.set_epoch(epoch)
            done_in_epoch = step - epoch * len(loader)
            if done_in_epoch > 0:  # resumed mid-epoch: skip what this epoch already trained on
                batches = accelerator.skip_first_batches(loader, done_in_epoch)
        step_at_epoch_start = step
        for batch in batches:
            # 1) the learning rate: constant, then linear decay to 0; the identity term's share (1 unless scheduled)
            decay = linear_decay(step, constant_steps, total_steps - constant_steps)
            for optimizer, initial_lr in ((optimizer_g, cfg.lr), (optimizer_d, lr_d)):
                for group in optimizer.param_groups:
                    group["lr"] = initial_lr * decay
            train_step.identity_scale = identity_schedule(step, cfg.identity_start_step, cfg.identity_decay_steps)
            # 2) one CycleGAN update: G and F against frozen D_X, D_Y, then D_X, D_Y on pooled fakes
            losses = train_step(batch["a"], batch["b"])
            if ema:
                ema.update(model)
            skipped_images += int(batch["skipped"].sum())
            step += 1
            progress.update(1)

            # 3) log, sample, evaluate, checkpoint, push
            if step % cfg.logging_steps == 0 or step == total_steps:
                rate = (step - start_step) * images_per_step / (time.time() - started)
                accelerator.log(
                    {**losses, "lr": cfg.lr * decay, "lr_d": lr_d * decay, "identity_scale": train_step.identity_scale,
                     "epoch": epoch, "images_per_s": rate,
                     "skipped_images": skipped_images},
                    step=step,
                )
                progress.set_postfix(loss_g=f"{losses['loss_g']:.3f}", img_s=f"{rate:.1f}")
            if step % cfg.sample_steps == 0 and accelerator.is_main_process:
                grid = sample_grid(published.generator_ab, published.generator_ba, *samples)
                grid.save(output_dir / "samples" / f"step-{step:07d}.png")
                log_sample_grid(accelerator, grid, step)
            if cfg.eval_steps and (step % cfg.eval_steps == 0 or step == total_steps) and accelerator.is_main_process:
                evaluation = evaluation or held_out_evaluation(held_out, cfg)
                metrics = evaluation(published)
                accelerator.log({f"eval/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=step)
            if step % cfg.checkpointing_steps == 0 or step == total_steps:
                seconds = seconds_before + time.time() - started
                state = {"step": step, "epoch": epoch, "seed": cfg.seed, "seconds": seconds, "model_config": model.config,
                         "flags": card_values(cfg)}
                save_checkpoint(accelerator, output_dir, state, pools, cfg.checkpoints_total_limit, ema)
            if accelerator.is_main_process and (step == total_steps or cfg.push_steps and step % cfg.push_steps == 0):
                run = run_summary(cfg, accelerator, dataset, step, seconds_before + time.time() - started)
                save_model(published, output_dir / "model", cfg, samples, {**run, "metrics": metrics, "eval_split": eval_split})
            if step >= total_steps:
                break
        if cfg.streaming and step == step_at_epoch_start:  # else the loop would never end
            raise DatasetLayoutError(f"the stream gave no full batch of {cfg.batch_size} per process")
        epoch += 1

    progress.close()
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if skipped_images:
        logger.warning(f"{skipped_images} corrupt images were skipped", main_process_only=True)
    return output_dir / "model"


def run_summary(cfg: TrainConfig, accelerator: Accelerator, dataset, step: int, seconds: float) -> dict:
    """What the model card says about the run: data sizes, steps, hardware, time."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    else:
        threads = torch.get_num_threads()
        device = f"{cpu_name()} ({threads} thread{'s' * (threads != 1)})"
    sized = hasattr(dataset, "__len__")
    epochs = f"{step * cfg.batch_size * accelerator.num_processes / len(dataset):.1f} epochs" if sized else "streamed"
    return dict(
        step=step,
        seconds=seconds,
        train_sizes=f"{len(dataset.images_a)} {cfg.domain_a} / {len(dataset.images_b)} {cfg.domain_b} images" if sized else None,
        summary=(
            f"{step} steps ({epochs}) on {accelerator.num_processes} x {device}, mixed precision "
            f"{accelerator.mixed_precision}, {seconds / 3600:.2f} h, "
            f"{step * cfg.batch_size * accelerator.num_processes} images per domain seen."
        ),
    )


if __name__ == "__main__":
    # The run's own notes (where it started or resumed from) reach the console; the libraries' stay at warnings.
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.WARNING)
    config = parse_args()
    try:
        main(config)
    except (DatasetLayoutError, CheckpointError) as error:  # a user's mistake: one clear line, no traceback
        raise SystemExit(f"train_accelerate.py: error: {error}") from None
