"""`train_accelerate.py` run as a user runs it: a subprocess, `accelerate launch`, DDP, kills and resumes.

Every run is tiny (8-filter networks, two residual blocks, 32 px, a few steps) and offline, on the
datasets of `tests/helpers.py`. The runs are marked slow; CI runs them too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from safetensors.torch import load_file

import helpers
from cyclegan_hub import CycleGAN, evaluate
from cyclegan_hub.checkpoints import model_from_checkpoint
from cyclegan_hub.config import build_parser as build_training_parser
from cyclegan_hub.threads import cpu_threads_per_process

TINY_NETS = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", "36", "--crop_size", "32", "--num_workers", "0"]
TINY = [*TINY_NETS, "--cpu_threads", "1"]  # networks this small run fastest on one thread
TIMEOUT = 300
CHECKPOINT_FILES = {
    "trainer_state.json",
    "model.safetensors",  # accelerate's files: the four prepared networks,
    "model_1.safetensors",
    "model_2.safetensors",
    "model_3.safetensors",
    "optimizer.bin",  # both optimizers,
    "optimizer_1.bin",
    "random_states_0.pkl",  # every process's RNGs,
    "image_pools_0.safetensors",  # and every process's image pools
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The subprocesses' environment: a private HF_HOME (datasets cache, accelerate config), offline, CPU."""
    return helpers.script_env(tmp_path_factory.mktemp("hf-home"))


def run_script(args, env, launcher=(), timeout=TIMEOUT, check=True) -> subprocess.CompletedProcess:
    return helpers.run_checked([*(launcher or [helpers.PYTHON]), helpers.SCRIPT, *args], env, timeout, check)


