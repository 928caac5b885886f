"""The demo app: `translate_image` called directly (fast), then the real server through
gradio_client and a real browser (slow). A tiny random CycleGAN stands in for the trained one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import ExifTags, Image

gr = pytest.importorskip("gradio")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # app.py sits at the repository root, outside the package
import app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth colour ramp (not flat, so a translation visibly changes it)."""
    array = np.zeros((height, width, 3), np.uint8)
    array[..., 0] = np.linspace(0, 255, width)[None]
    array[..., 1] = np.linspace(0, 255, height)[:, None]
    array[..., 2] = 90
    return Image.fromarray(array).convert(mode)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from cyclegan_hub import CycleGAN

    path = tmp_path_factory.mktemp("tiny-cyclegan")
    CycleGAN("photo", "monet", generator=dict(ngf=8, n_blocks=2)).save_pretrained(path)
    return path


@pytest.fixture
def loaded(model_dir):
    """The app with the tiny model loaded and images beyond 64 px downscaled."""
    app.load_model(str(model_dir), max_side_=64)
    return app


def save(image: Image.Image, path: Path) -> str:
    image.save(path)
    return str(path)


def test_output_has_the_input_size(loaded, tmp_path):
    output, status = app.translate_image(save(gradient(55, 29), tmp_path / "odd.png"), "Photo -> Monet")
    assert output.size == (55, 29) and output.mode == "RGB"
    assert status == "Photo -> Monet: 55x29."


def test_large_images_are_downscaled_and_the_status_says_so(loaded, tmp_path):
    output, status = app.translate_image(save(gradient(255, 129), tmp_path / "big.png"), "Monet -> Photo")
    assert output.size == (64, 32)
    assert status == "Monet -> Photo: downscaled from 255x129 to 64x32 (max side 64) before translating."


def test_huge_images_are_refused_before_decoding(loaded, tmp_path):
    # 1-bit and blank, so the PNG is a few kB, but 120 megapixels would take ~360 MB as RGB
    huge = tmp_path / "huge.png"
    Image.new("1", (12_000, 10_000)).save(huge)
    with pytest.raises(gr.Error, match="'huge.png' is 12000x10000 pixels; images up to 100 megapixels"):
        app.translate_image(str(huge), "a2b")


def test_exif_rotated_jpeg_reports_its_upright_size(loaded, tmp_path):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown portrait
    path = tmp_path / "rotated.jpg"
    gradient(120, 60).save(path, exif=exif)
    output, status = app.translate_image(str(path), "a2b")
    assert output.size == (32, 64)
    assert status == "Photo -> Monet: downscaled from 60x120 to 32x64 (max side 64) before translating."


def test_directions_by_label_or_key(loaded, tmp_path):
    path = save(gradient(40, 24), tmp_path / "in.png")
    by_label = np.asarray(app.translate_image(path, "Monet -> Photo")[0])
    by_key = np.asarray(app.translate_image(path, "b2a")[0])
    other = np.asarray(app.translate_image(path, "a2b")[0])
    assert np.array_equal(by_label, by_key)
    assert not np.array_equal(by_label, other)
    with pytest.raises(gr.Error, match="Unknown direction 'sideways'"):
        app.translate_image(path, "sideways")


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "P", "CMYK"])
def test_any_image_mode(loaded, tmp_path, mode):
    if mode == "I;16":
        image = Image.fromarray((np.arange(33 * 21).reshape(21, 33) * 90).astype(np.uint16))
        assert image.mode == "I;16"
    else:
        image = gradient(33, 21, mode)
    path = save(image, tmp_path / ("in.jpg" if mode == "CMYK" else "in.png"))
    output, _ = app.translate_image(path, "a2b")
    assert output.size == (33, 21) and output.mode == "RGB"


def test_file_payload_as_the_server_sends_it(loaded, tmp_path):
    path = save(gradient(30, 20), tmp_path / "upload.png")
    output, _ = app.translate_image({"path": path, "orig_name": "holiday.png", "meta": {"_type": "gradio.FileData"}}, "a2b")
    assert output.size == (30, 20)


def test_unreadable_files_get_a_clear_message(loaded, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="Could not read 'notes.png' as an image .*not an image format"):
        app.translate_image(str(text), "a2b")
    with pytest.raises(gr.Error, match="Could not read 'holiday.jpg'"):  # the uploader's file name
        app.translate_image({"path": str(text), "orig_name": "holiday.jpg"}, "a2b")
    truncated = tmp_path / "cut.jpg"
    gradient(64, 64).save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:600])
    with pytest.raises(gr.Error, match="Could not read 'cut.jpg' as an image .*(?i:truncated)"):
        app.translate_image(str(truncated), "a2b")
    with pytest.raises(gr.Error, match="upload an image"):
        app.translate_image(None, "a2b")


def test_a_folder_without_a_model_is_a_clear_start_up_error(tmp_path):
    with pytest.raises(SystemExit, match="config.json not found.*--model"):
        app.load_model(str(tmp_path))


