"""How far do hand-made edits of the photos move photo -> Monet KID, with no network at all?

    python scripts/reference_transforms.py --data ../shared/data/monet2photo --output transforms.json

Every trained model so far scores a worse KID than the untranslated photos. This scores simple,
fixed edits of the held-out photos against the held-out paintings, as `cyclegan_hub.evaluate`
scores a model's translations (the same features, KID subsets and seed), to say which of the
differences between photos and paintings the metric weighs: the palette (each photo's colours
moved the way the photos' colour statistics differ from the training paintings'), the softness
(a blur), or both. The palette statistics come from the training split only, so nothing held out
shapes the edit (the statistics of the 273 training paintings and the first 1,000 training photos).
Last, the training paintings themselves against the held-out ones: the distance a model that
painted like Monet could hope for.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image, ImageFilter

from cyclegan_hub.data import DataOptions, held_out_images
from cyclegan_hub.metrics import checkerboard_index, distance, shared_features


def colour_statistics(images) -> dict[str, np.ndarray]:
    """Per RGB channel: the mean and spread over images of each image's mean, and each image's
    spread around its own mean, averaged over images."""
    arrays = [np.asarray(image, dtype=np.float32) / 255 for image in images]
    means = np.stack([array.mean(axis=(0, 1)) for array in arrays])
    return {
        "mean_of_means": means.mean(axis=0),
        "spread_of_means": means.std(axis=0),
        "contrast": np.stack([array.std(axis=(0, 1)) for array in arrays]).mean(axis=0),
    }


def palette_transfer(source_stats: dict, target_stats: dict):
    """An edit that maps the source domain's colour statistics onto the target's, image by image:
    each image's mean colour moves within the spread of image means as the two domains' spreads
    relate (so scenes keep their differences), and its contrast around that mean scales by the
    ratio of the domains' average contrasts."""
    scale_means = target_stats["spread_of_means"] / source_stats["spread_of_means"]
    scale_contrast = target_stats["contrast"] / source_stats["contrast"]

    def edit(image: Image.Image) -> Image.Image:
        array = np.asarray(image, dtype=np.float32) / 255
        mean = array.mean(axis=(0, 1))
        new_mean = target_stats["mean_of_means"] + (mean - source_stats["mean_of_means"]) * scale_means
        moved = new_mean + (array - mean) * scale_contrast
        return Image.fromarray(np.round(np.clip(moved, 0, 1) * 255).astype(np.uint8))

    return edit


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with trainA/ trainB/ testA/ testB/ (A: Monet, B: photos)")
    parser.add_argument("--blur", type=float, default=1.0, help="Gaussian blur radius in pixels for the soft edits")
    parser.add_argument("--output", default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    options = DataOptions(dataset=args.data)
    paintings, photos, _ = held_out_images(options, "test")
    train_paintings, train_photos, _ = held_out_images(options, "train", limit=1000)  # all 273 paintings
    to_monet = palette_transfer(colour_statistics(train_photos), colour_statistics(train_paintings))
    blur = ImageFilter.GaussianBlur(args.blur)
    edits = {
        "untranslated": lambda image: image,
        "Monet's palette": to_monet,
        f"blur (radius {args.blur:g})": lambda image: image.filter(blur),
        "Monet's palette, then blur": lambda image: to_monet(image).filter(blur),
    }

    features = shared_features("cpu")
    real = features(paintings)
    results = {}
    print("| photos, edited | KID x 100 photo -> Monet | FID | checkerboard |\n|---|---|---|---|")
    for name, edit in edits.items():
        edited = [edit(photo) for photo in photos]
        scores = distance(features(edited), real)
        scores["checkerboard"] = checkerboard_index(edited, photos)
        results[name] = scores
        print(f"| {name} | {100 * scores['kid']:.2f} ± {100 * scores['kid_std']:.2f} | {scores['fid']:.1f} | {scores['checkerboard']:.2f} |")
    # What a model that painted like Monet could reach: other paintings of his against the held-out ones.
    floor = distance(features(train_paintings), real)
    results["Monet's training paintings"] = floor
    print(f"| (not photos) Monet's {len(train_paintings)} training paintings | {100 * floor['kid']:.2f} ± "
          f"{100 * floor['kid_std']:.2f} | {floor['fid']:.1f} | |")
    if args.output:
        with open(args.output, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
