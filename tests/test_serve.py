"""The HTTP API of ``holefill serve``: fills, limits, errors, the queue, and no disk writes."""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
import cv2  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from holefill.errors import HolefillError, InputError  # noqa: E402
from holefill.io import read_mask  # noqa: E402
from holefill.registry import list_methods  # noqa: E402
from holefill.serve import FillQueue, ServeConfig, ServerBusyError, create_app  # noqa: E402
from holefill.serve import cli as serve_cli  # noqa: E402


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _local(app) -> TestClient:
    """A test client whose requests name 127.0.0.1, as a browser on this computer does."""
    return TestClient(app, base_url="http://127.0.0.1:8080")


def _files(image: bytes, mask: bytes) -> dict:
    return {"image": ("photo.png", image, "image/png"), "mask": ("mask.png", mask, "image/png")}


def _multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body written by hand, independent of the server's parser."""
    boundary = "holefill-test-boundary"
    chunks = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
        )
        chunks.append(value + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def image(smooth_image) -> np.ndarray:
    return smooth_image


@pytest.fixture
def mask(square_hole) -> np.ndarray:
    return (square_hole * 255).astype(np.uint8)


@pytest.fixture
def client():
    with _local(create_app(ServeConfig(method="telea"))) as test_client:
        yield test_client


def _detail(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


# -- listing and pages ---------------------------------------------------------------------------


def test_methods_lists_the_registry_with_client_options(client):
    data = client.get("/api/methods").json()
    assert data["default"] == "telea"
    assert [m["name"] for m in data["methods"]] == list_methods()
    telea = next(m for m in data["methods"] if m["name"] == "telea")
    assert "Telea" in telea["summary"]
    assert telea["options"]["radius"] == {"default": 3.0, "type": "float"}
    for method in data["methods"]:  # file paths and hardware are the server's choice only
        assert not {"weights", "vgg_weights", "device"} & set(method["options"])
    assert data["limits"]["max_upload_mb"] == 50.0


def test_health_page_and_openapi_docs(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["method"] == "telea"
    assert health["queue"]["admitted"] == 0
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="canvas"' in page.text and "api/inpaint" in page.text
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(url.startswith(("/", "data:")) for url in assets)  # nothing from a CDN
    for url in assets:
        if url.startswith("/"):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/inpaint"]["post"]["requestBody"]["content"]
    assert set(body["multipart/form-data"]["schema"]["required"]) == {"image", "mask"}
    select = schema["paths"]["/api/select"]["post"]["requestBody"]["content"]
    assert set(select["multipart/form-data"]["schema"]["properties"]) == {"image", "point", "box"}
    grow = schema["paths"]["/api/grow"]["post"]["requestBody"]["content"]
    assert set(grow["multipart/form-data"]["schema"]["required"]) == {"mask", "pixels"}


# -- filling ---------------------------------------------------------------------------------------


def test_fill_matches_opencv_telea_and_keeps_known_pixels(client, image, mask):
    response = client.post(
        "/api/inpaint",
        files=_files(_png(image), _png(mask)),
        data={"options": json.dumps({"radius": 5})},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-holefill-method"] == "telea"
    result = _decode(response.content)
    assert result.shape == image.shape
    hole = mask > 0
    assert np.array_equal(result[~hole], image[~hole])
    assert np.abs(result[hole].astype(int) - image[hole]).mean() > 2  # the noise is gone
    reference = cv2.inpaint(image, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    assert np.abs(result.astype(int) - reference).max() <= 1


def test_method_field_selects_another_method(client, image, mask):
    response = client.post(
        "/api/inpaint", files=_files(_png(image), _png(mask)), data={"method": "navier_stokes"}
    )
    assert response.status_code == 200
    assert response.headers["x-holefill-method"] == "navier_stokes"
    reference = cv2.inpaint(image, (mask > 0).astype(np.uint8), 3, cv2.INPAINT_NS)
    assert np.abs(_decode(response.content).astype(int) - reference).max() <= 1


def test_exif_orientation_is_applied_to_image_and_mask_alike(client, image, mask):
    def rotated_jpeg(array: np.ndarray) -> bytes:  # stored landscape, shown portrait
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to display
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="JPEG", quality=100, exif=exif.tobytes())
        return buffer.getvalue()

    response = client.post("/api/inpaint", files=_files(rotated_jpeg(image), rotated_jpeg(mask)))
    assert response.status_code == 200, response.text
    assert _decode(response.content).shape == (64, 48, 3)  # upright: 48 wide, 64 tall
    upright_mask = np.ascontiguousarray(np.rot90(mask, -1))
    response = client.post("/api/inpaint", files=_files(rotated_jpeg(image), _png(upright_mask)))
    assert response.status_code == 200
    wrong = client.post("/api/inpaint", files=_files(rotated_jpeg(image), _png(mask)))
    assert wrong.status_code == 422 and "same size" in _detail(wrong)


def test_alpha_is_kept(client, image, mask):
    alpha = np.full(mask.shape, 200, np.uint8)
    alpha[:, :8] = 0
    response = client.post(
        "/api/inpaint", files=_files(_png(np.dstack([image, alpha])), _png(mask))
    )
    result = _decode(response.content)
    assert result.shape == (48, 64, 4) and np.array_equal(result[..., 3], alpha)


def _png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG written by OpenCV (RGB or RGBA in, stored as BGR(A))."""
    channels = array[..., [2, 1, 0, 3][: array.shape[2]]]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(channels))
    assert ok
    return data.tobytes()


def _decode16(data: bytes) -> np.ndarray:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return decoded[..., [2, 1, 0, 3][: decoded.shape[2]]]


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_png_comes_back_16_bit_with_known_pixels_identical(client, image, mask, channels):
    rng = np.random.default_rng(4)
    deep = image.astype(np.uint16) * 257 + rng.integers(0, 257, image.shape, dtype=np.uint16)
    if channels == 4:
        deep = np.dstack([deep, rng.integers(30000, 65536, mask.shape, dtype=np.uint16)])
    assert np.any(deep % 257)  # values an 8-bit image cannot hold
    response = client.post("/api/inpaint", files=_files(_png16(deep), _png(mask)))
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as png:
        png.load()
    result = _decode16(response.content)
    assert result.dtype == np.uint16 and result.shape == deep.shape
    hole = mask > 0
    assert np.array_equal(result[~hole], deep[~hole])
    if channels == 4:
        assert np.array_equal(result[..., 3], deep[..., 3])  # alpha is known everywhere
    reference = cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    assert np.abs(result[hole][:, :3] / 257 - reference[hole]).mean() < 3


# -- selecting and growing masks -------------------------------------------------------------------


def _decode_mask(response) -> np.ndarray:
    """The grey part of a mask answer as bool, after checking alpha equals it."""
    grey_alpha = _decode(response.content)
    assert grey_alpha.ndim == 3 and grey_alpha.shape[2] == 2
    assert np.array_equal(grey_alpha[..., 0], grey_alpha[..., 1])
    assert set(np.unique(grey_alpha[..., 0])) <= {0, 255}
    return grey_alpha[..., 0] == 255


def _bounding_box(hole: np.ndarray) -> str:
    rows, cols = np.nonzero(hole)
    return f"{cols.min()},{rows.min()},{cols.max() + 1},{rows.max() + 1}"


def test_select_by_point_and_by_box_returns_the_objects_mask(client, bench_select):
    image, disc = bench_select.textured_disc_photo(320, seed=1)
    x, y = bench_select.click_points(disc)[1]
    by_point = client.post(
        "/api/select", files={"image": ("disc.png", _png(image))}, data={"point": f"{x},{y}"}
    )
    assert by_point.status_code == 200, by_point.text
    assert by_point.headers["content-type"] == "image/png"
    selected = _decode_mask(by_point)
    assert bench_select.iou(selected, disc) >= 0.8
    assert by_point.headers["x-holefill-box"] == _bounding_box(selected)
    assert float(by_point.headers["x-holefill-seconds"]) > 0
    rows, cols = np.nonzero(disc)
    box = f"{cols.min() - 10} {rows.min() - 10} {cols.max() + 10} {rows.max() + 10}"
    by_box = client.post(
        "/api/select", files={"image": ("disc.png", _png(image))}, data={"box": box}
    )
    assert by_box.status_code == 200 and bench_select.iou(_decode_mask(by_box), disc) >= 0.8
    # the answer is a mask holefill reads as such (white = hole)
    assert np.array_equal(read_mask(io.BytesIO(by_box.content)), _decode_mask(by_box))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "give a point"),
        ({"point": "1,two"}, "point must be 2 numbers"),
        ({"point": "5"}, "point must be 2 numbers"),
        ({"box": "0,0,nan,9"}, "box must be 4 numbers"),
        ({"point": "64,3"}, "outside the 64x48 image"),
    ],
)
def test_select_errors_are_422_with_one_line(client, image, data, expected):
    response = client.post("/api/select", files={"image": ("p.png", _png(image))}, data=data)
    assert response.status_code == 422 and expected in _detail(response)


@pytest.mark.parametrize("pixels", [6, -3, 0])
def test_grow_matches_opencv(client, mask, pixels):
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1,) * 2)
    morph = cv2.dilate if pixels >= 0 else cv2.erode
    expected = morph((mask > 0).astype(np.uint8), kernel) > 0
    response = client.post(
        "/api/grow", files={"mask": ("m.png", _png(mask))}, data={"pixels": str(pixels)}
    )
    assert response.status_code == 200, response.text
    grown = _decode_mask(response)
    assert np.array_equal(grown, expected)
    assert response.headers["x-holefill-box"] == _bounding_box(expected)
    empty = client.post(
        "/api/grow", files={"mask": ("m.png", _png(np.zeros_like(mask)))}, data={"pixels": "4"}
    )
    assert empty.status_code == 200 and empty.headers["x-holefill-box"] == ""


@pytest.mark.parametrize("pixels", ["", "2.5", "ten", "501"])
def test_grow_rejects_bad_pixels(client, mask, pixels):
    response = client.post(
        "/api/grow", files={"mask": ("m.png", _png(mask))}, data={"pixels": pixels}
    )
    assert response.status_code == 422 and "pixels must be a whole number" in _detail(response)


# -- errors ----------------------------------------------------------------------------------------


def test_upload_over_the_limit_is_413_by_header_and_by_bytes(image, mask):
    app = create_app(ServeConfig(method="telea", max_upload_mb=4 / 1024))  # 4 KB
    big = _png(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    body, content_type = _multipart({"image": big, "mask": _png(mask)})
    assert len(body) > 4096
    with _local(app) as client:
        declared = client.post("/api/inpaint", content=body, headers={"content-type": content_type})
        assert declared.status_code == 413 and "--max-upload-mb" in _detail(declared)

        def chunks():  # no Content-Length: the server must count what it reads
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]

        streamed = client.post(
            "/api/inpaint", content=chunks(), headers={"content-type": content_type}
        )
        assert "content-length" not in streamed.request.headers
        assert streamed.status_code == 413 and "more than" in _detail(streamed)
        small, small_type = _multipart({"image": _png(image[:8, :8]), "mask": _png(mask[:8, :8])})
        assert len(small) < 4096
        assert (
            client.post(
                "/api/inpaint", content=small, headers={"content-type": small_type}
            ).status_code
            == 200
        )  # an empty mask: the image comes back unchanged, with a warning


def test_image_over_the_pixel_limit_is_413(image, mask):
    with _local(create_app(ServeConfig(method="telea", max_pixels=1000))) as client:
        response = client.post("/api/inpaint", files=_files(_png(image), _png(mask)))
    assert response.status_code == 413
    assert "3,072 pixels exceeds the limit of 1,000" in _detail(response)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("mismatch", "the mask is 64x40 but the image is 64x48"),
        ("bad_image", "image: not an image file"),
        ("bad_mask", "mask: not an image file"),
        ("truncated", "image:"),
        ("full_mask", "covers the whole image"),
        ("unknown_method", "unknown method 'nope'; available: "),
        ("unknown_option", "has no option colour"),
        ("server_option", "option weights can only be set when the server starts"),
        ("path_value", "file paths cannot be given"),
        ("bad_json", "options must be a JSON object"),
        ("bad_value", "radius must be > 0"),
        ("missing_mask", "no 'mask' file"),
    ],
)
def test_bad_requests_are_422_with_one_line(client, image, mask, case, expected):
    files = _files(_png(image), _png(mask))
    data = {}
    if case == "mismatch":
        files["mask"] = ("mask.png", _png(mask[:40]), "image/png")
    elif case == "bad_image":
        files["image"] = ("photo.jpg", b"this is not an image", "image/jpeg")
    elif case == "bad_mask":
        files["mask"] = ("mask.png", b"\x89PNG nope", "image/png")
    elif case == "truncated":
        files["image"] = ("photo.png", _png(image)[:300], "image/png")
    elif case == "full_mask":
        files["mask"] = ("mask.png", _png(np.full_like(mask, 255)), "image/png")
    elif case == "unknown_method":
        data["method"] = "nope"
    elif case == "unknown_option":
        data["options"] = json.dumps({"colour": 1})
    elif case == "server_option":
        data["options"] = json.dumps({"weights": "/etc/passwd"})
    elif case == "path_value":
        data["options"] = json.dumps({"strategy": "../../etc/passwd"})
    elif case == "bad_json":
        data["options"] = "{radius: 5"
    elif case == "bad_value":
        data["options"] = json.dumps({"radius": -1})
    elif case == "missing_mask":
        del files["mask"]
    response = client.post("/api/inpaint", files=files, data=data)
    assert response.status_code == 422, response.text
    assert expected in _detail(response)


def test_not_multipart_is_415(client):
    response = client.post("/api/inpaint", json={"image": "x"})
    assert response.status_code == 415 and "multipart/form-data" in _detail(response)


# -- the queue -------------------------------------------------------------------------------------


def test_fill_queue_runs_one_lets_one_wait_and_refuses_the_rest():
    queue = FillQueue(workers=1, waiting=1)
    release, first_running, second_running = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def request(running: threading.Event, hold: threading.Event | None) -> None:
        try:
            with queue.ticket(), queue.slot():
                running.set()
                if hold is not None:
                    hold.wait(10)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    first = threading.Thread(target=request, args=(first_running, release))
    second = threading.Thread(target=request, args=(second_running, None))
    first.start()
    assert first_running.wait(5)
    second.start()
    deadline = time.monotonic() + 5
    while queue.admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.admitted == 2
    assert not second_running.wait(0.2)  # waits for the worker, does not run alongside
    with pytest.raises(ServerBusyError) as refused, queue.ticket():
        pass
    assert refused.value.retry_after >= 1
    release.set()
    first.join(5)
    second.join(5)
    assert second_running.is_set() and not errors and queue.admitted == 0


def test_full_queue_answers_503_with_retry_after(image, mask):
    app = create_app(ServeConfig(method="telea", queue_size=0))
    queue = app.state.service.queue
    with _local(app) as client:
        with queue.ticket():  # a request already running takes the only place
            busy = client.post("/api/inpaint", files=_files(_png(image), _png(mask)))
        assert busy.status_code == 503 and "busy" in _detail(busy)
        assert int(busy.headers["retry-after"]) >= 1
        assert client.post("/api/inpaint", files=_files(_png(image), _png(mask))).status_code == 200


def test_waiting_request_does_not_block_the_event_loop(image, mask):
    app = create_app(ServeConfig(method="telea", queue_size=2))
    queue = app.state.service.queue
    results: list[int] = []
    with _local(app) as client:
        with queue.slot():  # the worker is busy: the request must wait in a thread, not the loop
            waiting = threading.Thread(
                target=lambda: results.append(
                    client.post("/api/inpaint", files=_files(_png(image), _png(mask))).status_code
                )
            )
            waiting.start()
            deadline = time.monotonic() + 5
            while queue.admitted < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            start = time.monotonic()
            health = client.get("/api/health").json()
            assert time.monotonic() - start < 2
            assert health["queue"]["admitted"] == 1 and not results
        waiting.join(10)
    assert results == [200]


def test_concurrent_requests_wait_or_get_503_never_fail(image, mask):
    big = cv2.resize(image, (512, 384), interpolation=cv2.INTER_LINEAR)
    hole = np.zeros(big.shape[:2], np.uint8)
    hole[100:260, 150:330] = 255
    files = _files(_png(big), _png(hole))
    statuses: list[int] = []
    barrier = threading.Barrier(6)
    app = create_app(ServeConfig(method="telea", queue_size=1))
    with _local(app) as client:

        def post() -> None:
            barrier.wait(5)
            response = client.post("/api/inpaint", files=files)
            statuses.append(response.status_code)
            if response.status_code == 200:
                assert _decode(response.content).shape == big.shape

        threads = [threading.Thread(target=post) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(statuses) == 6 and set(statuses) <= {200, 503} and 200 in statuses
    assert app.state.service.queue.admitted == 0


# -- no files --------------------------------------------------------------------------------------


def test_nothing_is_written_to_disk(tmp_path, monkeypatch, mask):
    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir()
    temp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where spooled uploads would land
    noise = np.random.default_rng(2).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    hole = np.zeros((700, 700), np.uint8)
    hole[300:340, 300:360] = 255
    image_bytes = _png(noise)
    assert len(image_bytes) > 1024 * 1024  # above Starlette's 1 MB spooling threshold
    with _local(create_app(ServeConfig(method="telea"))) as client:
        response = client.post("/api/inpaint", files=_files(image_bytes, _png(hole)))
        assert response.status_code == 200
        assert client.post("/api/inpaint", files=_files(b"junk", _png(hole))).status_code == 422
    assert list(cwd.iterdir()) == [] and list(temp.iterdir()) == []


# -- configuration and command line --------------------------------------------------------------


def test_config_validation_and_server_options_reach_the_method(image, mask):
    with pytest.raises(InputError, match="queue_size"):
        ServeConfig(queue_size=-1)
    config = ServeConfig(method="telea", options={"radius": 9.0})
    with _local(create_app(config)) as client:
        response = client.post("/api/inpaint", files=_files(_png(image), _png(mask)))
    reference = cv2.inpaint(image, (mask > 0).astype(np.uint8), 9, cv2.INPAINT_TELEA)
    assert np.abs(_decode(response.content).astype(int) - reference).max() <= 1


def test_cli_help_bad_method_and_busy_port(capsys):
    with pytest.raises(SystemExit) as exit_info:
        serve_cli.main(["--help"])
    assert exit_info.value.code == 0 and "--max-upload-mb" in capsys.readouterr().out
    with pytest.raises(HolefillError, match="unknown method"):
        serve_cli.main(["--method", "nope", "--port", "0"])
    taken = serve_cli.bind_socket("127.0.0.1", 0)
    try:
        with pytest.raises(InputError, match="cannot listen"):
            serve_cli.bind_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_real_server_over_http(image, mask):
    import httpx

    sock = serve_cli.bind_socket("127.0.0.1", 0)
    server = serve_cli.make_server(create_app(ServeConfig(method="telea", max_upload_mb=0.5)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        url = serve_cli.url_of(sock)
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 10
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.02)
            assert http.get("api/health").json()["status"] == "ok"
            filled = http.post("api/inpaint", files=_files(_png(image), _png(mask)))
            assert filled.status_code == 200 and _decode(filled.content).shape == image.shape
            noise = np.random.default_rng(3).integers(0, 256, (600, 600, 3), dtype=np.uint8)
            too_big = http.post("api/inpaint", files=_files(_png(noise), _png(mask)))
            assert too_big.status_code == 413
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
