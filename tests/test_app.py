"""The demo app: `translate_image` called directly (fast), then the real server through
gradio_client and a real browser (slow). A tiny random CycleGAN stands in for the trained one."""

from __future__ import annotations

import contextlib
import io
import os
import re
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

import app  # the repository root is on pytest's pythonpath (pyproject.toml)
from cyclegan_hub.video import FrameTranslator, probe
from videos import audio_packets, pan_frames, write_video

ROOT = Path(__file__).resolve().parents[1]

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
def translator(model_dir):
    """The app's translator on the tiny model, eager, images beyond 64 px downscaled."""
    return app.Translator(app.Settings(model=str(model_dir), max_side=64, compile=False))


def save(image: Image.Image, path: Path) -> str:
    image.save(path)
    return str(path)


def test_output_has_the_input_size(translator, tmp_path):
    output, status = translator(save(gradient(55, 29), tmp_path / "odd.png"), "Photo -> Monet")
    assert output.size == (55, 29) and output.mode == "RGB"
    assert status == "Photo -> Monet: 55x29."


def test_large_images_are_downscaled_and_the_status_says_so(translator, tmp_path):
    output, status = translator(save(gradient(255, 129), tmp_path / "big.png"), "Monet -> Photo")
    assert output.size == (64, 32)
    assert status == "Monet -> Photo: downscaled from 255x129 to 64x32 (max side 64) before translating."


def test_huge_images_are_refused_before_decoding_in_the_apps_words(translator, tmp_path):
    # 1-bit and blank, so the PNG is a few kB, but 120 megapixels would take ~360 MB as RGB
    huge = tmp_path / "huge.png"
    Image.new("1", (12_000, 10_000)).save(huge)
    with pytest.raises(gr.Error, match="'huge.png' is 12000x10000 pixels; images up to 100 megapixels are accepted"):
        translator(str(huge), "a2b")
    bomb = tmp_path / "bomb.png"  # beyond Pillow's own limit, which raises its own error at open
    Image.new("1", (15_000, 13_000)).save(bomb)
    with pytest.raises(gr.Error, match=r"'bomb.png' is too large: images up to 100 megapixels are accepted\."):
        translator(str(bomb), "a2b")


def test_exif_rotated_jpeg_reports_its_upright_size(translator, tmp_path):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown portrait
    path = tmp_path / "rotated.jpg"
    gradient(120, 60).save(path, exif=exif)
    output, status = translator(str(path), "a2b")
    assert output.size == (32, 64)
    assert status == "Photo -> Monet: downscaled from 60x120 to 32x64 (max side 64) before translating."


def test_directions_by_label_key_or_target_domain(translator, tmp_path):
    path = save(gradient(40, 24), tmp_path / "in.png")
    by_label = np.asarray(translator(path, "Monet -> Photo")[0])
    assert np.array_equal(by_label, np.asarray(translator(path, "b2a")[0]))
    assert np.array_equal(by_label, np.asarray(translator(path, "photo")[0]))
    assert not np.array_equal(by_label, np.asarray(translator(path, "a2b")[0]))
    with pytest.raises(gr.Error, match="Unknown direction 'sideways': use Photo -> Monet, Monet -> Photo, 'a2b' or 'b2a'"):
        translator(path, "sideways")


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "P", "CMYK"])
def test_any_image_mode(translator, tmp_path, mode):
    if mode == "I;16":
        image = Image.fromarray((np.arange(33 * 21).reshape(21, 33) * 90).astype(np.uint16))
        assert image.mode == "I;16"
    else:
        image = gradient(33, 21, mode)
    path = save(image, tmp_path / ("in.jpg" if mode == "CMYK" else "in.png"))
    output, _ = translator(path, "a2b")
    assert output.size == (33, 21) and output.mode == "RGB"


def test_file_payload_as_the_server_sends_it(translator, tmp_path):
    path = save(gradient(30, 20), tmp_path / "upload.png")
    output, _ = translator({"path": path, "orig_name": "holiday.png", "meta": {"_type": "gradio.FileData"}}, "a2b")
    assert output.size == (30, 20)


