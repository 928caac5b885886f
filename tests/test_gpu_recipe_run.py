"""`scripts/gpu_recipe_run.py` run end to end on the CPU, as it runs on a lent GPU: real training
processes side by side, a long run resumed with a schedule that ends at the deadline, and the
snapshots packed the way the device brings them back. Tiny networks, a budget of seconds."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

import helpers
from cyclegan_hub.checkpoints import model_from_checkpoint

SCRIPT = helpers.REPO / "scripts" / "gpu_recipe_run.py"
TINY_RUN = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", "36", "--crop_size", "32",
            "--num_workers", "0", "--cpu_threads", "1", "--domain_a", "A", "--domain_b", "B"]
TWO_VARIANTS = ["--variant", "plain", "", "--variant", "averaged", "--ema_decay 0.9 --seed 1"]


def run_recipe(tmp_path: Path, *flags, timeout=240) -> subprocess.CompletedProcess:
    command = [helpers.PYTHON, str(SCRIPT), "--data", str(helpers.layout_d(tmp_path / "data")), "--runs",
               str(tmp_path / "runs"), "--export", str(tmp_path / "export"), *flags]
    env = helpers.script_env(tmp_path / "hf-home")
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=helpers.REPO)


def assert_snapshots_come_back(tmp_path: Path, expected: dict[str, tuple[int, bool]], tars: int) -> None:
    """What the device returns: `tars` snapshot tars and the logs; in them each expected folder
    holds checkpoint-<step>, averaged or raw, loadable as a model."""
    export = tmp_path / "export"
    assert sorted(p.name for p in export.iterdir()) == ["logs.tar.gz", *(f"snapshots_{i}.tar" for i in range(tars))]
    unpacked = tmp_path / "unpacked"
    for tar in export.glob("snapshots_*.tar"):
        with tarfile.open(tar) as archive:
            archive.extractall(unpacked, filter="data")
    assert {p.name for p in unpacked.iterdir()} == set(expected)
    for folder, (step, averaged) in expected.items():
        checkpoint = unpacked / folder / f"checkpoint-{step}"
        assert (checkpoint / "ema.safetensors").is_file() == averaged
        assert model_from_checkpoint(checkpoint, averaged=averaged).config["generator"]["ngf"] == 8
    with tarfile.open(export / "logs.tar.gz") as archive:
        assert {"report.json", "plain/losses.json", "averaged/losses.json"} <= set(archive.getnames())


def run_configs(tmp_path: Path) -> dict[str, dict]:
    return {name: json.loads((tmp_path / "runs" / name / "train_config.json").read_text()) for name in ("plain", "averaged")}


@pytest.mark.slow
def test_pilot_runs_and_a_long_run_come_back_as_loadable_snapshots(tmp_path):
    result = run_recipe(tmp_path, "--seconds", "40", "--checkpointing_steps", "10", "--pilot_multiple", "10",
                        "--min_pilot_step", "20", *TWO_VARIANTS, "--long", "averaged", "--", *TINY_RUN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "runs" / "report.json").read_text())
    assert report["missing"] == [], result.stdout[-3000:]
    pilot_step, long_step = report["pilot_step"], report["long_steps"]["averaged"]
    assert 20 <= pilot_step < long_step  # the long run goes on past the pilot step, decaying
    assert_snapshots_come_back(tmp_path, {
        "plain": (pilot_step, False), "averaged": (pilot_step, True),
        "averaged_half": (long_step // 2, True), "averaged_final": (long_step, True),
    }, tars=2)
    # each variant's own flags reached its run: the average, and a seed after the common seed 0
    configs = run_configs(tmp_path)
    assert (configs["plain"]["ema_decay"], configs["plain"]["seed"]) == (None, 0)
    assert (configs["averaged"]["ema_decay"], configs["averaged"]["seed"]) == (0.9, 1)
    assert configs["averaged"]["max_steps"] == long_step


@pytest.mark.slow
def test_fixed_steps_train_every_run_on_the_trainers_own_schedule(tmp_path):
    result = run_recipe(tmp_path, "--seconds", "120", "--steps", "30", "--checkpointing_steps", "10",
                        *TWO_VARIANTS, "--", *TINY_RUN)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert json.loads((tmp_path / "runs" / "report.json").read_text())["missing"] == []
    assert_snapshots_come_back(tmp_path, {"plain": (30, False), "averaged": (30, True)}, tars=1)
    configs = run_configs(tmp_path)
    assert [configs[name]["max_steps"] for name in ("plain", "averaged")] == [30, 30]
    assert [configs[name]["decay_epochs"] for name in ("plain", "averaged")] == [100, 100]  # half of it decays


@pytest.mark.parametrize("flags, message", [
    ([f for i in range(5) for f in ("--variant", f"v{i}", "", "--long", f"v{i}")],
     "15 snapshots need 9 files; the device returns 8"),
    (["--steps", "20", "--variant", "a", "", "--long", "a"], "no --long runs"),
    (["--steps", "25", "--variant", "a", ""], "--steps 25 must be a multiple of --checkpointing_steps (250)"),
    (["--variant", "a", "", "--long", "b"], "--long names no --variant: b"),
])
def test_plans_that_cannot_work_are_refused_before_training(tmp_path, flags, message):
    result = run_recipe(tmp_path, "--seconds", "5", *flags, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "runs").exists()
