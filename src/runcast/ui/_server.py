"""The dashboard's HTTP server: the standard library's threading server, bound to 127.0.0.1.

Routes:
    ``/``                                   the page (``static/index.html``)
    ``/static/<file>``                      its script and style, and plotly.min.js taken from
                                            the installed plotly package (no CDN, works offline)
    ``/api/runs?project=P&status=S&name=T&limit=N&offset=K``   a page of the runs (newest
                                            first) with status, last value, forecast final value
    ``/api/runs/<id>/curve?key=K&since_step=S&max_points=N``   points with step > S
    ``/api/runs/<id>/forecast?key=K``       the forecast band
    ``/api/runs/<id>/batch``                batch size, noise scale, measured CBS intervals
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from runcast.errors import InvalidInputError, RuncastError, RunNotFoundError
from runcast.ui._api import DashboardData

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_STATIC = ("index.html", "app.js", "style.css")


def plotly_js_path() -> Path:
    """The plotly.min.js that ships inside the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuncastError(
            f"plotly.min.js is missing from the plotly package ({path}); reinstall plotly: "
            "pip install --force-reinstall plotly"
        )
    return path


def _int_arg(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as err:
        raise InvalidInputError(f"{name} must be an integer, got {raw!r}.") from err


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # polling every second would flood the terminal; errors still reach the JSON replies
        pass

    def _send(self, status: int, body: bytes, ctype: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a method other than GET, a malformed request line, a URL
        past 64 KiB) as the same JSON the API answers with, instead of its HTML page."""
        short = self.responses.get(code, ("error", ""))[0]
        body = json.dumps({"error": f"{message or short} (HTTP {code})"}).encode()
        self.send_response(code, message)
        self.send_header("Connection", "close")  # the request could not be parsed: start over
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code >= HTTPStatus.OK and code not in (204, 304):
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = HTTPStatus.OK) -> None:
        body = json.dumps(payload, allow_nan=False).encode()
        self._send(status, body, "application/json")

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            self._route(parts, query)
        except RunNotFoundError as err:
            self._json({"error": str(err)}, HTTPStatus.NOT_FOUND)
        except RuncastError as err:
            self._json({"error": str(err)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away mid-reply (a reload): nothing to tell it
        except Exception as err:
            # last resort (a bug, not bad input): the page gets JSON it can show and goes on
            # polling, where the socket was dropped with a traceback on the terminal
            self._json(
                {"error": f"internal error ({type(err).__name__}: {err}); please report it"},
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )

    def _route(self, parts: list[str], query: dict[str, str]) -> None:
        data = self.server.data
        if not parts:
            parts = ["static", "index.html"]
        if parts == ["favicon.ico"]:
            # browsers ask for it unprompted; answer "nothing" instead of a logged 404
            self.send_response(HTTPStatus.NO_CONTENT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts[0] == "static" and len(parts) == 2:
            self._static(parts[1])
        elif parts == ["api", "runs"]:
            # a page of the list, filtered: ?project=P&status=S&name=TEXT&limit=N&offset=K
            limit, offset = _int_arg(query, "limit"), _int_arg(query, "offset")
            self._json(
                data.runs(
                    project=query.get("project") or None,
                    status=query.get("status") or None,
                    name=query.get("name") or None,
                    limit=200 if limit is None else limit,
                    offset=offset or 0,
                )
            )
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "curve":
            since_step = _int_arg(query, "since_step")
            max_points = _int_arg(query, "max_points")
            self._json(data.curve(parts[2], query.get("key", data.key), since_step, max_points))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "batch":
            self._json(data.batch(parts[2]))
        elif len(parts) == 4 and parts[:2] == ["api", "runs"] and parts[3] == "forecast":
            self._json(data.forecast(parts[2], query.get("key", data.key)))
        else:
            self._json({"error": f"no such page: {self.path}"}, HTTPStatus.NOT_FOUND)

    def _static(self, name: str) -> None:
        if name == "plotly.min.js":
            self._send(HTTPStatus.OK, plotly_js_path().read_bytes(), _TYPES[".js"], cache=True)
            return
        if name not in _STATIC:
            self._json({"error": f"no such file: {name}"}, HTTPStatus.NOT_FOUND)
            return
        body = resources.files("runcast.ui").joinpath("static").joinpath(name).read_bytes()
        self._send(HTTPStatus.OK, body, _TYPES[Path(name).suffix])


class DashboardServer(ThreadingHTTPServer):
    """A threading HTTP server that answers from one :class:`DashboardData`."""

    daemon_threads = True  # a stuck browser connection must not keep the process alive

    def __init__(self, data: DashboardData, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.data = data
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """The dashboard's address."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"


def start(
    db: str | Path, host: str = "127.0.0.1", port: int = 8765, key: str = "loss"
) -> DashboardServer:
    """Start the dashboard in a background thread; ``server.shutdown()`` stops it.

    ``port=0`` picks a free port (see ``server.url``).

    Example:
        >>> import os, tempfile, urllib.request, runcast
        >>> db = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> runcast.open_store(db).close()
        >>> srv = start(db, port=0)
        >>> urllib.request.urlopen(srv.url + "api/runs").read()
        b'{"runs": [], "key": "loss", "total": 0, "offset": 0, "limit": 200}'
        >>> stop(srv)
    """
    server = DashboardServer(DashboardData(db, key=key), host, port)
    # a short poll interval makes stop() quick (shutdown waits for the loop to notice)
    threading.Thread(
        target=server.serve_forever, args=(0.05,), name="runcast-ui", daemon=True
    ).start()
    return server


def stop(server: DashboardServer) -> None:
    """Stop a server from :func:`start` and close its store."""
    server.shutdown()
    server.server_close()
    server.data.close()
