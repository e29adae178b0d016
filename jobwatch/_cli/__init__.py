"""The ``jobwatch`` command line (the ``cli`` extra: click and rich).

It only gathers options and calls the library; the library never imports it.
``main`` is the console script; the click group is ``jobwatch._cli._app.cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and exit."""
    try:
        from jobwatch._cli._app import cli
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"jobwatch: error: the command line needs {exc.name}: pip install 'jobwatch[cli]'\n"
        )
        sys.exit(2)
    cli.main(argv, prog_name="jobwatch")
