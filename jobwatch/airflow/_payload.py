"""A job's final outcome as the JSON of one ``TriggerEvent``.

The payload is deterministic: two watches of the same job that end the same
way give equal payloads (no observation timestamps, no attempt counters), so
a trigger that ran twice (a triggerer died, another took its triggers over)
fires the same event (messages are read without the request ids they name),
and Airflow's de-duplication of a trigger's events holds.  It is plain JSON
(str, bool, None, lists and dicts of them).
"""

from __future__ import annotations

import re
from typing import Any

from jobwatch._events import Event, GaveUp, GiveUpReason
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict
from jobwatch._snapshot import JobSnapshot, JobState

__all__ = [
    "FAILED",
    "GAVE_UP",
    "SUCCEEDED",
    "job_of",
    "not_found",
    "payload_of",
    "payload_of_snapshot",
    "timed_out",
]

SUCCEEDED = "succeeded"
FAILED = "failed"
GAVE_UP = "gave_up"


# Each answer has its own request id: a message that names one differs between runs.
_REQUEST_ID = re.compile(r" \(request id [^)]*\)")


def _sub_job(snapshot: JobSnapshot) -> dict[str, Any]:
    return {
        "ref": str(snapshot.ref),
        "state": snapshot.state.value,
        "raw_status": snapshot.raw_status,
        "fail_reason": snapshot.fail_reason,
        "error_code": snapshot.error_code,
    }


def _payload(
    ref: JobRef,
    status: str,
    snapshot: JobSnapshot | None,
    reason: GiveUpReason | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "job": ref_to_dict(ref),
        "ref": str(ref),
        "state": snapshot.state.value if snapshot else None,
        "raw_status": snapshot.raw_status if snapshot else None,
        "fail_reason": snapshot.fail_reason if snapshot else None,
        "error_code": snapshot.error_code if snapshot else None,
        "reason": reason.value if reason else None,
        "message": _REQUEST_ID.sub("", message) if message else message,
        "failed_sub_jobs": [_sub_job(s) for s in snapshot.failed_sub_jobs] if snapshot else [],
        "import_has_failures": snapshot.import_has_failures if snapshot else False,
    }


def payload_of(final: Event) -> dict[str, Any]:
    """The payload of a job's final event (a terminal transition or a give-up).

    ``status`` is ``succeeded`` or ``failed`` (the job's own final state; a
    succeeded batch may still list ``failed_sub_jobs``, and a succeeded import
    have ``import_has_failures``), or ``gave_up`` with ``reason`` and
    ``message``, the state fields then those of the last snapshot seen.
    """
    if isinstance(final, GaveUp):
        return _payload(final.ref, GAVE_UP, final.last, final.reason, final.message)
    return payload_of_snapshot(final.snapshot)


def payload_of_snapshot(snapshot: JobSnapshot) -> dict[str, Any]:
    """The payload of a job seen in a terminal state by one status query."""
    status = FAILED if snapshot.state is JobState.FAILED else SUCCEEDED
    return _payload(snapshot.ref, status, snapshot)


def not_found(ref: JobRef) -> dict[str, Any]:
    """The payload of a job that the service never showed."""
    return _payload(ref, GAVE_UP, None, GiveUpReason.NOT_FOUND, f"{ref} was not found")


def timed_out(ref: JobRef, last: JobSnapshot | None, deadline: str) -> dict[str, Any]:
    """The payload of a watch that reached its ``deadline`` (``last``: the last snapshot seen)."""
    message = f"{ref} did not end before its deadline, {deadline}"
    return _payload(ref, GAVE_UP, last, GiveUpReason.TIMED_OUT, message)


def job_of(payload: dict[str, Any]) -> JobRef:
    """The job reference a payload is about (``ValueError`` when it has none)."""
    return ref_from_dict(payload.get("job"))
