"""Build the documentation's picture: docs/report.png, the report ``runcast demo`` writes.

Runs the demo (or reads the store of a demo already run, ``--demo-dir``), writes its run's
report with the current code, opens it in headless Chromium and takes the top of the page,
so the README's picture is always the report the current code writes: the same forecast, the
same numbers, the same drawing. The PNG carries what it shows (the run's forecast and the
value it reached) and a digest of the code that drew it; ``tests/docs/test_build.py`` fails
when that code changed since the picture was taken.

    ./dev docs                         # the demo (~2 min on a CPU core), then the picture
    ./dev docs --demo-dir runcast-demo # from a demo already run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "report.png"
CHROMIUM = Path("/usr/bin/chromium")
#: the code that decides what the picture shows: the demo run, the forecast band, the drawing
SOURCES = (
    "docs/build.py",
    "src/runcast/demo/_train.py",
    "src/runcast/demo/_model.py",
    "src/runcast/demo/_text.py",
    "src/runcast/report/_build.py",
    "src/runcast/report/_data.py",
    "src/runcast/report/_plotly.py",
)
KEY = "runcast-docs"
#: the summary, the run's figure and its schedule what-ifs
VIEW = {"width": 1200, "height": 1400}


def digest(root: Path = ROOT) -> str:
    """A digest of :data:`SOURCES`: the picture is out of date when it changes."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0" + (root / name).read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()[:16]


def add_text(png: bytes, key: str, text: str) -> bytes:
    """``png`` with a tEXt chunk ``key``: ``text`` added before its end (IEND)."""
    body = key.encode("latin-1") + b"\0" + text.encode("latin-1")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end = png.rindex(b"IEND") - 4  # the length field before the IEND tag
    return png[:end] + chunk + png[end:]


def read_text(png: bytes) -> dict[str, str]:
    """Every tEXt chunk of ``png`` as ``{key: text}``."""
    out, pos = {}, 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        if kind == b"tEXt":
            key, _, text = png[pos + 8 : pos + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length
    return out


def run_demo(out: Path, steps: int) -> None:
    """``runcast demo --out OUT``, the command a newcomer runs first."""
    from runcast.cli import app

    app(["demo", "--out", str(out), "--steps", str(steps)], standalone_mode=False)


def write_report(demo_dir: Path, html: Path) -> dict[str, Any]:
    """The demo run's report, written by the current code to ``html``, and what it shows."""
    import runcast
    from runcast.report import build_report, write_html

    with runcast.open_store(demo_dir / "runcast.db", create=False) as store:
        run = store.runs()[0]  # the newest: the demo's
        rep = build_report(store, [run.id])
    write_html(rep, html)
    panel = rep.runs[0]
    assert panel.band is not None, "the demo's run has no forecast band"
    f = panel.band.final
    return {
        "run": run.name,
        "cutoff_step": panel.band.cutoff_step,
        "median": round(f.median, 4),
        "interval_80": [round(f.lo80, 4), round(f.hi80, 4)],
        "reached": round(panel.final_value, 4),
        "sources": digest(),
    }


def screenshot(html: Path) -> bytes:
    """The top of ``html`` as headless Chromium draws it, once plotly has drawn every plot."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport=VIEW)
            page.goto(html.resolve().as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
            page.wait_for_timeout(500)  # plotly's last layout pass
            return bytes(page.screenshot(clip={"x": 0, "y": 0, **VIEW}))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-dir", type=Path, help="a folder `runcast demo` already wrote")
    parser.add_argument("--steps", type=int, default=1500, help="the demo's steps (default 1500)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: no Chromium at {CHROMIUM} (apt install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        demo_dir = args.demo_dir or Path(tmp) / "runcast-demo"
        if args.demo_dir is None:
            run_demo(demo_dir, args.steps)
        html = Path(tmp) / "report.html"
        meta = write_report(demo_dir, html)
        png = add_text(screenshot(html), KEY, json.dumps(meta))
    args.out.write_bytes(png)
    print(f"wrote {args.out}: {json.dumps(meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
