"""``runcast ui [--port 8765] [--host 127.0.0.1] [--no-browser]``: the local live dashboard."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from runcast.cli._common import console, db_path, friendly_errors
from runcast.errors import InvalidInputError


def ui(
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8765,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on; keep 127.0.0.1 unless you mean it."),
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the dashboard in a browser.")
    ] = True,
    key: Annotated[str, typer.Option("--key", "-k", help="The metric shown first.")] = "loss",
    db: Annotated[str | None, typer.Option("--db", help="The run store.")] = None,
) -> None:
    """Serve a live dashboard of the runs in the store (Ctrl+C stops it)."""
    import webbrowser

    from runcast.store import redact
    from runcast.ui import DashboardData, DashboardServer

    with friendly_errors():
        path = db_path(db)
        try:
            server = DashboardServer(DashboardData(path, key=key), host, port)
        except OSError as err:
            raise InvalidInputError(
                f"cannot listen on {host}:{port} ({err.strerror}); "
                "pick another port with --port (0 picks a free one)."
            ) from err
        console.print(
            f"runcast dashboard on [bold]{server.url}[/] over {escape(redact(path))} "
            "(Ctrl+C stops it)"
        )
        if server.data._open() is None:
            console.print(
                f"{escape(str(path))} does not exist yet: the dashboard shows the runs as soon "
                "as training creates it.",
                highlight=False,
            )
        if browser:
            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped")
        finally:
            server.server_close()
            server.data.close()


def register(app: typer.Typer) -> None:
    """Add ``runcast ui`` to the command line."""
    app.command("ui")(ui)
