"""Translate image and video files, or folders of them, with a CycleGAN.

    python -m cyclegan_hub.translate --model demo_model --direction monet photos/ clip.mp4 --output_dir out/

Folders are walked recursively and their layout kept; images keep their format, videos their
container, frame count, frame rate and audio. A file that cannot be read is reported and skipped;
the exit status is 1 if any was. `--skip_existing` continues an interrupted run.
"""

from __future__ import annotations

import argparse
import sys

from ..files import translate_files
from ..model import SCALES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cyclegan_hub.translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or folders of them")
    parser.add_argument("--model", required=True, help="Hub id or local folder of a CycleGAN")
    parser.add_argument("--direction", required=True, help="'a2b', 'b2a', the target domain's name (e.g. monet) or a label")
    parser.add_argument("--output_dir", required=True, help="where the translations go, under their input names")
    parser.add_argument("--skip_existing", action="store_true", help="leave outputs that already exist (continue a run)")
    parser.add_argument("--max_side", type=int, help="downscale images and frames longer than this on a side (default: full size)")
    parser.add_argument("--scale", choices=SCALES, default="input", help="translate at the image's size or at the model's training resolution, "
                        "upscaling the result (default: %(default)s, as the demo does)")
    parser.add_argument("--tile_size", type=int, default=1024, help="translate larger images in tiles of this size with "
                        "whole-image statistics, in bounded memory (at --scale input)")
    parser.add_argument("--batch_size", type=int, default=8, help="same-size images or video frames per forward pass")
    parser.add_argument("--per_frame", action="store_true", help="videos: each frame translated alone (flickers), without the "
                        "filter that keeps the output still where the input did not change")
    parser.add_argument("--bf16", action="store_true", help="compiled generators under bfloat16 autocast (a one-off compile "
                        "first): about 2x faster on CPUs with native bf16, outputs ~1/255 off on average")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("max_side", "tile_size", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < (8 if name != "batch_size" else 1):
            parser.error(f"--{name} must be at least {8 if name != 'batch_size' else 1}, got {value}")
    from .. import CycleGAN  # after parsing: --help should not wait for torch

    try:
        model = CycleGAN.from_pretrained(args.model)
        model.resolve_direction(args.direction)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.bf16:
        model.enable_fast_inference(bf16=True)
    try:
        report = translate_files(
            model, args.direction, args.inputs, args.output_dir, skip_existing=args.skip_existing, max_side=args.max_side,
            scale=args.scale, tile_size=args.tile_size, batch_size=args.batch_size, stable=not args.per_frame,
            progress=not args.quiet,
        )
    except (OSError, ValueError) as error:  # a missing input, two inputs onto one output
        parser.error(str(error))
    for source, reason in report.failed:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(f"{len(report.written)} translated, {len(report.skipped)} already there, {len(report.failed)} could not be read "
          f"-> {args.output_dir}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
