"""The CycleGAN networks: the ResNet generator and the 70x70 PatchGAN discriminator.

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
arXiv 1703.10593, appendix 7.2. Same layers and parameter counts as the original PyTorch release
(github.com/junyanz/pytorch-CycleGAN-and-pix2pix, BSD licence); `convert.py` maps its key names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .hub import HubModule

NORMS = ("instance", "batch", "layer", "layer_instance", "none")
PADDINGS = ("reflect", "replicate", "zeros")
INITS = ("normal", "xavier", "kaiming", "orthogonal")
# How the generator doubles its resolution: the paper's transposed convs; nearest-neighbour resize
# then a conv (Odena et al. 2016, "Deconvolution and checkerboard artifacts"); or zero insertion
# then a fixed blur, i.e. bilinear interpolation, then a conv (anti-aliased, as in CUT, Park et al. 2020).
UPSAMPLES = ("transpose", "resize", "antialias")
# How G and D halve it: the paper's strided convs, or a stride-1 conv followed by a fixed blur
# with stride 2 (Zhang 2019, "Making convolutional networks shift-invariant again", as in CUT).
DOWNSAMPLES = ("stride", "antialias")
# Input sides the generator takes: divisible by 4 (two halvings) and at least 8 (its 4x smaller
# bottleneck needs 2 pixels per side for reflect padding and instance norm).
SIDE_MULTIPLE = 4
MIN_SIDE = 8


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


class LayerInstanceNorm(nn.Module):
    """U-GAT-IT's LIN (Kim et al. 2020): rho * instance norm + (1 - rho) * layer norm, with a learnt
    rho per channel, then a scale and shift per channel. Instance norm divides each channel's
    contrast away (the style a translation must set); layer norm keeps the channels' relative
    levels, so no channel can steer all the others' statistics with one loud spot (the blots).
    rho = sigmoid(rho_logit) stays in (0, 1) without clipping, so no channel gets stuck at a bound;
    it starts at 0.5, an even mix."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.rho_logit = nn.Parameter(torch.zeros(channels))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def mix(self, by_channel: torch.Tensor, by_layer: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """The output from the input standardised per channel and over all channels; `in_place`
        (no gradients: a large tile) overwrites `by_channel` instead of allocating."""
        rho, weight, bias = (value.to(by_channel.dtype).view(1, -1, 1, 1) for value in (torch.sigmoid(self.rho_logit), self.weight, self.bias))
        if in_place:
            return by_channel.sub_(by_layer).mul_(rho).add_(by_layer).mul_(weight).add_(bias)
        return ((by_channel - by_layer) * rho + by_layer) * weight + bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(F.instance_norm(x, eps=self.eps), F.group_norm(x, 1, eps=self.eps))


def norm_layer(norm: str, channels: int) -> nn.Module:
    """Instance norm without affine parameters, as in the paper; batch norm with them; layer norm
    (one mean and spread over all channels and pixels, the layer-norm half of U-GAT-IT's AdaLIN)
    with a scale and shift per channel, so that it can still weigh the channels; or a learnt mix
    of instance and layer norm (`LayerInstanceNorm`)."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "layer_instance":
        return LayerInstanceNorm(channels)
    return nn.Identity()


def init_weights(module: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> None:
    """Initialise conv weights from N(0, init_gain) (paper section 4) or another scheme; biases to 0."""
    _check_choice("init_type", init_type, INITS)
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            if init_type == "normal":
                nn.init.normal_(layer.weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(layer.weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(layer.weight, gain=init_gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, init_gain)
            nn.init.zeros_(layer.bias)


def blur_kernel(channels: int) -> torch.Tensor:
    """The [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, one copy per channel: (channels, 1, 3, 3)."""
    taps = torch.tensor([1.0, 2.0, 1.0])
    kernel = taps[:, None] * taps[None, :]
    return (kernel / kernel.sum()).expand(channels, 1, 3, 3).clone()


class BlurDownsample(nn.Module):
    """Low-pass, then keep every other pixel: halves H and W without aliasing. No parameters."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", blur_kernel(channels), persistent=False)  # fixed: not in the weights file

    def forward(self, x):
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=self.kernel.shape[0])


class BlurUpsample(nn.Module):
    """Insert zeros between pixels, then low-pass with the fixed [1, 3, 3, 1] x [1, 3, 3, 1] filter
    (gain 4), the edges replicated: doubles H and W. No parameters.

    That is exactly bilinear interpolation with half-pixel centres, which is how it is computed
    (CUT's anti-aliased upsampling, filter size 4). Every output pixel is a fixed average of its
    input neighbours, so, unlike a learned stride-2 transposed conv, it cannot paint a 2-pixel
    periodic pattern.
    """

    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class ConvNormReLU(nn.Sequential):
    """conv -> norm -> ReLU, the paper's c7s1-k and dk units.

    With `stride=2` and `downsample="antialias"` the conv runs at stride 1 and a `BlurDownsample`
    follows the ReLU (CUT's order).
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, norm="instance", padding_mode="zeros", downsample="stride"
    ):
        super().__init__()
        antialias = stride == 2 and downsample == "antialias"
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=1 if antialias else stride,
            padding=kernel_size // 2,
            padding_mode=padding_mode,
            bias=norm != "batch",  # batch norm's shift makes a conv bias redundant
        )
        self.norm = norm_layer(norm, out_channels)
        self.act = nn.ReLU(inplace=True)
        if antialias:
            self.blur = BlurDownsample(out_channels)


class UpConvNormReLU(nn.Sequential):
    """Double the resolution -> norm -> ReLU, the paper's uk unit.

    "transpose": a fractionally strided 3x3 conv (stride 1/2), the paper's. "resize": nearest x2
    then a 3x3 conv. "antialias": `BlurUpsample` then a 3x3 conv. The conv is always `conv`, so
    the paper's layout keeps the original release's weight names.
    """

    def __init__(self, in_channels, out_channels, norm="instance", upsample="transpose", padding_mode="reflect"):
        super().__init__()
        bias = norm != "batch"
        if upsample == "transpose":
            self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=bias)
        else:
            self.resample = nn.Upsample(scale_factor=2, mode="nearest") if upsample == "resize" else BlurUpsample()
            self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode=padding_mode, bias=bias)
        self.norm = norm_layer(norm, out_channels)
        self.act = nn.ReLU(inplace=True)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with the same number of filters and a skip connection, the paper's Rk unit."""

    def __init__(self, channels, norm="instance", dropout=0.0, padding_mode="reflect"):
        super().__init__()
        self.conv1 = ConvNormReLU(channels, channels, 3, norm=norm, padding_mode=padding_mode)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode, bias=norm != "batch")
        self.norm2 = norm_layer(norm, channels)

    def forward(self, x):
        return x + self.norm2(self.conv2(self.dropout(self.conv1(x))))


# atanh(+-1) is infinite and 8-bit images reach +-1: the input skip clamps just inside.
INPUT_SKIP_LIMIT = 0.995


def image_logits(x: torch.Tensor) -> torch.Tensor:
    """What `tanh` maps to `x` (clamped just inside [-1, 1]): the input skip's share of the output."""
    return torch.atanh(x.clamp(-INPUT_SKIP_LIMIT, INPUT_SKIP_LIMIT))


class ResnetGenerator(HubModule):
    """The CycleGAN generator: c7s1-ngf, d2ngf, d4ngf, n_blocks x R4ngf, u2ngf, ungf, c7s1-out, tanh.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: filters of the first conv; the widest layers have 4 * ngf.
        n_blocks: residual blocks (9 for 256 px, 6 for 128 px in the paper).
        norm: "instance" (paper), "batch", "layer", "layer_instance" or "none".
        dropout: dropout probability inside the residual blocks (0 in the paper).
        padding: padding of the 7x7 and residual convs: "reflect" (paper), "replicate" or "zeros".
        init_type: "normal" (paper), "xavier", "kaiming" or "orthogonal".
        init_gain: standard deviation / gain of the initialisation.
        upsample: "transpose" (paper), "resize" or "antialias"; see `UpConvNormReLU`.
        downsample: "stride" (paper) or "antialias"; see `ConvNormReLU`.
        input_skip: add the input image's logits (`image_logits`) to the last conv's output
            before the tanh, so the network learns a change of its input. The input's
            brightness and colours then reach the output directly, not only through the norms,
            which divide them away at every layer. False (the paper): the output is the network's own.
        unet_skips: concatenate the features of each encoder stage to the decoder's input at the
            same resolution (the stem's to the head's, the first halving's to the second up
            unit's), as U-Net does (Ronneberger et al. 2015; pix2pix's generator). Fine detail
            then reaches the output without passing the 4x smaller bottleneck, while the
            features, normalised, leave the colours to the network. False: the paper's.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        padding: str = "reflect",
        init_type: str = "normal",
        init_gain: float = 0.02,
        upsample: str = "transpose",
        downsample: str = "stride",
        input_skip: bool = False,
        unet_skips: bool = False,
    ):
        super().__init__()
        _check_choice("norm", norm, NORMS)
        _check_choice("padding", padding, PADDINGS)
        _check_choice("upsample", upsample, UPSAMPLES)
        _check_choice("downsample", downsample, DOWNSAMPLES)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("ngf", ngf)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if input_skip and in_channels != out_channels:
            raise ValueError(f"input_skip needs as many output channels as input channels, got {in_channels} and {out_channels}")
        self.input_skip = bool(input_skip)
        self.unet_skips = bool(unet_skips)
        widen = 2 if unet_skips else 1  # the decoder's inputs that get their encoder stage's features
        self.stem = ConvNormReLU(in_channels, ngf, 7, norm=norm, padding_mode=padding)
        # The stride-2 convs pad with zeros in the original release, whatever `padding` says.
        self.down = nn.Sequential(
            ConvNormReLU(ngf, ngf * 2, 3, stride=2, norm=norm, downsample=downsample),
            ConvNormReLU(ngf * 2, ngf * 4, 3, stride=2, norm=norm, downsample=downsample),
        )
        self.blocks = nn.Sequential(*[ResidualBlock(ngf * 4, norm, dropout, padding) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            UpConvNormReLU(ngf * 4, ngf * 2, norm, upsample, padding),
            UpConvNormReLU(ngf * 2 * widen, ngf, norm, upsample, padding),
        )
        self.head = nn.Conv2d(ngf * widen, out_channels, 7, padding=3, padding_mode=padding)
        init_weights(self, init_type, init_gain)

    def forward(self, x):
        """(B, in_channels, H, W) in [-1, 1] with H, W divisible by 4 -> (B, out_channels, H, W) in [-1, 1]."""
        if self.unet_skips:
            full = self.stem(x)
            half = self.down[0](full)
            features = self.up[0](self.blocks(self.down[1](half)))
            features = self.up[1](torch.cat([features, half], dim=1))
            logits = self.head(torch.cat([features, full], dim=1))
        else:
            logits = self.head(self.up(self.blocks(self.down(self.stem(x)))))
        if self.input_skip:
            logits = logits + image_logits(x)
        return logits.tanh()


class PatchDiscriminator(HubModule):
    """The 70x70 PatchGAN: C64-C128-C256-C512 then a 1-channel conv, one logit per patch.

    Args:
        in_channels: channels of the judged image.
        ndf: filters of the first conv.
        n_layers: stride-2 conv layers (3 gives 70x70 receptive fields).
        norm: "instance" (paper), "batch", "layer", "layer_instance" or "none"; never on the first layer.
        init_type: "normal" (paper), "xavier", "kaiming" or "orthogonal".
        init_gain: standard deviation / gain of the initialisation.
        downsample: "stride" (paper) or "antialias": each stride-2 conv runs at stride 1 and a
            `BlurDownsample` follows its LeakyReLU (CUT's discriminator).
        spectral_norm: divide every conv's weight by its largest singular value (Miyato et al.
            2018, as in U-GAT-IT's discriminators), which bounds how sharply D can react to a
            small change of its input; `norm` is then left out, as in those discriminators.
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        init_type: str = "normal",
        init_gain: float = 0.02,
        downsample: str = "stride",
        spectral_norm: bool = False,
    ):
        super().__init__()
        _check_choice("norm", norm, NORMS)
        _check_choice("downsample", downsample, DOWNSAMPLES)
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive integer, got {n_layers!r}")
        antialias = downsample == "antialias"
        if spectral_norm:
            norm = "none"

        def halving(channels_in, channels_out, *norm_and_bias):
            """conv(stride 2) [norm] LeakyReLU, or conv(stride 1) [norm] LeakyReLU blur."""
            bias = norm != "batch" if norm_and_bias else True
            conv = nn.Conv2d(channels_in, channels_out, 4, stride=1 if antialias else 2, padding=1, bias=bias)
            return [conv, *norm_and_bias, nn.LeakyReLU(0.2, inplace=True)] + ([BlurDownsample(channels_out)] if antialias else [])

        layers = halving(in_channels, ndf)
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            if n < n_layers:
                layers += halving(channels, out, norm_layer(norm, out))
            else:  # the last C-k layer keeps the resolution
                layers += [nn.Conv2d(channels, out, 4, padding=1, bias=norm != "batch"), norm_layer(norm, out), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)
        if spectral_norm:  # after init: the parametrisation keeps the initialised weight as its `original`
            for layer in self.model:
                if isinstance(layer, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x):
        """(B, in_channels, H, W) -> (B, 1, H', W') patch logits (30x30 for 256x256 inputs)."""
        return self.model(x)


def check_layer_counts(n_layers) -> None:
    """A `MultiPatchDiscriminator`'s `n_layers`: two or more different counts (a repeat would be a
    second discriminator judging exactly as the first)."""
    if not isinstance(n_layers, (list, tuple)) or len(n_layers) < 2 or len(set(n_layers)) < len(n_layers):
        raise ValueError(f"n_layers must list at least two different layer counts, got {n_layers!r}")


class MultiPatchDiscriminator(nn.Module):
    """Several PatchGANs judging the same image at different patch sizes, e.g. 70x70 and 142x142.

    pix2pixHD (Wang et al. 2018) judges downscaled copies of the image with one architecture;
    here every member sees the full-resolution image, so each can still see pixel-level patterns,
    and only its receptive field differs. The losses average over the members' verdicts.

    Args:
        n_layers: the members' stride-2 conv layers, one distinct entry per member (e.g. (3, 4)).
        settings: every other `PatchDiscriminator` argument, shared by the members.
    """

    def __init__(self, n_layers: tuple[int, ...] | list[int] = (3, 4), **settings):
        super().__init__()
        check_layer_counts(n_layers)
        self.members = nn.ModuleList(PatchDiscriminator(n_layers=n, **settings) for n in n_layers)

    def forward(self, x) -> list[torch.Tensor]:
        """(B, in_channels, H, W) -> each member's (B, 1, H', W') patch logits."""
        return [member(x) for member in self.members]


def build_discriminator(n_layers: int | list[int] = 3, **settings) -> PatchDiscriminator | MultiPatchDiscriminator:
    """A `MultiPatchDiscriminator` for a list of several layer counts, else one PatchGAN."""
    if isinstance(n_layers, (list, tuple)):
        if len(n_layers) != 1:
            return MultiPatchDiscriminator(n_layers=n_layers, **settings)
        (n_layers,) = n_layers
    return PatchDiscriminator(n_layers=n_layers, **settings)
