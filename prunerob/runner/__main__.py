"""``python -m prunerob.runner ...``: see :func:`prunerob.runner.commands.main`."""
from prunerob.runner.commands import main

raise SystemExit(main())
