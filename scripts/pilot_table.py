"""The pilot's results as a Markdown table: photo -> Monet and Monet -> photo, KID, FID and the
checkerboard index of each variant, with the untranslated baseline.

    python scripts/pilot_table.py RUNS_DIR/eval/paper.json RUNS_DIR/eval/resize.json ...

Each file is an `evaluate --output` of a model folder or training checkpoint, still on disk (its
config says which domain is A).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cyclegan_hub.checkpoints import STATE_FILE, read_state


def domain_a(model: str) -> str:
    """Domain A of an evaluated model folder or training checkpoint, from its config."""
    folder = Path(model)
    if (folder / STATE_FILE).is_file():
        return read_state(folder)["model_config"]["domain_a"]
    return json.loads((folder / "config.json").read_text())["domain_a"]


def main():
    rows = ["| variant | KID×100 photo → Monet | KID×100 Monet → photo | checkerboard photo → Monet | checkerboard Monet → photo | FID photo → Monet |",
            "|---|---|---|---|---|---|"]
    baseline = None
    for path in map(Path, sys.argv[1:]):
        r = json.loads(path.read_text())
        to_monet, to_photo = ("b2a", "a2b") if domain_a(r["model"]) == "monet" else ("a2b", "b2a")
        rows.append(
            f"| {path.stem} | {100 * r[f'kid_{to_monet}']:.2f} ± {100 * r[f'kid_{to_monet}_std']:.2f} | "
            f"{100 * r[f'kid_{to_photo}']:.2f} ± {100 * r[f'kid_{to_photo}_std']:.2f} | {r[f'checkerboard_{to_monet}']:.2f} | "
            f"{r[f'checkerboard_{to_photo}']:.2f} | {r[f'fid_{to_monet}']:.1f} |"
        )
        baseline = baseline or r.get("kid_baseline") and r
    if baseline:
        rows.append(f"| untranslated | {100 * baseline['kid_baseline']:.2f} ± {100 * baseline['kid_baseline_std']:.2f} | "
                    f"{100 * baseline['kid_baseline']:.2f} | 1.00 | 1.00 | {baseline['fid_baseline']:.1f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