def test_bf16_without_the_compiled_path_is_refused_at_start_up():
    result = subprocess.run(
        [sys.executable, "app.py", "--bf16", "--no_compile"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "--bf16 is part of the compiled path: drop --no_compile" in result.stderr


def test_examples_are_small_held_out_images_with_a_direction(loaded):
    rows = app.example_rows()
    assert [Path(file).name.split("_")[0] for file, _ in rows] == ["photo", "photo", "monet", "monet"]
    assert {direction for file, direction in rows if "photo_" in file} == {"Photo -> Monet"}
    assert {direction for file, direction in rows if "monet_" in file} == {"Monet -> Photo"}
    for file, _ in rows:
        assert max(Image.open(file).size) <= 256 and os.path.getsize(file) < 100_000
    assert (app.EXAMPLES / "SOURCES.md").is_file()


def test_embedded_model_loads_offline_and_translates():
    """The committed demo model: fp16 files in the repo, float32 once loaded, no network (conftest)."""
    from safetensors import safe_open

    with safe_open(str(app.EMBEDDED_MODEL / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.float16}
    model = app.load_model(None)  # no --model, no CYCLEGAN_MODEL: the embedded folder
    assert (model.domain_a, model.domain_b) == ("photo", "monet")
    assert model.discriminator_a is None and next(model.parameters()).dtype == torch.float32
    file, direction = app.example_rows()[0]
    output, status = app.translate_image(file, direction)
    assert output.size == Image.open(file).size and status.startswith(direction)
    assert np.abs(np.asarray(output, np.float32) - np.asarray(Image.open(file).convert("RGB"), np.float32)).mean() > 5


# --- the real server -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """`python app.py --model <tiny> --port <free>` in its own process; yields its URL."""
    work = tmp_path_factory.mktemp("server")
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(work / "gradio"))
    log = open(work / "server.log", "w+")
    command = [sys.executable, "app.py", "--model", str(model_dir), "--port", str(port), "--max_side", "256"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"app.py exited with {process.returncode}:\n{log.read()}")
            try:
                if opener.open(url, timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("app.py did not answer within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_api_translates_both_ways_and_survives_a_bad_upload(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))
    source = gradient(255, 129)
    path = save(source, tmp_path / "odd.png")
    outputs = {}
    for direction in ("Photo -> Monet", "Monet -> Photo"):
        result_path, status = client.predict(handle_file(path), direction, api_name="/translate")
        outputs[direction] = np.asarray(Image.open(result_path).convert("RGB"), np.int16)
        assert outputs[direction].shape == (129, 255, 3)
        assert status == f"{direction}: 255x129."
        assert np.abs(outputs[direction] - np.asarray(source, np.int16)).mean() > 10  # it did translate
    assert not np.array_equal(outputs["Photo -> Monet"], outputs["Monet -> Photo"])

    junk = tmp_path / "junk.png"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(AppError, match="Could not read 'junk.png' as an image"):
        client.predict(handle_file(str(junk)), "Photo -> Monet", api_name="/translate")
    big = save(gradient(600, 300), tmp_path / "big.jpg")  # the server is still up, and downscales
    result_path, status = client.predict(handle_file(big), "a2b", api_name="/translate")
    assert Image.open(result_path).size == (256, 128)
    assert status == "Photo -> Monet: downscaled from 600x300 to 256x128 (max side 256) before translating."


@pytest.mark.slow
def test_browser_upload_translate_and_error(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    upload = save(gradient(201, 123), tmp_path / "ramp.png")
    junk = tmp_path / "notes.png"
    junk.write_text("hello")
    output_image = "document.querySelector('#output-image img')"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(server)
            page.locator("input[type=file]").first.set_input_files(upload)
            page.locator("img[src*='ramp']").first.wait_for(timeout=30_000)  # the upload's preview
            page.get_by_role("radio", name="Monet -> Photo").check()
            page.get_by_role("button", name="Translate").click()
            page.wait_for_function(f"() => {{ const i = {output_image}; return i && i.complete && i.naturalWidth > 0 }}")
            assert page.evaluate(f"() => [{output_image}.naturalWidth, {output_image}.naturalHeight]") == [201, 123]
            assert page.get_by_label("Status").input_value() == "Monet -> Photo: 201x123."
            page.screenshot(path=str(tmp_path / "app_screenshot.png"), full_page=True)

            page.locator("table").get_by_text("Photo -> Monet").first.click()  # an example photo
            page.get_by_role("button", name="Translate").click()
            sync_api.expect(page.get_by_label("Status")).to_have_value("Photo -> Monet: 256x256.", timeout=30_000)

            page.goto(server)  # a fresh page: a text file renamed .png gets the app's message
            page.locator("input[type=file]").first.set_input_files(str(junk))
            page.get_by_role("button", name="Translate").click()
            page.get_by_text("Could not read 'notes.png' as an image").wait_for(timeout=30_000)
        finally:
            browser.close()