def test_unreadable_files_get_a_plain_message_that_the_status_keeps(translator, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    expected = "'notes.png' is not an image file that can be read (JPEG, PNG, WebP, GIF, BMP or TIFF)."
    with pytest.raises(gr.Error, match=re.escape(expected)):
        translator(str(text), "a2b")
    assert translator.failures.explain(str(text), "a2b") == expected  # what the status box shows after the pop-up
    with pytest.raises(gr.Error, match="'holiday.jpg' is not an image file"):  # the uploader's file name
        translator({"path": str(text), "orig_name": "holiday.jpg"}, "a2b")
    truncated = tmp_path / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    damaged = "'cut.jpg' is incomplete or damaged: it could not be decoded to the end."
    with pytest.raises(gr.Error, match=re.escape(damaged)):
        translator(str(truncated), "a2b")
    assert translator.failures.explain(str(truncated), "a2b") == damaged
    with pytest.raises(gr.Error, match="Please upload an image first"):
        translator(None, "a2b")


def test_an_animated_gif_says_its_first_frame_was_translated(translator, tmp_path):
    frames = [gradient(40, 30), gradient(40, 30).rotate(180), gradient(40, 30).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    path = tmp_path / "loop.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    output, status = translator(str(path), "a2b")
    assert output.size == (40, 30)
    assert status == "Photo -> Monet: an animation of 3 frames: its first frame was translated."


def test_identical_requests_give_files_with_different_bytes(translator, tmp_path):
    """Gradio caches an output under the hash of its bytes, rewriting the file in place: two
    identical outputs would share one file that one request rewrites while another reads it."""
    path = save(gradient(40, 30), tmp_path / "same.png")
    encoded = []
    for _ in range(2):
        output, _ = translator(path, "a2b")
        buffer = io.BytesIO()
        output.save(buffer, "PNG", pnginfo=gr.processing_utils.get_pil_metadata(output))  # as Gradio encodes it
        encoded.append(buffer.getvalue())
    assert encoded[0] != encoded[1]
    assert np.array_equal(*(np.asarray(Image.open(io.BytesIO(data))) for data in encoded))  # the same picture


def test_scale_training_translates_at_the_models_resolution(tmp_path):
    from cyclegan_hub import CycleGAN

    model = CycleGAN("photo", "monet", generator=dict(ngf=8, n_blocks=2), training_resolution=32)
    model.save_pretrained(tmp_path / "model")
    picture = gradient(96, 64)
    path = save(picture, tmp_path / "in.png")
    assert app.Translator(app.Settings(model=str(tmp_path / "model"), compile=False)).scale == "input"  # the measured default
    trained_scale = app.Translator(app.Settings(model=str(tmp_path / "model"), compile=False, scale="training"))
    assert "training resolution (32 px short side)" in trained_scale.description()
    output, status = trained_scale(path, "a2b")
    assert status == "Photo -> Monet: 96x64."
    assert np.array_equal(np.asarray(output), np.asarray(model.translate(picture, "a2b", scale="training")))
    own_scale = app.Translator(app.Settings(model=str(tmp_path / "model"), compile=False, scale="input"))
    assert np.array_equal(np.asarray(own_scale(path, "a2b")[0]), np.asarray(model.translate(picture, "a2b")))


def test_scale_training_without_a_training_resolution_is_refused_at_start_up(tmp_path):
    from cyclegan_hub import CycleGAN

    CycleGAN("photo", "monet", generator=dict(ngf=8, n_blocks=2)).save_pretrained(tmp_path)  # as convert writes them
    with pytest.raises(SystemExit, match="--scale training .* has no training_resolution: use scale='input'"):
        app.Translator(app.Settings(model=str(tmp_path), compile=False, scale="training"))


def test_settings_from_the_environment_are_checked_as_flags_are(monkeypatch):
    """`gradio app.py` and a Space configure the demo from the environment alone."""
    for name, value, message in [
        ("CYCLEGAN_MAX_SIDE", "0", r"CYCLEGAN_MAX_SIDE\) must be at least 8, got 0"),
        ("CYCLEGAN_MAX_SIDE", "1024px", "CYCLEGAN_MAX_SIDE must be a whole number of pixels, got '1024px'"),
        ("CYCLEGAN_SCALE", "native", r"CYCLEGAN_SCALE\) must be one of input, training, got 'native'"),
        ("CYCLEGAN_COMPILE", "0", "is part of the compiled path"),  # with CYCLEGAN_BF16=1
    ]:
        with monkeypatch.context() as env:
            env.setenv("CYCLEGAN_BF16", "1")
            env.setenv(name, value)
            with pytest.raises(ValueError, match=message):
                app.Settings.from_env()
    monkeypatch.setenv("CYCLEGAN_MAX_SIDE", "512")
    monkeypatch.setenv("CYCLEGAN_SCALE", "training")
    assert (app.Settings.from_env().max_side, app.Settings.from_env().scale) == (512, "training")


def test_the_page_says_what_the_model_is_from_its_card(tmp_path):
    from cyclegan_hub import CycleGAN

    model = CycleGAN("horse", "zebra", generator=dict(ngf=8, n_blocks=2))
    model.save_pretrained(tmp_path, model_card_kwargs=dict(summary="Trained on 12 horses for 3 steps; KID 0.5 (untranslated 0.6)."))
    described = app.Translator(app.Settings(model=str(tmp_path), compile=False)).description()
    assert described.startswith("A [CycleGAN](https://arxiv.org/abs/1703.10593) that translates **horse → zebra**")
    assert "Trained on 12 horses for 3 steps; KID 0.5 (untranslated 0.6)." in described
    (tmp_path / "README.md").unlink()
    no_card = app.Translator(app.Settings(model=str(tmp_path), compile=False)).description()
    assert no_card.startswith(f"A CycleGAN between horse and zebra ({tmp_path}); it has no model card.")


def test_a_folder_without_a_model_is_a_clear_start_up_error(tmp_path):
    with pytest.raises(SystemExit, match="config.json not found.*--model"):
        app.Translator(app.Settings(model=str(tmp_path), compile=False))
    with pytest.raises(SystemExit, match="Could not load the CycleGAN model './no_such_model': no folder"):
        app.Translator(app.Settings(model="./no_such_model", compile=False))


def test_bf16_without_the_compiled_path_is_refused_at_start_up():
    result = subprocess.run(
        [sys.executable, "app.py", "--bf16", "--no_compile"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "--bf16 (CYCLEGAN_BF16=1) is part of the compiled path: drop --no_compile" in result.stderr
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, CYCLEGAN_MAX_SIDE="big"),
    )
    assert result.returncode == 1 and "CYCLEGAN_MAX_SIDE must be a whole number of pixels, got 'big'" in result.stderr


def test_examples_are_small_held_out_images_with_a_direction():
    translator = app.translator  # the module's own, on the embedded model
    rows = translator.example_rows()
    model = translator.model
    assert len(rows) == 4
    for file, label in rows:
        assert Path(file).name.startswith(model.source_domain(label) + "_")
        assert max(Image.open(file).size) <= 256 and os.path.getsize(file) < 100_000
    assert (app.EXAMPLES / "SOURCES.md").is_file()


def test_embedded_model_loads_offline_and_translates():
    """The committed demo model: fp16 files in the repo, float32 once loaded, no network (conftest)."""
    from safetensors import safe_open

    with safe_open(str(app.EMBEDDED_MODEL / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.float16}
    translator = app.translator  # built at import from the environment: no --model, the embedded folder
    model = translator.model
    assert {model.domain_a, model.domain_b} == {"photo", "monet"}
    assert model.discriminator_a is None and next(model.parameters()).dtype == torch.float32
    assert "KID" in translator.description()  # its card says how good it is
    file, direction = translator.example_rows()[0]
    output, status = translator(file, direction)
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
    with pytest.raises(AppError, match="'junk.png' is not an image file that can be read"):
        client.predict(handle_file(str(junk)), "Photo -> Monet", api_name="/translate")
    big = save(gradient(600, 300), tmp_path / "big.jpg")  # the server is still up, and downscales
    result_path, status = client.predict(handle_file(big), "a2b", api_name="/translate")
    assert Image.open(result_path).size == (256, 128)
    assert status == "Photo -> Monet: downscaled from 600x300 to 256x128 (max side 256) before translating."


@pytest.mark.slow
def test_a_burst_of_identical_requests_all_succeed(server, tmp_path):
    """8 clients sending the same image at once: every download is whole (identical outputs used
    to share one cached file, rewritten while another client read it)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    path = save(noise, tmp_path / "same.png")

    def client_run(index: int) -> list[tuple[str, tuple[int, int]]]:
        client = Client(server, verbose=False, download_files=str(tmp_path / f"client-{index}"))
        results = []
        for _ in range(6):
            result_path, status = client.predict(handle_file(path), "a2b", api_name="/translate")
            with Image.open(result_path) as image:
                image.load()  # a truncated download fails here
                results.append((status, image.size))
        return results

    with ThreadPoolExecutor(8) as pool:
        outcomes = [item for batch in pool.map(client_run, range(8)) for item in batch]
    assert outcomes == [("Photo -> Monet: 256x256.", (256, 256))] * 48


@contextlib.contextmanager
def chromium(*extra_args: str):
    """Headless Chromium through Playwright and its `expect`, closed afterwards; without them the test is skipped."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser, sync_api.expect
        finally:
            browser.close()


OUTPUT_IMAGE = "document.querySelector('#output-image img')"


def wait_for_result(page) -> None:
    page.wait_for_function(f"() => {{ const i = {OUTPUT_IMAGE}; return i && i.complete && i.naturalWidth > 0 }}", timeout=60_000)


@pytest.mark.slow
def test_browser_upload_translate_and_error(server, tmp_path):
    upload = save(gradient(201, 123), tmp_path / "ramp.png")
    portrait = save(gradient(300, 900), tmp_path / "tall.png")
    junk = tmp_path / "notes.png"
    junk.write_text("hello")
    with chromium() as (browser, expect):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.locator("input[type=file]").first.set_input_files(upload)
        page.locator("img[src*='ramp']").first.wait_for(timeout=30_000)  # the upload's preview
        page.get_by_role("radio", name="Monet -> Photo").check()
        page.get_by_role("button", name="Translate").click()
        wait_for_result(page)
        assert page.evaluate(f"() => [{OUTPUT_IMAGE}.naturalWidth, {OUTPUT_IMAGE}.naturalHeight]") == [201, 123]
        assert page.get_by_label("Status").input_value() == "Monet -> Photo: 201x123."
        page.screenshot(path=str(tmp_path / "app_screenshot.png"), full_page=True)

        # A tall portrait keeps Translate and the status above the fold on a desktop screen.
        page.locator("input[type=file]").first.set_input_files(portrait)
        page.locator("img[src*='tall']").first.wait_for(timeout=30_000)
        for name in ("Translate",):
            box = page.get_by_role("button", name=name).bounding_box()
            assert box["y"] + box["height"] <= 900, f"{name} is below the fold: {box}"
        status_box = page.get_by_label("Status").bounding_box()
        assert status_box["y"] + status_box["height"] <= 900

        page.locator("table").get_by_text("Photo -> Monet").first.click()  # an example photo
        page.get_by_role("button", name="Translate").click()
        expect(page.get_by_label("Status")).to_have_value(re.compile(r"^Photo -> Monet: \d+x\d+\.$"), timeout=30_000)

        page.goto(server)  # a fresh page: a text file renamed .png gets the app's message, which the status keeps
        page.locator("input[type=file]").first.set_input_files(str(junk))
        page.get_by_role("button", name="Translate").click()
        message = "'notes.png' is not an image file that can be read"
        page.get_by_text(message).first.wait_for(timeout=30_000)
        expect(page.get_by_label("Status")).to_have_value(re.compile(re.escape(message)), timeout=30_000)


@pytest.mark.slow
def test_on_a_phone_the_result_is_in_view_after_translate(server, tmp_path):
    upload = save(gradient(300, 400), tmp_path / "phone.png")
    with chromium() as (browser, expect):
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(server)
        page.locator("input[type=file]").first.set_input_files(upload)
        page.locator("img[src*='phone']").first.wait_for(timeout=30_000)
        button = page.get_by_role("button", name="Translate")
        # The user scrolled down to the button: it is at the top of the screen when tapped.
        page.evaluate("(y) => window.scrollTo(0, y)", button.bounding_box()["y"] + page.evaluate("window.scrollY"))
        assert abs(button.bounding_box()["y"]) < 5
        button.click()
        wait_for_result(page)
        page.wait_for_timeout(500)  # let any layout shift settle
        visible = page.evaluate(
            f"""() => {{
                const r = {OUTPUT_IMAGE}.getBoundingClientRect();
                const shown = Math.max(0, Math.min(r.bottom, window.innerHeight) - Math.max(r.top, 0));
                return shown / r.height;
            }}"""
        )
        assert visible >= 0.5, f"only {visible:.0%} of the result is on screen"
        page.screenshot(path=str(tmp_path / "phone.png"))


@pytest.mark.slow
def test_start_up_says_it_is_compiling_before_it_compiles(model_dir, capsys):
    translator = app.Translator(app.Settings(model=str(model_dir), compile=True))
    printed = capsys.readouterr().out
    announced, done = printed.index("Compiling the generators"), printed.index("Compiled in")
    assert announced < done and "first time" in printed[announced:done]
    assert translator.model.compiled  # and it did compile


def test_full_resolution_says_how_long_first_then_gives_the_whole_image(translator, tmp_path):
    path = save(gradient(300, 200), tmp_path / "large.png")  # beyond max_side 64
    translator(path, "a2b")  # an on-screen translation sets the pace
    steps = list(translator.full_resolution(path, "a2b"))
    (first_file, first_status), (file, status) = steps
    assert first_file is None and first_status.startswith("Photo -> Monet: translating 300x200 at full resolution, about ")
    assert status.startswith("Photo -> Monet: 300x200 at full resolution in ") and status.endswith("ready to download.")
    with Image.open(file) as image:
        assert image.size == (300, 200)
    with pytest.raises(gr.Error, match="'notes.txt' is not an image file"):
        notes = tmp_path / "notes.txt"
        notes.write_text("no")
        list(translator.full_resolution(str(notes), "a2b"))


# --- the Video and Webcam tabs ----------------------------------------------------------------


@pytest.fixture
def videos(translator):
    return app.VideoTab(translator)


def test_a_clip_keeps_its_frames_rate_and_sound_and_the_status_says_so(videos, tmp_path):
    source = write_video(tmp_path / "walk.mov", pan_frames(9, size=(96, 64)), fps=15)
    seen = []
    path, status = videos.video({"path": str(source), "orig_name": "walk.mov"}, "Photo -> Monet", progress=lambda f, desc: seen.append(f))
    assert path.endswith(".mp4")  # a MOV comes back as MP4, which every browser plays
    info = probe(path)
    assert (info.frames, info.fps, info.width, info.height, info.has_audio) == (9, 15, 96, 64, True)
    assert audio_packets(path) == audio_packets(source)
    assert status.startswith("Photo -> Monet: 9 frames at 15 frames/s, 96x64, with sound; translated in ")
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)  # the progress bar went to the end


def test_clips_beyond_the_bounds_or_of_other_kinds_are_refused_plainly(videos, tmp_path):
    long_clip = write_video(tmp_path / "long.mp4", pan_frames(11 * 3, size=(32, 32)), fps=3, audio=False)  # 11 s
    with pytest.raises(gr.Error, match=r"'long.mp4' is 11 s long; this demo translates clips of up to 10 s\."):
        videos.video(str(long_clip), "a2b")
    assert videos.failures.explain(str(long_clip), "a2b") == "'long.mp4' is 11 s long; this demo translates clips of up to 10 s."
    with pytest.raises(gr.Error, match="'clip.avi': videos can be MP4, MOV or WebM"):
        videos.video({"path": str(long_clip), "orig_name": "clip.avi"}, "a2b")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(gr.Error, match="'junk.mp4' is not a video file that can be read"):
        videos.video(str(junk), "a2b")
    with pytest.raises(gr.Error, match="Please upload a video first"):
        videos.video(None, "a2b")


def test_large_clips_are_translated_at_the_demos_video_size(videos, tmp_path):
    source = write_video(tmp_path / "big.webm", pan_frames(3, size=(640, 360)), fps=10, audio=False)
    path, status = videos.video(str(source), "a2b", progress=lambda *a, **k: None)
    assert path.endswith(".webm") and (probe(path).width, probe(path).height) == (512, 288)
    assert "512x288, downscaled from 640x360, no sound" in status


def test_webcam_frames_are_steadied_from_one_request_to_the_next(videos):
    frames = pan_frames(4, size=(320, 240))
    session, outputs = None, []
    for frame in frames:
        output, rate, session = videos.webcam(frame, "Photo -> Monet", session)
        outputs.append(output)
        assert re.fullmatch(r"\d+\.\d frames/s on this machine \(256x192, \d+ ms a frame\)", rate)
    assert outputs[0].shape == (192, 256, 3) and len(session["seconds"]) == 4
    # the same frames through one stream give the same result
    stream = FrameTranslator(videos.model, "a2b", max_side=app.WEBCAM_MAX_SIDE)
    assert all(np.array_equal(a, b) for a, b in zip(outputs, [stream([f])[0] for f in frames]))
    _, _, flipped = videos.webcam(frames[0], "Monet -> Photo", session)  # a new direction starts afresh
    assert flipped["direction"] == "b2a" and len(flipped["seconds"]) == 1
    assert videos.webcam(None, "a2b", None)[:2] == (None, "Waiting for the camera...")


@pytest.mark.slow
def test_api_translates_a_clip(server, tmp_path):
    from gradio_client import Client, handle_file

    source = write_video(tmp_path / "api.mp4", pan_frames(6, size=(64, 48)), fps=12)
    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))
    result, status = client.predict(handle_file(str(source)), "Monet -> Photo", api_name="/translate_video")
    path = result["video"] if isinstance(result, dict) else result
    assert (probe(path).frames, probe(path).fps, probe(path).has_audio) == (6, 12, True)
    assert status.startswith("Monet -> Photo: 6 frames at 12 frames/s")


