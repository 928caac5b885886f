"""The generator and discriminator: sizes, shapes, options, initialisation and argument checks."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from cyclegan_hub import PatchDiscriminator, ResnetGenerator
from cyclegan_hub.metrics import periodic_peak_ratio
from cyclegan_hub.images import tensor_to_pil
from cyclegan_hub.networks import (
    DOWNSAMPLES,
    UPSAMPLES,
    BlurDownsample,
    BlurUpsample,
    LayerInstanceNorm,
    MultiPatchDiscriminator,
    build_discriminator,
    init_weights,
    norm_layer,
)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_weights(module: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# --- the paper's networks -------------------------------------------------------------------


def test_default_generator_has_the_original_parameter_count():
    assert count(ResnetGenerator()) == 11_378_179


def test_default_discriminator_has_the_original_parameter_count():
    assert count(PatchDiscriminator()) == 2_764_737


def test_discriminator_gives_30x30_patch_logits_for_256_px():
    disc = PatchDiscriminator().eval()
    with torch.no_grad():
        out = disc(torch.rand(1, 3, 256, 256) * 2 - 1)
    assert out.shape == (1, 1, 30, 30)
    assert torch.isfinite(out).all()


# --- generator options ----------------------------------------------------------------------

CONFIGS = [
    dict(norm=norm, padding=padding, dropout=dropout)
    for norm, padding, dropout in itertools.product(("instance", "batch", "layer", "layer_instance", "none"), ("reflect", "replicate", "zeros"), (0.0, 0.5))
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "{norm}-{padding}-dropout{dropout}".format(**c))
def test_generator_forward_and_backward(config):
    gen = ResnetGenerator(ngf=8, n_blocks=2, **config).train()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    out = gen(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert out.min() >= -1 and out.max() <= 1
    assert out.std() > 0  # not a constant image

    out.square().mean().backward()
    for name, param in gen.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        if param.dim() > 1:  # conv biases before a norm get a gradient that is zero up to rounding
            assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("norm", ["instance", "batch", "layer", "layer_instance", "none"])
def test_generator_layers_follow_norm(norm):
    gen = ResnetGenerator(ngf=8, n_blocks=1, norm=norm)
    kinds = {type(m) for m in gen.modules()}
    assert (nn.InstanceNorm2d in kinds) == (norm == "instance")
    assert (nn.BatchNorm2d in kinds) == (norm == "batch")
    assert (nn.GroupNorm in kinds) == (norm == "layer")
    assert (LayerInstanceNorm in kinds) == (norm == "layer_instance")
    # Instance norm has no affine parameters (paper); batch norm makes conv biases redundant.
    assert all(m.affine is False for m in gen.modules() if isinstance(m, nn.InstanceNorm2d))
    assert gen.head.bias is not None  # the output conv has no norm after it
    convs = [m for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not gen.head]
    assert all((m.bias is None) == (norm == "batch") for m in convs)


def test_layer_norm_shares_one_mean_and_spread_among_all_channels():
    norm = norm_layer("layer", 3)
    x = torch.randn(2, 3, 8, 8) + torch.tensor([0.0, 5.0, -5.0]).view(1, 3, 1, 1)
    y = norm(x).detach()
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)  # one mean per image ...
    assert y.mean(dim=(2, 3))[:, 1].min() > 0.5 > -0.5 > y.mean(dim=(2, 3))[:, 2].max()  # ... so channels keep their offsets
    louder = x.clone()
    louder[:, 0] *= 10  # unlike instance norm, one channel's scale changes how every channel is normalised
    assert not torch.allclose(norm(louder)[:, 1], y[:, 1])
    assert norm.weight.shape == norm.bias.shape == (3,)  # a learnt scale and shift per channel


def test_layer_instance_norm_mixes_instance_and_layer_norm_as_it_learns():
    torch.manual_seed(0)
    norm = norm_layer("layer_instance", 3)
    x = torch.randn(2, 3, 8, 8) * torch.tensor([1.0, 3.0, 0.5]).view(1, 3, 1, 1) + torch.tensor([0.0, 5.0, -5.0]).view(1, 3, 1, 1)
    by_channel, by_layer = nn.InstanceNorm2d(3)(x), norm_layer("layer", 3)(x)
    assert torch.allclose(norm(x), (by_channel + by_layer) / 2, atol=1e-5)  # an even mix to start with
    with torch.no_grad():
        norm.rho_logit.copy_(torch.tensor([-30.0, 0.0, 30.0]))  # layer norm, the even mix, instance norm
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    scale, shift = norm.weight.view(1, 3, 1, 1), norm.bias.view(1, 3, 1, 1)
    mixed = norm(x).detach()
    assert torch.allclose(mixed[:, 0], (by_layer * scale + shift)[:, 0], atol=1e-5)
    assert torch.allclose(mixed[:, 1], ((by_channel + by_layer) / 2 * scale + shift)[:, 1], atol=1e-5)
    assert torch.allclose(mixed[:, 2], (by_channel * scale + shift)[:, 2], atol=1e-5)
    assert torch.allclose(norm.mix(by_channel.clone(), by_layer, in_place=True), mixed, atol=1e-5)
    norm(x).square().mean().backward()  # rho is trained with the rest, per channel
    assert norm.rho_logit.grad.shape == (3,) and norm.rho_logit.grad[1] != 0


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
def test_generator_padding_mode_reaches_the_convs(padding):
    gen = ResnetGenerator(ngf=8, n_blocks=1, padding=padding)
    assert gen.stem.conv.padding_mode == padding
    assert gen.head.padding_mode == padding
    assert gen.blocks[0].conv2.padding_mode == padding
    # The stride-2 convs pad with zeros as in the original release.
    assert gen.down[0].conv.padding_mode == "zeros"


def test_dropout_is_random_in_training_and_off_in_eval():
    gen = ResnetGenerator(ngf=8, n_blocks=2, dropout=0.5)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        gen.train()
        assert not torch.equal(gen(x), gen(x))
        gen.eval()
        assert torch.equal(gen(x), gen(x))


def test_generator_channels_and_zero_blocks():
    gen = ResnetGenerator(in_channels=1, out_channels=2, ngf=4, n_blocks=0).eval()
    with torch.no_grad():
        out = gen(torch.zeros(3, 1, 16, 20))
    assert out.shape == (3, 2, 16, 20)
    assert len(gen.blocks) == 0


def test_input_skip_learns_a_change_of_the_input():
    gen = ResnetGenerator(ngf=4, n_blocks=1, input_skip=True).eval()
    x = torch.rand(2, 3, 16, 20) * 1.9 - 0.95  # inside the clamp, so tanh(atanh(x)) is x
    nn.init.zeros_(gen.head.weight)
    nn.init.zeros_(gen.head.bias)
    with torch.no_grad():
        assert torch.allclose(gen(x), x, atol=1e-5)  # no change learnt: the input itself
        nn.init.constant_(gen.head.bias, 0.5)
        assert torch.allclose(gen(x), torch.tanh(torch.atanh(x) + 0.5), atol=1e-5)  # a change in tanh's logits
        assert gen(torch.ones(1, 3, 8, 8)).isfinite().all()  # white pixels: clamped, not an infinite logit
    plain = ResnetGenerator(ngf=4, n_blocks=1).eval()
    nn.init.zeros_(plain.head.weight)
    nn.init.zeros_(plain.head.bias)
    with torch.no_grad():
        assert torch.equal(plain(x), torch.zeros_like(x))  # the paper's: the network's own output only
    with pytest.raises(ValueError, match="input_skip needs as many output channels as input channels, got 1 and 3"):
        ResnetGenerator(in_channels=1, out_channels=3, input_skip=True)


def test_unet_skips_carry_the_input_past_the_bottleneck():
    x, other = torch.rand(2, 1, 3, 16, 20) * 2 - 1
    outputs = {}
    for unet_skips in (False, True):
        torch.manual_seed(0)
        gen = ResnetGenerator(ngf=4, n_blocks=1, unet_skips=unet_skips).eval()
        nn.init.zeros_(gen.up[0].conv.weight)  # nothing gets through the quarter-resolution bottleneck
        nn.init.zeros_(gen.up[0].conv.bias)
        with torch.no_grad():
            outputs[unet_skips] = gen(x), gen(other)
    assert torch.equal(*outputs[False])  # the paper's: every output pixel comes through the bottleneck
    assert (outputs[True][0] - outputs[True][1]).abs().mean() > 0.01  # the skips bring each input's own detail
    unet = ResnetGenerator(ngf=4, n_blocks=1, unet_skips=True)
    assert unet.up[1].conv.in_channels == 16 and unet.head.in_channels == 8  # decoder features + encoder features


def test_tiny_discriminator_forward_and_backward():
    disc = PatchDiscriminator(ndf=8, n_layers=2).train()
    out = disc(torch.rand(2, 3, 64, 64) * 2 - 1)
    # 64 -> 32 (first conv) -> 16 (stride-2 C-k) -> 15 (stride-1 C-k) -> 14 (logit conv)
    assert out.shape == (2, 1, 14, 14)
    out.mean().backward()
    for name, param in disc.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("norm", ["instance", "batch", "layer", "layer_instance", "none"])
def test_discriminator_norms(norm):
    disc = PatchDiscriminator(ndf=8, n_layers=3, norm=norm).eval()
    with torch.no_grad():
        out = disc(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 1, 6, 6)
    assert torch.isfinite(out).all()
    # No norm on the first layer, as in the paper.
    assert isinstance(disc.model[1], nn.LeakyReLU)


def receptive_field_side(disc: PatchDiscriminator, side: int) -> int:
    """Rows of a side x side input that the centre logit's gradient reaches (its receptive field)."""
    x = torch.zeros(1, 3, side, side, requires_grad=True)
    out = disc(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    return int((x.grad.abs().sum(dim=(0, 1, 3)) > 0).sum())


@pytest.mark.parametrize("n_layers, side", [(3, 70), (4, 142)])
def test_discriminator_patch_size(n_layers, side):
    # Without norm: instance norm would let every pixel reach every logit through the statistics.
    disc = PatchDiscriminator(ndf=4, n_layers=n_layers, norm="none")
    assert receptive_field_side(disc, 256) == side


def test_multi_patch_discriminator_judges_at_each_patch_size():
    disc = build_discriminator(n_layers=[3, 4], ndf=4, norm="none", init_gain=0.1)
    assert isinstance(disc, MultiPatchDiscriminator) and isinstance(build_discriminator(n_layers=3), PatchDiscriminator)
    assert [member.model[0].out_channels for member in disc.members] == [4, 4]  # shared settings reach every member
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    logits = disc(x)
    # Each member is the PatchGAN its entry names, seeing the full-resolution image.
    assert [tuple(l.shape) for l in logits] == [(2, 1, 30, 30), (2, 1, 14, 14)]
    for member, member_logits, side in zip(disc.members, logits, (70, 142)):
        assert torch.equal(member(x), member_logits)
        assert receptive_field_side(member, 256) == side
    disc.zero_grad(set_to_none=True)  # the receptive fields above ran backward passes of their own
    sum(l.mean() for l in logits).backward()
    assert all(p.grad is not None for p in disc.parameters())
    for layer_counts in ([3], [3, 3], 3):
        with pytest.raises(ValueError, match=r"n_layers must list at least two different layer counts"):
            MultiPatchDiscriminator(n_layers=layer_counts)


def test_build_discriminator_gives_one_patchgan_unless_several_layer_counts():
    assert isinstance(build_discriminator(n_layers=[3], ndf=4), PatchDiscriminator)  # one value: the paper's layout
    assert isinstance(build_discriminator(ndf=4), PatchDiscriminator)
    for bad in (3.0, None, "3"):  # e.g. a hand-edited config.json
        with pytest.raises(ValueError, match=r"n_layers must be a positive integer"):
            build_discriminator(n_layers=bad, ndf=4)


def test_spectral_norm_bounds_every_discriminator_conv():
    torch.manual_seed(0)
    plain = PatchDiscriminator(ndf=8, n_layers=2, init_gain=0.5)
    torch.manual_seed(0)
    disc = PatchDiscriminator(ndf=8, n_layers=2, init_gain=0.5, spectral_norm=True).train()
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in disc.modules())
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)
    # The initialised weights stay, as the parametrisation's original: only their scale changes.
    assert torch.equal(convs[0].parametrizations.weight.original, plain.model[0].weight)
    for _ in range(20):  # each training-mode forward runs a power-iteration step
        disc(torch.rand(1, 3, 32, 32))
    for conv in convs:
        largest = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert largest.item() == pytest.approx(1.0, rel=0.02)
    assert torch.linalg.matrix_norm(plain.model[0].weight.detach().flatten(1), ord=2) > 2
    disc(torch.rand(1, 3, 32, 32)).mean().backward()
    assert all(c.parametrizations.weight.original.grad is not None for c in convs)


