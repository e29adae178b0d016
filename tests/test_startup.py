"""Start-up: what ``import jobwatch`` and each command import, and that lazy names still work.

Each check runs in a fresh interpreter (this process has imported everything long
ago) and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import click
import pytest

import jobwatch
from jobwatch._cli._app import COMMANDS, cli

HEAVY = ("httpx", "aiohttp", "rich", "pydantic", "anyio", "jobwatch.sim", "jobwatch._client")


def loaded_after(code: str) -> set[str]:
    """The top-level modules and jobwatch's modules a fresh interpreter has after ``code``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        _sys.__stdout__.write("MODULES " + _json.dumps(sorted(_sys.modules)) + "\\n")
        """
    )
    proc = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line[len("MODULES ") :]))


def heavy_in(modules: set[str]) -> set[str]:
    return {name for name in HEAVY if name in modules}


def test_import_jobwatch_imports_no_http_stack_nor_models() -> None:
    assert heavy_in(loaded_after("import jobwatch")) == set()


def test_help_imports_no_http_stack_no_rich_no_simulator() -> None:
    code = """
    import sys
    from jobwatch._cli import main
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
    """
    assert heavy_in(loaded_after(code)) == set()


def test_a_name_imports_its_module_only_when_asked() -> None:
    modules = loaded_after("from jobwatch import JobState, RateLimitError")
    assert {"jobwatch._snapshot", "jobwatch._exceptions"} <= modules
    assert heavy_in(modules) == set()
    assert "httpx" in loaded_after("from jobwatch import Client")


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in jobwatch.__all__:
        value = getattr(jobwatch, name)
        assert value is not None, name
    assert set(jobwatch.__all__) <= set(dir(jobwatch))
    from jobwatch import Watcher, wait_for  # noqa: F401 - the from-import form works too

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = jobwatch.Nope
    with pytest.raises(ImportError):
        exec("from jobwatch import Nope", {})  # noqa: S102 - the statement under test


def test_the_listed_short_help_is_each_commands_own() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name, (_, _, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.name == name
        assert command.get_short_help_str(limit=200) == short, name


def test_watch_json_sends_its_request_without_rich_or_the_simulator() -> None:
    # A listener that takes the connection and records nothing: the child's modules
    # are read when its request has gone out, then it is stopped by the closed socket.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        code = f"""
        import sys
        from jobwatch._cli import main
        try:
            main(["watch", "--api", "evs", "--json", "--timeout", "1",
                  "--endpoint", "http://127.0.0.1:{port}", "--project-id", "p",
                  "--token", "token-not-checked", "0123456789abcdef0123456789abcdef"])
        except SystemExit:
            pass
        """
        listener.settimeout(0.01)
        modules = loaded_after(code)
    assert {"httpx", "jobwatch._client", "jobwatch._watcher"} <= modules
    assert not {"rich", "jobwatch.sim", "jobwatch._cli._table"} & modules
    assert "pygments" not in modules  # httpx's own command line (rich, pygments) is skipped
