"""Where a committed page came from: the run stamp that ``prunerob reproduce`` writes beside it.

The stamp is a small JSON file (``<output_dir>/.stamps/<name>.json``) holding the profile, the
parameters, the run time and the hashes that decide whether the page is current
(:mod:`prunerob.runner.stamps`). Reading it needs nothing but :mod:`json`, so the analysis and
rendering layers can name a page's profile without importing the runner.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: folder of the run stamps inside an output folder
STAMP_DIR = ".stamps"


def stamp_path(output_dir: str | Path, name: str) -> Path:
    """The stamp file of notebook ``name`` in ``output_dir``."""
    return Path(output_dir) / STAMP_DIR / f"{name}.json"


def read_stamp(output_dir: str | Path, name: str) -> dict[str, Any] | None:
    """The stamp of notebook ``name`` as a dict, or None when it is missing or unreadable."""
    try:
        return json.loads(stamp_path(output_dir, name).read_text())
    except (OSError, ValueError):
        return None