def accelerate_launch(*flags) -> list[str]:
    return [helpers.PYTHON, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no", *flags]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checkpoints(output_dir: Path) -> set[str]:
    return {p.name for p in output_dir.iterdir() if p.name.startswith("checkpoint-")}


def assert_same_tensors(file_a: Path, file_b: Path) -> None:
    a, b = load_file(str(file_a)), load_file(str(file_b))
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{file_a} and {file_b} differ in {different[:5]}"


def assert_trained_model(output_dir: Path, domain_a: str, domain_b: str, **hyperparameters) -> CycleGAN:
    """output_dir/model loads, translates, and its card names the domains and the hyperparameters."""
    model = CycleGAN.from_pretrained(output_dir / "model")
    assert (model.domain_a, model.domain_b) == (domain_a, domain_b)
    layout = {key: hyperparameters.get(key, default) for key, default in (("upsample", "transpose"), ("downsample", "stride"), ("input_skip", False), ("unet_skips", False))}
    assert model.generator_config == {"ngf": 8, "n_blocks": 2, "norm": "instance", "dropout": 0.0, **layout}
    with_d = CycleGAN.from_pretrained(output_dir / "model", load_discriminators=True)
    assert with_d.discriminator_a is not None
    out = model(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()

    card = (output_dir / "model" / "README.md").read_text()
    assert f"# CycleGAN: {domain_a} ↔ {domain_b}" in card
    assert "| hyperparameter | value |" in card
    assert "library_name: cyclegan-hub" in card
    for key, value in hyperparameters.items():
        assert f"| `{key}` | `{value}` |" in card, key
    assert (output_dir / "model" / "samples.png").is_file()
    return model


# --- one process, every layout -----------------------------------------------------------------


LAYOUT_ARGS = {
    "a": lambda layouts: ["--dataset", layouts["a"]],
    "b": lambda layouts: ["--dataset_a", layouts["b"], "--config_a", "horse", "--dataset_b", layouts["b"], "--config_b", "zebra"],
    "c": lambda layouts: ["--dataset", layouts["c"]],
    "d": lambda layouts: ["--dataset", layouts["d"]],
}


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["a", "b", "c", "d"])
def test_trains_on_every_layout(layouts, env, tmp_path, layout, monkeypatch):
    out = tmp_path / "run"
    # Layout (a) runs with the default thread count, in place of the OMP_NUM_THREADS=1 that the
    # environment sets, as `accelerate launch` does; the others with --cpu_threads 1.
    monkeypatch.setenv("OMP_NUM_THREADS", env["OMP_NUM_THREADS"])
    threads = cpu_threads_per_process() if layout == "a" else 1
    args = [
        *LAYOUT_ARGS[layout](layouts),
        *(TINY_NETS if layout == "a" else TINY),
        "--output_dir", out,
        "--domain_a", "horse",
        "--domain_b", "zebra",
        "--max_steps", 7,
        "--checkpointing_steps", 2,
        "--checkpoints_total_limit", 2,
        "--sample_steps", 3,
        "--report_to", "none",
        "--seed", 1,
    ]
    run_script(args, env)
    # Saved at 2, 4, 6 and the last step, 7; only the newest two are kept.
    assert checkpoints(out) == {"checkpoint-6", "checkpoint-7"}
    for name in ("checkpoint-6", "checkpoint-7"):
        assert {p.name for p in (out / name).iterdir()} == CHECKPOINT_FILES
    assert json.loads((out / "checkpoint-7" / "trainer_state.json").read_text())["step"] == 7
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-0000003.png", "step-0000006.png"]
    assert not (out / "cyclegan").exists()  # --report_to none
    assert json.loads((out / "train_config.json").read_text())["max_steps"] == 7
    assert_trained_model(out, "horse", "zebra", max_steps=7, ngf=8, crop_size=32, gan_mode="lsgan")
    card = (out / "model" / "README.md").read_text()
    assert "7 steps" in card and "1 x " in card and f"({threads} thread" in card
    # 4 A and 3 B training images in each layout but (a), which has 5 and 3
    assert ("(5 horse / 3 zebra images)" if layout == "a" else "(4 horse / 3 zebra images)") in card
    if layout == "d":  # the sample grid starts with a held-out testA image, not a training one
        first = np.asarray(Image.open(out / "model" / "samples.png").convert("RGB").crop((0, 0, 32, 32)))

        def matches(folder):
            files = sorted((layouts["d"] / folder).iterdir())
            return [np.array_equal(first, np.asarray(Image.open(f).convert("RGB").resize((32, 32)))) for f in files]

        assert any(matches("testA")) and not any(matches("trainA"))


@pytest.mark.slow
def test_losses_fall_and_tensorboard_logs(layouts, env, tmp_path):
    """Red -> blue is learnable in 40 steps: the cycle losses fall; a corrupt file is skipped and counted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = shutil.copytree(layouts["d"], tmp_path / "data")
    (data / "trainB" / "002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "run"
    args = [
        "--dataset", data, *TINY, "--output_dir", out, "--max_steps", 40, "--logging_steps", 1,
        "--checkpointing_steps", 15, "--sample_steps", 20, "--report_to", "tensorboard", "--seed", 0,
        "--domain_a", "red", "--domain_b", "blue", "--lr_d", 5e-5, "--cycle_noise", 0.05,
        "--cycle_downscale", 2, "--diffaugment", "--diffaugment_policy", "translation,cutout",
        "--diffaugment_p", 0.5, "--diffaugment_domains", "b", "--spectral_norm_d", "--n_layers_d", 2, 3, "--source_as_fake", 0.25,
        "--r1_gamma", 0.5, "--r1_interval", 4, "--lambda_identity", 0.5, 0, "--identity_downscale", 4,
        "--identity_start_step", 5, "--identity_decay_steps", 30,
    ]
    result = run_script(args, env)
    assert "corrupt images were skipped" in result.stderr
    assert checkpoints(out) == {"checkpoint-15", "checkpoint-30", "checkpoint-40"}  # the default limit keeps 3
    events = sorted((out / "cyclegan").rglob("events.out.tfevents.*"))
    assert events
    scalars, images = {}, set()
    for event_file in events:
        accumulator = EventAccumulator(str(event_file), size_guidance={"scalars": 0, "images": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars[tag] = [event.value for event in accumulator.Scalars(tag)]
        images |= set(accumulator.Tags()["images"])
    assert "samples" in images
    for name in ("loss_g", "loss_gan_ab", "loss_d_a", "loss_d_b", "loss_identity_a", "loss_r1", "lr", "lr_d", "identity_scale",
                 "images_per_s"):
        assert len(scalars[name]) == 40, name
    # the R1 penalty of the last R1 step: measured on steps 0, 4, 8, ..., so logged in runs of four
    assert scalars["loss_r1"][0] > 0 and scalars["loss_r1"][:4] == [scalars["loss_r1"][0]] * 4
    assert scalars["loss_r1"][4] != scalars["loss_r1"][3]
    assert scalars["lr"][0] == pytest.approx(2e-4) and scalars["lr"][-1] < 2e-5  # the linear decay
    assert scalars["lr_d"][0] == pytest.approx(5e-5) and scalars["lr_d"][-1] < 5e-6
    # the optimizers themselves: D's rate is --lr_d, decayed on the same schedule as G's
    lr_g, lr_d = (torch.load(out / "checkpoint-30" / name, weights_only=True)["param_groups"][0]["lr"]
                  for name in ("optimizer.bin", "optimizer_1.bin"))
    assert 0 < lr_g < 2e-4 and lr_d == pytest.approx(lr_g / 4)
    assert scalars["skipped_images"][-1] > 0
    for name in ("loss_cycle_a", "loss_cycle_b"):
        early, late = sum(scalars[name][:5]) / 5, sum(scalars[name][-5:]) / 5
        assert late < 0.6 * early, (name, early, late)
    assert_trained_model(out, "red", "blue", max_steps=40, lambda_cyc=10.0)
    card = (out / "model" / "README.md").read_text()
    assert "`report_to`" not in card and "`output_dir`" not in card  # run plumbing is not a hyperparameter
    assert "| `cycle_noise` | `0.05` |" in card and "| `cycle_downscale` | `2` |" in card
    assert "| `diffaugment_policy` | `translation,cutout` |" in card and "| `diffaugment_p` | `0.5` |" in card
    assert "| `diffaugment_domains` | `b` |" in card
    assert "| `spectral_norm_d` | `True` |" in card and "| `n_layers_d` | `2 3` |" in card  # as typed
    assert "| `source_as_fake` | `0.25` |" in card
    assert "| `r1_gamma` | `0.5` |" in card and "| `r1_interval` | `4` |" in card
    assert "| `lambda_identity` | `0.5 0.0` |" in card and "| `identity_downscale` | `4` |" in card  # G's identity term kept, F's dropped
    # G's identity term is off for 5 steps, then fades out over 30 and is off after them
    assert set(scalars["identity_scale"][:5]) == {0.0} and set(scalars["identity_scale"][35:]) == {0.0}
    assert scalars["identity_scale"][5:8] == pytest.approx([1.0, 29 / 30, 28 / 30])
    assert set(scalars["loss_identity_b"][:5]) == {0.0} and set(scalars["loss_identity_b"][35:]) == {0.0}
    assert min(scalars["loss_identity_b"][5:35]) > 0 and set(scalars["loss_identity_a"]) == {0.0}
    assert "| `identity_start_step` | `5` |" in card and "| `identity_decay_steps` | `30` |" in card
    trained = CycleGAN.from_pretrained(out / "model", load_discriminators=True)
    assert trained.config["discriminator"] == {"ndf": 8, "n_layers": [2, 3], "norm": "instance", "downsample": "stride", "spectral_norm": True}
    assert all(nn.utils.parametrize.is_parametrized(member.model[0], "weight") for member in trained.discriminator_a.members)


# --- several processes -------------------------------------------------------------------------

RANK_RECORDER = '''\
"""Runs train_accelerate.py unchanged, then writes what this rank's networks hold and what data it saw."""
import hashlib, os, runpy, sys

from safetensors.torch import save_file

from cyclegan_hub import training

script, record = sys.argv[1], sys.argv[2]
sys.argv = [script, *sys.argv[3:]]
steps, inputs = [], hashlib.sha256()
call = training.CycleGANStep.__call__


def recording_call(self, real_a, real_b):
    steps.append(self)
    inputs.update(real_a.cpu().numpy().tobytes() + real_b.cpu().numpy().tobytes())
    return call(self, real_a, real_b)


training.CycleGANStep.__call__ = recording_call
runpy.run_path(script, run_name="__main__")

step, rank = steps[-1], os.environ["RANK"]
tensors = {}
for name in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
    network = getattr(step, name)
    network = getattr(network, "module", network)  # the DDP wrapper
    tensors.update({f"{name}.{key}": value.detach().contiguous() for key, value in network.state_dict().items()})
save_file(tensors, f"{record}/rank{rank}.safetensors", metadata={"inputs": inputs.hexdigest(), "steps": str(len(steps))})
'''


@pytest.mark.slow
@pytest.mark.parametrize(
    "discriminator_flags",
    [[], ["--spectral_norm_d"], ["--n_layers_d", 2, 3, "--r1_gamma", 1, "--r1_interval", 2]],
    ids=["paper", "spectral norm", "two patch sizes with R1"],
)
def test_ddp_two_processes_hold_the_same_weights(layouts, env, tmp_path, discriminator_flags):
    """`accelerate launch --multi_gpu --num_processes 2` on the CPU: two gloo DDP processes.

    With spectral norm the discriminators also carry power-iteration vectors, updated in place at
    every forward: they too must end the same on both ranks and in the saved model. R1's pass
    bypasses the DDP wrapper: its gradient must still be averaged."""
    from safetensors import safe_open

    recorder = tmp_path / "record_ranks.py"
    recorder.write_text(RANK_RECORDER)
    record = tmp_path / "ranks"
    record.mkdir()
    out = tmp_path / "run"
    launcher = accelerate_launch(
        "--multi_gpu", "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port())
    )
    args = [
        "--dataset", layouts["d"], *TINY, "--output_dir", out, "--max_steps", 4, "--checkpointing_steps", 2,
        "--report_to", "none", "--seed", 3, "--pool_size", 1, *discriminator_flags,
    ]
    command = [*launcher, str(recorder), str(helpers.SCRIPT), str(record), *map(str, args)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=helpers.REPO)
    assert result.returncode == 0, result.stderr[-6000:]

    # Each process saved its own RNG states and pools; the training summary counts both.
    assert checkpoints(out) == {"checkpoint-2", "checkpoint-4"}
    rank_1_files = {"random_states_1.pkl", "image_pools_1.safetensors"}
    assert {p.name for p in (out / "checkpoint-4").iterdir()} == CHECKPOINT_FILES | rank_1_files
    assert "on 2 x " in (out / "model" / "README.md").read_text()

    # The ranks trained on different images (per-process augmentation seeds) yet end with identical
    # weights: the gradients were averaged across processes every step.
    ranks = [record / "rank0.safetensors", record / "rank1.safetensors"]
    metadata = []
    for path in ranks:
        with safe_open(str(path), "pt") as handle:
            metadata.append(handle.metadata())
    assert metadata[0]["steps"] == metadata[1]["steps"] == "4"
    assert metadata[0]["inputs"] != metadata[1]["inputs"]
    assert_same_tensors(*ranks)
    # ... and rank 0's networks are what the saved model holds.
    rank0 = load_file(str(ranks[0]))
    saved = {**load_file(str(out / "model" / "model.safetensors"))}
    saved.update(load_file(str(out / "model" / "discriminators.safetensors")))
    assert saved.keys() == rank0.keys()
    assert all(torch.equal(saved[key], rank0[key]) for key in saved)
    initial = CycleGAN(generator=dict(ngf=8, n_blocks=2), discriminator=dict(ndf=8), with_discriminators=True).state_dict()
    assert any(not torch.equal(initial[key], saved[key]) for key in saved if key in initial)


@pytest.mark.slow
def test_bf16_compiled_run_on_cpu_resumes_without_compiling(layouts, env, tmp_path):
    out = tmp_path / "run"
    launcher = accelerate_launch("--num_processes", "1", "--mixed_precision", "bf16")
    args = [
        "--dataset", layouts["d"], *TINY, "--output_dir", out, "--report_to", "none", "--seed", 0,
        "--save_dtype", "bfloat16", "--checkpointing_steps", 2,
    ]
    # The fast path the README gives, with the demo model's recipe (its blur layers compile too), the input skip,
    # and R1, whose second derivative torch.compile cannot take.
    recipe = ["--upsample", "antialias", "--downsample", "antialias", "--diffaugment", "--ema_decay", 0.9, "--input_skip",
              "--r1_gamma", 1, "--r1_interval", 1]
    run_script([*args, *recipe, "--max_steps", 2, "--compile"], env, launcher=launcher)
    assert "mixed precision bf16" in (out / "model" / "README.md").read_text()
    stored = load_file(str(out / "model" / "model.safetensors"))
    assert {tensor.dtype for tensor in stored.values()} == {torch.bfloat16}
    model = assert_trained_model(
        out, "A", "B", save_dtype="bfloat16", compile=True, upsample="antialias", downsample="antialias", diffaugment=True, ema_decay=0.9,
        input_skip=True,
    )
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    # Compiling does not rename the checkpoint's weights, so the run continues uncompiled.
    assert set(load_file(str(out / "checkpoint-2" / "model.safetensors"))) == set(model.generator_ab.state_dict())
    run_script([*args, *recipe, "--max_steps", 4, "--resume_from_checkpoint", "latest"], env, launcher=launcher)
    assert checkpoints(out) == {"checkpoint-2", "checkpoint-4"}


# --- kill, resume ------------------------------------------------------------------------------


def kill_while_checkpointing(args, env, output_dir: Path, after_step: int) -> Path | None:
    """Start a run and SIGKILL it the moment it is writing a checkpoint past `after_step`.

    Returns the temporary folder it was writing, or None when the kill landed just after the rename.
    """
    command = [helpers.PYTHON, str(helpers.SCRIPT), *map(str, args)]
    process = subprocess.Popen(
        command, env=env, cwd=helpers.REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            temporary = output_dir.glob(".checkpoint-*.tmp") if output_dir.is_dir() else []
            writing = [p for p in temporary if int(p.name.split("-")[1].split(".")[0]) > after_step]
            if writing and (writing[0] / "model.safetensors").exists():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return writing[0] if writing[0].exists() else None
            if process.poll() is not None:
                stderr = process.stderr.read()[-4000:]
                pytest.fail(f"the run ended (exit code {process.returncode}) before it could be killed:\n{stderr}")
            time.sleep(0.002)
        pytest.fail("no checkpoint was written in time")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stderr.close()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(layouts, env, tmp_path):
    # With every recipe option: DiffAugment draws random numbers each step, the average is state too, and
    # R1's lazy steps (0, 3, 6) must stay where they were.
    recipe = ["--upsample", "antialias", "--downsample", "antialias", "--diffaugment", "--ema_decay", 0.9, "--r1_gamma", 1, "--r1_interval", 3]
    common = ["--dataset", layouts["d"], *TINY, *recipe, "--max_steps", 8, "--seed", 1, "--pool_size", 2, "--report_to", "none"]

    # A: an unbroken run.
    unbroken = tmp_path / "unbroken"
    run_script([*common, "--output_dir", unbroken, "--checkpointing_steps", 4], env)
    assert checkpoints(unbroken) == {"checkpoint-4", "checkpoint-8"}

    # B: the same run, checkpointing every step, SIGKILLed in the middle of writing a checkpoint.
    killed = tmp_path / "killed"
    args = [*common, "--output_dir", killed, "--checkpointing_steps", 1, "--checkpoints_total_limit", 8]
    half_written = kill_while_checkpointing(args, env, killed, after_step=2)
    assert not (killed / "model").exists()  # it really died before the end
    complete = checkpoints(killed)
    assert complete, "at least one checkpoint was finished before the kill"
    for name in complete:  # every checkpoint-* folder is whole: the half-written one has a temporary name
        assert {p.name for p in (killed / name).iterdir()} == CHECKPOINT_FILES | {"ema.safetensors"}, name
        assert json.loads((killed / name / "trainer_state.json").read_text())["step"] == int(name.split("-")[1])
    if half_written is not None:
        assert half_written.name.startswith(".checkpoint-") and not (half_written / "trainer_state.json").exists()
        assert half_written.name == f".checkpoint-{max(int(n.split('-')[1]) for n in complete) + 1}.tmp"

    # B, resumed from its newest complete checkpoint, ends exactly where A ended.
    resumed = run_script([*args, "--resume_from_checkpoint", "latest"], env)
    newest = max(complete, key=lambda name: int(name.split("-")[1]))
    assert f"resumed from {killed / newest} at step {newest.split('-')[1]}" in resumed.stderr  # said, not only done
    assert not list(killed.glob(".checkpoint-*"))  # the leftover was replaced by the finished checkpoint
    assert checkpoints(killed) >= {"checkpoint-8"}
    for name in ("model.safetensors", "discriminators.safetensors"):
        assert_same_tensors(unbroken / "model" / name, killed / "model" / name)
    assert_saves_the_average(unbroken)
    results = {
        flags: evaluate.main(["--model", str(unbroken / "checkpoint-8"), "--dataset", str(layouts["d"]), "--num_subsets", "3", *flags])[0]
        for flags in ((), ("--raw_weights",))
    }
    assert results[()]["kid_a2b"] != results[("--raw_weights",)]["kid_a2b"]  # two different pairs were scored

    # A fresh folder holding only A's step-4 checkpoint also continues to A's weights.
    copied = tmp_path / "copied"
    copied.mkdir()
    shutil.copytree(unbroken / "checkpoint-4", copied / "checkpoint-4")
    run_script([*common, "--output_dir", copied, "--checkpointing_steps", 4, "--resume_from_checkpoint", "latest"], env)
    for name in ("model.safetensors", "discriminators.safetensors"):
        assert_same_tensors(unbroken / "model" / name, copied / "model" / name)
    assert checkpoints(copied) == {"checkpoint-4", "checkpoint-8"}

    # Resuming with flags for other networks stops with one line and leaves the checkpoints alone.
    before = {p: p.stat().st_mtime_ns for p in copied.rglob("*")}
    other = [*common, "--output_dir", copied, "--n_layers_d", 2, 3, "--norm_g", "layer", "--resume_from_checkpoint", "latest"]
    refused = run_script(other, env, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        f"train_accelerate.py: error: {copied / 'checkpoint-8'} has generator norm 'instance' where the flags ask for 'layer'; "
        "discriminator n_layers 3 where the flags ask for [2, 3]: resume with the flags it was trained with, or start a new --output_dir"
    )
    assert {p: p.stat().st_mtime_ns for p in copied.rglob("*")} == before

    # Other training flags go on, named: one left out by mistake would change the run unseen.
    assert "trained with other flags" not in resumed.stderr
    changed = run_script([*common, "--output_dir", copied, "--lambda_cyc", 3, "--resume_from_checkpoint", "latest"], env)
    assert f"{copied / 'checkpoint-8'} was trained with other flags; going on with those given now: --lambda_cyc 10.0 -> 3.0" in changed.stderr


def assert_saves_the_average(output_dir: Path) -> None:
    """The saved model holds the generators' moving average; the last checkpoint holds it and the raw weights."""
    config = json.loads((output_dir / "model" / "config.json").read_text())
    assert config["generator"]["upsample"] == config["generator"]["downsample"] == "antialias"
    assert config["discriminator"]["downsample"] == "antialias"
    saved = load_file(str(output_dir / "model" / "model.safetensors"))
    average = load_file(str(output_dir / "checkpoint-8" / "ema.safetensors"))
    raw = load_file(str(output_dir / "checkpoint-8" / "model.safetensors"))  # accelerate's file of generator_ab
    assert int(average.pop("updates")) == 8
    assert saved.keys() == average.keys()
    assert all(torch.equal(saved[key], average[key]) for key in saved)
    assert not torch.equal(saved["generator_ab.head.weight"], raw["head.weight"])
    # A checkpoint loads as the pair it would have saved, or as its trained weights.
    averaged = model_from_checkpoint(output_dir / "checkpoint-8")
    assert all(torch.equal(value, saved[key]) for key, value in averaged.state_dict().items())
    trained = model_from_checkpoint(output_dir / "checkpoint-8", averaged=False, with_discriminators=True)
    assert torch.equal(trained.generator_ab.head.weight, raw["head.weight"])
    saved_discriminators = load_file(str(output_dir / "model" / "discriminators.safetensors"))
    assert all(torch.equal(value, saved_discriminators[key]) for key, value in trained.state_dict().items() if key.startswith("discriminator"))


# --- fine-tuning -------------------------------------------------------------------------------


def saved_pair(folder: Path, domain_a: str, domain_b: str, seed: int, ngf: int = 8) -> Path:
    """A pair of the tiny runs' networks with discriminators, saved as a training run saves its model."""
    torch.manual_seed(seed)
    CycleGAN(domain_a, domain_b, generator=dict(ngf=ngf, n_blocks=2), discriminator=dict(ndf=8), with_discriminators=True).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_init_from_fine_tunes_a_saved_model_with_its_domains_matched(layouts, env, tmp_path):
    """--init_from starts every network from the saved pair, swapped where the saved model names
    the domains the other way round; at a learning rate too small to move them, the run's model
    is the saved one, and its card says where it started."""
    source = saved_pair(tmp_path / "zebra2horse", "zebra", "horse", seed=123)
    out = tmp_path / "run"
    args = ["--dataset", layouts["d"], *TINY, "--output_dir", out, "--report_to", "none", "--seed", 0,
            "--domain_a", "horse", "--domain_b", "zebra", "--max_steps", 1, "--lr", 1e-12, "--init_from", source]
    log = run_script(args, env).stderr
    assert f"started from {source}: its generators, its discriminators" in log
    saved = CycleGAN.from_pretrained(source, load_discriminators=True)
    tuned = CycleGAN.from_pretrained(out / "model", load_discriminators=True)
    assert (tuned.domain_a, tuned.domain_b) == ("horse", "zebra")
    pairs = {"generator_ab": "generator_ba", "generator_ba": "generator_ab", "discriminator_a": "discriminator_b", "discriminator_b": "discriminator_a"}
    for name, origin in pairs.items():
        for key, value in getattr(tuned, name).state_dict().items():
            torch.testing.assert_close(value, getattr(saved, origin).state_dict()[key], atol=1e-6, rtol=0, msg=f"{name}.{key}")
    assert f"| `init_from` | `{source}` |" in (out / "model" / "README.md").read_text()


# --- mistakes ----------------------------------------------------------------------------------


def bad_runs(layouts, tmp_path):
    """(arguments, exit code, what the last line of stderr says) for each mistake."""
    base = ["--dataset", layouts["d"], *TINY, "--output_dir", tmp_path / "out", "--max_steps", 2, "--report_to", "none"]
    return {
        "crop larger than load": (
            [*base, "--crop_size", 300, "--load_size", 286], 2, "--crop_size (300) must be <= --load_size (286)"
        ),
        "zero steps": ([*base, "--max_steps", 0], 2, "--max_steps must be >= 1, got 0"),
        "unknown gan mode": ([*base, "--gan_mode", "wgan"], 2, "argument --gan_mode: invalid choice: 'wgan'"),
        "push without a repo": ([*base, "--push_to_hub"], 2, "--push_to_hub needs --hub_model_id"),
        "no dataset": (["--output_dir", tmp_path / "out"], 2, "pass --dataset, or --dataset_a and --dataset_b"),
        "no samples": ([*base, "--sample_steps", 0], 2, "--sample_steps must be >= 1, got 0"),
        "not a number": ([*base, "--lr", "fast"], 2, "argument --lr: invalid float value: 'fast'"),
        "negative learning rate": ([*base, "--lr_d", -1e-4], 2, "--lr_d must be > 0, got -0.0001"),
        "negative noise": ([*base, "--cycle_noise", -0.1], 2, "--cycle_noise must be >= 0, got -0.1"),
        "no discriminator layers": ([*base, "--n_layers_d", 4, 0], 2, "--n_layers_d must be >= 1, got 0"),
        "one patch size twice": (
            [*base, "--n_layers_d", 3, 3], 2, "--n_layers_d: n_layers must list at least two different layer counts, got [3, 3]"
        ),
        "unknown augmentation": (
            [*base, "--diffaugment", "--diffaugment_policy", "color,blur"], 2, "unknown DiffAugment transform(s) ['blur']"
        ),
        "policy without augmentation": ([*base, "--diffaugment_policy", "cutout"], 2, "--diffaugment_policy needs --diffaugment"),
        "probability above 1": ([*base, "--diffaugment", "--diffaugment_p", 1.5], 2, "--diffaugment_p is a probability: at most 1, got 1.5"),
        "probability without augmentation": ([*base, "--diffaugment_p", 0.5], 2, "--diffaugment_p needs --diffaugment"),
        "augmented domain without augmentation": ([*base, "--diffaugment_domains", "a"], 2, "--diffaugment_domains needs --diffaugment"),
        "unknown augmented domain": (
            [*base, "--diffaugment", "--diffaugment_domains", "photo"], 2, "argument --diffaugment_domains: invalid choice: 'photo'"
        ),
        "all of the fake side from the source": (
            [*base, "--source_as_fake", 1], 2, "--source_as_fake is a share of the fake side: below 1, got 1.0"
        ),
        "negative share": ([*base, "--source_as_fake", -0.5], 2, "--source_as_fake must be >= 0, got -0.5"),
        "negative R1 weight": ([*base, "--r1_gamma", -1], 2, "--r1_gamma must be >= 0, got -1.0"),
        "R1 never": ([*base, "--r1_gamma", 1, "--r1_interval", 0], 2, "--r1_interval must be >= 1, got 0"),
        "an identity fade without an identity term": (
            [*base, "--lambda_identity", 0, "--identity_decay_steps", 100], 2,
            "--identity_decay_steps schedules the identity term: it needs --lambda_identity above 0",
        ),
        "a late identity term without one": (
            [*base, "--lambda_identity", 0, "--identity_start_step", 100], 2,
            "--identity_start_step schedules the identity term: it needs --lambda_identity above 0",
        ),
        "three identity weights": (
            [*base, "--lambda_identity", 0.5, 0, 1], 2, "--lambda_identity takes one weight or two (G's, F's), got 3"
        ),
        "no such folder": ([*base, "--dataset", tmp_path / "no-such-folder"], 1, "cannot load dataset"),
        "missing column": (
            [*base, "--dataset", layouts["a"], "--image_column_a", "imageA", "--image_column_b", "photo"],
            1,
            "no column 'photo'; the dataset has columns {'imageA': 'Image', 'imageB': 'Image'}",
        ),
        "bad label": ([*base, "--label_a", "trainC"], 1, "label 'trainC' (--label_a) is not among the values"),
        "too few images for a batch": ([*base, "--batch_size", 8], 1, "4 images give no full batch of 8 per process"),
        "no such checkpoint": (
            [*base, "--resume_from_checkpoint", tmp_path / "nowhere"], 1, "is not a complete checkpoint folder"
        ),
        "no model to start from": ([*base, "--init_from", tmp_path / "nowhere"], 1, "--init_from: no folder"),
        "a model with other generators": (
            [*base, "--init_from", saved_pair(tmp_path / "wider", "A", "B", seed=0, ngf=16)],
            1,
            "has generator ngf 16 where the flags ask for 8: train with the flags it was trained with",
        ),
        "a model of other domains": (
            [*base, "--init_from", saved_pair(tmp_path / "cat2dog", "cat", "dog", seed=0)],
            1,
            "translates cat <-> dog: name the run's domains the same (--domain_a cat --domain_b dog, or the other way round)",
        ),
    }


@pytest.mark.slow
def test_mistakes_give_one_clear_line(layouts, env, tmp_path):
    """Each mistake ends the run with a one-line error, not a traceback (the runs go in parallel)."""
    cases = bad_runs(layouts, tmp_path)
    processes = {
        name: subprocess.Popen(
            [helpers.PYTHON, str(helpers.SCRIPT), *map(str, args)], env=env, cwd=helpers.REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for name, (args, _, _) in cases.items()
    }
    problems = []
    for name, process in processes.items():
        try:
            _, stderr = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            problems.append(f"{name}: still running after {TIMEOUT} s")
            continue
        _, code, message = cases[name]
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        clear = last.startswith("train_accelerate.py: error:") and message in last and "Traceback" not in stderr
        if process.returncode != code or not clear:
            problems.append(f"{name}: exit code {process.returncode}, stderr ends:\n{stderr[-2000:]}")
    assert not problems, "\n\n".join(problems)
    assert not (tmp_path / "out" / "model").exists()


@pytest.mark.parametrize("build_parser", [build_training_parser, evaluate.build_parser], ids=["train", "evaluate"])
def test_help_gives_each_default_once(build_parser):
    options = " ".join(build_parser().format_help().split()).split("options:", 1)[1]
    flags = options.split(" --")[1:]
    assert len(flags) > 5
    assert all(flag.count("(default:") <= 1 for flag in flags), [f for f in flags if f.count("(default:") > 1]
    if build_parser is build_training_parser:  # a None whose help says what it means, and a plain default
        assert "lr_d LR_D the discriminators' learning rate, decayed alike (default: --lr)" in options
        assert "beta1 BETA1 Adam beta1 (default: 0.5)" in options
