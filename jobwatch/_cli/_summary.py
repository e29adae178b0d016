"""The summary at the end of a run: its numbers, as text lines and as one JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary", "summary_json", "summary_lines", "trouble_line"]

_MAX_PROBLEMS = 20
_TIMES = "\u00d7"  # the multiplication sign
_IMPORTING = frozenset({"ges-v1", "ges-v2"})
_CAUSE_WORDS = {
    "dns": "name not resolved",
    "tls": "TLS failed",
    "certificate": "certificate refused",
    "timeout": "timed out",
    "proxy": "proxy failed",
    "other": "failed",
}


def trouble_line(
    throttled: int, paused: float, transport: dict[str, int], rate: float | None = None
) -> str:
    """Throttling and transport failures in words, e.g. ``throttled (times) 4, paused
    12 s, rate 39.2/s · connection refused (times) 3`` with a multiplication sign (empty
    when none); ``rate`` is the one the client's budget learned, when it did.
    """
    learned = f", rate {rate:.3g}/s" if rate is not None else ""
    parts = [f"throttled {_TIMES}{throttled}, paused {paused:.0f} s{learned}"] if throttled else []
    ordered = sorted(transport.items(), key=lambda item: (-item[1], item[0]))
    parts += [f"connection {_CAUSE_WORDS.get(c, c)} {_TIMES}{n}" for c, n in ordered]
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class Summary:
    """The end of a run, in numbers."""

    jobs: int
    sub_jobs: int
    outcomes: dict[str, int]  # succeeded, failed, "gave up: <reason>" (top-level jobs)
    sub_outcomes: dict[str, int]
    imports_with_failed_files: int
    batches_with_failed_sub_jobs: int
    polls: int
    requests: int
    retries: int
    naive_requests: int
    elapsed: float
    problems: tuple[str, ...]  # one line per failed or given-up job and sub-job
    apis: frozenset[str] = frozenset()  # the --api names of the run's jobs
    throttled: int = 0  # throttled answers the client retried
    paused: float = 0.0  # seconds the client held its requests for them
    rate: float | None = None  # the request rate the client's budget learned (None: none)
    transport_errors: dict[str, int] = field(default_factory=dict)  # retried, by cause

    @property
    def requests_saved(self) -> int:
        """Requests not made compared with polling every job once a second."""
        return max(self.naive_requests - self.requests, 0)


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    """Outcomes in a stable order: succeeded, failed, the others, then the give-ups."""
    name = item[0]
    group = {"succeeded": 0, "failed": 1}.get(name, 3 if name.startswith("gave up") else 2)
    return group, name


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=_rank)


def summary_json(summary: Summary) -> dict[str, Any]:
    """The summary as one JSON object (``jobwatch demo --json``)."""
    return {
        "event": "summary",
        "jobs": summary.jobs,
        "sub_jobs": summary.sub_jobs,
        "outcomes": summary.outcomes,
        "sub_job_outcomes": summary.sub_outcomes,
        "imports_with_failed_files": summary.imports_with_failed_files,
        "batches_with_failed_sub_jobs": summary.batches_with_failed_sub_jobs,
        "polls": summary.polls,
        "requests": summary.requests,
        "retries": summary.retries,
        "naive_requests": summary.naive_requests,
        "requests_saved": summary.requests_saved,
        "throttled": summary.throttled,
        "paused": round(summary.paused, 3),
        "rate": summary.rate,
        "transport_errors": summary.transport_errors,
        "problems": list(summary.problems),
        "elapsed": round(summary.elapsed, 3),
    }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary_lines(summary: Summary) -> list[str]:
    """The summary as plain text lines."""
    subs = f" and {_plural(summary.sub_jobs, 'sub-job')}" if summary.sub_jobs else ""
    lines = [f"{_plural(summary.jobs, 'job')}{subs} in {summary.elapsed:.1f} s"]
    lines += [f"  {name:<30}{count}" for name, count in _ordered(summary.outcomes)]
    if summary.sub_jobs:
        parts = ", ".join(f"{count} {name}" for name, count in _ordered(summary.sub_outcomes))
        lines.append(f"  sub-jobs: {parts}")
    if summary.apis & _IMPORTING:  # only GES management jobs import
        lines.append(f"  {'imports with failed files':<30}{summary.imports_with_failed_files}")
    if "evs" in summary.apis:  # only EVS jobs have sub-jobs
        lines.append(
            f"  {'batches with failed sub-jobs':<30}{summary.batches_with_failed_sub_jobs}"
        )
    for problem in summary.problems[:_MAX_PROBLEMS]:
        lines.append(f"  ! {problem}")
    if len(summary.problems) > _MAX_PROBLEMS:
        lines.append(f"  ! ... and {len(summary.problems) - _MAX_PROBLEMS} more")
    retries = f" ({summary.retries} retries)" if summary.retries else ""
    lines.append(f"polls {summary.polls}, HTTP requests {summary.requests}{retries}")
    if trouble := trouble_line(
        summary.throttled, summary.paused, summary.transport_errors, summary.rate
    ):
        lines.append(trouble)
    lines.append(
        f"requests saved {summary.requests_saved} against polling every job once a second "
        f"(~{summary.naive_requests})"
    )
    return lines
