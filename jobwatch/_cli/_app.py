"""The ``jobwatch`` command group and its error handling."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from jobwatch import __version__
from jobwatch._cli._errors import CliError, run_guarded
from jobwatch._cli._logs import library_logs

__all__ = ["COMMANDS", "cli"]

#: Each command: the module that defines it, its function there, and its short help
#: (what ``jobwatch --help`` lists without importing the module: a command's module
#: imports the library, httpx and rich, which ``--help`` has no use for;
#: tests/test_cli.py checks each line against the command's own help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("_sim", "demo", "Watch a few hundred simulated jobs, then summarise."),
    "list": ("_list", "list_jobs", "List the jobs an API keeps, every page of them."),
    "sim": ("_sim", "sim", "Serve the API simulator until interrupted."),
    "watch": ("_watch", "watch", "Watch jobs until each succeeds, fails or is given up."),
}


class _Group(click.Group):
    """A group whose ``main`` reports every error as one line and a documented exit status,
    and whose commands are imported when one is run (or asked for its help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        known = self.commands.get(cmd_name)
        if known is not None or cmd_name not in COMMANDS:
            return known
        module, name, _ = COMMANDS[cmd_name]
        try:
            command = getattr(importlib.import_module(f"jobwatch._cli.{module}"), name)
        except ImportError as exc:
            if exc.name != "rich":
                raise
            raise CliError("the command line needs rich: pip install 'jobwatch[cli]'") from exc
        assert isinstance(command, click.Command)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        rows += [(name, c.get_short_help_str()) for name, c in sorted(self.commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(set(rows)))

    def main(  # type: ignore[override]  # returns the status when not standalone
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> int:
        args = list(sys.argv[1:] if args is None else args)
        with library_logs():
            status = run_guarded(
                lambda: super(_Group, self).main(
                    args,
                    prog_name,
                    complete_var,
                    standalone_mode=False,
                    windows_expand_args=windows_expand_args,
                    **extra,
                ),
                args,
            )
        if standalone_mode:
            sys.exit(status)
        return status


@click.group("jobwatch", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    __version__, "--version", prog_name="jobwatch", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Watch the asynchronous jobs of Huawei Cloud services (GES, EVS, ECS).

    \b
    Exit status: 0 every job and sub-job succeeded; 1 one failed;
    3 jobwatch gave up on one (timeout, not_found, expired, pending_payment,
    auth, error);
    2 usage or configuration error (nothing was sent); 4 a bug; 130 Ctrl-C; 143 SIGTERM.
    """
