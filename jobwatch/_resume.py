"""Resume tokens: the watched jobs and their last delivered states, as plain JSON data.

Format (version 2)::

    {"version": 2,
     "jobs": [{"ref": {"api": "evs", "job_id": "..."},   # "api" names the service
               "endpoint": "https://evs.cn-north-4.myhuaweicloud.com",
               "project_id": "...",                      # the client it was polled with
               "state": "running" | null,      # last state delivered to the consumer
               "seen": true,                   # answered at least once (404 now = expired)
               "subs": [{"ref": {...}, "parent": {...}, "state": "running",
                         "final": true}]}]}   # its final event (a give-up) was delivered

``final`` is optional (false when absent).  Version 1 tokens, the same without
``endpoint`` and ``project_id``, are read too: their jobs name no client
(``ResumedJob.endpoint`` None), and go to the one the caller gives.  Nothing
secret is in a token: credentials stay with the clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwatch._pool import endpoint_key
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict, validate_id
from jobwatch._snapshot import JobState
from jobwatch._tracking import Tracked

VERSION = 2
#: The versions ``load_state`` reads.
READS = (1, 2)


@dataclass(frozen=True, slots=True)
class ResumedJob:
    """One job of a token."""

    ref: JobRef
    state: JobState | None
    seen: bool
    subs: dict[JobRef, tuple[JobRef, JobState, bool]] = field(default_factory=dict)
    #: The endpoint and project of the client it was polled with (None: a version 1 token).
    endpoint: str | None = None
    project_id: str | None = None


def dump_state(jobs: Iterable[Tracked]) -> dict[str, Any]:
    """The token of ``jobs``: what was delivered of each, not what was merely observed."""
    entries = []
    for job in jobs:
        subs: list[dict[str, Any]] = []
        for ref, sub in (job.subs or {}).items():
            if sub.delivered is None:
                continue
            entry: dict[str, Any] = {
                "ref": ref_to_dict(ref),
                "parent": ref_to_dict(sub.parent),
                "state": sub.delivered.value,
            }
            if sub.final_delivered:
                entry["final"] = True
            subs.append(entry)
        entries.append(
            {
                "ref": ref_to_dict(job.ref),
                "endpoint": job.client.endpoint,
                "project_id": job.client.project_id,
                "state": job.delivered.value if job.delivered is not None else None,
                "seen": job.seen and job.delivered is not None,
                "subs": subs,
            }
        )
    return {"version": VERSION, "jobs": entries}


def load_state(token: object) -> list[ResumedJob]:
    """Read a token; ``ValueError`` naming what is wrong when it is not one."""
    version = token.get("version") if isinstance(token, Mapping) else None
    if not isinstance(token, Mapping) or type(version) is not int or version not in READS:
        # (``type(...) is int``: True == 1, but true is not a version)
        raise ValueError(f"not a jobwatch resume token (version {VERSION} or 1 expected)")
    jobs = token.get("jobs")
    if not isinstance(jobs, list):
        raise ValueError("resume token: 'jobs' must be a list")
    return [_load_job(entry, version) for entry in jobs]


def _state(value: object) -> JobState | None:
    if value is None:
        return None
    try:
        return JobState(str(value))
    except ValueError:
        raise ValueError(f"resume token: unknown state {str(value)[:20]!r}") from None


def _client_of(entry: Mapping[str, Any], ref: JobRef) -> tuple[str, str]:
    """The endpoint and project of a version 2 job."""
    endpoint, project_id = entry.get("endpoint"), entry.get("project_id")
    if not isinstance(endpoint, str) or not isinstance(project_id, str):
        raise ValueError(f"resume token: job {ref} needs an 'endpoint' and a 'project_id'")
    try:
        return endpoint_key(endpoint), validate_id("project_id", project_id)
    except ValueError as exc:
        raise ValueError(f"resume token: job {ref}: {exc}") from None


def _load_job(entry: object, version: int) -> ResumedJob:
    if not isinstance(entry, Mapping):
        raise ValueError("resume token: each job must be an object")
    subs: dict[JobRef, tuple[JobRef, JobState, bool]] = {}
    listed = entry.get("subs") or []
    if not isinstance(listed, list):
        raise ValueError("resume token: a job's 'subs' must be a list")
    for sub in listed:
        if not isinstance(sub, Mapping):
            raise ValueError("resume token: each sub-job must be an object")
        state = _state(sub.get("state"))
        if state is not None:
            parent = ref_from_dict(sub.get("parent"))
            subs[ref_from_dict(sub.get("ref"))] = (parent, state, sub.get("final") is True)
    ref = ref_from_dict(entry.get("ref"))
    state = _state(entry.get("state"))
    if state is not None and state.terminal:
        # A delivered final state takes a job out of the tokens jobwatch writes.
        raise ValueError(f"resume token: job {ref} has a final state ({state.value})")
    endpoint, project_id = _client_of(entry, ref) if version >= 2 else (None, None)
    return ResumedJob(
        ref=ref,
        state=state,
        seen=bool(entry.get("seen")),
        subs=subs,
        endpoint=endpoint,
        project_id=project_id,
    )
