"""`start_from_pretrained` (--init_from): a saved pair's weights copied into a fresh one about to
train, domains matched by name, discriminators taken only where there are some of the same kind.
The command line's use of it, and its mistakes, are in test_train_script.py."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import constants

from cyclegan_hub.checkpoints import CheckpointError, start_from_pretrained
from cyclegan_hub.hub import WEIGHTS_FILE
from cyclegan_hub.model import DISCRIMINATORS_FILE

SWAPPED = {"generator_ab": "generator_ba", "generator_ba": "generator_ab", "discriminator_a": "discriminator_b", "discriminator_b": "discriminator_a"}


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_b = b.state_dict()
    assert all(torch.equal(value, state_b[key]) for key, value in a.state_dict().items())


def fresh_pair(make_cyclegan, seed: int, **kwargs):
    torch.manual_seed(seed)
    return make_cyclegan(with_discriminators=True, **kwargs)


def test_the_same_domains_take_every_network(make_cyclegan, tmp_path):
    saved = fresh_pair(make_cyclegan, seed=1)
    saved.save_pretrained(tmp_path / "saved")
    model = fresh_pair(make_cyclegan, seed=2)
    assert start_from_pretrained(model, tmp_path / "saved") is True
    for name in SWAPPED:
        assert_same_weights(getattr(model, name), getattr(saved, name))


def test_domains_named_the_other_way_round_swap_the_networks_from_the_hub_cache(make_cyclegan, tmp_path, hub_cache, monkeypatch):
    saved = fresh_pair(make_cyclegan, seed=1)  # photo -> monet
    saved.save_pretrained(tmp_path / "saved")
    cache_dir, _ = hub_cache("org/monet", tmp_path / "saved", ["config.json", WEIGHTS_FILE, DISCRIMINATORS_FILE])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))  # where a user's cache would be
    model = fresh_pair(make_cyclegan, seed=2, domain_a="monet", domain_b="photo")
    assert start_from_pretrained(model, "org/monet") is True
    for name, origin in SWAPPED.items():
        assert_same_weights(getattr(model, name), getattr(saved, origin))


def test_a_model_pushed_without_discriminators_gives_its_generators_and_fresh_discriminators(make_cyclegan, tmp_path, hub_cache, monkeypatch):
    saved = fresh_pair(make_cyclegan, seed=1)
    saved.save_pretrained(tmp_path / "saved")
    cache_dir, _ = hub_cache("org/monet", tmp_path / "saved", ["config.json", WEIGHTS_FILE])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    model = fresh_pair(make_cyclegan, seed=2)
    fresh = {name: {k: v.clone() for k, v in getattr(model, name).state_dict().items()} for name in ("discriminator_a", "discriminator_b")}
    assert start_from_pretrained(model, "org/monet") is False
    assert_same_weights(model.generator_ab, saved.generator_ab)
    for name, state in fresh.items():
        assert all(torch.equal(value, state[key]) for key, value in getattr(model, name).state_dict().items())


def test_discriminators_of_other_settings_start_fresh(make_cyclegan, tmp_path):
    saved = fresh_pair(make_cyclegan, seed=1, discriminator=dict(ndf=8, n_layers=3))
    saved.save_pretrained(tmp_path / "saved")
    model = fresh_pair(make_cyclegan, seed=2)  # n_layers 2
    assert start_from_pretrained(model, tmp_path / "saved") is False
    assert_same_weights(model.generator_ba, saved.generator_ba)


@pytest.mark.parametrize(
    ("saved_kwargs", "message"),
    [
        (dict(generator=dict(ngf=8, n_blocks=3)), "has generator n_blocks 3 where the flags ask for 2"),
        (dict(domain_a="horse", domain_b="monet"), "translates horse <-> monet: name the run's domains the same"),
    ],
)
def test_a_pair_that_cannot_be_continued_is_refused(make_cyclegan, tmp_path, saved_kwargs, message):
    make_cyclegan(**saved_kwargs).save_pretrained(tmp_path / "saved")
    with pytest.raises(CheckpointError, match=message):
        start_from_pretrained(fresh_pair(make_cyclegan, seed=2), tmp_path / "saved")
