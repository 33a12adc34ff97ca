"""``runcast ui``: a local web dashboard over a run store.

A run list with status and forecast final value, curves that update live while a run trains
(with forecast bands), and run comparison. Served from 127.0.0.1 with every asset in the package
(plotly.js comes from the installed plotly), so it needs no internet.

Example:
    >>> import os, tempfile, runcast
    >>> from runcast.ui import start, stop
    >>> db = os.path.join(tempfile.mkdtemp(), "ui.db")
    >>> runcast.open_store(db).close()
    >>> server = start(db, port=0)
    >>> server.url.startswith("http://127.0.0.1:")
    True
    >>> stop(server)
"""

from runcast.ui._api import DashboardData
from runcast.ui._server import DashboardServer, plotly_js_path, start, stop

__all__ = ["DashboardData", "DashboardServer", "plotly_js_path", "start", "stop"]
