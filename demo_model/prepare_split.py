"""Lay out ../shared/data/monet2photo as the training folder of the embedded demo model.

Domain A is photo, domain B is Monet. The held-out images are every 7th photo and every 6th
Monet painting in file-name order (108 photos, 21 paintings); the rest train (643 / 100).
Files are symlinked, not copied.

    python demo_model/prepare_split.py ../shared/data/monet2photo /tmp/monet_photo_split
"""

import argparse
import os
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="monet2photo folder (testA = Monet, testB = photos)")
    parser.add_argument("target", type=Path, help="folder to create with trainA/ trainB/ testA/ testB/")
    args = parser.parse_args()
    photos = sorted(os.listdir(args.source / "testB"))
    monets = sorted(os.listdir(args.source / "testA"))
    held_out_photos, held_out_monets = set(photos[::7]), set(monets[::6])
    layout = {
        "trainA": [("testB", f) for f in photos if f not in held_out_photos],
        "testA": [("testB", f) for f in sorted(held_out_photos)],
        "trainB": [("testA", f) for f in monets if f not in held_out_monets],
        "testB": [("testA", f) for f in sorted(held_out_monets)],
    }
    for folder, files in layout.items():
        (args.target / folder).mkdir(parents=True, exist_ok=True)
        for source_folder, name in files:
            link = args.target / folder / name
            if not link.exists():
                link.symlink_to((args.source / source_folder / name).resolve())
        print(f"{folder}: {len(files)} images")


if __name__ == "__main__":
    main()
