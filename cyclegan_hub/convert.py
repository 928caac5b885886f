"""Convert checkpoints of the original PyTorch CycleGAN release into cyclegan-hub models.

The original release (github.com/junyanz/pytorch-CycleGAN-and-pix2pix) stores each network as
one `nn.Sequential` called `model`, so its keys are positional (`model.19.weight`). Our modules
have named parts (`up.0.conv.weight`). As in nanoGPT's `GPT.from_pretrained`, we build a fresh
model, map every key through one explicit table, check the key sets and shapes, and copy the
tensors under `no_grad`.

The architecture (width, residual blocks, dropout, norm, discriminator depth) is read from the
checkpoint's own keys and shapes; nothing needs to be told.

Usage:
    python -m cyclegan_hub.convert --generator horse2zebra.pth --output_dir horse2zebra
    python -m cyclegan_hub.convert --checkpoint_dir checkpoints/maps_cyclegan \\
        --domain_a map --domain_b photo --output_dir maps-cyclegan
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .hub import DTYPES
from .model import CycleGAN
from .networks import PatchDiscriminator, ResnetGenerator

# The original names its networks after the domain they read: G_A turns A into B, and D_A judges
# G_A's outputs, i.e. domain-B images. We name a discriminator after the domain it judges.
ORIGINAL_TO_OURS = {
    "G_A": "generator_ab",
    "G_B": "generator_ba",
    "D_A": "discriminator_b",
    "D_B": "discriminator_a",
}

# Old PyTorch versions saved running statistics on InstanceNorm layers that never use them;
# released files still carry them, and current InstanceNorm2d has no such buffers.
LEGACY_INSTANCE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")

DATA_PARALLEL_PREFIX = "module."
MAX_KEYS_SHOWN = 10


def generator_key_table(n_blocks: int = 9, dropout: float = 0.0) -> dict[str, str]:
    """Original layer prefix -> our layer prefix for every conv and norm of a ResnetGenerator.

    Args:
        n_blocks: residual blocks; they shift the indices of all layers after them.
        dropout: dropout probability; any value > 0 puts a Dropout at `conv_block.4`, which
            moves the second conv and norm of each block one index on.

    Returns:
        A dict such as {"model.1": "stem.conv", ..., "model.26": "head"} (for 9 blocks).
    """
    table = {
        "model.1": "stem.conv",  # model.0 is the ReflectionPad2d(3)
        "model.2": "stem.norm",
        "model.4": "down.0.conv",
        "model.5": "down.0.norm",
        "model.7": "down.1.conv",
        "model.8": "down.1.norm",
    }
    shift = 1 if dropout > 0 else 0
    for i in range(n_blocks):
        block = f"model.{10 + i}.conv_block"  # conv_block.0 and .4/.5 are ReflectionPad2d(1)
        table[f"{block}.1"] = f"blocks.{i}.conv1.conv"
        table[f"{block}.2"] = f"blocks.{i}.conv1.norm"
        table[f"{block}.{5 + shift}"] = f"blocks.{i}.conv2"
        table[f"{block}.{6 + shift}"] = f"blocks.{i}.norm2"
    up = 10 + n_blocks  # first layer after the blocks; each up unit is conv, norm, ReLU
    table[f"model.{up}"] = "up.0.conv"
    table[f"model.{up + 1}"] = "up.0.norm"
    table[f"model.{up + 3}"] = "up.1.conv"
    table[f"model.{up + 4}"] = "up.1.norm"
    table[f"model.{up + 7}"] = "head"  # after a ReflectionPad2d(3) at up + 6
    return table


def discriminator_key_table(n_layers: int = 3) -> dict[str, str]:
    """Original layer prefix -> our layer prefix for every conv and norm of a PatchDiscriminator.

    Our discriminator keeps the original's Sequential indices, so the table is the identity:
    conv at 0, then (conv, norm, LeakyReLU) triples, then the 1-channel conv.
    """
    layers = ["model.0"]
    for n in range(1, n_layers + 1):
        layers += [f"model.{3 * n - 1}", f"model.{3 * n}"]
    layers.append(f"model.{3 * n_layers + 2}")
    return {layer: layer for layer in layers}


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an original `.pth` file safely (`weights_only=True`) onto the CPU.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch each raise their own kinds for a bad file
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"cannot read {path} as a PyTorch state dict ({type(err).__name__}: {detail}); "
            "is it a .pth file of the original release?"
        ) from None
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(state_dict)


def strip_data_parallel(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `module.` prefix that nn.DataParallel adds to every key."""
    return {key.removeprefix(DATA_PARALLEL_PREFIX): value for key, value in state_dict.items()}