# --- recipe options: upsampling and downsampling --------------------------------------------

RESAMPLING = list(itertools.product(UPSAMPLES, DOWNSAMPLES))


@pytest.mark.parametrize("upsample, downsample", RESAMPLING)
def test_every_resampling_trains_and_keeps_the_size(upsample, downsample):
    gen = ResnetGenerator(ngf=8, n_blocks=1, upsample=upsample, downsample=downsample).train()
    x = torch.rand(2, 3, 36, 52) * 2 - 1
    out = gen(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in gen.named_parameters():
        if param.dim() > 1:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("upsample, downsample", RESAMPLING)
def test_resampling_options_keep_the_parameter_count_and_add_no_weights(upsample, downsample):
    # The blurs are fixed filters: nothing to learn and nothing in the weights file.
    gen = ResnetGenerator(upsample=upsample, downsample=downsample)
    assert count(gen) == 11_378_179
    paper_keys = set(ResnetGenerator().state_dict())
    assert set(gen.state_dict()) == paper_keys  # same names: the conv of each unit is still `conv`
    disc = PatchDiscriminator(downsample=downsample)
    assert count(disc) == 2_764_737
    assert all(not name.endswith("kernel") for name in disc.state_dict())


def test_paper_layout_is_unchanged_by_default():
    gen = ResnetGenerator(ngf=8, n_blocks=1)
    assert isinstance(gen.up[0].conv, nn.ConvTranspose2d) and gen.up[0].conv.stride == (2, 2)
    assert gen.down[0].conv.stride == (2, 2)
    assert not any(isinstance(m, (BlurDownsample, BlurUpsample, nn.Upsample)) for m in gen.modules())
    disc = PatchDiscriminator(ndf=8)
    assert [m.stride for m in disc.modules() if isinstance(m, nn.Conv2d)] == [(2, 2), (2, 2), (2, 2), (1, 1), (1, 1)]


def test_antialias_layers_are_blur_pools():
    gen = ResnetGenerator(ngf=8, n_blocks=1, upsample="antialias", downsample="antialias")
    assert gen.down[0].conv.stride == (1, 1) and isinstance(gen.down[0].blur, BlurDownsample)
    assert isinstance(gen.up[0].resample, BlurUpsample) and isinstance(gen.up[0].conv, nn.Conv2d)
    resize = ResnetGenerator(ngf=8, n_blocks=1, upsample="resize")
    assert resize.up[0].resample.mode == "nearest"
    disc = PatchDiscriminator(ndf=8, downsample="antialias").eval()
    assert all(m.stride == (1, 1) for m in disc.modules() if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, BlurDownsample) for m in disc.modules()) == 3
    with torch.no_grad():  # the same 30x30 patch logits at 256 px as the paper's
        assert disc(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_blurs_keep_flat_images_flat_up_to_the_border():
    flat = torch.full((1, 4, 10, 14), 0.3)
    torch.testing.assert_close(BlurDownsample(4)(flat), torch.full((1, 4, 5, 7), 0.3))
    torch.testing.assert_close(BlurUpsample()(flat), torch.full((1, 4, 20, 28), 0.3))


def test_blur_upsample_is_zero_insertion_then_a_fixed_1331_filter():
    x = torch.randn(1, 2, 5, 6)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4  # gain 2 per axis: 4 in all, for the inserted zeros
    kernel = (taps[:, None] * taps[None, :]).expand(2, 1, 4, 4)
    # Replicate one pixel at each edge, insert zeros, filter: output 2i = (x[i-1] + 3 x[i]) / 4.
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    stuffed = torch.zeros(1, 2, 14, 16)
    stuffed[..., ::2, ::2] = padded
    by_hand = nn.functional.conv2d(stuffed, kernel, groups=2)[..., :10, :12]
    torch.testing.assert_close(BlurUpsample()(x), by_hand)


def test_blur_downsample_removes_the_two_pixel_period():
    stripes = torch.tensor([1.0, -1.0]).repeat(8).reshape(1, 1, 1, 16).expand(1, 1, 16, 16)
    assert BlurDownsample(1)(stripes).abs().max() < 1e-6  # a strided conv would alias it to a constant
    assert stripes[..., ::2].abs().min() == 1


def test_transposed_convs_paint_a_periodic_pattern_at_initialisation_and_the_alternatives_do_not():
    # Smooth noise in; the output's spectrum at the 2- and 4-pixel periods against its neighbours.
    torch.manual_seed(0)
    smooth = nn.functional.avg_pool2d(torch.rand(1, 3, 132, 132) * 2 - 1, 5, 1)[..., :128, :128]
    smooth = smooth / smooth.abs().max()
    assert periodic_peak_ratio(tensor_to_pil(smooth[0])) < 1.5

    def mean_peak_ratio(upsample):
        ratios = []
        for seed in range(4):
            torch.manual_seed(seed)
            with torch.no_grad():
                out = ResnetGenerator(ngf=16, n_blocks=2, upsample=upsample).eval()(smooth)
            ratios.append(periodic_peak_ratio(tensor_to_pil(out[0])))
        return sum(ratios) / len(ratios)

    transpose = mean_peak_ratio("transpose")
    assert transpose > 3 * mean_peak_ratio("resize")
    assert transpose > 3 * mean_peak_ratio("antialias")


# --- initialisation -------------------------------------------------------------------------


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_every_init_type_builds_working_networks(init_type):
    gen = ResnetGenerator(ngf=8, n_blocks=2, init_type=init_type).eval()
    disc = PatchDiscriminator(ndf=8, n_layers=2, init_type=init_type).eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        assert torch.isfinite(gen(x)).all()
        assert torch.isfinite(disc(x)).all()
    for module in (gen, disc):
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.bias is not None:
                assert torch.count_nonzero(layer.bias) == 0


def test_normal_init_has_std_0_02():
    gen = ResnetGenerator(ngf=8, n_blocks=2)
    weights = torch.cat([w.detach().flatten() for w in conv_weights(gen)])
    assert weights.numel() > 40_000
    assert weights.std().item() == pytest.approx(0.02, rel=0.03)
    assert abs(weights.mean().item()) < 0.001


def test_normal_init_uses_init_gain():
    disc = PatchDiscriminator(ndf=8, n_layers=2, init_gain=0.1)
    weights = torch.cat([w.detach().flatten() for w in conv_weights(disc)])
    assert weights.std().item() == pytest.approx(0.1, rel=0.05)


def test_kaiming_init_scales_by_fan_in():
    gen = ResnetGenerator(ngf=8, n_blocks=2, init_type="kaiming")
    weight = gen.blocks[0].conv2.weight.detach()  # 32 -> 32 channels, 3x3: fan_in 288
    assert weight.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.05)


