"""Exit statuses, one-line error reports, and keeping secrets out of every output."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence

import click

__all__ = [
    "EXIT_FAILED",
    "EXIT_GAVE_UP",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "SECRET_VARIABLES",
    "ApiError",
    "CliError",
    "echo",
    "keep_secret",
    "redact",
    "run_guarded",
]

EXIT_OK = 0
EXIT_FAILED = 1  # a job or sub-job failed
EXIT_USAGE = 2  # a usage or configuration error, found before any request
EXIT_GAVE_UP = 3  # jobwatch gave up on a job (timeout, not_found, expired, pending_payment, ...)
EXIT_INTERNAL = 4  # an unexpected exception: a bug
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM (128 + 15)

# Shorter strings are not redacted: replacing them would mangle ordinary words.
_MIN_SECRET = 6
_secrets: set[str] = set()
#: Environment variables whose values must never be written.
SECRET_VARIABLES = ("JOBWATCH_TOKEN", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_SECURITY_TOKEN")


class CliError(click.ClickException):
    """A usage or configuration error: one line on stderr, exit status 2."""

    exit_code = EXIT_USAGE


class ApiError(CliError):
    """The API refused or could not be reached (``list``): exit status 3."""

    exit_code = EXIT_GAVE_UP


def keep_secret(value: str | None) -> None:
    """Remember ``value`` so that it is replaced by ``<redacted>`` in anything written."""
    if value and len(value) >= _MIN_SECRET:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced (longest first)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "<redacted>")
    return text


# What a server string must not bring to a terminal: line breaks (a forged line),
# escape sequences (a title, a cleared screen), direction overrides (reversed text).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": " "}


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` redacted, its control characters written out (``\\n``, ``\\x1b``): one line."""
    return _CONTROL.sub(_visible, redact(text))


def echo(line: str, *, err: bool = False, exact: bool = False) -> None:
    """Write one line, redacted and control characters written out, and flush it.

    ``exact`` (JSON Lines, escaped by ``json.dumps``): only redacted.
    """
    click.echo(redact(line) if exact else shown(line), err=err)


def _report(message: str) -> None:
    echo(f"jobwatch: error: {' '.join(message.split())}", err=True)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        found: list[BaseException] = []
        for inner in exc.exceptions:
            found.extend(_leaves(inner))
        return found
    return [exc]


def _secrets_in(args: Sequence[str]) -> Iterator[str]:
    """The values of ``--token`` on a command line, and the secrets of the environment."""
    for index, arg in enumerate(args):
        if arg == "--token" and index + 1 < len(args):
            yield args[index + 1]
        elif arg.startswith("--token="):
            yield arg.partition("=")[2]
    for name in SECRET_VARIABLES:
        yield os.environ.get(name, "")


def run_guarded(call: Callable[[], object], args: Sequence[str]) -> int:
    """Run a click ``main`` in non-standalone mode; return the exit status.

    Usage errors become ``jobwatch: error: ...`` and status 2, ``CliError`` its
    own status, Ctrl-C status 130, and anything unexpected one line and status 4:
    never a traceback, and never a secret (those of ``args`` and the environment).
    """
    _secrets.clear()
    for secret in _secrets_in(args):
        keep_secret(secret)
    try:
        result = call()
    except BaseException as exc:  # noqa: BLE001 - turned into one line and a status
        return _handle(exc)
    return result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK


def _handle(exc: BaseException) -> int:
    leaves = _leaves(exc)
    first = leaves[0] if leaves else exc
    if any(isinstance(e, KeyboardInterrupt | click.Abort) for e in leaves):
        echo("jobwatch: interrupted", err=True)
        return EXIT_INTERRUPTED
    if isinstance(first, SystemExit):
        code = first.code
        return code if isinstance(code, int) else EXIT_OK if code is None else EXIT_INTERNAL
    if isinstance(first, click.UsageError) and type(first).__name__ == "NoArgsIsHelpError":
        # ``jobwatch`` alone (click 8.2+): the help, on stderr.
        click.echo(first.format_message(), err=True)
        return EXIT_USAGE
    if isinstance(first, click.UsageError):
        hint = f" (see '{first.ctx.command_path} --help')" if first.ctx is not None else ""
        _report(first.format_message().rstrip(".") + hint)
        return first.exit_code
    if isinstance(first, click.ClickException):
        _report(first.format_message())
        return first.exit_code
    if isinstance(first, OSError) and first.errno == errno.EPIPE:
        # The reader went away (``jobwatch ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        finally:
            os.close(devnull)
        return EXIT_FAILED
    _report(
        f"unexpected {type(first).__name__}: {first} (this is a bug in jobwatch; please report it)"
    )
    return EXIT_INTERNAL