def _show(keys: list[str]) -> str:
    """A key list short enough for an error message."""
    if len(keys) <= MAX_KEYS_SHOWN:
        return str(keys)
    return f"{keys[:MAX_KEYS_SHOWN]} and {len(keys) - MAX_KEYS_SHOWN} more"


def _as_state_dict(checkpoint) -> dict[str, torch.Tensor]:
    """Accept a loaded state dict or a path to one."""
    if isinstance(checkpoint, (str, os.PathLike)):
        return load_checkpoint(checkpoint)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"expected a state dict or a path, got {type(checkpoint).__name__}")
    return dict(checkpoint)


def _weight(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state_dict:
        raise ValueError(f"not an original {what} checkpoint: it has no {key!r} (keys: {_show(sorted(state_dict))})")
    return state_dict[key]


def generator_architecture(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The `ResnetGenerator` settings an original generator checkpoint was trained with.

    ngf from the first conv, the residual blocks from their indices, dropout from where each
    block's second conv sits (one index on when a Dropout precedes it), batch norm from the
    norms' affine weights (instance norm has none).
    """
    source = strip_data_parallel(state_dict)
    stem = _weight(source, "model.1.weight", "ResnetGenerator")
    blocks = sorted({int(key.split(".")[1]) for key in source if ".conv_block." in key})
    second_conv = source.get(f"model.{blocks[0]}.conv_block.6.weight") if blocks else None
    return dict(
        ngf=stem.shape[0],
        n_blocks=len(blocks),
        norm="batch" if "model.2.weight" in source else "instance",
        dropout=0.5 if second_conv is not None and second_conv.dim() == 4 else 0.0,
    )


def discriminator_architecture(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The `PatchDiscriminator` settings of an original discriminator checkpoint: ndf from the
    first conv, the stride-2 layers from the number of convs, batch norm from affine weights."""
    source = strip_data_parallel(state_dict)
    first = _weight(source, "model.0.weight", "PatchGAN discriminator")
    convs = [key for key, value in source.items() if key.endswith(".weight") and value.dim() == 4]
    return dict(ndf=first.shape[0], n_layers=len(convs) - 2, norm="batch" if "model.3.weight" in source else "instance")


def copy_original_weights(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], table: dict[str, str], arch: str
) -> nn.Module:
    """Copy an original state dict into `model` through a layer table, checking keys and shapes.

    Args:
        model: a freshly built network whose layers are the table's values.
        state_dict: the original weights (a `module.` prefix is fine).
        table: original layer prefix -> our layer prefix.
        arch: the architecture options, named in error messages.

    Returns:
        `model`, with every parameter and buffer overwritten.

    Raises:
        ValueError: a key is missing or unexpected, or a tensor has the wrong shape.
    """
    source = strip_data_parallel(state_dict)
    target = model.state_dict()
    key_map = {}  # our key -> original key
    legacy = set()  # original keys to drop silently
    for theirs, ours in table.items():
        layer = model.get_submodule(ours)
        key_map.update({f"{ours}.{name}": f"{theirs}.{name}" for name in layer.state_dict()})
        if isinstance(layer, nn.InstanceNorm2d):
            legacy.update(f"{theirs}.{name}" for name in LEGACY_INSTANCE_NORM_KEYS)
    assert key_map.keys() == target.keys(), "the key table is out of sync with networks.py"

    missing = sorted(key for key in key_map.values() if key not in source)
    unexpected = sorted(key for key in source.keys() - set(key_map.values()) if key not in legacy)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match {type(model).__name__}({arch}): "
            f"missing keys {_show(missing)}, unexpected keys {_show(unexpected)}"
        )

    wrong = [
        f"{theirs} is {tuple(source[theirs].shape)} but {ours} needs {tuple(target[ours].shape)}"
        for ours, theirs in key_map.items()
        if source[theirs].shape != target[ours].shape
    ]
    if wrong:
        raise ValueError(f"checkpoint shapes do not match {type(model).__name__}({arch}): {_show(wrong)}")

    with torch.no_grad():  # state_dict() tensors share storage with the parameters
        for ours, theirs in key_map.items():
            target[ours].copy_(source[theirs])
    return model


