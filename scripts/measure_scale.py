"""Translate large images at their own size, or at the model's training resolution and upscale?

    python scripts/measure_scale.py --model demo_model --data ../shared/data/monet2photo \
        --photos 100 --output docs/recipe/scale_pair.json --crops docs/recipe --crop_prefix crop_1024_pair

A model trained on 256 px crops of images resized to 286 px paints strokes at that scale. An
upload of 1024 px shows it the same scene four times larger, and the strokes come out four times
too fine. The held-out photos are 256 px, so the large uploads here are those photos upscaled
(Lanczos) by 2 and 4: the scene's scale is what matters, though the pixels are softer than a real
photo's. Each is translated photo -> Monet at both scales; the outputs are brought back to 256 px (Lanczos) and
compared with the held-out Monet paintings by KID (with its spread over subsets), and 1:1 crops
of one 1024 px result are saved to look at.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from cyclegan_hub import CycleGAN
from cyclegan_hub.data import DataOptions, held_out_images
from cyclegan_hub.metrics import distance, shared_features

FACTORS = (2, 4)
CROP = 384  # pixels of a 1:1 crop


def kid(scores: dict) -> dict:
    return {"kid": scores["kid"], "kid_std": scores["kid_std"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo_model")
    parser.add_argument("--data", required=True, help="folder with testA/ (Monet) and testB/ (photos)")
    parser.add_argument("--photos", type=int, default=200, help="held-out photos to translate per setting")
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--crops", type=Path, help="folder for 1:1 crops of one 1024 px translation")
    parser.add_argument("--crop_prefix", default="crop_1024",
                        help="the crops' file names: PREFIX_scale_input.jpg and PREFIX_scale_training.jpg")
    args = parser.parse_args()

    model = CycleGAN.from_pretrained(args.model)
    target = model.resolve_direction("monet")
    monets, photos, _ = held_out_images(DataOptions(dataset=args.data), "test", fallback=False)
    photos = photos[: args.photos]
    features = shared_features("cpu")
    real = features(monets)
    rows = {"training_resolution": model.training_resolution, "photos": len(photos), "paintings": len(monets)}
    rows["at 256 px (no upscaling)"] = kid(distance(model.translate(photos, target), real, features=features))
    side = photos[0].width  # 256: the held-out photos are square
    for factor in FACTORS:
        large = [photo.resize((photo.width * factor, photo.height * factor), Image.Resampling.LANCZOS) for photo in photos]
        for scale in ("input", "training"):
            outputs = model.translate(large, target, scale=scale, batch_size=1)
            if args.crops and factor == 4:
                args.crops.mkdir(parents=True, exist_ok=True)
                left, top = (outputs[0].width - CROP) // 2, 0
                outputs[0].crop((left, top, left + CROP, top + CROP)).save(args.crops / f"{args.crop_prefix}_scale_{scale}.jpg", quality=92)
            small = [image.resize(photo.size, Image.Resampling.LANCZOS) for image, photo in zip(outputs, photos)]
            key = f"{side * factor} px, scale={scale}"
            rows[key] = kid(distance(small, real, features=features))
            print(f"{key}: KID {rows[key]['kid']:.4f} ± {rows[key]['kid_std']:.4f}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
