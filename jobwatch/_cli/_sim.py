"""``jobwatch sim`` (serve the simulator) and ``jobwatch demo`` (watch the built-in scenario)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import click

from jobwatch import Client, PollPolicy, RetryPolicy
from jobwatch._cli._display import reporter
from jobwatch._cli._errors import EXIT_OK, CliError, echo
from jobwatch._cli._logs import log_options
from jobwatch._cli._model import Run
from jobwatch._cli._watch import run_watch, safety_margin

__all__ = ["demo", "sim"]

# The demo's jobs end within ~20 s; this bounds the run whatever happens.
DEMO_DEADLINE = 60.0


@contextmanager
def _serving(simulator: Any, host: str, port: int) -> Iterator[str]:
    """``jobwatch.sim.serve``, with its failures turned into one-line errors."""
    try:
        from jobwatch.sim import serve
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CliError(f"the simulator needs the 'sim' extra ({exc.name} is missing)") from None
    with ExitStack() as stack:
        try:
            url = stack.enter_context(serve(simulator, host, port))
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot serve the simulator on {host}:{port}: {exc}") from None
        yield url


@click.command(short_help="Serve the API simulator until interrupted.")
@click.option(
    "--host",
    metavar="ADDRESS",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    metavar="PORT",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--scenario",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A JSON scenario file (see the jobwatch.sim docs); default: the built-in demo.",
)
@log_options
def sim(host: str, port: int, scenario: Path | None) -> int:
    """Serve the API simulator until interrupted (Ctrl-C or SIGTERM: exit 0).

    Prints "endpoint: URL" (and, for the built-in scenario, "project-id: ID") on
    stdout, then serves the four job APIs there.  The built-in scenario's clock
    starts at the first request: its jobs run from then (about 20 s).
    """
    from jobwatch.sim import Simulator
    from jobwatch.sim._clock import FirstReadClock
    from jobwatch.sim._demo import demo_scenario

    project_id: str | None = None
    if scenario is None:
        clock = FirstReadClock()  # the jobs start with the first request, not now
        built = demo_scenario(clock=clock)
        clock.arm()
        simulator: Any = built.simulator
        project_id = built.project_id
    else:
        try:
            simulator = Simulator.from_scenario_file(scenario)
        except (OSError, ValueError, TypeError) as exc:
            raise CliError(f"bad scenario {scenario}: {exc}") from None
    stop = threading.Event()
    with _serving(simulator, host, port) as url, _until_signal(stop):
        echo(f"endpoint: {url}")
        if project_id is not None:
            echo(f"project-id: {project_id}")
            common = f"--endpoint {url} --project-id {project_id}"
            echo(f"try: jobwatch watch --api evs {common} evs-batch evs-00000", err=True)
            echo(f"     jobwatch list --api ges-engine --graph movies {common}", err=True)
        echo("serving; press Ctrl-C to stop", err=True)
        while not stop.wait(0.2):
            pass
    echo("jobwatch: simulator stopped", err=True)
    return EXIT_OK


@contextmanager
def _until_signal(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (instead of interrupting) while the block runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@click.command(short_help="Watch a few hundred simulated jobs, then summarise.")
@click.option(
    "--jobs",
    metavar="N",
    type=click.IntRange(1, 100_000),
    default=300,
    show_default=True,
    help="How many jobs the scenario holds.",
)
@click.option("--json", "json_lines", is_flag=True, help="JSON Lines, then a summary object.")
@log_options
def demo(jobs: int, json_lines: bool) -> int:
    """Watch a few hundred simulated jobs of all four APIs over a loopback socket.

    Starts the simulator with the built-in scenario (throttling, transient
    faults, a batch job with nested sub-jobs, failing and partly failed GES
    imports), watches every job and ends with a summary in about 20 s.  Exit
    status as for watch: the scenario has failing jobs, so 1.
    """
    from jobwatch.sim._demo import demo_scenario

    scenario = demo_scenario(jobs=jobs)
    policy = PollPolicy(wait_initial=0.5, wait_exp_base=1.5, wait_max=4.0, timeout=DEMO_DEADLINE)
    retry = RetryPolicy(wait_initial=0.2, retry_after_max=2.0)
    refs = scenario.refs
    with _serving(scenario.simulator, "127.0.0.1", 0) as url:
        title = f"jobwatch demo: {len(refs)} jobs on the simulator at {url}"

        async def main() -> int:
            run = Run(refs)
            async with Client(
                url, scenario.project_id, retry=retry, on_retry=run.trouble.on_retry
            ) as client:
                report = reporter(run, json_lines=json_lines, title=title)
                limit = DEMO_DEADLINE + safety_margin(DEMO_DEADLINE)
                return await run_watch(client, refs, policy, run, report, limit=limit)

        return anyio.run(main, backend="asyncio")
