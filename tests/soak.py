"""Fault soak: many jobs, about a fifth of the answers faulty; nothing lost or duplicated.

``make soak`` runs 10,000 jobs over a loopback socket; the test suite runs a small
version in process (``tests/test_soak.py``).  The check compares, for every job and
sub-job, the statuses the simulator actually sent in readable bodies (its own
record, ``RecordedRequest.served``) with the transitions the watcher emitted: with
repeats collapsed, the two sequences must be equal.  A status the simulator sent
but the watcher did not report is *lost*; one reported twice is *duplicated*.

    python tests/soak.py [--jobs 10000] [--seed 1] [--in-process]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

import anyio
import httpx

from jobwatch import (
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GesJob,
    JobRef,
    PollPolicy,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch.sim import Fault, Simulator, SubJob, serve

PROJECT = "soak"
CLIENT_TIMEOUT = 1.0

#: About 20 % of answers in all, at random.
FAULTS = (
    Fault("http_500", probability=0.03),
    Fault("http_503_html", probability=0.025),
    Fault("reset", probability=0.025),
    Fault("latency", probability=0.01, latency=CLIENT_TIMEOUT * 2),  # read timeouts
    Fault("latency", probability=0.02, latency=0.2),  # spikes
    Fault("malformed_json", probability=0.025),
    Fault("error_200", probability=0.02, error_code="APIGW.0308"),  # transient
    Fault("error_200", probability=0.015),  # not transient: the poll fails, the next one works
    Fault("unknown_status", probability=0.025, status="MIGRATING"),
)


def throttling(span: float) -> list[Fault]:
    """Gateway throttling comes in windows, not at random: every few seconds, a short
    window of 429s, with ``Retry-After`` or with only the APIGW.0308 message."""
    faults = []
    t = 1.0
    while t < span:
        faults.append(Fault("throttle_429", window=(t, t + 0.2), retry_after=1))
        faults.append(Fault("throttle_429", window=(t + 3, t + 3.2), throttle_period="1 second"))
        t += 6.0
    return faults


@dataclass
class SoakReport:
    """What a soak run found."""

    jobs: int = 0
    sub_jobs: int = 0
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    transitions: int = 0
    checked: int = 0
    lost: int = 0
    duplicated: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    without_outcome: int = 0
    with_two_outcomes: int = 0
    rss_mb: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was lost or duplicated and every job ended exactly once."""
        return not (self.lost or self.duplicated or self.without_outcome or self.with_two_outcomes)

    def lines(self) -> list[str]:
        """The report, for humans."""
        faulty = sum(self.faults.values())
        share = faulty / self.requests if self.requests else 0.0
        return [
            f"jobs                 {self.jobs} (+{self.sub_jobs} sub-jobs)",
            f"requests             {self.requests}",
            f"faults injected      {faulty} ({share:.0%}): "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())),
            f"transitions emitted  {self.transitions}",
            f"transitions checked  {self.checked}",
            f"lost                 {self.lost}",
            f"duplicated           {self.duplicated}",
            "outcomes             "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            f"no / two outcomes    {self.without_outcome} / {self.with_two_outcomes}",
            f"RSS (MB) by decile   {' '.join(f'{m:.0f}' for m in self.rss_mb)}",
            f"peak RSS             {_peak_rss_mb():.0f} MB",
            f"elapsed              {self.elapsed:.1f} s",
        ]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # not Linux: fall back to the peak
        return _peak_rss_mb()


