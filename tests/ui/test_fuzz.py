"""Seeded fuzz of the dashboard's HTTP API over a store of odd runs.

Every reply to a random (often hostile) path or query must be strict JSON (no NaN) with a
4xx for bad input, or the page and its assets: never a 5xx, a dropped connection, a
traceback, or a file from outside the package.
"""

from __future__ import annotations

import http.client
import json
import random
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

import runcast
from runcast.errors import RuncastWarning
from runcast.ui import start, stop

ODD = [
    "", " ", "%", "%zz", "..", "../..", "..%2F..%2Fetc%2Fpasswd", "<script>", "[/x]", "名前",
    "'\"", "%00", "a" * 3000, "-1", "1e3", "nan", "inf", str(2**63), "10" * 40, " 5", "+5",
    "١٢", "0x10",
]  # fmt: skip
KINDS = {
    "no metrics": ([], {}),
    "one point": ([1.0], {}),
    "all missing": ([float("nan")] * 6, {}),
    "inf and 1e300": ([2.0, float("inf"), 1e300, 1.5, 1.4, 1.3], {}),
    "max_steps inf": ([3.0 / (s + 1) + 1 for s in range(20)], {"max_steps": float("inf")}),
    "bad schedule": ([3.0 / (s + 1) + 1 for s in range(20)], {"schedule": "nonsense"}),
    "<img src=x onerror=alert(1)> [/x] ../名前": ([3.0 / (s + 1) + 1 for s in range(20)], {}),
}


@pytest.fixture(scope="module")
def odd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, list[str]]]:
    db = tmp_path_factory.mktemp("fuzz") / "odd.db"
    ids = []
    for name, (values, config) in KINDS.items():
        run = runcast.init(project="fz", name=name, config=config, db=str(db))
        for s, v in enumerate(values):
            run.log({"loss": v, "<b>k'ey\"": v}, step=s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuncastWarning)  # NaN and inf are the point here
            run.finish()
        ids.append(str(run.id))
    srv = start(db, port=0)
    yield srv, ids
    stop(srv)


def _get(srv: Any, path: str) -> tuple[int, str, bytes]:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def _strict(body: bytes) -> Any:
    def refuse(const: str) -> None:
        raise AssertionError(f"{const} in the JSON: JSON.parse in the page fails on it")

    return json.loads(body, parse_constant=refuse)


def _random_path(rng: random.Random, ids: list[str]) -> str:
    run = rng.choice([*ids, "nope", *map(lambda s: quote(s, safe=""), ODD)])
    value = quote(rng.choice(ODD), safe="")
    key = quote(rng.choice(["loss", "<b>k'ey\"", "lr", *ODD]), safe="")
    return rng.choice(
        [
            f"/api/runs/{run}/curve?key={key}&since_step={value}",
            f"/api/runs/{run}/curve?key={key}&max_points={value}",
            f"/api/runs/{run}/curve?{value}={value}",
            f"/api/runs/{run}/forecast?key={key}",
            f"/api/runs/{run}/{value}",
            f"/api/runs?key={value}",
            f"/static/{value}",
            f"/{value}",
            f"/api/{value}/runs",
        ]
    )


def test_random_requests_get_json_or_the_page_never_a_5xx(odd_server: Any) -> None:
    srv, ids = odd_server
    rng = random.Random(7)
    seen = set()
    for _ in range(250):
        path = _random_path(rng, ids)
        status, ctype, body = _get(srv, path)
        seen.add(status)
        assert status < 500, (path, body[:300])
        if ctype.startswith("application/json"):
            reply = _strict(body)
            assert status == 200 or reply["error"], (path, reply)
        else:  # only the page and its two assets are served as anything else
            assert path.split("?")[0] in {"/", "/static/app.js", "/static/style.css"}, path
    # the fuzz reached data, refusals and missing things alike
    assert {200, 400, 404} <= seen


def test_every_odd_run_lists_and_forecasts_with_data_or_a_note(odd_server: Any) -> None:
    srv, ids = odd_server
    status, _, body = _get(srv, "/api/runs")
    runs = {r["id"]: r for r in _strict(body)["runs"]}
    assert status == 200 and set(runs) == set(ids)
    for run_id in ids:
        status, _, body = _get(srv, f"/api/runs/{run_id}/forecast?key=loss")
        reply = _strict(body)
        if runs[run_id]["keys"]:
            # a band, or a note saying why none; before, max_steps=inf dropped the connection
            assert status == 200 and ("median" in reply or reply["note"].startswith("No forecast"))
        else:
            assert status == 400 and "no metric 'loss'" in reply["error"]
