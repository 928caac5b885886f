"""What does a run's discriminator reward? Its verdict on held-out paintings, on the same paintings
with their palette changed, and on the generator's translations.

    python scripts/discriminator_probe.py --data ../shared/data/monet2photo --checkpoint RUN/checkpoint-2000

The translations of every run so far are darker, warmer and more alike in colour than Monet's
paintings (scripts/palette_stats.py). If the discriminator judging paintings scores the paintings
made darker, warmer or all one colour as well as the paintings themselves, nothing in the
adversarial term holds the palette. Printed: the mean of the discriminator's patch outputs (LSGAN:
1 for real, 0 for fake) over each set, and the fraction of its patches above 0.5.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from cyclegan_hub.checkpoints import model_from_checkpoint
from cyclegan_hub.data import DataOptions, held_out_images
from cyclegan_hub.evaluate import prepare_images

SIZE = 256  # the training crops' size: the discriminator judges images as it saw them


def as_array(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.float32) / 255 for image in images])


def palette_changes(paintings: np.ndarray) -> dict[str, np.ndarray]:
    """The paintings with one property of their palette moved to where the translations have it."""
    means = paintings.mean(axis=(1, 2), keepdims=True)
    warmth = np.array([0.026, 0.026, -0.026], dtype=np.float32)  # (R + G) / 2 - B up by the translations' excess
    return {
        "darker (x0.88: the translations' brightness)": paintings * 0.88,
        "warmer (+0.026 warmth)": paintings + warmth,
        "one palette (each painting's mean colour set to all paintings' mean)": paintings - means + means.mean(axis=0),
        "grey": np.repeat(paintings.mean(axis=3, keepdims=True), 3, axis=3),
    }


@torch.no_grad()
def verdict(discriminator: torch.nn.Module, images: np.ndarray, batch_size: int = 8) -> tuple[float, float]:
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.clip(images[start : start + batch_size], 0, 1)).permute(0, 3, 1, 2) * 2 - 1
        outputs.append(discriminator(batch).flatten())
    patches = torch.cat(outputs)
    return float(patches.mean()), float((patches > 0.5).float().mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with testA/ and testB/ (held-out images of both domains)")
    parser.add_argument("--checkpoint", required=True, nargs="+", help="checkpoint-N folders (they hold the discriminators)")
    parser.add_argument("--domain", default="monet", help="the domain whose discriminator to probe")
    parser.add_argument("--images", type=int, default=100, help="held-out images of each domain")
    args = parser.parse_args()

    test_a, test_b, _ = held_out_images(DataOptions(dataset=args.data), "test", fallback=False)
    for checkpoint in args.checkpoint:
        model = model_from_checkpoint(checkpoint, with_discriminators=True)
        direction = model.resolve_direction(args.domain)  # the generator that paints this domain
        judged_is_a = model.domain_a == args.domain
        discriminator = model.discriminator_a if judged_is_a else model.discriminator_b
        held_out = (test_a, test_b) if judged_is_a else (test_b, test_a)
        targets, sources = (prepare_images(images, args.images, SIZE) for images in held_out)
        rows = {f"held-out {args.domain}": as_array(targets), **palette_changes(as_array(targets))}
        rows["the generator's translations"] = as_array(model.translate(sources, direction))
        rows["untranslated inputs"] = as_array(sources)
        print(f"\n{checkpoint}: D judging {args.domain}")
        print("| images | mean output | patches > 0.5 |\n|---|---|---|")
        for name, images in rows.items():
            mean, above = verdict(discriminator, images)
            print(f"| {name} | {mean:.3f} | {above:.2f} |")


if __name__ == "__main__":
    main()