def build(jobs: int, seed: int, span: float) -> tuple[Simulator[Any], list[JobRef]]:
    """A simulator with ``jobs`` jobs of every API ending within ``span`` seconds."""
    rng = random.Random(seed)
    sim = Simulator(seed=seed, engine_schema="drift")
    refs: list[JobRef] = []

    def times() -> tuple[float, float]:
        start = rng.uniform(0.1, span / 2)
        return start, start + rng.uniform(0.5, span / 2)

    for i in range(jobs):
        kind = i % 10
        run, end = times()
        if kind < 6:
            subs = []
            if kind == 0:
                subs = [
                    SubJob(
                        f"s{i}-{n}",
                        [(0, "INIT"), (run, "RUNNING"), (end, "SUCCESS")],
                        appear_at=run,
                    )
                    for n in range(2)
                ]
            final = "FAIL" if rng.random() < 0.1 else "SUCCESS"
            sim.add_evs_job(
                PROJECT,
                f"evs{i}",
                [(0, "INIT"), (run, "RUNNING"), (end + 0.2, final)],
                sub_jobs=subs,
                visible_after=rng.choice([0.0, 0.0, 0.0, 0.5]),
            )
            refs.append(EvsJob(f"evs{i}"))
        elif kind < 8:
            sim.add_ges_job(
                PROJECT,
                "graph",
                f"ges{i}",
                [(0, "pending"), (run, "running"), (end, "success")],
                v1_body=("old", "flat", "wrapped")[i % 3],
            )
            refs.append(GesJob("graph", f"ges{i}", "v1.0" if kind == 6 else "v2"))
        else:
            sim.add_engine_job(
                PROJECT,
                f"graph{i % 7}",
                f"eng{i}",
                [(0, "pending"), (run, "running"), (end, "complete")],
            )
            refs.append(GesEngineJob(f"graph{i % 7}", f"eng{i}"))
    for fault in (*throttling(span), *FAULTS):
        sim.add_fault(fault)
    return sim, refs


# (fault, API, served): a GES job list serves every job of the project, whichever
# version it was asked in; a job counts only in the lists of the version it is watched in.
Log = list[tuple[str | None, str | None, tuple[tuple[str, str], ...]]]


def _serve_child(jobs: int, seed: int, span: float, conn: Connection) -> None:
    """In a child process: build the same scenario, serve it until told, send the log."""
    sim, _ = build(jobs, seed, span)
    with serve(sim) as url:
        conn.send(url)
        conn.recv()
    conn.send([(r.fault, r.api, r.served) for r in sim.requests])


