"""Train a CycleGAN with Accelerate: one GPU, several (DDP), or the CPU.

    accelerate launch train_accelerate.py --dataset huggan/horse2zebra --output_dir runs/h2z \
        --push_to_hub --hub_model_id org/cyclegan-h2z

Defaults are the paper's recipe; `--help` lists every option. The pieces live in `cyclegan_hub/`:
this file wires them together in the order of a training run.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, broadcast_object_list, set_seed
from huggingface_hub import create_repo, upload_folder
from tqdm.auto import tqdm

from cyclegan_hub import CycleGAN
from cyclegan_hub.checkpoints import CheckpointError, load_checkpoint, read_state, resolve_resume, save_checkpoint
from cyclegan_hub.config import TrainConfig, parse_args
from cyclegan_hub.data import DatasetLayoutError, Preprocess, held_out_images, unpaired_dataset
from cyclegan_hub.images import pil_to_tensor
from cyclegan_hub.samples import log_sample_grid, sample_grid
from cyclegan_hub.training import CycleGANStep, linear_decay

logger = get_logger(__name__)


def shared_seed(accelerator: Accelerator, seed: int | None) -> int:
    """The run's seed, drawn on rank 0 when not given, so every process agrees on the data order."""
    if seed is None:
        seed = [int(torch.randint(0, 2**31 - 1, ()).item())]
        seed = broadcast_object_list(seed)[0]
    return seed


def build_model(cfg: TrainConfig, resume_path: Path | None) -> CycleGAN:
    """A fresh pair with discriminators; on resume, the architecture comes from the checkpoint."""
    if resume_path is not None:
        return CycleGAN(**read_state(resume_path)["model_config"], with_discriminators=True)
    return CycleGAN(
        cfg.domain_a,
        cfg.domain_b,
        generator=cfg.generator_kwargs(),
        discriminator=cfg.discriminator_kwargs(),
        with_discriminators=True,
    )


def fixed_sample_batch(images, count: int, size: int) -> torch.Tensor:
    """The first `count` held-out images, resized to the training size: (count, 3, size, size)."""
    resized = [image.resize((size, size)) for image in images[:count]]
    return torch.stack([pil_to_tensor(image) for image in resized])


