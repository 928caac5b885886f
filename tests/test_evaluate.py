"""Evaluating a CycleGAN on held-out images, and the evaluation command line."""

from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pytest
import torch

from cyclegan_hub import evaluate
from cyclegan_hub.data import DataOptions
from cyclegan_hub.evaluate import Evaluation, evaluate_translation
from cyclegan_hub.metrics import detail_ratio, shared_features
from images_for_metrics import noise_images, smooth_images

TRANSLATION_KEYS = {"fid_a2b", "kid_a2b", "kid_a2b_std", "fid_b2a", "kid_b2a", "kid_b2a_std"}
TRANSLATION_KEYS |= {"checkerboard_a2b", "checkerboard_b2a", "detail_a2b", "detail_b2a", "num_a", "num_b", "protocol"}
BASELINE_KEYS = {"fid_baseline", "kid_baseline", "kid_baseline_std", "detail_baseline"}


@pytest.fixture(scope="module")
def extractor():
    """The process-wide CPU extractor, so the CLI test reuses the same loaded network."""
    return shared_features("cpu")


# ---------------------------------------------------------------- evaluate_translation and CLI


@pytest.mark.slow
def test_evaluate_translation_on_a_tiny_cyclegan(extractor, make_cyclegan):
    model = make_cyclegan().train()
    images_a = smooth_images(8)
    images_b = noise_images(7, size=(48, 64))  # another size: translate keeps it
    result = evaluate_translation(model, images_a, images_b, max_images=5, baseline=True, num_subsets=10)
    assert set(result) == TRANSLATION_KEYS | BASELINE_KEYS
    assert (result["num_a"], result["num_b"]) == (5, 5)
    for key in (TRANSLATION_KEYS | BASELINE_KEYS) - {"num_a", "num_b", "protocol"}:
        assert isinstance(result[key], float) and np.isfinite(result[key]), key
    assert result["fid_a2b"] > 0 and result["fid_b2a"] > 0 and result["fid_baseline"] > 0
    assert result["detail_baseline"] == detail_ratio(images_a[:5], images_b[:5]) < 0.1  # gradients against noise
    assert all(module.training for module in model.modules())  # modes restored
    expected = ("Inception-v3", "299x299", "TF1-style bilinear", "(x·y / 2048 + 1)³")
    for words in expected + ("10 subsets of 5", "5 A and 5 B"):
        assert words in result["protocol"]


@pytest.mark.slow
def test_an_evaluation_scores_any_number_of_models_on_the_same_real_features(extractor, make_cyclegan):
    evaluation = Evaluation(smooth_images(4), noise_images(3), image_size=32, features=extractor, num_subsets=3)
    assert evaluation.real_a.shape == (4, 2048) and evaluation.real_b.shape == (3, 2048)
    first, other = make_cyclegan(), make_cyclegan(generator=dict(ngf=4, n_blocks=1))
    result = evaluation(first)
    assert set(result) == TRANSLATION_KEYS
    assert evaluation(first) == result  # reproducible: same translations, same KID subsets
    assert evaluation(other)["kid_a2b"] != result["kid_a2b"]
    assert result == evaluate_translation(first, smooth_images(4), noise_images(3), image_size=32, features=extractor, num_subsets=3)
    assert "resized to 32x32 (bicubic)" in result["protocol"]


def write_folder(root, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        make = smooth_images if name.endswith("A") else noise_images
        for index, image in enumerate(make(count, seed=len(name) + count)):
            image.save(root / name / f"{index}.png")


def test_cli_flags_cover_every_data_option():
    parser = evaluate.build_parser()
    hints = typing.get_type_hints(DataOptions)
    for field in dataclasses.fields(DataOptions):
        flag = [f"--{field.name}"] if hints[field.name] is bool else [f"--{field.name}", "x"]
        args = parser.parse_args(["--model", "m", *flag])
        assert getattr(args, field.name) == (True if hints[field.name] is bool else "x")
    args = parser.parse_args(["--model", "m", "--dataset", "d"])
    assert args.split == "test" and args.streaming is False


def test_cli_reports_a_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(tmp_path), "--dataset", str(tmp_path / "missing"), "--device", "cpu"])
    assert "cannot load dataset" in capsys.readouterr().err


def test_cli_refuses_a_wrong_model_or_flag_before_the_real_images_are_scored(tmp_path, capsys):
    data = tmp_path / "data"
    write_folder(data, {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2})
    common = ["--dataset", str(data), "--device", "cpu"]
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(tmp_path / "no_such_model"), *common])
    assert "could not load a --model" in capsys.readouterr().err
    for flag in ("--batch_size", "--num_subsets"):
        with pytest.raises(SystemExit):
            evaluate.main(["--model", str(tmp_path), *common, flag, "0"])
        assert f"{flag} must be >= 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_on_a_local_folder(tmp_path, extractor, make_cyclegan, capsys):
    data = tmp_path / "data"
    write_folder(data, {"trainA": 2, "trainB": 2, "testA": 6, "testB": 5})
    make_cyclegan().save_pretrained(tmp_path / "model")
    output = tmp_path / "results.json"
    # --split defaults to test: the testA/ and testB/ images.
    argv = ["--model", str(tmp_path / "model"), "--dataset", str(data), "--device", "cpu", "--num_subsets", "5"]
    argv += ["--baseline", "--output", str(output)]
    [result] = evaluate.main(argv)
    report = json.loads(output.read_text())
    assert TRANSLATION_KEYS | BASELINE_KEYS <= set(report)
    assert (report["num_a"], report["num_b"]) == (6, 5)
    assert report["model"] == str(tmp_path / "model") and report["data"]["split"] == "test"
    assert report["fid_a2b"] == pytest.approx(result["fid_a2b"])
    printed = capsys.readouterr().out
    for words in ("photo -> monet", "monet -> photo", "untranslated", "KID x 100", "detail", "6 / 5"):
        assert words in printed


@pytest.mark.slow
def test_cli_scores_several_models_against_the_same_real_images(tmp_path, extractor, make_cyclegan):
    data = tmp_path / "data"
    write_folder(data, {"trainA": 2, "trainB": 2, "testA": 4, "testB": 4})
    for seed in (1, 2):
        torch.manual_seed(seed)
        make_cyclegan().save_pretrained(tmp_path / f"model{seed}")
    common = ["--dataset", str(data), "--device", "cpu", "--num_subsets", "3"]
    both = evaluate.main(["--model", str(tmp_path / "model1"), str(tmp_path / "model2"), *common,
                          "--output", str(tmp_path / "1.json"), str(tmp_path / "2.json")])
    alone = evaluate.main(["--model", str(tmp_path / "model2"), *common])
    assert both[1]["kid_a2b"] == pytest.approx(alone[0]["kid_a2b"]) and both[0]["kid_a2b"] != both[1]["kid_a2b"]
    assert json.loads((tmp_path / "2.json").read_text())["model"] == str(tmp_path / "model2")
    with pytest.raises(SystemExit):  # one output file per model
        evaluate.main(["--model", str(tmp_path / "model1"), str(tmp_path / "model2"), *common, "--output", str(tmp_path / "x.json")])