def test_orthogonal_init_gives_orthogonal_rows():
    gen = ResnetGenerator(ngf=8, n_blocks=2, init_type="orthogonal", init_gain=0.5)
    weight = gen.blocks[0].conv2.weight.detach().reshape(32, -1)  # 32 rows of 288
    torch.testing.assert_close(weight @ weight.T, 0.25 * torch.eye(32), atol=1e-5, rtol=0)


def test_batch_norm_init():
    gen = ResnetGenerator(ngf=8, n_blocks=1, norm="batch")
    scales = torch.cat([m.weight.detach() for m in gen.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(scales.mean().item() - 1) < 0.02 and 0 < scales.std().item() < 0.05


def test_init_weights_rejects_unknown_type():
    with pytest.raises(ValueError, match=r"init_type must be one of .*'normal'.*got 'uniform'"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")


# --- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(norm="foo"), r"norm must be one of \['batch', 'instance', 'layer', 'layer_instance', 'none'\], got 'foo'"),
        (dict(padding="x"), r"padding must be one of \['reflect', 'replicate', 'zeros'\], got 'x'"),
        (dict(ngf=0), r"ngf must be a positive integer, got 0"),
        (dict(ngf=2.5), r"ngf must be a positive integer, got 2.5"),
        (dict(in_channels=0), r"in_channels must be a positive integer"),
        (dict(out_channels=-3), r"out_channels must be a positive integer"),
        (dict(n_blocks=-1), r"n_blocks must be a non-negative integer, got -1"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (dict(dropout=-0.1), r"dropout must be in \[0, 1\)"),
        (dict(init_type="he"), r"init_type must be one of"),
        (dict(upsample="bilinear"), r"upsample must be one of \['antialias', 'resize', 'transpose'\], got 'bilinear'"),
        (dict(downsample="pool"), r"downsample must be one of \['antialias', 'stride'\], got 'pool'"),
    ],
)
def test_generator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ResnetGenerator(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(norm="group"), r"norm must be one of .* got 'group'"),
        (dict(n_layers=0), r"n_layers must be a positive integer, got 0"),
        (dict(init_type="zeros"), r"init_type must be one of"),
        (dict(downsample="avg"), r"downsample must be one of \['antialias', 'stride'\], got 'avg'"),
    ],
)
def test_discriminator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PatchDiscriminator(**kwargs)
