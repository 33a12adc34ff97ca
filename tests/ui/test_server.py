"""The dashboard over HTTP: pages and assets from the package, JSON routes, clear errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from runcast.ui import plotly_js_path


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_listens_on_localhost_only(server: Any) -> None:
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("path", "ctype", "needle"),
    [
        ("", "text/html", b"/static/plotly.min.js"),
        ("static/app.js", "text/javascript", b"extendTraces"),
        ("static/style.css", "text/css", b".plot"),
    ],
)
def test_static_assets_come_from_the_package(
    server: Any, path: str, ctype: str, needle: bytes
) -> None:
    status, got_type, body = get(server.url + path)
    assert status == 200 and got_type.startswith(ctype) and needle in body
    # nothing is fetched from the internet: every script/style is a local path
    assert b'src="http' not in body and b'href="http' not in body


def test_plotly_js_is_the_installed_one(server: Any) -> None:
    status, ctype, body = get(server.url + "static/plotly.min.js")
    assert status == 200 and ctype.startswith("text/javascript")
    assert body == plotly_js_path().read_bytes() and len(body) > 1_000_000


def test_json_routes(server: Any, shared_live: Any) -> None:
    status, ctype, body = get(server.url + "api/runs")
    runs = json.loads(body)["runs"]
    assert status == 200 and ctype.startswith("application/json")
    assert [r["name"] for r in runs] == ["live", "done"]  # newest first
    status, _, body = get(
        server.url + f"api/runs/{shared_live.live_id}/curve?key=loss&since_step=97"
    )
    assert status == 200 and json.loads(body)["step"] == [98, 99]
    status, _, body = get(server.url + f"api/runs/{shared_live.live_id}/forecast?key=loss")
    band = json.loads(body)
    assert status == 200 and band["cutoff_step"] == 99 and band["step"][-1] == 299


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("api/runs/nope/curve", 404, "nope"),
        ("api/runs/{live}/curve?since_step=abc", 400, "since_step must be an integer"),
        ("api/runs/{live}/forecast?key=acc", 400, "no metric 'acc'"),
        ("static/secret.py", 404, "no such file"),
        ("static/../../etc/passwd", 404, "no such"),
        ("elsewhere", 404, "no such page"),
    ],
)
def test_errors_are_json_with_the_reason(
    server: Any, shared_live: Any, path: str, code: int, message: str
) -> None:
    status, ctype, body = get(server.url + path.format(live=shared_live.live_id))
    assert status == code and ctype.startswith("application/json")
    assert message in json.loads(body)["error"]


def raw_request(server: Any, request: bytes) -> tuple[int | None, dict[str, Any]]:
    """Send ``request`` as it is (malformed ones too); the reply's status and JSON body.

    A request line http.server cannot parse is answered the HTTP/0.9 way, the body alone
    (status None here).
    """
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    if not reply.startswith(b"HTTP/"):
        return None, json.loads(reply)
    head, body = reply.split(b"\r\n\r\n", 1)
    assert b"Content-Type: application/json" in head
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "code", "message"),
    [
        (b"POST /api/runs HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 501, "Unsupported method"),
        (b"DELETE /api/runs HTTP/1.1\r\n\r\n", 501, "Unsupported method"),
        (b"GARBAGE\r\n\r\n", None, "Bad request"),
        (b"GET / HTTP/9.9\r\n\r\n", None, "Invalid HTTP version"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "HTTP 414"),
    ],
)
def test_http_servers_own_errors_are_json_too(
    server: Any, request_bytes: bytes, code: int | None, message: str
) -> None:
    # http.server answered these with an HTML page the dashboard's fetch() could not read
    status, body = raw_request(server, request_bytes)
    assert status == code and message in body["error"]


def test_an_unexpected_error_is_a_json_500_not_a_dropped_connection(
    shared_live: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runcast.ui import start, stop

    srv = start(shared_live.db, port=0)
    try:
        # stands in for a bug anywhere below the route: the page must still get JSON to show
        monkeypatch.setattr(srv.data, "runs", lambda **_: 1 / 0)
        status, ctype, body = get(srv.url + "api/runs")
    finally:
        stop(srv)
    assert status == 500 and ctype.startswith("application/json")
    assert "ZeroDivisionError" in json.loads(body)["error"]
