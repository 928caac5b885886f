"""ONNX export: the files run in onnxruntime, at sizes other than the export's, like torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from cyclegan_hub import CycleGAN


@pytest.mark.slow
def test_export_cli_writes_both_directions_matching_torch(make_cyclegan, tmp_path):
    make_cyclegan().save_pretrained(tmp_path / "model")
    result = subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.export_onnx", "--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "onnx")],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "photo -> monet" in result.stdout and "max |onnxruntime - torch|" in result.stdout
    model = CycleGAN.from_pretrained(tmp_path / "model")
    for name in ("generator_ab", "generator_ba"):
        session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        images = torch.rand(3, 3, 40, 76) * 2 - 1  # batch, height and width all differ from the export's
        (translated,) = session.run(None, {"images": images.numpy()})
        with torch.inference_mode():
            expected = getattr(model, name)(images).numpy()
        assert translated.shape == expected.shape
        assert np.abs(translated - expected).max() < 1e-4
