"""The studio in a real browser: `python studio.py` served to headless Chromium (Playwright).

An artist's session: pick a seed, move the truncation and a SeFa slider (the picture's
pixels must change each time), export a walk as GIF, project an uploaded image, save a PNG
that carries its recipe, open the run's timelapse; and a screenshot. Skipped, with the
reason, only where Playwright or Chromium is missing (.ci/run installs both).
"""

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

CHROMIUM = os.environ.get("CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set CHROMIUM=path)"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(studio_runs, tmp_path_factory):
    root = os.path.dirname(studio_runs["dcgan"])
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    log = open(tmp_path_factory.mktemp("studio_log") / "studio.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "studio.py"), f"--runs={root}", f"--port={port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        try:
            urllib.request.urlopen(url + "api/runs", timeout=5).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                log.close()
                proc.kill()
                with open(log.name) as f:
                    pytest.fail(f"studio.py did not start:\n{f.read()[-3000:]}")
            time.sleep(0.5)
    yield url, root
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    url, _ = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        _settle(page)
        yield page
        assert not errors, errors
        browser.close()


def _settle(page, timeout=120_000):
    """Waits until every request of the page has answered and the picture is drawn."""
    page.wait_for_function(
        "window.studio && window.studio.idle() && document.getElementById('main-img').complete"
        " && document.getElementById('main-img').src.startsWith('blob:')",
        timeout=timeout,
    )


def _picture(page) -> np.ndarray:
    """The picked image's pixels as the page shows them."""
    data = page.evaluate(
        """() => {
          const img = document.getElementById('main-img');
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          c.getContext('2d').drawImage(img, 0, 0);
          return c.toDataURL('image/png');
        }"""
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))))


def _blob(page, selector) -> bytes:
    """The bytes behind a blob: link of the page."""
    data = page.evaluate(
        """async (sel) => {
          const blob = await (await fetch(document.querySelector(sel).href)).blob();
          const buf = new Uint8Array(await blob.arrayBuffer());
          let s = ''; for (const b of buf) s += String.fromCharCode(b);
          return btoa(s);
        }""",
        selector,
    )
    return base64.b64decode(data)


def test_an_artists_session(page, server, tmp_path):
    _, root = server
    state = lambda: page.evaluate("window.studio.state")  # noqa: E731
    assert state()["run"] == "dcgan"
    first = _picture(page)

    page.locator("#grid-overlay div[data-seed='5']").click()
    _settle(page)
    assert state()["x"] == 5
    seed5 = _picture(page)
    assert not np.array_equal(seed5, first)

    page.locator("#truncation").fill("0.4")
    _settle(page)
    assert state()["truncation"] == 0.4
    truncated = _picture(page)
    assert not np.array_equal(truncated, seed5)

    page.wait_for_selector(".dir-slider")
    page.locator(".dir-slider").first.fill("4")
    _settle(page)
    edited = _picture(page)
    assert not np.array_equal(edited, truncated)

    # A walk to seed 9 (shift-click), exported as a 6-frame GIF.
    page.locator("#grid-overlay div[data-seed='9']").click(modifiers=["Shift"])
    _settle(page)
    page.locator("#walk-frames").fill("6")
    page.locator("#export-gif").click()
    page.wait_for_selector("#walk-download:not([hidden])", timeout=120_000)
    gif = iio.imread(_blob(page, "#walk-download"), index=None)
    assert len(gif) == 6 and not np.array_equal(gif[0], gif[-1])

    # Save: the PNG's recipe is the page's.
    with page.expect_download() as download:
        page.locator("#save-png").click()
    saved = tmp_path / "saved.png"
    download.value.save_as(saved)
    from gan_jax import sampling  # noqa: PLC0415

    meta, recipe = sampling.read_recipe_png(str(saved))
    assert meta["model"] == "dcgan" and recipe.x == 5 and recipe.truncation == 0.4
    assert recipe.to == (9.0, 0.0) and recipe.edits == (("sefa", 0, 4.0),)

    # The run's timelapse.
    page.locator("#show-timelapse").click()
    page.wait_for_function("document.getElementById('timelapse').naturalWidth > 0", timeout=60_000)
    page.screenshot(path=os.environ.get("GAN_JAX_STUDIO_SHOT", str(tmp_path / "studio.png")))


def test_projecting_an_upload_in_the_browser(page, tmp_path):
    page.locator("#run").select_option("style")
    _settle(page)
    assert page.locator("#style-panel").is_visible()
    target = tmp_path / "mine.png"
    Image.fromarray((np.indices((32, 32)).sum(0) * 4).astype(np.uint8)).save(target)
    page.locator("#upload").set_input_files(str(target))
    page.locator("#project-steps").fill("3")
    page.locator("#project-features").uncheck()  # pixels only: seconds on a CPU
    before = _picture(page)
    page.locator("#project").click()
    page.wait_for_function(
        "document.getElementById('project-info').textContent.includes('PSNR')", timeout=120_000
    )
    _settle(page)
    assert page.evaluate("window.studio.state.w") is not None
    assert not np.array_equal(_picture(page), before)


def test_inpainting_a_painted_hole_in_the_browser(page, tmp_path):
    page.locator("#run").select_option("inpaint")
    page.wait_for_function("window.studio.idle()")
    assert page.locator("#translate-panel").is_visible()
    assert not page.locator("#explore").is_visible()
    picture = np.indices((40, 48)).sum(0).astype(np.uint8) * 3  # a grey ramp, 48x40
    target = tmp_path / "damaged.png"
    Image.fromarray(picture).save(target)
    page.locator("#t-upload").set_input_files(str(target))
    page.wait_for_function("!document.getElementById('t-run').disabled")
    # Paint a stroke across the middle of the picture with the mouse.
    box = page.locator("#t-canvas").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=8)
    page.mouse.up()
    page.locator("#t-run").click()
    _settle(page)
    assert not page.locator("#message").is_visible(), page.locator("#message").text_content()
    out = _picture(page)[..., 0]  # the page shows the grey output as RGBA
    assert out.shape == picture.shape
    changed = out != picture
    # The stroke's rows changed and the known pixels (top and bottom rows) did not.
    assert changed[18:22].any() and not changed[:8].any() and not changed[-8:].any()
