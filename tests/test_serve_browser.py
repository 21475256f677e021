"""The page of ``holefill serve`` in a real headless Chromium (Debian's), driven by Playwright.

Skipped where Playwright or Chromium is missing (``.ci/install-browser`` installs both). With
``HOLEFILL_SERVE_SCREENSHOT=docs/serve.png`` set, ``test_screenshot`` also renders the astronaut
example with a filled result into that file.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("fastapi")
from PIL import Image  # noqa: E402

from holefill.registry import list_methods  # noqa: E402
from holefill.serve import ServeConfig, create_app  # noqa: E402
from holefill.serve.cli import bind_socket, make_server, url_of  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("HOLEFILL_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def server_url():
    """A real uvicorn server on a free localhost port, in a thread."""
    sock = bind_socket("127.0.0.1", 0)
    app = create_app(ServeConfig(method="telea"))
    app.state.service.methods()  # imports every method (torch: seconds) before the clock runs
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    yield url_of(sock)
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium installed (run .ci/install-browser)")
    with sync_api.sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, timeout=30_000
            )
        except sync_api.Error as exc:
            pytest.skip(f"Chromium does not start here: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(
        viewport={"width": 1100, "height": 760}, device_scale_factor=1, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(server_url)
    page.wait_for_function("document.querySelectorAll('#method option').length > 0")
    yield page
    context.close()


def _textured_image(height: int = 200, width: int = 300) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 0.6, yy * 0.9, (xx + yy) * 0.4], axis=2) + 40
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def _open(page, path: Path) -> dict:
    page.set_input_files("#file", str(path))
    page.wait_for_selector("body[data-state=ready]")
    return page.locator("#canvas").bounding_box()


def _stroke(page, box: dict, size: tuple[int, int], points: list[tuple[float, float]]) -> None:
    """Drag the mouse through ``points`` given in image pixels."""
    scale = box["width"] / size[1]

    def screen(point):
        return box["x"] + point[0] * scale, box["y"] + point[1] * scale

    page.mouse.move(*screen(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*screen(point), steps=8)
    page.mouse.up()


def _set_brush(page, pixels: int) -> None:
    page.eval_on_selector(
        "#size", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", str(pixels)
    )


def _fill(page) -> str:
    """Click Fill, wait for the result, and return the method the server used."""
    fills = int(page.get_attribute("body", "data-fills"))
    with page.expect_response("**/api/inpaint") as response_info:
        page.click("#fill")
    response = response_info.value
    assert response.status == 200, response.text()
    page.wait_for_selector(f"body[data-fills='{fills + 1}'][data-state=ready]")
    return response.headers["x-holefill-method"]


def _download(page) -> tuple[str, np.ndarray]:
    """The result as the Download button saves it."""
    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    return download.suggested_filename, np.asarray(Image.open(download.path()))


def test_paint_fill_compare_fill_again_and_download(page, tmp_path):
    image = _textured_image()
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    assert page.input_value("#method") == "telea"
    box = _open(page, path)
    assert box["width"] / box["height"] == pytest.approx(1.5, abs=0.02)  # aspect kept when scaled

    _set_brush(page, 24)
    scale = box["width"] / 300
    _stroke(page, box, image.shape[:2], [(100, 100), (200, 100)])
    assert page.is_enabled("#clear")
    page.keyboard.press("Control+z")
    assert page.is_disabled("#clear")
    page.keyboard.press("Control+y")
    assert page.is_enabled("#clear")

    # an option the method refuses: the error is shown in words and nothing is lost
    page.click("#optionsToggle")
    box = page.locator("#canvas").bounding_box()  # the panel took some height
    page.fill("#optionsPanel input[data-name=radius]", "-1")
    page.click("#fill")
    page.wait_for_selector("#toast:not([hidden])")
    assert "radius must be > 0" in page.inner_text("#toastText")
    page.fill("#optionsPanel input[data-name=radius]", "")

    assert _fill(page) == "telea"
    name, first = _download(page)
    assert name == "photo-filled.png"
    assert first.shape == image.shape
    half_width = 24 / scale / 2  # the brush, in image pixels
    under = first[97:104, 110:190].astype(int) - image[97:104, 110:190]
    assert np.abs(under).mean() > 8  # the noise under the stroke is smoothed away
    far = np.r_[0 : int(100 - half_width - 3), int(100 + half_width + 3) : 200]
    assert np.array_equal(first[far], image[far])
    assert np.array_equal(first[:, :80], image[:, :80])

    page.keyboard.press("c")  # before/after; the tags appear on the next animation frame
    page.wait_for_selector("#tagBefore", state="visible")
    page.wait_for_selector("#tagAfter", state="visible")
    page.keyboard.press("b")  # back to the brush leaves the comparison
    page.wait_for_selector("#tagBefore", state="hidden")

    # iterative: the result is the new image
    _stroke(page, box, image.shape[:2], [(60, 40), (60, 60)])
    _fill(page)
    _, second = _download(page)
    assert np.array_equal(second[:, 120:], first[:, 120:])
    assert np.abs(second[42:58, 57:63].astype(int) - first[42:58, 57:63]).mean() > 8

    page.keyboard.press("Control+z")  # undo the second fill: back to the first result
    assert page.get_attribute("body", "data-fills") == "2"
    assert page.is_enabled("#clear")  # its stroke is back


def test_empty_mask_and_bad_file_are_explained(page, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#toast:not([hidden])")
    assert "cannot open" in page.inner_text("#toastText")
    good = tmp_path / "photo.png"
    Image.fromarray(_textured_image(60, 80)).save(good)
    _open(page, good)
    page.click("#fill")
    page.wait_for_function("document.getElementById('toastText').textContent.includes('Paint')")


def test_screenshot(browser, tmp_path):
    """The astronaut with the shuttle model painted over and filled (docs/serve.png)."""
    target = os.environ.get("HOLEFILL_SERVE_SCREENSHOT")
    if not target:
        pytest.skip("set HOLEFILL_SERVE_SCREENSHOT=docs/serve.png to render the screenshot")
    method = "patchmatch" if "patchmatch" in list_methods() else "telea"
    sock = bind_socket("127.0.0.1", 0)
    app = create_app(ServeConfig(method=method))
    app.state.service.methods()
    server = make_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    context = browser.new_context(viewport={"width": 1280, "height": 780}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        while not server.started:
            time.sleep(0.02)
        page.goto(url_of(sock))
        page.wait_for_function("document.querySelectorAll('#method option').length > 0")
        box = _open(page, EXAMPLES / "astronaut.jpg")
        _set_brush(page, 70)
        size = (512, 512)
        _stroke(page, box, size, [(412, 0), (414, 120), (406, 200), (412, 290)])
        _stroke(page, box, size, [(440, 40), (446, 200), (448, 280)])
        _stroke(page, box, size, [(372, 215), (372, 262)])
        _stroke(page, box, size, [(450, 210), (452, 262)])
        _fill(page)
        page.keyboard.press("c")  # before | after, the split through the shuttle
        page.mouse.click(box["x"] + 0.79 * box["width"], box["y"] + 0.5 * box["height"])
        page.mouse.move(0, 0)
        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot))
        Image.open(shot).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
            target, optimize=True
        )
        assert Path(target).stat().st_size < 300_000
    finally:
        context.close()
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_exif_rotated_photo_is_painted_upright(page, tmp_path):
    """The browser and the server both apply EXIF orientation, so the painted mask fits."""
    image = _textured_image(60, 90)  # stored 90 wide x 60 tall, shown 60 wide x 90 tall
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(image).save(path, quality=95, exif=exif.tobytes())
    box = _open(page, path)
    assert box["height"] / box["width"] == pytest.approx(1.5, abs=0.03)
    _stroke(page, box, (90, 60), [(20, 45), (40, 45)])
    _fill(page)
    _, result = _download(page)
    assert result.shape == (90, 60, 3)
