"""Load every page of the built book in headless Chromium and report JavaScript console errors.

Usage: ``python book/_ext/check_console.py _build/html [--chromium chromium]``. Exit status 1 when
any page logs an uncaught exception or a console error (e.g. ``Identifier 'THEBE_JS_URL' has
already been declared``), or tries to load anything that is not a local file. Network access is
disabled in the browser (``--disable-background-networking``, no proxy resolution), so a remote
fetch shows up as a failed load.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=4000", "--dump-dom"]
_CONSOLE = re.compile(r"CONSOLE\(\d+\)\]|:CONSOLE:\d+\]")
_BAD = re.compile(r"Uncaught|Error|Failed to load|net::ERR", re.IGNORECASE)


def console_errors(page: Path, chromium: str = "chromium", timeout: float = 60.0) -> list[str]:
    """Console lines of ``page`` that report an error (uncaught exception, failed load)."""
    proc = subprocess.run([chromium, *FLAGS, page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=timeout, check=False)
    return [line.strip() for line in proc.stderr.splitlines() if _CONSOLE.search(line) and _BAD.search(line)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path)
    ap.add_argument("--chromium", default="chromium")
    args = ap.parse_args(argv)
    pages = sorted(p for p in args.html.rglob("*.html") if "_static" not in p.parts)
    bad = 0
    for page in pages:
        errors = console_errors(page, args.chromium)
        bad += bool(errors)
        for e in errors:
            print(f"{page.relative_to(args.html)}: {e}")
    print(f"{len(pages)} pages loaded, {bad} with console errors")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
