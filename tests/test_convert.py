"""Tests of `cyclegan_hub.convert` against a reference of the original release's layout.

The reference networks below are written from the description of the original state-dict
layout (one `nn.Sequential` called `model`, positional indices), independently of convert.py,
so a wrong key table shows up as different outputs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cyclegan_hub import CycleGAN, PatchDiscriminator, ResnetGenerator
from cyclegan_hub.convert import (
    convert_discriminator,
    convert_generator,
    convert_pair,
    discriminator_architecture,
    discriminator_key_table,
    generator_architecture,
    generator_key_table,
    main,
)

SMALL = dict(ngf=8, n_blocks=2)
ATOL = 1e-5


# ----------------------------------------------------------------------------------------------
# Reference networks in the original layout
# ----------------------------------------------------------------------------------------------


def ref_norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.BatchNorm2d(channels)


class RefResnetBlock(nn.Module):
    """pad, conv, norm, ReLU, [Dropout], pad, conv, norm, with a skip connection."""

    def __init__(self, dim: int, norm: str, dropout: bool):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), ref_norm(norm, dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), ref_norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 9, norm: str = "instance", dropout: bool = False):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), ref_norm(norm, ngf), nn.ReLU(True)]
        for mult in (1, 2):
            channels = ngf * mult * 2
            layers += [
                nn.Conv2d(ngf * mult, channels, 3, stride=2, padding=1, bias=bias),
                ref_norm(norm, channels),
                nn.ReLU(True),
            ]
        layers += [RefResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            channels = ngf * mult // 2
            layers += [
                nn.ConvTranspose2d(ngf * mult, channels, 3, stride=2, padding=1, output_padding=1, bias=bias),
                ref_norm(norm, channels),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class RefDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=bias),
                ref_norm(norm, out),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def randomized(net: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere, including batch-norm affine parameters and statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                tensor.fill_(7)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.dim() == 1 and name.endswith("weight"):  # norm scale
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return net.eval()


def released_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """The reference's state dict as released files look: legacy instance-norm stats, `module.` keys."""
    state = dict(net.state_dict())
    for name, layer in net.named_modules():
        if isinstance(layer, nn.InstanceNorm2d):
            state[f"{name}.running_mean"] = torch.zeros(layer.num_features)
            state[f"{name}.running_var"] = torch.ones(layer.num_features)
            state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    return {f"module.{key}": value for key, value in state.items()}


def assert_same_output(ours: nn.Module, ref: nn.Module, size: int = 32) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref.eval()(x), ours.eval()(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < ATOL


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cyclegan_hub.convert", *map(str, args)], capture_output=True, text=True, timeout=120
    )


# ----------------------------------------------------------------------------------------------
# Key tables
# ----------------------------------------------------------------------------------------------


def test_reference_has_the_documented_layout():
    keys = RefGenerator(ngf=8).state_dict().keys()
    for key in ("model.1.weight", "model.4.weight", "model.7.weight", "model.10.conv_block.5.weight"):
        assert key in keys
    for key in ("model.19.weight", "model.22.weight", "model.26.weight", "model.18.conv_block.1.bias"):
        assert key in keys
    assert "model.10.conv_block.6.weight" in RefGenerator(ngf=8, dropout=True).state_dict()
    assert {"model.0.weight", "model.11.weight", "model.9.running_var"} <= set(
        RefDiscriminator(ndf=8, norm="batch").state_dict()
    )


def test_generator_key_table_nine_blocks():
    table = generator_key_table()
    assert table["model.1"] == "stem.conv"
    assert table["model.4"] == "down.0.conv" and table["model.7"] == "down.1.conv"
    assert table["model.10.conv_block.1"] == "blocks.0.conv1.conv"
    assert table["model.18.conv_block.5"] == "blocks.8.conv2"
    assert table["model.18.conv_block.6"] == "blocks.8.norm2"
    assert table["model.19"] == "up.0.conv" and table["model.22"] == "up.1.conv" and table["model.26"] == "head"
    with_dropout = generator_key_table(dropout=0.5)
    assert with_dropout["model.10.conv_block.6"] == "blocks.0.conv2"
    assert with_dropout["model.10.conv_block.7"] == "blocks.0.norm2"
    assert generator_key_table(n_blocks=6)["model.23"] == "head"


def test_discriminator_key_table():
    assert list(discriminator_key_table()) == [f"model.{i}" for i in (0, 2, 3, 5, 6, 8, 9, 11)]


