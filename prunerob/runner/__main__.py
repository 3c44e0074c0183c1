"""``python -m prunerob.runner ...``: see :func:`prunerob.runner.commands.main`."""
from .commands import main

raise SystemExit(main())
