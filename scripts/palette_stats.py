"""How bright, saturated and warm are a model's Monet translations, against Monet's paintings?

    python scripts/palette_stats.py --data ../shared/data/monet2photo --model demo_model RUN/checkpoint-2000

KID says how far the translations are from the paintings, not in which way. This prints, for the
held-out photos, the held-out paintings and each model's translations of the photos: the mean
brightness (HSV value) and saturation, the warmth ((R + G) / 2 - B, positive for yellow), each in
[0, 1] and averaged over images, and how much the images' mean colours differ from one another
(the standard deviation over images of each one's mean R, G, B, averaged over the channels): a
model that paints every scene in one palette has a small spread.
"""

from __future__ import annotations

import argparse

import numpy as np

from cyclegan_hub.checkpoints import load_model
from cyclegan_hub.data import DataOptions, held_out_images


def palette(images) -> dict[str, float]:
    hsv = np.stack([np.asarray(image.convert("HSV"), dtype=np.float32).mean(axis=(0, 1)) / 255 for image in images])
    rgb = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32).mean(axis=(0, 1)) / 255 for image in images])
    return {
        "brightness": float(hsv[:, 2].mean()),
        "saturation": float(hsv[:, 1].mean()),
        "warmth": float(((rgb[:, 0] + rgb[:, 1]) / 2 - rgb[:, 2]).mean()),
        "colour spread": float(rgb.std(axis=0).mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with testA/ (Monet) and testB/ (photos)")
    parser.add_argument("--model", nargs="*", default=[], help="saved models or checkpoint-N folders")
    parser.add_argument("--photos", type=int, default=200, help="held-out photos to translate per model")
    args = parser.parse_args()

    monets, photos, _ = held_out_images(DataOptions(dataset=args.data), "test", fallback=False)
    photos = photos[: args.photos]
    rows = {"photos": palette(photos), "Monet's paintings": palette(monets)}
    for name in args.model:
        model = load_model(name)
        rows[name] = palette(model.translate(photos, model.resolve_direction("monet")))
    print("| images | " + " | ".join(rows["photos"]) + " |")
    print("|---" * (1 + len(rows["photos"])) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{value:.3f}" for value in row.values()) + " |")


if __name__ == "__main__":
    main()
