"""`scripts/make_demo_model.py` end to end: a real (tiny) training run's checkpoint becomes a demo
model folder with the domains in the demo's order, held-out metrics, samples and a card."""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import helpers
from cyclegan_hub import CycleGAN
from cyclegan_hub.checkpoints import model_from_checkpoint

SCRIPT = helpers.REPO / "scripts" / "make_demo_model.py"
spec = importlib.util.spec_from_file_location("make_demo_model", SCRIPT)
make_demo_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_demo_model)
TINY_RUN = ["--ngf", "8", "--ndf", "8", "--n_blocks", "2", "--load_size", "36", "--crop_size", "32",
            "--num_workers", "0", "--cpu_threads", "1", "--max_steps", "4", "--checkpointing_steps", "4"]


def train_tiny_run(tmp_path, name: str, *flags) -> tuple[Path, Path, dict]:
    """A 4-step Monet-first run on a tiny monet2photo-like folder: (data, run folder, environment)."""
    env = helpers.script_env(tmp_path / "hf-home")
    data = tmp_path / "data"
    if not data.is_dir():
        helpers.layout_d(data, counts=(4, 3, 6, 6))  # trainA/ stands for Monet, as in monet2photo
    run_dir = tmp_path / name
    helpers.run_checked([helpers.PYTHON, helpers.SCRIPT, "--dataset", data, "--domain_a", "monet", "--domain_b", "photo",
                         "--output_dir", run_dir, *TINY_RUN, *flags], env)
    return data, run_dir, env


@pytest.mark.slow
def test_a_monet_first_checkpoint_becomes_a_photo_first_demo_model_with_its_card(tmp_path):
    data, run_dir, env = train_tiny_run(tmp_path, "run")
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
    run = json.loads((demo / "training_run.json").read_text())
    assert run["step"] == 4 and "monet_to_photo" not in run
    card = (demo / "README.md").read_text()
    assert "second run" not in card and "never trained together" not in card
    assert "| detail ratio |" in card and f"detail ratio {metrics['this model']['detail_a2b']:.2f}" in card
    assert "4 steps of batch 1" in card and "3 photos" in card and "4 Monet paintings" in card
    assert "the saved pair lists photo first, so its `a2b` is photo → monet" in card
    assert (demo / "samples.png").stat().st_size > 0


@pytest.mark.slow
def test_each_direction_can_come_from_its_own_run_with_the_same_networks(tmp_path):
    data, painter, env = train_tiny_run(tmp_path, "painter", "--lambda_identity", "0")
    _, returner, _ = train_tiny_run(tmp_path, "returner", "--lambda_cyc", "5", "--seed", "1")
    demo = tmp_path / "demo"
    helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", painter / "checkpoint-4", "--monet_to_photo_checkpoint",
                         returner / "checkpoint-4", "--data", data, "--output", demo, "--skip_latency"], env)

    # Monet-first runs: photo -> Monet is their generator_ba, and D_X (discriminator_a) judges Monet.
    first = model_from_checkpoint(painter / "checkpoint-4", with_discriminators=True)
    second = model_from_checkpoint(returner / "checkpoint-4", with_discriminators=True)
    expected = {"generator_ab": first.generator_ba, "generator_ba": second.generator_ab}
    saved = load_file(str(demo / "model.safetensors"))
    for name, network in expected.items():
        assert all(torch.equal(saved[f"{name}.{key}"], value.half()) for key, value in network.state_dict().items()), name
    judges = {"discriminator_b": first.discriminator_a, "discriminator_a": second.discriminator_b}  # each with its generator
    saved = load_file(str(demo / "discriminators.safetensors"))
    for name, network in judges.items():
        assert all(torch.equal(saved[f"{name}.{key}"], value.half()) for key, value in network.state_dict().items()), name
    assert not torch.equal(first.generator_ab.state_dict()["stem.conv.weight"], second.generator_ab.state_dict()["stem.conv.weight"])

    run = json.loads((demo / "training_run.json").read_text())
    assert run["config"]["lambda_identity"] == [0.0] and run["monet_to_photo"]["config"]["lambda_cyc"] == 5.0
    card = (demo / "README.md").read_text()
    assert card.count("comes from step 4 of a second run") == 1 and "from a second run (see Training)" in card
    assert "Known limits:" in card and "never trained together" in card
    assert "whose flags differ in `--lambda_cyc 5.0`, `--lambda_identity 0.5`, `--seed 1`:" in card

    # A new photo -> Monet beside the made model's Monet -> photo, without the second run's checkpoint.
    shutil.rmtree(returner)
    again = tmp_path / "again"
    helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", painter / "checkpoint-4", "--monet_to_photo_checkpoint",
                         demo, "--data", data, "--output", again, "--skip_latency"], env)
    for filename in ("model.safetensors", "discriminators.safetensors"):
        made, remade = load_file(str(demo / filename)), load_file(str(again / filename))
        assert made.keys() == remade.keys() and all(torch.equal(made[key], remade[key]) for key in made), filename
    assert json.loads((again / "training_run.json").read_text())["monet_to_photo"] == run["monet_to_photo"]
    assert "comes from step 4 of a second run" in (again / "README.md").read_text()

    _, other_networks, _ = train_tiny_run(tmp_path, "narrower", "--ngf", "4")
    refused = helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", painter / "checkpoint-4", "--monet_to_photo_checkpoint",
                                   other_networks / "checkpoint-4", "--data", data, "--output", tmp_path / "refused",
                                   "--skip_latency"], env, check=False)
    assert refused.returncode != 0 and "configs differ in generator.ngf:" in refused.stderr
    assert not (tmp_path / "refused").exists()

    # The model a run saves at its end is a source too; only its run's record is taken from it.
    from_run = tmp_path / "from_run"
    helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", painter / "model", "--data", data, "--output", from_run,
                         "--skip_latency"], env)
    recorded = json.loads((from_run / "training_run.json").read_text())
    assert recorded.keys() == {"config", "step", "seconds"} and (recorded["config"], recorded["step"]) == (run["config"], 4)
    painted, saved = load_file(str(demo / "model.safetensors")), load_file(str(from_run / "model.safetensors"))
    assert all(torch.equal(painted[key], saved[key]) for key in painted if key.startswith("generator_ab."))

    # And a made model's photo -> Monet, the painter's run folder gone too: the pair rebuilds as it was.
    shutil.rmtree(painter)
    rebuilt = tmp_path / "rebuilt"
    helpers.run_checked([helpers.PYTHON, SCRIPT, "--checkpoint", again, "--data", data, "--output", rebuilt, "--skip_latency"], env)
    for filename in ("model.safetensors", "discriminators.safetensors"):
        made, remade = load_file(str(again / filename)), load_file(str(rebuilt / filename))
        assert made.keys() == remade.keys() and all(torch.equal(made[key], remade[key]) for key in made), filename
    assert json.loads((rebuilt / "training_run.json").read_text()) == json.loads((again / "training_run.json").read_text())
    assert "comes from step 4 of a second run" in (rebuilt / "README.md").read_text()


