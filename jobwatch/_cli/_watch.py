"""``jobwatch watch``: watch jobs until they end, and the run loop ``demo`` shares."""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

import anyio
import click

from jobwatch import (
    AuthenticationError,
    Client,
    ClientPool,
    EndpointUnreachable,
    GaveUp,
    JobRef,
    PermissionDeniedError,
    PollPolicy,
    RetryPolicy,
    UnknownAPIError,
    Watcher,
)
from jobwatch._cli._display import Reporter, reporter
from jobwatch._cli._errors import EXIT_INTERRUPTED, EXIT_TERMINATED, CliError, echo
from jobwatch._cli._jobsfile import MAX_LINE, Defaults, Place, read_jobs
from jobwatch._cli._logs import log_options
from jobwatch._cli._metrics import Exposed, serve_metrics
from jobwatch._cli._model import Run
from jobwatch._cli._options import (
    api_option,
    build_refs,
    connection_options,
    endpoint_or_region,
    locate,
    resolve_connection,
    resolve_credentials,
    seconds,
)
from jobwatch._cli._state import StateFile, journaled, refs_left, restore

__all__ = ["run_watch", "safety_margin", "watch"]

DEFAULT_INTERVAL = 1.0
DEFAULT_MAX_INTERVAL = 30.0
DEFAULT_NOT_FOUND_GRACE = 15.0
DEFAULT_CALL_TIMEOUT = 60.0
_TICK = 0.25


def safety_margin(timeout: float) -> float:
    """How long past ``--timeout`` the run may go before it is cut short."""
    return min(max(1.0, timeout * 0.1), 10.0)


async def run_watch(
    client: Client | ClientPool,
    refs: Sequence[JobRef],
    policy: PollPolicy,
    run: Run,
    report: Reporter,
    *,
    limit: float | None,
    state: StateFile | None = None,
    exposed: Exposed | None = None,
    places: Mapping[JobRef, Place] | None = None,
) -> int:
    """Watch ``refs`` until every one ended (or ``limit`` seconds passed); the exit status.

    Jobs still open at ``limit`` are given up as ``timeout`` by the CLI itself: the
    watcher's own deadline (``policy.timeout``) normally ends them a little before.
    With ``state``, jobs whose outcome an earlier run journaled are not watched again,
    the others resume from what it journaled, and each event is journaled as shown.
    Ctrl-C or SIGTERM ends the watch: the journal is flushed, the summary so far shown.
    With ``exposed``, the watcher is read by the metrics server while it runs.
    ``client`` is a ``ClientPool`` when the jobs are on several endpoints: ``places``
    says where each one is.
    """
    causes: dict[type[BaseException], BaseException] = {}
    wanted = list(refs)
    if state is not None:
        restore(run, state.book)
        wanted = refs_left(state.book, refs)
        report = journaled(report, state)
    signals: list[signal.Signals] = []
    async with Watcher(client, policy=policy, on_poll=run.trouble.on_poll) as watcher:
        if exposed is not None:
            exposed.watchers["watch"] = watcher
        _start(watcher, wanted, state, places)
        if exposed is not None and isinstance(client, ClientPool):
            exposed.clients.update((made.endpoint, made) for made in client.clients())
        with report:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_tick, report)
                    scope = anyio.move_on_after(math.inf if limit is None else limit)
                    tg.start_soon(_until_signal, scope, signals)
                    with scope:
                        async for event in watcher.events():
                            report.event(event, run.apply(event))
                            if isinstance(event, GaveUp) and event.error is not None:
                                causes.setdefault(type(event.error), event.error)
                    if scope.cancelled_caught and not signals:
                        message = f"not finished within {policy.timeout or limit:g}s"
                        for gave_up in run.expire(message):
                            report.event(gave_up, run.nodes[gave_up.ref])
                    tg.cancel_scope.cancel()
            finally:
                if state is not None:
                    await state.close()
        stats = watcher.statistics()
    report.finish(
        run.summary(
            polls=stats.polls,
            requests=stats.requests,
            retries=stats.retries,
            rate=stats.rate,
            paused=stats.paused,
        )
    )
    for line in hints(causes.values()):
        echo(f"jobwatch: hint: {line}", err=True)
    if signals:
        return _stopped(run, signals[0], state)
    return run.exit_status()


def _start(
    watcher: Watcher,
    refs: Sequence[JobRef],
    state: StateFile | None,
    places: Mapping[JobRef, Place] | None,
) -> None:
    """Watch ``refs`` (resumed from ``state``), each where ``places`` says if it says."""
    groups: dict[Place | None, list[JobRef]] = {}
    for ref in refs:
        groups.setdefault(None if places is None else places[ref], []).append(ref)
    for place, group in groups.items():
        client = None
        if place is not None and watcher.pool is not None:
            client = watcher.pool.client(place.endpoint, place.project_id)
        if state is not None:
            watcher.resume(state.book.token(group), client=client)
        watcher.watch_many(group, client=client)


