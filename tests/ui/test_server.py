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