# ----------------------------------------------------------------------------------------------
# Conversion through the functions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_convert_generator_matches_reference(norm, dropout):
    ref = randomized(RefGenerator(**SMALL, norm=norm, dropout=dropout > 0), seed=1)
    ours = convert_generator(released_state_dict(ref))  # the architecture comes from the keys
    assert isinstance(ours, ResnetGenerator) and not ours.training
    assert generator_architecture(released_state_dict(ref)) == dict(**SMALL, norm=norm, dropout=dropout)
    assert_same_output(ours, ref)
    if norm == "batch":
        assert ours.blocks[0].norm2.num_batches_tracked.item() == 7


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_convert_discriminator_matches_reference(norm):
    ref = randomized(RefDiscriminator(ndf=8, norm=norm), seed=2)
    ours = convert_discriminator(released_state_dict(ref))
    assert isinstance(ours, PatchDiscriminator)
    assert discriminator_architecture(released_state_dict(ref)) == dict(ndf=8, n_layers=3, norm=norm)
    assert_same_output(ours, ref, size=64)


def test_convert_accepts_a_path(tmp_path):
    ref = randomized(RefGenerator(**SMALL), seed=3)
    torch.save(released_state_dict(ref), tmp_path / "g.pth")
    assert_same_output(convert_generator(tmp_path / "g.pth"), ref)


def test_convert_pair_swaps_discriminators():
    g_a, g_b = randomized(RefGenerator(**SMALL), 4), randomized(RefGenerator(**SMALL), 5)
    d_a, d_b = randomized(RefDiscriminator(ndf=8), 6), randomized(RefDiscriminator(ndf=8), 7)
    model = convert_pair(
        *(released_state_dict(net) for net in (g_a, g_b, d_a, d_b)), domain_a="horse", domain_b="zebra"
    )
    assert_same_output(model.generator("zebra"), g_a)
    assert_same_output(model.generator("horse"), g_b)
    assert_same_output(model.discriminator_b, d_a, size=64)  # D_A judges domain B
    assert_same_output(model.discriminator_a, d_b, size=64)
    with pytest.raises(ValueError, match="both"):
        convert_pair(g_a.state_dict(), g_b.state_dict(), d_a.state_dict(), domain_a="a", domain_b="b")
    wider = randomized(RefGenerator(ngf=16, n_blocks=2), 5)
    with pytest.raises(ValueError, match="G_A and G_B differ in architecture"):
        convert_pair(released_state_dict(g_a), released_state_dict(wider), domain_a="a", domain_b="b")


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_unexpected_key_is_named():
    state = released_state_dict(randomized(RefGenerator(**SMALL), 8))
    state["module.model.99.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['model\.99\.weight'\]"):
        convert_generator(state)


def test_missing_key_is_named():
    state = released_state_dict(randomized(RefGenerator(**SMALL), 9))
    del state["module.model.4.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['model\.4\.bias'\]"):
        convert_generator(state)


def test_legacy_stats_only_dropped_on_instance_norms():
    state = released_state_dict(randomized(RefDiscriminator(ndf=8), 10))
    state["module.model.2.running_mean"] = torch.zeros(16)  # a conv, not an instance norm
    with pytest.raises(ValueError, match=r"model\.2\.running_mean"):
        convert_discriminator(state)


def test_a_file_that_is_not_what_it_is_called_is_a_clear_error():
    discriminator = released_state_dict(randomized(RefDiscriminator(ndf=8), 11))
    with pytest.raises(ValueError, match="not an original ResnetGenerator checkpoint: it has no 'model.1.weight'"):
        convert_generator(discriminator)
    with pytest.raises(ValueError, match="not an original PatchGAN discriminator checkpoint"):
        convert_discriminator({"model.1.weight": torch.zeros(8, 3, 7, 7)})


def test_the_architecture_is_read_from_the_checkpoint_for_every_layout():
    for ngf, n_blocks, dropout in ((8, 2, True), (4, 6, False), (8, 9, False)):
        state = released_state_dict(randomized(RefGenerator(ngf=ngf, n_blocks=n_blocks, dropout=dropout), 12))
        assert generator_architecture(state) == dict(ngf=ngf, n_blocks=n_blocks, norm="instance", dropout=0.5 if dropout else 0.0)
    state = released_state_dict(randomized(RefDiscriminator(ndf=4, n_layers=2), 13))
    assert discriminator_architecture(state) == dict(ndf=4, n_layers=2, norm="instance")


