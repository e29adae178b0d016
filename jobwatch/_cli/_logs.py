"""The library's log records on stderr: warnings always, more with ``--verbose``/``--log-level``.

Loggers: ``jobwatch`` (the whole library: retries, throttling, unknown statuses,
odd paging, every request at DEBUG) and ``uvicorn.error`` (the simulator's server
of ``jobwatch sim`` and ``demo``).  Each record is one
line, ``jobwatch: LEVEL: message``, with secrets redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from jobwatch._cli._errors import redact

__all__ = ["LEVELS", "LOGGERS", "library_logs", "log_options"]

#: The loggers the command line shows.
LOGGERS = ("jobwatch", "uvicorn.error")
LEVELS = ("debug", "info", "warning", "error")

F = TypeVar("F", bound=Callable[..., Any])


class _Line(logging.Handler):
    """One record as one ``jobwatch: LEVEL: message`` line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = " ".join(self.format(record).split())
            level = record.levelname.lower()
            click.echo(redact(f"jobwatch: {level}: {message}"), err=True)
        except Exception:  # noqa: BLE001 - logging must not break the run
            self.handleError(record)


_handler = _Line(logging.WARNING)


@contextmanager
def library_logs() -> Iterator[None]:
    """Route the loggers' records to stderr (warnings and up) while the block runs."""
    saved = []
    _handler.setLevel(logging.WARNING)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.level))
        logger.addHandler(_handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate, level in saved:
            logger.removeHandler(_handler)
            logger.propagate = propagate
            logger.setLevel(level)


def _set_level(ctx: click.Context, param: click.Parameter, value: str | bool | None) -> None:
    if not value:
        return
    name = "info" if value is True else str(value)
    level = logging.getLevelName(name.upper())
    _handler.setLevel(level)
    for logger_name in LOGGERS:
        logging.getLogger(logger_name).setLevel(level)


def log_options(func: F) -> F:
    """``--verbose`` (INFO) and ``--log-level LEVEL``: the library's logs on stderr."""
    verbose = click.option(
        "--verbose",
        "-v",
        is_flag=True,
        expose_value=False,
        callback=_set_level,
        help="Log what the library does (retries, throttling) on stderr: --log-level info.",
    )
    level = click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        expose_value=False,
        callback=_set_level,
        metavar="LEVEL",
        help=(
            "Log records of the 'jobwatch' and 'uvicorn.error' loggers at LEVEL and up "
            "(debug, info, warning, error) on stderr.  [default: warning]"
        ),
    )
    return verbose(level(func))
