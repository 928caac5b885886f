"""Export a CycleGAN's generators to ONNX, for deployments without torch.

    python -m cyclegan_hub.export_onnx --model demo_model --output_dir onnx/

Writes `generator_ab.onnx` (A -> B) and `generator_ba.onnx` (B -> A). Each takes `images`, a float32
(batch, 3, height, width) array in [-1, 1] with height and width multiples of 4 (pad as
`translate.pad_to_multiple` does), and returns `translated` of the same shape; batch, height and
width are dynamic. When onnxruntime is installed, each file is checked against torch on two input
shapes and the largest difference is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .model import CycleGAN

CHECK_SHAPES = ((1, 3, 64, 64), (2, 3, 96, 128))


def export_generator(generator: torch.nn.Module, path: Path, opset: int = 18) -> None:
    """Write one generator as ONNX with dynamic batch, height and width (via torch.export)."""
    example = torch.zeros(1, 3, 64, 64)
    torch.onnx.export(
        generator.eval(),
        (example,),
        str(path),
        dynamo=True,
        input_names=["images"],
        output_names=["translated"],
        dynamic_shapes=({0: "batch", 2: "height", 3: "width"},),
        opset_version=opset,
    )


def max_difference(generator: torch.nn.Module, path: Path) -> float:
    """Largest |onnxruntime - torch| over CHECK_SHAPES."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for shape in CHECK_SHAPES:
        images = torch.rand(*shape) * 2 - 1
        (translated,) = session.run(None, {"images": images.numpy()})
        with torch.inference_mode():
            worst = max(worst, (torch.from_numpy(translated) - generator(images)).abs().max().item())
    return worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cyclegan_hub.export_onnx", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Hub model id or local folder of a CycleGAN")
    parser.add_argument("--output_dir", required=True, help="folder for generator_ab.onnx and generator_ba.onnx")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    args = parser.parse_args(argv)
    model = CycleGAN.from_pretrained(args.model)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, label in (("generator_ab", model.directions["a2b"]), ("generator_ba", model.directions["b2a"])):
        path = output_dir / f"{name}.onnx"
        export_generator(getattr(model, name), path, args.opset)
        try:
            check = f", max |onnxruntime - torch| = {max_difference(getattr(model, name), path):.1e}"
        except ImportError:
            check = " (install onnxruntime to check it against torch)"
        print(f"{label}: {path}{check}")


if __name__ == "__main__":
    main()
