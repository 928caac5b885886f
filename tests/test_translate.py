"""translate() and to_rgb() on real-world images: odd sizes, every Pillow mode, EXIF, batches, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import ResnetGenerator, translate
from cyclegan_hub.images import pil_to_tensor, tensor_to_pil, to_rgb
from cyclegan_hub.translate import pad_to_multiple


def gradient_image(width: int, height: int) -> Image.Image:
    """An RGB image with different content in every pixel, so a translation has something to change."""
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 7 % 256], axis=-1)
    return Image.fromarray(array.astype(np.uint8), "RGB")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(255, 129), (1, 1), (3, 5), (5, 3), (1, 9), (64, 64), (6, 64)])
def test_odd_sizes_keep_their_size(tiny_generator, size):
    out = translate(tiny_generator, gradient_image(*size))
    assert isinstance(out, Image.Image)
    assert out.mode == "RGB" and out.size == size


@pytest.mark.parametrize("padding", ["reflect", "replicate", "zeros"])
def test_tiny_images_with_every_padding(padding):
    gen = ResnetGenerator(ngf=8, n_blocks=2, padding=padding).eval()
    for size in [(1, 1), (2, 7), (4, 4), (7, 2)]:
        assert translate(gen, gradient_image(*size)).size == size


def test_padding_reaches_a_multiple_of_4_and_at_least_8():
    for side, padded in [(1, 8), (3, 8), (8, 8), (9, 12), (129, 132), (256, 256)]:
        out = pad_to_multiple(torch.zeros(1, 3, side, 5))
        assert out.shape == (1, 3, padded, 8)


def test_translation_changes_the_image(tiny_generator):
    image = gradient_image(40, 24)
    out = translate(tiny_generator, image)
    assert np.abs(pixels(out) - pixels(image)).mean() > 10
    assert out.getextrema() != ((0, 0), (0, 0), (0, 0))


def test_translation_matches_the_generator_on_the_tensor(tiny_generator):
    image = gradient_image(32, 24)
    with torch.no_grad():
        expected = tensor_to_pil(tiny_generator(pil_to_tensor(image)[None])[0])
    assert translate(tiny_generator, image).tobytes() == expected.tobytes()


def test_pil_tensor_round_trip_is_exact():
    image = gradient_image(17, 9)
    tensor = pil_to_tensor(image)
    assert tensor.shape == (3, 9, 17) and tensor.min() >= -1 and tensor.max() <= 1
    assert tensor_to_pil(tensor).tobytes() == image.tobytes()


# --- Pillow modes ----------------------------------------------------------------------------


def mode_image(mode: str, size=(13, 7)) -> Image.Image:
    gray = np.asarray(gradient_image(*size).convert("L"))
    if mode == "I;16":
        return Image.fromarray(gray.astype(np.uint16) * 257)
    if mode == "I":
        return Image.fromarray(gray.astype(np.int32) * 257)
    if mode == "F":
        return Image.fromarray(gray.astype(np.float32) / 255)
    if mode == "P-transparent":
        image = gradient_image(*size).quantize(8)
        image.info["transparency"] = 0
        return image
    if mode == "P":
        return gradient_image(*size).quantize(8)
    if mode == "RGBA":
        image = gradient_image(*size).convert("RGBA")
        image.putalpha(Image.fromarray(gray))
        return image
    return gradient_image(*size).convert(mode)


MODES = ["L", "LA", "RGBA", "P", "P-transparent", "CMYK", "I;16", "I", "F", "1", "RGB", "YCbCr", "PA", "La", "RGBa"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_translates_to_rgb(tiny_generator, mode):
    image = mode_image(mode)
    assert image.mode == mode.split("-")[0]
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == image.size
    out = translate(tiny_generator, image)
    assert out.mode == "RGB" and out.size == image.size


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "L"])
def test_high_depth_gray_keeps_its_levels(mode):
    """A gradient stored at any depth becomes the same 8-bit gradient."""
    expected = np.asarray(gradient_image(13, 7).convert("L"))
    got = np.asarray(to_rgb(mode_image(mode)))
    assert np.abs(got[..., 0].astype(int) - expected).max() <= 1
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_16_bit_full_range():
    white = Image.fromarray(np.full((5, 6), 65535, np.uint16))
    assert white.mode == "I;16"
    assert to_rgb(white).getextrema() == ((255, 255),) * 3
    mid = Image.fromarray(np.full((5, 6), 257 * 100, np.uint16))
    assert to_rgb(mid).getpixel((0, 0)) == (100, 100, 100)
    # A dark 16-bit image stays dark: 16-bit values are scaled by 65535 even when all are <= 255.
    dark = Image.fromarray(np.full((5, 6), 200, np.uint16))
    assert to_rgb(dark).getpixel((0, 0)) == (1, 1, 1)


def test_16_bit_png_file():
    array = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1040).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    buffer.seek(0)
    image = Image.open(buffer)
    rgb = np.asarray(to_rgb(image))[..., 0]
    np.testing.assert_array_equal(rgb, np.round(array / 65535 * 255).astype(np.uint8))
    assert rgb.max() > 250


def test_32_bit_integer_and_float_ranges():
    assert to_rgb(Image.fromarray(np.full((2, 2), 65535, np.int32))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.fromarray(np.full((2, 2), 128, np.int32))).getpixel((0, 0)) == (128, 128, 128)
    assert to_rgb(Image.fromarray(np.full((2, 2), 1.0, np.float32))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.fromarray(np.full((2, 2), 0.25, np.float32))).getpixel((0, 0)) == (64, 64, 64)
    nan = Image.fromarray(np.full((2, 2), np.nan, np.float32))
    assert to_rgb(nan).getpixel((0, 0)) == (0, 0, 0)


def test_transparency_is_composited_on_white():
    clear = Image.new("RGBA", (6, 4), (10, 20, 30, 0))
    assert to_rgb(clear).getextrema() == ((255, 255),) * 3
    half = Image.new("RGBA", (6, 4), (0, 0, 0, 128))
    assert to_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    opaque = Image.new("RGBA", (6, 4), (10, 20, 30, 255))
    assert to_rgb(opaque).getpixel((0, 0)) == (10, 20, 30)
    assert to_rgb(Image.new("LA", (3, 3), (0, 0))).getpixel((0, 0)) == (255, 255, 255)


def test_palette_transparency():
    image = Image.new("P", (4, 2), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 0), 1)
    plain = to_rgb(image)
    assert plain.getpixel((0, 0)) == (255, 0, 0) and plain.getpixel((1, 0)) == (0, 255, 0)
    image.info["transparency"] = 0  # palette entry 0 is transparent
    clear = to_rgb(image)
    assert clear.getpixel((0, 0)) == (255, 255, 255) and clear.getpixel((1, 0)) == (0, 255, 0)
    # The same after a PNG round trip, where Pillow reads the tRNS chunk.
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    buffer.seek(0)
    reloaded = Image.open(buffer)
    assert reloaded.mode == "P" and "transparency" in reloaded.info
    assert to_rgb(reloaded).tobytes() == clear.tobytes()


def test_cmyk_and_bilevel():
    assert to_rgb(Image.new("CMYK", (3, 3), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("1", (3, 3), 1)).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("1", (3, 3), 0)).getpixel((0, 0)) == (0, 0, 0)


# --- EXIF orientation ------------------------------------------------------------------------


def rotated_jpeg(width=40, height=24) -> Image.Image:
    """A JPEG stored `width` x `height`, left half red and right half blue, tagged orientation 6."""
    stored = Image.new("RGB", (width, height), (255, 0, 0))
    stored.paste((0, 0, 255), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned 90 degrees: rotate clockwise to view
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif, quality=95)
    buffer.seek(0)
    image = Image.open(buffer)
    assert image.size == (width, height) and image.getexif()[0x0112] == 6
    return image


def test_exif_orientation_is_applied():
    upright = to_rgb(rotated_jpeg())
    assert upright.size == (24, 40)
    # Rotating clockwise puts the stored left (red) half on top.
    top, bottom = np.asarray(upright)[5, 12], np.asarray(upright)[35, 12]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_translate_outputs_upright_size(tiny_generator):
    assert translate(tiny_generator, rotated_jpeg()).size == (24, 40)
    outputs = translate(tiny_generator, [rotated_jpeg(), gradient_image(40, 24)])
    assert [o.size for o in outputs] == [(24, 40), (40, 24)]


# --- lists and batching ----------------------------------------------------------------------


def test_list_keeps_order_and_sizes_and_matches_single_images(tiny_generator):
    sizes = [(32, 32), (20, 12), (32, 32), (7, 9), (20, 12), (32, 32), (1, 1)]
    images = [gradient_image(w, h).rotate(15 * i) for i, (w, h) in enumerate(sizes)]
    batched = translate(tiny_generator, images, batch_size=2)
    assert isinstance(batched, list) and len(batched) == len(images)
    assert [o.size for o in batched] == sizes
    for image, out in zip(images, batched):
        alone = translate(tiny_generator, image)
        # Instance norm is per sample, so batching changes nothing beyond float rounding.
        assert np.abs(pixels(out) - pixels(alone)).max() <= 1
    # Same-size images with different content get different outputs (no mix-up inside a batch).
    assert batched[0].tobytes() != batched[2].tobytes()


def test_tuple_and_one_element_list(tiny_generator):
    image = gradient_image(16, 12)
    single = translate(tiny_generator, image)
    as_list = translate(tiny_generator, [image])
    as_tuple = translate(tiny_generator, (image, image))
    assert isinstance(as_list, list) and len(as_list) == 1
    assert as_list[0].tobytes() == single.tobytes()
    assert [o.tobytes() for o in as_tuple] == [single.tobytes()] * 2


# --- tensors ---------------------------------------------------------------------------------


def test_tensor_inputs_keep_their_shape(tiny_generator):
    single = torch.rand(3, 13, 7) * 2 - 1
    out = translate(tiny_generator, single)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 13, 7) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1

    batch = torch.rand(5, 3, 20, 28) * 2 - 1
    out = translate(tiny_generator, batch, batch_size=2)
    assert out.shape == (5, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(out, tiny_generator(batch), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[3], translate(tiny_generator, batch[3]), atol=1e-5, rtol=0)


def test_inference_mode_and_usable_outputs(tiny_generator):
    x = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_()
    out = translate(tiny_generator, x)
    assert not out.requires_grad
    assert all(p.grad is None for p in tiny_generator.parameters())
    out.add_(1)  # a normal tensor: in-place ops work outside inference mode
    single = translate(tiny_generator, x[0].detach())
    assert not single.requires_grad
    single.mul_(2)


def test_float64_tensor_comes_back_float64(tiny_generator):
    out = translate(tiny_generator, torch.zeros(2, 3, 8, 8, dtype=torch.float64))
    assert out.dtype == torch.float64 and out.shape == (2, 3, 8, 8)


# --- max_side --------------------------------------------------------------------------------


def test_max_side_downscales_keeping_aspect(tiny_generator):
    assert translate(tiny_generator, gradient_image(200, 100), max_side=64).size == (64, 32)
    assert translate(tiny_generator, gradient_image(30, 90), max_side=45).size == (15, 45)
    assert translate(tiny_generator, gradient_image(30, 20), max_side=64).size == (30, 20)  # never upscaled
    assert translate(tiny_generator, gradient_image(300, 2), max_side=64).size == (64, 1)


def test_max_side_without_downscale_is_an_error(tiny_generator):
    with pytest.raises(ValueError, match=r"image 0: image is 200x100, larger than max_side=64"):
        translate(tiny_generator, gradient_image(200, 100), max_side=64, downscale=False)
    assert translate(tiny_generator, gradient_image(64, 10), max_side=64, downscale=False).size == (64, 10)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, message",
    [
        ("photo.jpg", r"expected a PIL image, a list of PIL images or a tensor, got str"),
        (b"\x89PNG", r"expected a PIL image, a list of PIL images or a tensor, got bytes"),
        (3, r"expected a PIL image, a list of PIL images or a tensor, got int"),
        (None, r"expected a PIL image, a list of PIL images or a tensor, got NoneType"),
        (np.zeros((8, 8, 3), np.uint8), r"got ndarray"),
        ([], r"no images given"),
        (Image.new("RGB", (0, 5)), r"image 0: image has 0 pixels \(0x5\)"),
        ([Image.new("RGB", (4, 4)), "b.png"], r"image 1: expected a PIL image, got str"),
        (torch.zeros(4, 8, 8), r"expected 3 channels in dimension 1, got shape \(4, 8, 8\)"),
        (torch.zeros(2, 4, 8, 8), r"expected 3 channels in dimension 1, got shape \(2, 4, 8, 8\)"),
        (torch.zeros(8, 8), r"expected a \(C, H, W\) or \(B, C, H, W\) tensor, got shape \(8, 8\)"),
        (torch.zeros(1, 1, 3, 8, 8), r"expected a \(C, H, W\) or \(B, C, H, W\) tensor"),
        (torch.zeros(3, 8, 8, dtype=torch.uint8), r"expected a float tensor in \[-1, 1\], got dtype torch.uint8"),
        (torch.zeros(3, 0, 8), r"tensor has no pixels: shape \(3, 0, 8\)"),
        (torch.zeros(0, 3, 8, 8), r"tensor has no pixels"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) or len(v) > 20 else v,
)
def test_clear_errors(tiny_generator, images, message):
    with pytest.raises(ValueError, match=message):
        translate(tiny_generator, images)


def test_tensor_input_honours_max_side(tiny_generator):
    batch = torch.rand(2, 3, 40, 100) * 2 - 1
    assert translate(tiny_generator, batch, max_side=50).shape == (2, 3, 20, 50)
    with pytest.raises(ValueError, match="max_side=50"):
        translate(tiny_generator, batch, max_side=50, downscale=False)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5])
def test_bad_batch_size_is_a_clear_error(tiny_generator, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        translate(tiny_generator, Image.new("RGB", (8, 8)), batch_size=batch_size)


# --- the scale to translate at -----------------------------------------------------------------


def test_short_side_translates_downscaled_and_returns_the_input_size(tiny_generator):
    big = gradient_image(120, 80)
    out = translate(tiny_generator, big, short_side=40)
    assert out.size == (120, 80)
    by_hand = translate(tiny_generator, big.resize((60, 40), Image.Resampling.LANCZOS)).resize((120, 80), Image.Resampling.BICUBIC)
    assert np.array_equal(pixels(out), pixels(by_hand))
    assert not np.array_equal(pixels(out), pixels(translate(tiny_generator, big)))
    small = gradient_image(30, 50)  # already at or below the scale: translated as it is
    assert np.array_equal(pixels(translate(tiny_generator, small, short_side=40)), pixels(translate(tiny_generator, small)))


def test_short_side_on_tensors_keeps_the_shape(tiny_generator):
    batch = torch.rand(2, 3, 48, 64) * 2 - 1
    out = translate(tiny_generator, batch, short_side=24)
    assert out.shape == batch.shape and out.abs().max() <= 1
    assert not torch.allclose(out, translate(tiny_generator, batch))
    with pytest.raises(ValueError, match="short_side must be an integer >= 8"):
        translate(tiny_generator, batch, short_side=4)


def test_scale_training_uses_the_models_training_resolution(make_cyclegan, tmp_path):
    model = make_cyclegan(training_resolution=40)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert loaded.training_resolution == 40
    big = gradient_image(100, 60)
    expected = translate(model.generator_ab, big, short_side=40)
    assert np.array_equal(pixels(loaded.translate(big, "monet", scale="training")), pixels(expected))
    assert np.array_equal(pixels(loaded.translate(big, "monet")), pixels(translate(model.generator_ab, big)))
    with pytest.raises(ValueError, match="scale must be one of"):
        loaded.translate(big, "monet", scale="paper")
    with pytest.raises(ValueError, match="no training_resolution"):
        make_cyclegan().translate(big, "monet", scale="training")


def test_a_truncated_file_opened_lazily_is_a_value_error(tiny_generator):
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")  # mostly pixel data, so half the file still has its header
    truncated = Image.open(io.BytesIO(buffer.getvalue()[: len(buffer.getvalue()) // 2]))  # nothing decoded yet
    with pytest.raises(ValueError, match="image 0: the file is incomplete or damaged"):
        translate(tiny_generator, truncated)
