"""What a clone holds: a licence that matches the package metadata, and no build leftovers to commit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_file_is_the_one_pyproject_declares():
    declared = re.search(r'^license = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert declared == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder nor the names of its" in text  # the third clause


def test_installing_leaves_nothing_untracked():
    # `pip install -r requirements.txt` builds the package in place, into build/ and *.egg-info/.
    ignored = subprocess.run(
        ["git", "check-ignore", "build/lib/cyclegan_hub/model.py", "cyclegan_hub.egg-info/PKG-INFO"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert ignored.stdout.split() == ["build/lib/cyclegan_hub/model.py", "cyclegan_hub.egg-info/PKG-INFO"]


def test_the_readmes_layout_table_names_every_module_and_nothing_else():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Layout") :]
    listed = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", table, re.MULTILINE):
        names = re.findall(r"`([^`]+)`", row)
        folder = str(Path(names[0]).parent) if "/" in names[0].rstrip("/") else ""
        listed |= {names[0].rstrip("/")} | {f"{folder}/{name.rstrip('/')}" if folder else name.rstrip("/") for name in names[1:]}
    for path in sorted(listed):
        assert (ROOT / path).exists(), f"the README's layout lists {path}, which does not exist"
    package = ROOT / "cyclegan_hub"
    modules = {f"cyclegan_hub/{p.name}" for p in package.iterdir() if (p.suffix in (".py", ".md") and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())}
    assert modules - listed == set(), "modules the README's layout does not list"