def _describe(settings: dict) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in settings.items())


def convert_generator(state_dict) -> ResnetGenerator:
    """Build a ResnetGenerator holding the weights of an original generator checkpoint.

    Args:
        state_dict: the original state dict, or a path to a `.pth` file such as horse2zebra.pth.

    Returns:
        The generator in eval mode, with the checkpoint's architecture.

    Raises:
        ValueError: the file is not an original generator, or its keys or shapes do not fit.
    """
    state_dict = _as_state_dict(state_dict)
    settings = generator_architecture(state_dict)
    model = ResnetGenerator(**settings)
    table = generator_key_table(settings["n_blocks"], settings["dropout"])
    return copy_original_weights(model, state_dict, table, _describe(settings)).eval()


def convert_discriminator(state_dict) -> PatchDiscriminator:
    """Build a PatchDiscriminator holding the weights of an original discriminator checkpoint.

    Args:
        state_dict: the original state dict, or a path to a `.pth` file.

    Returns:
        The discriminator in eval mode, with the checkpoint's architecture.

    Raises:
        ValueError: the file is not an original discriminator, or its keys or shapes do not fit.
    """
    state_dict = _as_state_dict(state_dict)
    settings = discriminator_architecture(state_dict)
    model = PatchDiscriminator(**settings)
    return copy_original_weights(model, state_dict, discriminator_key_table(settings["n_layers"]), _describe(settings)).eval()


def convert_pair(g_a, g_b, d_a=None, d_b=None, *, domain_a: str, domain_b: str) -> CycleGAN:
    """Build a CycleGAN from the original's G_A, G_B and optionally D_A, D_B checkpoints.

    Arguments are named as in the original (see `ORIGINAL_TO_OURS`): G_A translates A -> B,
    and D_A judges domain-B images, so it becomes our `discriminator_b`.

    Args:
        g_a, g_b: state dicts or paths of the original generators.
        d_a, d_b: the same for the discriminators; give both or neither.
        domain_a, domain_b: names of the two domains, e.g. "horse" and "zebra".

    Returns:
        The model in eval mode, with discriminators when d_a and d_b are given.

    Raises:
        ValueError: only one discriminator is given, or a checkpoint is not what its name says,
            or the two generators (or discriminators) differ in architecture.
    """
    if (d_a is None) != (d_b is None):
        raise ValueError("give both discriminators (D_A and D_B) or neither")
    networks, settings = {}, {}
    for name, checkpoint in {"G_A": g_a, "G_B": g_b, "D_A": d_a, "D_B": d_b}.items():
        if checkpoint is None:
            continue
        generator = name.startswith("G")
        try:
            state_dict = _as_state_dict(checkpoint)
            settings[name] = (generator_architecture if generator else discriminator_architecture)(state_dict)
            networks[name] = (convert_generator if generator else convert_discriminator)(state_dict)
        except ValueError as err:  # say which of the four files is wrong
            raise ValueError(f"{name}: {err}") from None
    for first, second in (("G_A", "G_B"), ("D_A", "D_B")):
        if first in settings and settings[first] != settings[second]:
            raise ValueError(f"{first} and {second} differ in architecture: {settings[first]} and {settings[second]}")
    model = CycleGAN(domain_a, domain_b, generator=settings["G_A"], discriminator=settings.get("D_A"), with_discriminators=d_a is not None)
    for name, network in networks.items():
        getattr(model, ORIGINAL_TO_OURS[name]).load_state_dict(network.state_dict())
    return model.eval()


