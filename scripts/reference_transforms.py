"""How far do hand-made edits of one domain's images move KID, with no network at all?

    python scripts/reference_transforms.py --data ../shared/data/monet2photo --output transforms.json
    python scripts/reference_transforms.py --data ../shared/data/monet2photo --direction monet_to_photo

Every trained model so far scores a worse KID than its untranslated inputs. This scores simple,
fixed edits of the held-out images of one domain against the held-out images of the other, as
`cyclegan_hub.evaluate` scores a model's translations (the same features, KID subsets and seed),
to say which of the differences between photos and paintings the metric weighs: the palette
(each image's colours moved the way the two domains' colour statistics differ), the softness
(a blur), the sharpness (an unsharp mask), or palette and blur together. The palette statistics
come from the training split only, so nothing held out shapes the edit (the 273 training
paintings and the first 1,000 training photos). Last, the target domain's training images
against its held-out ones: the distance a model that translated perfectly could hope for.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image, ImageFilter

from cyclegan_hub.data import DataOptions, held_out_images
from cyclegan_hub.metrics import checkerboard_index, detail_ratio, distance, median_detail, shared_features


# direction: (the edited domain, the domain they are scored against), as plural nouns
DIRECTIONS = {"photo_to_monet": ("photos", "paintings"), "monet_to_photo": ("paintings", "photos")}


def by_direction(direction: str, paintings: list, photos: list) -> tuple[list, list]:
    """(the images edited, the images they are scored against) for `direction`."""
    by_name = {"paintings": paintings, "photos": photos}
    return tuple(by_name[name] for name in DIRECTIONS[direction])


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


def score_edits(sources, targets, train_sources, train_targets, target_name: str, blur_radius: float, features) -> dict:
    """KID, FID and detail ratio of each edit of `sources` against `targets`, with its checkerboard
    index against `sources`; and the scores of `train_targets` (the floor)."""
    to_target = palette_transfer(colour_statistics(train_sources), colour_statistics(train_targets))
    blur = ImageFilter.GaussianBlur(blur_radius)
    sharpen = ImageFilter.UnsharpMask(radius=blur_radius, percent=100, threshold=0)
    edits = {
        "untranslated": lambda image: image,
        f"the {target_name}' palette": to_target,
        f"blur (radius {blur_radius:g})": lambda image: image.filter(blur),
        f"sharpen (unsharp mask, radius {blur_radius:g})": lambda image: image.filter(sharpen),
        f"the {target_name}' palette, then blur": lambda image: to_target(image).filter(blur),
    }
    real, real_detail = features(targets), median_detail(targets)
    results = {}
    for name, edit in edits.items():
        edited = [edit(image) for image in sources]
        results[name] = distance(features(edited), real)
        results[name] |= {"checkerboard": checkerboard_index(edited, sources), "detail": detail_ratio(edited, real_detail)}
    # What a model that translated perfectly could reach: other images of the target domain against the held-out ones.
    results[f"training {target_name}"] = distance(features(train_targets), real)
    results[f"training {target_name}"]["detail"] = detail_ratio(train_targets, real_detail)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with trainA/ trainB/ testA/ testB/ (A: Monet, B: photos)")
    parser.add_argument("--direction", choices=DIRECTIONS, default="photo_to_monet",
                        help="which held-out images are edited: the photos (scored against the paintings) or the paintings")
    parser.add_argument("--blur", type=float, default=1.0, help="radius in pixels of the blur and of the unsharp mask")
    parser.add_argument("--output", default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    options = DataOptions(dataset=args.data)
    paintings, photos, _ = held_out_images(options, "test", fallback=False)
    train_paintings, train_photos, _ = held_out_images(options, "train", limit=1000)  # all 273 paintings
    source_name, target_name = DIRECTIONS[args.direction]
    held_out, train = by_direction(args.direction, paintings, photos), by_direction(args.direction, train_paintings, train_photos)
    results = score_edits(*held_out, *train, target_name, args.blur, shared_features("cpu"))

    print(f"| {source_name}, edited | KID x 100 against held-out {target_name} | FID | detail | checkerboard |\n|---|---|---|---|---|")
    for name, scores in results.items():
        label, checkerboard = (name, f"{scores['checkerboard']:.2f}") if "checkerboard" in scores else (f"(not an edit) {name}", "")
        print(f"| {label} | {100 * scores['kid']:.2f} ± {100 * scores['kid_std']:.2f} | {scores['fid']:.1f} | "
              f"{scores['detail']:.2f} | {checkerboard} |")
    if args.output:
        with open(args.output, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
