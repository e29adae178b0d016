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
from jobwatch import _dialects
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
    # No answer came, so nothing was validated: no wire model, none of pydantic's
    # model machinery (``import pydantic`` alone loads neither).
    assert not {*WIRE_MODULES, "pydantic.main", "pydantic.fields"} & modules


WIRE_MODULES = {f"jobwatch._dialects.{name}" for name in _dialects.WIRE_MODULES}


def test_the_dialects_import_no_wire_model_until_one_validates() -> None:
    modules = loaded_after("import jobwatch._dialects, jobwatch._refs, jobwatch._client")
    assert not {*WIRE_MODULES, "pydantic.main", "pydantic.fields"} & modules
    modules = loaded_after(
        """
        from jobwatch import EvsJob
        from jobwatch._dialects import parse_snapshot
        parse_snapshot(EvsJob("j1"), {"status": "SUCCESS"})
        """
    )
    assert {"jobwatch._dialects._family_wire", "pydantic.main"} <= modules
    others = WIRE_MODULES - {"jobwatch._dialects._family_wire"}
    assert not others & modules  # the other dialects' models are still not imported
    assert WIRE_MODULES.issubset(loaded_after("import jobwatch.sim"))


def test_every_wire_model_is_in_a_listed_module_and_resolves() -> None:
    import importlib
    import pkgutil

    import pydantic

    from jobwatch._dialects._common import WireModel

    handles = [
        value
        for info in pkgutil.iter_modules(_dialects.__path__, f"{_dialects.__name__}.")
        for value in vars(importlib.import_module(info.name)).values()
        if isinstance(value, WireModel)
    ]
    assert len(handles) >= 10
    for handle in handles:
        assert handle.module in WIRE_MODULES, handle
        model = handle.resolve()
        assert issubclass(model, pydantic.BaseModel)
        assert model.__name__ == handle.name
        assert handle.resolve() is model
    for name in WIRE_MODULES:  # and every listed module holds models
        module = importlib.import_module(name)
        assert any(
            isinstance(v, type) and issubclass(v, pydantic.BaseModel) and v.__module__ == name
            for v in vars(module).values()
        ), name