@asynccontextmanager
async def server_process(jobs: int, seed: int, span: float) -> AsyncIterator[tuple[str, Log]]:
    """The simulator in another process (so that it does not share a core with the client):
    yields its URL and a list that receives the simulator's request log on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve_child, args=(jobs, seed, span, child), daemon=True)
    process.start()
    log: Log = []
    try:
        url = await anyio.to_thread.run_sync(parent.recv)
        yield url, log
        parent.send("stop")
        log.extend(await anyio.to_thread.run_sync(parent.recv))
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
        parent.close()
        child.close()


async def soak(
    jobs: int = 10_000, seed: int = 1, *, in_process: bool = False, span: float | None = None
) -> SoakReport:
    """Run the soak and check the watcher's events against the simulator's record.

    In process, the simulator answers through ``httpx.ASGITransport``; otherwise it
    serves a loopback socket from another process.  Jobs end within ``span`` seconds
    (default: 10 s in process, ``jobs / 40`` s over the socket, so that each state
    lasts long enough to be seen at the rate two shared cores can poll).
    """
    if in_process:
        span = span or 10.0
        policy = PollPolicy(
            wait_initial=0.25, wait_exp_base=1.6, wait_max=2.0, max_consecutive_errors=100
        )
    else:
        span = span or max(10.0, jobs / 40)
        policy = PollPolicy(
            wait_initial=0.5, wait_exp_base=1.5, wait_max=20.0, max_consecutive_errors=100
        )
    sim, refs = build(jobs, seed, span)
    report = SoakReport(jobs=len(refs))
    retry = RetryPolicy(attempts=4, wait_initial=0.05, wait_max=0.5, retry_after_max=1.0)
    started = time.monotonic()
    if in_process:
        events = await _watch(refs, policy, retry, span, report, None, sim.transport())
        log: Log = [(r.fault, r.api, r.served) for r in sim.requests]
    else:
        async with server_process(jobs, seed, span) as (url, log):
            events = await _watch(refs, policy, retry, span, report, url, None)
    report.elapsed = time.monotonic() - started
    _check(log, events, report, refs)
    return report


async def _watch(
    refs: list[JobRef],
    policy: PollPolicy,
    retry: RetryPolicy,
    span: float,
    report: SoakReport,
    url: str | None,
    transport: httpx.AsyncBaseTransport | None,
) -> list[Seen]:
    events: list[Seen] = []
    async with (
        Client(
            url or "http://sim.local",
            PROJECT,
            transport=transport,
            retry=retry,
            timeout=CLIENT_TIMEOUT,
        ) as client,
        Watcher(client, policy=policy, keep_outcomes=False) as watcher,
    ):
        watcher.watch_many(refs)
        finished = 0
        with anyio.fail_after(span * 5 + 120):
            async for event in watcher.events():
                events.append(_seen(event))
                if event.final and event.parent is None:
                    finished += 1
                    if finished % max(1, len(refs) // 10) == 0:
                        report.rss_mb.append(_rss_mb())
    return events


class Seen(NamedTuple):
    """What the soak keeps of an event (not the event: memory must stay flat)."""

    job_id: str
    raw_status: str | None  # None for a give-up
    final: bool
    outcome: str  # the final state or the give-up reason


def _seen(event: Transition | GaveUp) -> Seen:
    if isinstance(event, Transition):
        return Seen(
            event.ref.job_id, event.snapshot.raw_status or "", event.final, event.state.value
        )
    return Seen(event.ref.job_id, None, True, event.reason.value)


def _check(log: Log, events: list[Seen], report: SoakReport, refs: Sequence[Any]) -> None:
    watched_in = {ref.job_id: f"ges-{ref.version}" for ref in refs if isinstance(ref, GesJob)}
    emitted: dict[str, list[str]] = defaultdict(list)
    finals: Counter[str] = Counter()
    ended_as: dict[str, str] = {}  # the raw status of a job's terminal transition
    for event in events:
        if event.raw_status is not None:
            report.transitions += 1
            emitted[event.job_id].append(event.raw_status)
            if event.final:
                ended_as[event.job_id] = event.raw_status
        if event.final:
            finals[event.job_id] += 1
            report.outcomes[event.outcome] += 1
    served: dict[str, list[str]] = defaultdict(list)
    for fault, api, pairs in log:  # in the order the simulator answered
        report.requests += 1
        if fault:
            report.faults[fault] += 1
        for job_id, status in pairs:
            if watched_in.get(job_id, api) != api and api in ("ges-v1.0", "ges-v2"):
                continue  # the other version's list: not read for this job
            if job_id in emitted or job_id in finals:
                seq = served[job_id]
                if not seq or seq[-1] != status:
                    seq.append(status)
    known = set(served) | set(emitted)
    report.sub_jobs = len(known) - report.jobs
    for job_id in known:
        got, sent = emitted.get(job_id, []), served.get(job_id, [])
        final = ended_as.get(job_id)
        if final is not None:
            # After its final state the watcher no longer looks at a job; an engine list
            # or a parent body may still carry it.  Compare up to the final state.
            cut = next(
                (i for i in range(max(len(got) - 1, 0), len(sent)) if sent[i] == final), None
            )
            if cut is not None:
                sent = sent[: cut + 1]
        report.checked += len(sent)
        if got != sent:
            # what the simulator sent and nobody reported; what was reported beyond it
            missing = Counter(sent) - Counter(got)
            extra = Counter(got) - Counter(sent)
            report.lost += sum(missing.values())
            report.duplicated += sum(extra.values())
            if len(report.problems) < 10:
                report.problems.append(f"{job_id}: sent {sent}, reported {got}")
    report.without_outcome = sum(1 for job_id in known if finals[job_id] == 0)
    report.with_two_outcomes = sum(1 for n in finals.values() if n > 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--in-process", action="store_true", help="no socket: httpx.ASGITransport")
    parser.add_argument(
        "--model-examples",
        type=int,
        default=1000,
        help="programs per backend for the watcher's model-based test afterwards (0: none)",
    )
    args = parser.parse_args(argv)
    report = anyio.run(lambda: soak(args.jobs, args.seed, in_process=args.in_process))
    print("\n".join(report.lines()))
    for problem in report.problems:
        print("  " + problem)
    ok = report.ok
    if args.model_examples:
        from test_watcher_model import soak_model  # tests/ is on the path as a script

        started = time.monotonic()
        try:
            soak_model(args.model_examples)
        except Exception as exc:  # noqa: BLE001 - reported, and the soak fails
            print(f"model-based test: FAIL after {time.monotonic() - started:.0f} s: {exc}")
            ok = False
        else:
            print(
                f"model-based test: {args.model_examples} programs per backend held the "
                f"watcher's contract ({time.monotonic() - started:.0f} s)"
            )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
