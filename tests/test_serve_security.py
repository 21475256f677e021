"""Who may drive ``holefill serve``: the Host and Origin checks, the token and CORS, over HTTP."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from holefill.errors import InputError  # noqa: E402
from holefill.serve import ServeConfig, create_app  # noqa: E402
from holefill.serve.security import SecurityConfig, is_loopback  # noqa: E402

TOKEN = "s3cret-token-for-tests-0123456789"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def fill_files(smooth_image, square_hole) -> dict:
    mask = (square_hole * 255).astype(np.uint8)
    return {"image": ("p.png", _png(smooth_image)), "mask": ("m.png", _png(mask))}


def _client(security: SecurityConfig | None = None, base_url: str = "http://127.0.0.1:8080"):
    return TestClient(create_app(ServeConfig(method="telea"), security), base_url=base_url)


def _detail(response) -> str:
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


# -- Host ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example"])
def test_other_host_names_get_403_on_every_path(host):
    with _client() as client:
        for path in ("/", "/api/health", "/docs", "/openapi.json"):
            response = client.get(path, headers={"host": host})
            assert response.status_code == 403, path
            assert "not allowed" in _detail(response) and "--allow-host" in _detail(response)


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "127.0.0.2"])
def test_loopback_hosts_are_served(host):
    with _client() as client:
        assert client.get("/api/health", headers={"host": host}).status_code == 200
        assert client.get("/", headers={"host": host}).status_code == 200


def test_allow_host_and_the_bound_address():
    named = SecurityConfig("127.0.0.1", allow_hosts=("studio.local",))
    with _client(named) as client:
        assert client.get("/api/health", headers={"host": "studio.local:8080"}).status_code == 200
        assert client.get("/api/health", headers={"host": "other.local"}).status_code == 403
    bound = SecurityConfig("192.168.7.20")
    assert bound.host_allowed("192.168.7.20:8080") and not bound.host_allowed("192.168.7.21")
    everywhere = SecurityConfig("0.0.0.0")
    assert everywhere.host_allowed("10.1.2.3:8080") and everywhere.host_allowed("[fe80::1]:80")
    assert not everywhere.host_allowed("rebind.example:8080")  # a name needs --allow-host


# -- Origin --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"origin": "null"},  # sandboxed frames and file:// pages
        {"referer": "http://evil.example/page.html"},
    ],
)
def test_posts_from_other_origins_get_403(fill_files, headers):
    with _client() as client:
        response = client.post("/api/inpaint", files=fill_files, headers=headers)
        assert response.status_code == 403 and "are not allowed" in _detail(response)
        select = client.post("/api/select", files={"image": fill_files["image"]}, headers=headers)
        assert select.status_code == 403
        assert client.get("/api/health", headers=headers).status_code == 200  # reads are safe


def test_posts_from_the_page_itself_or_without_origin_are_served(fill_files):
    with _client() as client:
        own = client.post(
            "/api/inpaint", files=fill_files, headers={"origin": "http://127.0.0.1:8080"}
        )
        assert own.status_code == 200
        referred = client.post(
            "/api/inpaint", files=fill_files, headers={"referer": "http://127.0.0.1:8080/"}
        )
        assert referred.status_code == 200
        assert client.post("/api/inpaint", files=fill_files).status_code == 200  # curl, Python
        assert "access-control-allow-origin" not in own.headers  # CORS is off


# -- the token -----------------------------------------------------------------------------------


def test_token_is_required_on_the_api_but_not_for_the_page(fill_files):
    with _client(SecurityConfig("0.0.0.0", token=TOKEN)) as client:
        assert client.get("/").status_code == 200
        for path in ("/api/health", "/api/methods", "/docs", "/openapi.json"):
            refused = client.get(path)
            assert refused.status_code == 401 and "access token" in _detail(refused), path
        assert client.post("/api/inpaint", files=fill_files).status_code == 401
        wrong = client.get("/api/health", headers={"X-Holefill-Token": TOKEN[:-1] + "x"})
        assert wrong.status_code == 401
        assert client.get("/api/health", headers={"X-Holefill-Token": TOKEN}).status_code == 200
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/api/inpaint", files=fill_files, headers=bearer).status_code == 200
        assert client.get(f"/api/health?token={TOKEN}").status_code == 200
        swagger = client.get("/static-offline-docs/swagger-ui-bundle.js")
        assert swagger.status_code == 200  # library assets are public


def test_the_page_url_with_the_token_sets_a_strict_cookie(fill_files):
    with _client(SecurityConfig("0.0.0.0", token=TOKEN)) as client:
        page = client.get(f"/?token={TOKEN}")
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert client.get("/api/health").status_code == 200  # the client kept the cookie
        assert client.post("/api/inpaint", files=fill_files).status_code == 200
        client.cookies.clear()
        assert client.get("/api/health").status_code == 401
        assert "set-cookie" not in client.get("/?token=wrong-token-wrong-token").headers


def test_for_server_makes_a_token_only_when_exposed():
    assert SecurityConfig.for_server("127.0.0.1").token is None
    assert SecurityConfig.for_server("::1").token is None
    exposed = SecurityConfig.for_server("0.0.0.0")
    other = SecurityConfig.for_server("0.0.0.0")
    assert exposed.exposed and len(exposed.token) >= 32 and exposed.token != other.token
    assert SecurityConfig.for_server("0.0.0.0", no_token=True).token is None
    assert is_loopback("localhost") and is_loopback("127.3.4.5") and not is_loopback("0.0.0.0")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cors_origins": ("*",)}, "--cors-origin takes an origin"),
        ({"cors_origins": ("http://a.example/path",)}, "--cors-origin takes an origin"),
        ({"allow_hosts": ("http://a.example",)}, "--allow-host takes a host name"),
        ({"token": "short"}, "at least 16"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        SecurityConfig("127.0.0.1", **kwargs)


# -- CORS ----------------------------------------------------------------------------------------


def test_cors_origin_lets_that_page_call_the_api(fill_files):
    security = SecurityConfig("127.0.0.1", cors_origins=("http://localhost:3000",))
    with _client(security) as client:
        preflight = client.options(
            "/api/inpaint",
            headers={
                "origin": "http://localhost:3000",
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-holefill-token",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
        response = client.post(
            "/api/inpaint", files=fill_files, headers={"origin": "http://localhost:3000"}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "X-Holefill-Seconds" in response.headers["access-control-expose-headers"]
        other = client.post(
            "/api/inpaint", files=fill_files, headers={"origin": "http://localhost:3001"}
        )
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


# -- the command, as users run it ----------------------------------------------------------------


def test_serve_on_all_addresses_prints_a_token_that_the_api_requires():
    """``holefill serve --host 0.0.0.0`` in a subprocess; requests go to 127.0.0.1 only."""
    import httpx

    command = [sys.executable, "-m", "holefill", "serve", "--host", "0.0.0.0", "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [*command, "--method", "telea"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        line = server.stdout.readline()  # blocks until the server prints its address
        match = re.search(r"(http://127\.0\.0\.1:\d+/)\?token=([\w-]+)", line)
        assert match, f"no address with a token in {line!r}"
        url, token = match.groups()
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    refused = http.get("api/health")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the server did not answer"
                    time.sleep(0.1)
            assert refused.status_code == 401 and "access token" in refused.json()["detail"]
            assert http.get("api/health", headers={"X-Holefill-Token": token}).status_code == 200
            assert http.get(f"api/methods?token={token}").status_code == 200
            assert http.get("/").status_code == 200
            evil = http.get(f"api/health?token={token}", headers={"host": "evil.example"})
            assert evil.status_code == 403
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
    assert "listening on 0.0.0.0" in server.stderr.read()