def test_flags_changed_writes_each_flag_as_typed():
    run = {"config": {"dataset": "d", "compile": True, "diffaugment": True, "lambda_cyc": 10.0, "n_layers_d": [3]}}
    other = {"config": {"dataset": "d", "ema_decay": 0.999, "lambda_cyc": 5.0, "n_layers_d": [3, 4]}}
    assert make_demo_model.flags_changed(run, other) == (
        "without `--compile`, without `--diffaugment`, `--ema_decay 0.999`, `--lambda_cyc 5.0`, `--n_layers_d 3 4`"
    )
    assert make_demo_model.flags_changed(other, run) == (
        "`--compile`, `--diffaugment`, without `--ema_decay`, `--lambda_cyc 10.0`, `--n_layers_d 3`"
    )
    assert make_demo_model.flags_changed(run, run) == ""
    # DiffAugment's settings: compared while both runs have it, named where the other run turns it on.
    domains = {"config": {**run["config"], "diffaugment_domains": "a"}}
    assert make_demo_model.flags_changed(run, domains) == "`--diffaugment_domains a`"
    assert make_demo_model.flags_changed(other, domains) == (
        "`--compile`, `--diffaugment`, `--diffaugment_domains a`, without `--ema_decay`, `--lambda_cyc 10.0`, `--n_layers_d 3`"
    )
    assert make_demo_model.flags_changed(domains, other) == make_demo_model.flags_changed(run, other)


def test_an_epoch_schedule_is_described_without_its_steps():
    config = make_demo_model.TrainConfig(dataset="d", num_epochs=3, decay_epochs=2)
    assert make_demo_model.schedule_so_far(config, 10) == (
        "a schedule in epochs: the learning rate 0.0002 for 3, then decayed linearly to 0 over 2 more."
    )


def test_known_limits_names_each_direction_not_below_its_untranslated_inputs():
    untranslated = {"kid_a2b": 0.05, "kid_b2a": 0.05}
    limits = make_demo_model.known_limits({"kid_a2b": 0.04, "kid_b2a": 0.06}, untranslated, "Looked at: soft.", from_two_runs=True)
    assert limits.startswith("Known limits: Looked at: soft. Monet → photo (KID 0.060) is not below")
    assert "Photo → Monet" not in limits and "never trained together" in limits
    assert make_demo_model.known_limits({"kid_a2b": 0.04, "kid_b2a": 0.04}, untranslated, None, from_two_runs=False) == ""



def test_a_reference_is_checked_when_parsed(tmp_path):
    CycleGAN("photo", "monet", generator=dict(ngf=8, n_blocks=2)).save_pretrained(tmp_path / "old")
    assert make_demo_model.labelled_model(f"old model={tmp_path / 'old'}") == ("old model", tmp_path / "old")
    with pytest.raises(argparse.ArgumentTypeError, match="expected LABEL=FOLDER"):
        make_demo_model.labelled_model(str(tmp_path / "old"))
    with pytest.raises(argparse.ArgumentTypeError, match="has no config.json: not a saved model"):
        make_demo_model.labelled_model(f"empty={tmp_path}")


def test_the_sources_are_checked_when_parsed(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (tmp_path / "made").mkdir()
    (tmp_path / "made" / "training_run.json").write_text("{}")
    for source in ("checkpoint-4", "made"):
        assert make_demo_model.checkpoint_or_made_model(str(tmp_path / source)) == tmp_path / source
    with pytest.raises(argparse.ArgumentTypeError, match="is neither a checkpoint-N folder .* nor a model this script made"):
        make_demo_model.checkpoint_or_made_model(str(tmp_path / "missing"))