def checkpoint_paths(checkpoint_dir: str | os.PathLike, epoch: str = "latest") -> dict[str, Path | None]:
    """The `{epoch}_net_{G_A,G_B,D_A,D_B}.pth` files of an original training run.

    Returns:
        {"G_A": path, "G_B": path, "D_A": path or None, "D_B": path or None}.

    Raises:
        FileNotFoundError: the folder or a generator file is missing.
        ValueError: only one of the discriminator files exists.
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {folder}")
    paths = {name: folder / f"{epoch}_net_{name}.pth" for name in ORIGINAL_TO_OURS}
    for name in ("G_A", "G_B"):
        if not paths[name].is_file():
            raise FileNotFoundError(f"{paths[name].name} not found in {folder}")
    found = [name for name in ("D_A", "D_B") if paths[name].is_file()]
    if len(found) == 1:
        raise ValueError(f"found {paths[found[0]].name} but not its partner in {folder}; give both D files or neither")
    if not found:
        paths["D_A"] = paths["D_B"] = None
    return paths


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of `python -m cyclegan_hub.convert`."""
    parser = argparse.ArgumentParser(
        prog="python -m cyclegan_hub.convert",
        description="Convert original pytorch-CycleGAN-and-pix2pix checkpoints into a cyclegan-hub folder.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--generator",
        metavar="PATH",
        help="one generator file (horse2zebra.pth, latest_net_G.pth): saves a ResnetGenerator",
    )
    source.add_argument(
        "--checkpoint_dir",
        metavar="DIR",
        help="a training folder with {epoch}_net_G_A.pth, _G_B.pth and optionally _D_A.pth, _D_B.pth: saves a CycleGAN",
    )
    parser.add_argument("--epoch", default=None, help="file prefix in --checkpoint_dir (default: latest)")
    parser.add_argument("--domain_a", default=None, help="name of domain A (default: A); --checkpoint_dir only")
    parser.add_argument("--domain_b", default=None, help="name of domain B (default: B); --checkpoint_dir only")
    parser.add_argument("--output_dir", required=True, help="folder to save the converted model in")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="float32", help="stored weight type (default: float32)"
    )
    parser.add_argument("--push_to_hub", metavar="ORG/NAME", default=None, help="also upload to this Hub repo")
    parser.add_argument("--private", action="store_true", help="make the pushed repo private")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject options that do not apply, rather than ignore them silently."""
    if args.generator is not None:
        pair_only = {"--epoch": args.epoch, "--domain_a": args.domain_a, "--domain_b": args.domain_b}
        given = [flag for flag, value in pair_only.items() if value is not None]
        if given:
            parser.error(f"{', '.join(given)}: only for --checkpoint_dir, not --generator")
    if args.private and args.push_to_hub is None:
        parser.error("--private needs --push_to_hub")


def convert_from_args(args: argparse.Namespace) -> ResnetGenerator | CycleGAN:
    """Convert what the parsed command line names."""
    if args.generator is not None:
        return convert_generator(args.generator)
    paths = checkpoint_paths(args.checkpoint_dir, args.epoch or "latest")
    return convert_pair(*paths.values(), domain_a=args.domain_a or "A", domain_b=args.domain_b or "B")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, convert, save and optionally push."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    try:
        model = convert_from_args(args)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    push = dict(push_to_hub=True, repo_id=args.push_to_hub, private=args.private) if args.push_to_hub else {}
    model.save_pretrained(args.output_dir, dtype=args.dtype, **push)
    print(f"saved {type(model).__name__} to {args.output_dir}")
    if args.push_to_hub:
        print(f"pushed to https://huggingface.co/{args.push_to_hub}")


if __name__ == "__main__":
    main()
