"""The demo's first requests after start-up: does any image size wait for a compile?

Starts `python app.py` (compiled path, the embedded model) on a free port, waits until it
answers, then sends through `gradio_client`: a portrait, a 1x1 image, a landscape and a square,
each three times in a row. Reports the seconds of each request and, per size, the first
request's time over the third's (1.0: the first paid no compile). Also the start-up time.

    python bench/first_request.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"portrait 600x900": (600, 900), "1x1": (1, 1), "landscape 1024x683": (1024, 683), "square 512x512": (512, 512)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="first-request-"))
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", GRADIO_TEMP_DIR=str(work / "gradio"))
    env.pop("CYCLEGAN_COMPILE", None)
    log = open(work / "server.log", "w+")
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        while True:
            try:
                if opener.open(url, timeout=5).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
            if server.poll() is not None:
                log.seek(0)
                raise SystemExit(f"app.py exited:\n{log.read()}")
        startup = time.perf_counter() - started
        client = Client(url, verbose=False, download_files=str(work / "downloads"))
        rng = np.random.default_rng(0)
        times = {}
        for name, size in SIZES.items():
            path = work / f"{name.split()[0]}.png"
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
            times[name] = []
            for _ in range(3):
                begun = time.perf_counter()
                client.predict(handle_file(str(path)), "Photo -> Monet", api_name="/translate")
                times[name].append(time.perf_counter() - begun)
            print(f"{name:>20}: " + "  ".join(f"{t:.2f} s" for t in times[name]) + f"  first/third {times[name][0] / times[name][2]:.2f}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = dict(startup_s=startup, requests_s=times, first_over_third={k: v[0] / v[2] for k, v in times.items()})
    print(f"start-up (load, compile, warm-up, serve): {startup:.1f} s")
    Path(__file__).with_name("first_request.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
