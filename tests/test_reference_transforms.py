"""`scripts/reference_transforms.py`: its palette edit moves one domain's colour statistics onto
another's and keeps the scenes' differences; its study scores each edit against the other domain
with the real Inception network."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from cyclegan_hub.metrics import shared_features

import helpers

spec = importlib.util.spec_from_file_location("reference_transforms", helpers.REPO / "scripts" / "reference_transforms.py")
reference_transforms = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference_transforms)


@pytest.fixture(scope="module")
def extractor():
    return shared_features("cpu")


def scenes(rng, mean_colours, contrast: float) -> list[Image.Image]:
    return [Image.fromarray(np.clip(np.asarray(colour) + rng.normal(0, contrast, (24, 20, 3)), 0, 255).astype(np.uint8))
            for colour in mean_colours]


def channel_means(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.float32).mean(axis=(0, 1)) for image in images])


def test_palette_transfer_moves_the_statistics_and_keeps_the_order_of_scenes():
    rng = np.random.default_rng(0)
    photos = scenes(rng, rng.uniform(60, 140, (40, 3)), contrast=30)  # darker, more contrast, wide range
    paintings = scenes(rng, rng.uniform(120, 170, (40, 3)), contrast=12)  # brighter, softer, alike
    source, target = (reference_transforms.colour_statistics(images) for images in (photos, paintings))
    edit = reference_transforms.palette_transfer(source, target)
    edited = [edit(photo) for photo in photos]

    moved = reference_transforms.colour_statistics(edited)
    for key in ("mean_of_means", "spread_of_means", "contrast"):
        np.testing.assert_allclose(moved[key], target[key], atol=2 / 255)
        assert np.abs(source[key] - target[key]).max() > 10 / 255  # so the edit had somewhere to go
    for before, after in zip(channel_means(photos).T, channel_means(edited).T):  # each channel's order of scenes
        assert np.array_equal(np.argsort(before), np.argsort(after))


def test_score_edits_scores_each_edit_of_the_source_domain_against_the_target_domain(extractor):
    rng = np.random.default_rng(1)
    paintings = scenes(rng, rng.uniform(150, 200, (4, 3)) * [1, 0.5, 0.3], contrast=10)  # warm
    photos = scenes(rng, rng.uniform(150, 200, (5, 3)) * [0.3, 0.5, 1], contrast=30)  # cool
    train_paintings = scenes(rng, rng.uniform(150, 200, (4, 3)) * [1, 0.5, 0.3], contrast=10)
    train_photos = scenes(rng, rng.uniform(150, 200, (5, 3)) * [0.3, 0.5, 1], contrast=30)

    results = reference_transforms.score_edits(paintings, photos, train_paintings, train_photos, "photos", 1.0, extractor)

    assert list(results) == ["untranslated", "the photos' palette", "blur (radius 1)", "sharpen (unsharp mask, radius 1)",
                             "the photos' palette, then blur", "training photos"]
    # warm paintings given the photos' cool palette, and other photos, are nearer the photos than the paintings are
    assert results["the photos' palette"]["fid"] < results["untranslated"]["fid"]
    assert results["training photos"]["fid"] < results["untranslated"]["fid"]
    details = [results[name]["detail"] for name in ("blur (radius 1)", "untranslated", "sharpen (unsharp mask, radius 1)")]
    assert details == sorted(details) and details[0] < 0.9 * details[1] and details[2] > 1.1 * details[1]
    assert "checkerboard" not in results["training photos"]  # not an edit of the paintings


def test_by_direction_edits_the_first_domain_named():
    paintings, photos = ["painting"], ["photo"]
    assert reference_transforms.by_direction("photo_to_monet", paintings, photos) == (photos, paintings)
    assert reference_transforms.by_direction("monet_to_photo", paintings, photos) == (paintings, photos)
