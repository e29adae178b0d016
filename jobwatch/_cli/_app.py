"""The ``jobwatch`` command group and its error handling."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from jobwatch import __version__
from jobwatch._cli._errors import run_guarded
from jobwatch._cli._list import list_jobs
from jobwatch._cli._logs import library_logs
from jobwatch._cli._sim import demo, sim
from jobwatch._cli._watch import watch

__all__ = ["cli"]


class _Group(click.Group):
    """A group whose ``main`` reports every error as one line and a documented exit status."""

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


cli.add_command(watch)
cli.add_command(list_jobs)
cli.add_command(sim)
cli.add_command(demo)