def adam(modules, cfg: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def schedule(cfg: TrainConfig, steps_per_epoch: int | None) -> tuple[int, int]:
    """(total steps, steps at the initial lr): epochs constant then epochs of decay, or --max_steps split alike."""
    if cfg.max_steps is not None:
        return cfg.max_steps, round(cfg.max_steps * cfg.num_epochs / max(1, cfg.num_epochs + cfg.decay_epochs))
    return (cfg.num_epochs + cfg.decay_epochs) * steps_per_epoch, cfg.num_epochs * steps_per_epoch


def main(cfg: TrainConfig) -> Path:
    trackers = {"none": None, "all": "all"}.get(cfg.report_to, [cfg.report_to])
    accelerator = Accelerator(
        cpu=not torch.accelerator.is_available(),  # lets `--multi_gpu` run gloo DDP on a CPU-only machine
        log_with=trackers,
        project_dir=cfg.output_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    cfg = dataclasses.replace(cfg, seed=shared_seed(accelerator, cfg.seed))
    set_seed(cfg.seed, device_specific=True)  # different augmentations per process; DDP syncs the weights
    output_dir = Path(cfg.output_dir)
    resume_path = resolve_resume(output_dir, cfg.resume_from_checkpoint)

    # Data: decoding and augmentation run in DataLoader workers.
    preprocess = Preprocess(cfg.load_size, cfg.crop_size, cfg.preprocess, flip=not cfg.no_flip)
    dataset = unpaired_dataset(cfg.data_options(), preprocess, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=not cfg.streaming,
        num_workers=cfg.num_workers,
        drop_last=True,  # instance norm and the pool want full batches
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    held_out_a, held_out_b, eval_split = held_out_images(cfg.data_options(), cfg.eval_split, cfg.eval_max_images)
    num_samples = min(cfg.num_sample_images, len(held_out_a), len(held_out_b))  # the grid's rows must match
    sample_a = fixed_sample_batch(held_out_a, num_samples, cfg.crop_size)
    sample_b = fixed_sample_batch(held_out_b, num_samples, cfg.crop_size)

    # Networks and optimizers: one Adam for G and F, one for D_X and D_Y (section 4).
    model = build_model(cfg, resume_path)
    optimizer_g = adam([model.generator_ab, model.generator_ba], cfg)
    optimizer_d = adam([model.discriminator_a, model.discriminator_b], cfg)
    nets = [model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b]
    if cfg.compile:
        nets = [torch.compile(net) for net in nets]
    *nets, optimizer_g, optimizer_d, loader = accelerator.prepare(*nets, optimizer_g, optimizer_d, loader)
    train_step = CycleGANStep(
        *nets,
        optimizer_g,
        optimizer_d,
        gan_mode=cfg.gan_mode,
        lambda_cyc=cfg.lambda_cyc,
        lambda_identity=cfg.lambda_identity,
        pool_size=cfg.pool_size,
        accelerator=accelerator,
    )
    pools = {"pool_a": train_step.pool_a, "pool_b": train_step.pool_b}

    # Schedule: constant, then linear decay to 0, counted in steps.
    if not cfg.streaming and len(loader) == 0:  # else the loop below would never end
        raise DatasetLayoutError(f"{len(dataset)} images give no full batch of {cfg.batch_size} per process")
    total_steps, constant_steps = schedule(cfg, len(loader) if not cfg.streaming else None)

    step, epoch, seconds_before = 0, 0, 0.0
    if resume_path is not None:
        state = load_checkpoint(accelerator, resume_path, pools)
        step, epoch, seconds_before = state["step"], state["epoch"], state.get("seconds", 0.0)
        logger.info(f"resumed from {resume_path} at step {step}, epoch {epoch}", main_process_only=True)

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "samples").mkdir(exist_ok=True)
        (output_dir / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    accelerator.init_trackers(cfg.tracker_project_name, config=dataclasses.asdict(cfg))
    progress = tqdm(total=total_steps, initial=step, disable=not accelerator.is_local_main_process, unit="step")
    images_per_step = 2 * cfg.batch_size * accelerator.num_processes  # one A and one B per sample
    skipped_images, started, start_step = 0, time.time(), step
    metrics = None

    def save_final_model(final: bool) -> Path:
        """Save the pair (and its card) from the unwrapped networks; push when asked."""
        nonlocal metrics
        if cfg.eval_steps is not None and final:
            metrics = evaluate_now()
        if not accelerator.is_main_process:
            return output_dir / "model"
        grid = sample_grid(model.generator_ab, model.generator_ba, sample_a, sample_b)
        target = output_dir / "model"
        target.mkdir(parents=True, exist_ok=True)
        grid.save(target / "samples.png")
        epochs = f"{step / len(loader):.1f} epochs" if not cfg.streaming else f"{epoch} passes over domain A"
        card = card_kwargs(cfg, accelerator, step, epochs, seconds_before + time.time() - started, metrics, eval_split, dataset)
        (target / "README.md").unlink(missing_ok=True)  # the mixin keeps an existing card
        model.save_pretrained(target, dtype=cfg.save_dtype, model_card_kwargs=card)
        if cfg.push_to_hub:  # the folder as saved (dtype, card, samples) in one commit
            repo_id = create_repo(cfg.hub_model_id, private=cfg.hub_private, exist_ok=True).repo_id
            upload_folder(repo_id=repo_id, folder_path=target, commit_message=f"cyclegan-hub: step {step}")
        return target

    def evaluate_now() -> dict | None:
        from cyclegan_hub.evaluate import evaluate_translation

        if not accelerator.is_main_process:
            return None
        result = evaluate_translation(model, held_out_a, held_out_b, image_size=cfg.crop_size)
        accelerator.log({f"eval/{k}": v for k, v in result.items() if isinstance(v, float)}, step=step)
        return result

    while step < total_steps:
        dataset.set_epoch(epoch)
        batches = loader
        if not cfg.streaming:
            loader.set_epoch(epoch)
            done_in_epoch = step - epoch * len(loader)
            if done_in_epoch > 0:  # resumed mid-epoch: skip what this epoch already trained on
                batches = accelerator.skip_first_batches(loader, done_in_epoch)
        step_at_start = step
        for batch in batches:
            lr = cfg.lr * linear_decay(step, constant_steps, total_steps - constant_steps)
            for group in (*optimizer_g.param_groups, *optimizer_d.param_groups):
                group["lr"] = lr
            losses = train_step(batch["a"], batch["b"])
            skipped_images += int(batch["skipped"].sum())
            step += 1
            progress.update(1)

            if step % cfg.logging_steps == 0 or step == total_steps:
                rate = (step - start_step) * images_per_step / (time.time() - started)
                accelerator.log({**losses, "lr": lr, "epoch": epoch, "images_per_s": rate, "skipped_images": skipped_images}, step=step)
                progress.set_postfix(loss_g=f"{losses['loss_g']:.3f}", img_s=f"{rate:.1f}")
            if step % cfg.sample_steps == 0 and accelerator.is_main_process:
                grid = sample_grid(model.generator_ab, model.generator_ba, sample_a, sample_b)
                grid.save(output_dir / "samples" / f"step-{step:07d}.png")
                log_sample_grid(accelerator, grid, step)
            if cfg.eval_steps and step % cfg.eval_steps == 0 and step != total_steps:
                metrics = evaluate_now()
            if step % cfg.checkpointing_steps == 0 or step == total_steps:
                seconds = seconds_before + time.time() - started
                state = {"step": step, "epoch": epoch, "seconds": seconds, "model_config": model._hub_mixin_config}
                save_checkpoint(accelerator, output_dir, state, pools, cfg.checkpoints_total_limit)
            if cfg.push_steps and step % cfg.push_steps == 0 and step != total_steps:
                save_final_model(final=False)
            if step >= total_steps:
                break
        if cfg.streaming and step == step_at_start:  # else the loop would never end
            raise DatasetLayoutError(f"the stream gave no full batch of {cfg.batch_size} per process")
        epoch += 1

    progress.close()
    target = save_final_model(final=True)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if skipped_images:
        logger.warning(f"{skipped_images} corrupt images were skipped", main_process_only=True)
    return target


def card_kwargs(cfg, accelerator, step, epochs, seconds, metrics, eval_split, dataset) -> dict:
    """What the model card says about this run."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "CPU"
    sizes = f"{len(dataset.images_a)} {cfg.domain_a} / {len(dataset.images_b)} {cfg.domain_b} images" if hasattr(dataset.images_a, "__len__") else None
    return dict(
        model_id=cfg.hub_model_id,
        dataset=cfg.dataset or f"{cfg.dataset_a} + {cfg.dataset_b}",
        train_sizes=sizes,
        samples_image="samples.png",
        metrics=metrics,
        metrics_notes=f"Computed on the `{eval_split}` split." if metrics else None,
        hyperparameters={k: v for k, v in dataclasses.asdict(cfg).items() if v is not None and k not in ("hub_model_id", "push_to_hub")},
        training_summary=(
            f"{step} steps ({epochs}) on {accelerator.num_processes} x {device}, "
            f"mixed precision {accelerator.mixed_precision}, {seconds / 3600:.2f} h, "
            f"{step * cfg.batch_size * accelerator.num_processes} images per domain seen."
        ),
    )


if __name__ == "__main__":
    config = parse_args()
    try:
        main(config)
    except (DatasetLayoutError, CheckpointError) as error:  # a user's mistake: one clear line, no traceback
        raise SystemExit(f"train_accelerate.py: error: {error}") from None