@pytest.mark.slow
def test_browser_video_tab_translates_a_clip(server, tmp_path):
    source = write_video(tmp_path / "pan.mp4", pan_frames(20, size=(128, 96)), fps=10)
    with chromium() as (browser, expect):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server)
        page.get_by_role("tab", name="Video").click()
        # The Video tab's own input: set_input_files waits for it to mount after the tab click.
        page.locator("#input-video input[type=file]").set_input_files(str(source))
        page.locator("video").first.wait_for(timeout=30_000)  # the upload's preview
        page.get_by_role("button", name="Translate video").click()
        expect(page.get_by_label("Video status")).to_have_value(re.compile(r"^Photo -> Monet: 20 frames at 10 frames/s"), timeout=60_000)
        duration = page.wait_for_function(
            "() => { const v = document.querySelector('#output-video video'); return v && v.readyState >= 1 && v.duration }",
            timeout=30_000,
        ).json_value()
        assert abs(duration - 2.0) < 0.2  # the browser plays the translated clip, 20 frames at 10 frames/s


@pytest.mark.slow
def test_browser_webcam_tab_translates_the_camera_live(server, tmp_path):
    """Chromium's fake camera plays a real clip (Gradio's rotating Earth, else a pan we make)."""
    camera = camera_clip(tmp_path / "camera.y4m")
    camera_args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
    with chromium(*camera_args) as (browser, expect):
        page = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"]).new_page()
        page.goto(server)
        page.get_by_role("tab", name="Webcam").click()
        page.get_by_text("Click to Access Webcam").click()
        page.get_by_role("button", name="capture photo").click()  # Gradio's Record button
        expect(page.get_by_label("Frame rate")).to_have_value(re.compile(r"^\d+\.\d frames/s on this machine \(256x144, "), timeout=60_000)
        first = page.evaluate("() => document.querySelector('#output-webcam img').src")
        page.wait_for_function(f"() => document.querySelector('#output-webcam img').src !== {first!r}", timeout=30_000)  # live: it changes
        page.screenshot(path=str(tmp_path / "webcam.png"))


def camera_clip(path: Path) -> Path:
    """A .y4m file for Chromium's fake camera: 2 s of Gradio's real clip at 320x180, or of a pan."""
    import av

    clip = Path(gr.__file__).parent / "media_assets" / "videos" / "b.mp4"
    if clip.exists():
        with av.open(str(clip)) as container:
            frames = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(60), container.decode(video=0))]
    else:
        frames = pan_frames(60, size=(480, 270))
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for pixels in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(width=320, height=180, format="yuv420p")))
        out.mux(stream.encode(None))
    return path
