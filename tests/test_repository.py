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