def test_cli_damaged_checkpoint_is_a_clear_error(tmp_path):
    state = released_state_dict(randomized(RefGenerator(**SMALL), 12))
    state["module.model.4.weight"] = state["module.model.4.weight"][:, :4]  # a truncated tensor
    torch.save(state, tmp_path / "g.pth")
    result = run_cli("--generator", tmp_path / "g.pth", "--output_dir", tmp_path / "out")
    assert result.returncode == 2
    assert "shapes do not match" in result.stderr and "down.0.conv.weight" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--generator", "{tmp}/missing.pth"], "checkpoint not found"),
        (["--generator", "{tmp}/not_a_checkpoint.pth"], "cannot read"),
        (["--generator", "{tmp}/tensor.pth"], "does not hold a state dict"),
        (["--checkpoint_dir", "{tmp}/nowhere"], "checkpoint folder not found"),
        (["--checkpoint_dir", "{tmp}"], "latest_net_G_A.pth not found"),
        (["--generator", "{tmp}/tensor.pth", "--domain_a", "x"], "--domain_a: only for --checkpoint_dir"),
        (["--generator", "{tmp}/tensor.pth", "--private"], "--private needs --push_to_hub"),
        (["--generator", "{tmp}/tensor.pth", "--ngf", "8"], "unrecognized arguments: --ngf 8"),
    ],
)
def test_cli_errors(tmp_path, capsys, argv, message):
    (tmp_path / "not_a_checkpoint.pth").write_text("hello")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(tmp=tmp_path) for arg in argv] + ["--output_dir", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_pair_needs_both_discriminators(tmp_path, capsys):
    for name in ("G_A", "G_B", "D_A"):
        torch.save(released_state_dict(RefGenerator(**SMALL)), tmp_path / f"latest_net_{name}.pth")
    with pytest.raises(SystemExit):
        main(["--checkpoint_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    assert "latest_net_D_A.pth but not its partner" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# The command line end to end
# ----------------------------------------------------------------------------------------------


def test_cli_generator_nine_blocks(tmp_path):
    ref = randomized(RefGenerator(ngf=8), seed=13)  # default n_blocks=9
    torch.save(released_state_dict(ref), tmp_path / "horse2zebra.pth")
    out = tmp_path / "horse2zebra"
    result = run_cli("--generator", tmp_path / "horse2zebra.pth", "--output_dir", out)
    assert result.returncode == 0, result.stderr
    loaded = ResnetGenerator.from_pretrained(str(out))
    assert len(loaded.blocks) == 9
    assert_same_output(loaded, ref)


def test_cli_generator_half_precision(tmp_path):
    ref = randomized(RefGenerator(**SMALL), seed=14)
    torch.save(released_state_dict(ref), tmp_path / "g.pth")
    argv = ["--generator", tmp_path / "g.pth", "--dtype", "float16"]
    main([str(arg) for arg in argv] + ["--output_dir", str(tmp_path / "out")])
    assert {t.dtype for t in load_file(tmp_path / "out" / "model.safetensors").values()} == {torch.float16}
    loaded = ResnetGenerator.from_pretrained(str(tmp_path / "out"))
    assert loaded.head.weight.dtype == torch.float32
    expected = convert_generator(tmp_path / "g.pth")
    torch.testing.assert_close(loaded.head.weight, expected.head.weight.half().float())


def test_cli_pair_with_discriminators(tmp_path):
    arch = dict(**SMALL, norm="batch")
    nets = {
        "G_A": randomized(RefGenerator(**arch), 15),
        "G_B": randomized(RefGenerator(**arch), 16),
        "D_A": randomized(RefDiscriminator(ndf=8, norm="batch"), 17),
        "D_B": randomized(RefDiscriminator(ndf=8, norm="batch"), 18),
    }
    for name, net in nets.items():
        torch.save(released_state_dict(net), tmp_path / f"200_net_{name}.pth")
    out = tmp_path / "horse2zebra"
    result = run_cli(
        "--checkpoint_dir", tmp_path, "--epoch", "200", "--domain_a", "horse", "--domain_b", "zebra",
        "--output_dir", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (out / "discriminators.safetensors").is_file()

    inference = CycleGAN.from_pretrained(str(out))
    assert inference.discriminator_a is None
    assert inference.directions["a2b"] == "horse -> zebra"

    model = CycleGAN.from_pretrained(str(out), load_discriminators=True)
    assert_same_output(model.generator_ab, nets["G_A"])
    assert_same_output(model.generator_ba, nets["G_B"])
    assert_same_output(model.discriminator_b, nets["D_A"], size=64)  # D_A judges domain B
    assert_same_output(model.discriminator_a, nets["D_B"], size=64)


def test_cli_pair_without_discriminators(tmp_path):
    nets = {name: randomized(RefGenerator(**SMALL), seed) for name, seed in (("G_A", 19), ("G_B", 20))}
    for name, net in nets.items():
        torch.save(released_state_dict(net), tmp_path / f"latest_net_{name}.pth")
    out = tmp_path / "out"
    main(["--checkpoint_dir", str(tmp_path), "--output_dir", str(out)])
    assert not (out / "discriminators.safetensors").exists()
    model = CycleGAN.from_pretrained(str(out))
    assert (model.domain_a, model.domain_b) == ("A", "B")
    assert_same_output(model.generator_ab, nets["G_A"])
    assert_same_output(model.generator_ba, nets["G_B"])
