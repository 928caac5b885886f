"""`scripts/make_demo_model.py` end to end: a real (tiny) training run's checkpoint becomes a demo
model folder with the domains in the demo's order, held-out metrics, samples and a card."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import helpers
from cyclegan_hub import CycleGAN
from cyclegan_hub.checkpoints import model_from_checkpoint

SCRIPT = helpers.REPO / "scripts" / "make_demo_model.py"
TINY_RUN = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", "36", "--crop_size", "32",
            "--num_workers", "0", "--cpu_threads", "1", "--max_steps", "4", "--checkpointing_steps", "4"]


@pytest.mark.slow
def test_a_monet_first_checkpoint_becomes_a_photo_first_demo_model_with_its_card(tmp_path):
    env = helpers.script_env(tmp_path / "hf-home")
    data = helpers.layout_d(tmp_path / "data", counts=(4, 3, 6, 6))  # trainA/ stands for Monet, as in monet2photo
    run_dir = tmp_path / "run"
    helpers.run_checked([helpers.PYTHON, helpers.SCRIPT, "--dataset", data, "--domain_a", "monet", "--domain_b", "photo", "--output_dir", run_dir, *TINY_RUN], env)
    demo = tmp_path / "demo"
    helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", run_dir / "checkpoint-4", "--data", data, "--output", demo, "--skip_latency"], env)

    trained = model_from_checkpoint(run_dir / "checkpoint-4")
    config = json.loads((demo / "config.json").read_text())
    assert (config["domain_a"], config["domain_b"]) == ("photo", "monet")  # the demo opens on photo -> Monet
    saved = load_file(str(demo / "model.safetensors"))
    swapped = {f"generator_ab.{k}": v for k, v in trained.generator_ba.state_dict().items()}  # photo -> Monet
    swapped |= {f"generator_ba.{k}": v for k, v in trained.generator_ab.state_dict().items()}
    assert saved.keys() == swapped.keys() and all(v.dtype == torch.float16 for v in saved.values())
    assert all(torch.equal(saved[k], v.half()) for k, v in swapped.items())
    assert (demo / "discriminators.safetensors").is_file()  # the checkpoint had them: training can go on
    assert CycleGAN.from_pretrained(demo).domain_a == "photo"

    metrics = json.loads((demo / "metrics.json").read_text())
    for row in ("this model", "untranslated input"):
        assert metrics[row]["num_a"] == 6 and metrics[row]["kid_a2b"] == metrics[row]["kid_a2b"]  # measured, not NaN
    untranslated = metrics["untranslated input"]
    assert untranslated["detail_b2a"] == pytest.approx(1 / untranslated["detail_a2b"])  # photos against paintings, and back
    assert "latency_s" not in metrics
    assert json.loads((demo / "training_run.json").read_text())["step"] == 4
    card = (demo / "README.md").read_text()
    assert "| detail ratio |" in card and f"detail ratio {metrics['this model']['detail_a2b']:.2f}" in card
    assert "4 steps of batch 1" in card and "3 photos" in card and "4 Monet paintings" in card
    assert "the saved pair lists photo first, so its `a2b` is photo → monet" in card
    assert (demo / "samples.png").stat().st_size > 0
