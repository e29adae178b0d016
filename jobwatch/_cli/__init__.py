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
    _skip_httpx_cli()
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


def _skip_httpx_cli() -> None:
    """Spare this process httpx's own command line.

    ``import httpx`` imports ``httpx._main`` (the ``httpx`` console script) when
    click and rich are installed, as they are with our ``cli`` extra: that is rich's
    console, progress bars and syntax highlighting, pygments' lexers, a tenth of a
    second of every ``jobwatch`` run that this process never calls.  A ``None`` in
    ``sys.modules`` makes that import fail, and httpx then defines a stub ``main``
    instead (its own fallback for a missing extra).  Only the ``jobwatch`` process
    does this, and only before httpx is imported.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