def _stopped(run: Run, signum: signal.Signals, state: StateFile | None) -> int:
    """Say how far a run stopped by ``signum`` went; its exit status (130 or 143)."""
    roots = [run.nodes[ref] for ref in run.roots]
    ended = sum(node.done for node in roots)
    rest = f"; run again with --state {state.path} to go on" if state is not None else ""
    echo(f"jobwatch: {ended} of {len(roots)} jobs ended{rest}", err=True)
    if signum == signal.SIGTERM:
        echo("jobwatch: terminated (SIGTERM)", err=True)
        return EXIT_TERMINATED
    echo("jobwatch: interrupted", err=True)
    return EXIT_INTERRUPTED


async def _until_signal(scope: anyio.CancelScope, received: list[signal.Signals]) -> None:
    """Cancel ``scope`` at Ctrl-C (unless SIGINT is ignored, as in a background job) or SIGTERM."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set in the main thread
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        wanted.append(signal.SIGINT)
    with anyio.open_signal_receiver(*wanted) as signals:
        async for signum in signals:
            received.append(signal.Signals(signum))
            scope.cancel()
            return


def hints(errors: Iterable[BaseException]) -> list[str]:
    """One line of advice per kind of configuration error the jobs gave up on."""
    lines: list[str] = []
    for error in errors:
        if isinstance(error, UnknownAPIError):
            lines.append(
                f"the endpoint or API is wrong ({error.error_code}: {error.message}); "
                "check --endpoint (service and region) and --api"
            )
        elif isinstance(error, EndpointUnreachable):
            lines.append(f"no answer ever came ({error}); check --endpoint and the network")
        elif isinstance(error, AuthenticationError | PermissionDeniedError):
            lines.append(
                "the credentials were refused; check the token or AK/SK, and the project ID"
            )
    return lines


async def _tick(report: Reporter) -> None:
    while True:
        await anyio.sleep(_TICK)
        report.tick()


@click.command()
@api_option(
    "Which job API (service): EVS and the services sharing its job API, CCE, RDS, "
    "GES management jobs (v1.0 or v2), GES engine jobs.  With --jobs: the API of the "
    "lines that name none.",
    required=False,
)
@connection_options
@click.option(
    "--jobs",
    "jobs_path",
    metavar="FILE",
    help=(
        "Watch the jobs of FILE (- for standard input), JSON Lines of mixed jobs: "
        '{"api": "ecs", "job_id": "...", "region": "cn-north-4"}, with "graph", '
        '"endpoint" or "project_id" where needed; the options give what a line leaves out.'
    ),
)
@click.option(
    "--json",
    "json_lines",
    is_flag=True,
    help="Write only JSON Lines to stdout: one object per event, then a summary object.",
)
@log_options
@click.option(
    "--timeout",
    type=float,
    callback=seconds,
    metavar="SECONDS",
    help=(
        "Deadline for the whole run: jobs still open then give up with reason 'timeout' "
        "(those never found: 'not_found')."
    ),
)
@click.option(
    "--interval",
    type=float,
    callback=seconds,
    metavar="SECONDS",
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="First poll interval of each job, and again after each change.",
)
@click.option(
    "--max-interval",
    type=float,
    callback=seconds,
    metavar="SECONDS",
    help=f"Longest poll interval (backoff ceiling).  [default: {DEFAULT_MAX_INTERVAL:g}]",
)
@click.option(
    "--state",
    "state_path",
    metavar="FILE",
    help=(
        "Journal each event shown in FILE (JSON Lines): run again with the same FILE and "
        "jobs after a crash or a stop to go on without showing again what was shown."
    ),
)
@click.option(
    "--state-add",
    is_flag=True,
    help="Let the jobs named be more than those --state FILE holds: add the new ones to it.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help=(
        "Serve the run's counters for Prometheus at http://HOST:PORT/metrics "
        "(0: any free port, said on stderr; needs the prometheus extra)."
    ),
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address of the metrics server (0.0.0.0: every interface).",
)
@click.argument("job_ids", metavar="[JOB_ID]...", nargs=-1)
def watch(
    api: str | None,
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    graph: str | None,
    token: str | None,
    jobs_path: str | None,
    json_lines: bool,
    timeout: float | None,
    interval: float,
    max_interval: float | None,
    state_path: str | None,
    state_add: bool,
    metrics_port: int | None,
    metrics_host: str,
    job_ids: tuple[str, ...],
) -> int:
    """Watch jobs until each succeeds, fails or is given up.

    Sub-jobs of batch jobs are watched too, at any depth.  Give the jobs as
    JOB_IDs of one --api, or as --jobs FILE of any APIs, endpoints and regions
    (every line checked before any request).  Exit status: 0
    when every job and sub-job succeeded, 1 when any failed, 3 when jobwatch
    gave up on any (and none failed), 2 for usage errors (a --state FILE that
    cannot be written or is about other jobs among them), 4 for a bug, 130 for
    Ctrl-C and 143 for SIGTERM (the summary so far shown, FILE flushed).
    """
    refs, places = _jobs(api, endpoint, region, project_id, graph, jobs_path, job_ids)
    maximum = max_interval if max_interval is not None else max(DEFAULT_MAX_INTERVAL, interval)
    if interval > maximum:
        raise CliError(f"--interval ({interval:g}) is longer than --max-interval ({maximum:g})")
    grace = DEFAULT_NOT_FOUND_GRACE if timeout is None else min(DEFAULT_NOT_FOUND_GRACE, timeout)
    policy = PollPolicy(
        wait_initial=interval, wait_max=maximum, timeout=timeout, not_found_grace=grace
    )
    if state_add and not state_path:
        raise CliError("--state-add needs --state FILE")
    # a bad FILE is a usage error, found before any request
    state = StateFile.open(state_path, refs, add=state_add) if state_path else None
    if places is None:
        assert api is not None
        conn = resolve_connection(endpoint, project_id, token, api=api, region=region)
        auth = conn.auth
    else:
        auth, _ = resolve_credentials(project_id, token)
    call_timeout = DEFAULT_CALL_TIMEOUT if timeout is None else min(DEFAULT_CALL_TIMEOUT, timeout)
    limit = None if timeout is None else timeout + safety_margin(timeout)

    async def main(exposed: Exposed | None) -> int:
        run = Run(refs)
        retry = RetryPolicy(timeout=call_timeout)
        report = reporter(run, json_lines=json_lines)
        if places is not None:
            async with ClientPool(auth=auth, retry=retry, on_retry=run.trouble.on_retry) as pool:
                return await run_watch(
                    pool, refs, policy, run, report, limit=limit, state=state,
                    exposed=exposed, places=places,
                )  # fmt: skip
        async with Client(
            conn.endpoint, conn.project_id, auth=auth, retry=retry, on_retry=run.trouble.on_retry
        ) as client:
            if exposed is not None:
                exposed.clients["watch"] = client
            return await run_watch(
                client, refs, policy, run, report, limit=limit, state=state, exposed=exposed
            )

    with serve_metrics(metrics_host, metrics_port) as exposed:  # before any request
        if state is not None:
            state.prepare()  # FILE written once every usage error is behind
        return anyio.run(main, exposed, backend="asyncio")


def _jobs(
    api: str | None,
    endpoint: str | None,
    region: str | None,
    project_id: str | None,
    graph: str | None,
    jobs_path: str | None,
    job_ids: Sequence[str],
) -> tuple[list[JobRef], dict[JobRef, Place] | None]:
    """The jobs of the command line or of ``--jobs FILE``, and where each one is (None:
    all on the command line's endpoint)."""
    if jobs_path is None:
        if api is None:
            raise CliError("give --api and JOB_IDs, or --jobs FILE")
        if not job_ids:
            raise CliError(f"no JOB_ID: name the jobs of --api {api} (or give --jobs FILE)")
        return build_refs(api, graph, job_ids), None
    if job_ids:
        raise CliError("give JOB_IDs or --jobs FILE, not both")
    if graph is not None:
        raise CliError('--graph is not used with --jobs: give each line its "graph"')
    endpoint, region = endpoint_or_region(endpoint, region)
    defaults = Defaults(api=api, region=region, endpoint=endpoint, project_id=project_id or None)
    lines = read_jobs(_lines(jobs_path), _source(jobs_path), defaults, locate)
    return [line.ref for line in lines], {line.ref: line.place for line in lines}


def _source(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _lines(path: str) -> list[str]:
    """The lines of ``path`` (``-``: standard input); ``CliError`` when unreadable.

    Lines end at ``\n``, ``\r\n`` or ``\r`` only (as editors number them); a
    byte order mark is dropped; a line longer than ``MAX_LINE`` is refused
    before the rest of it is read.
    """
    try:
        if path == "-":
            return _read_lines(sys.stdin, _source(path))
        with open(path, encoding="utf-8-sig") as file:
            return _read_lines(file, _source(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--jobs {_source(path)}: cannot read it ({exc})") from None


def _read_lines(file: TextIO, source: str) -> list[str]:
    lines: list[str] = []
    while line := file.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith("\n"):
            number = len(lines) + 1
            raise CliError(f"{source}:{number}: the line is longer than {MAX_LINE} characters")
        lines.append(line.removesuffix("\n"))
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return lines
