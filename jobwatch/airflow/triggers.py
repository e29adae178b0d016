"""``HuaweiCloudJobTrigger``: a deferred task's wait for one Huawei Cloud job.

Every trigger of a triggerer process that reaches the same endpoint and project
with the same credentials shares one ``Client`` and one ``Watcher`` (per polling
policy) with the others: see ``jobwatch.airflow._hub``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict
from jobwatch.airflow._connection import CLIENT_OPTIONS, check_client_options
from jobwatch.airflow._hub import fetch_once, wait_for_job
from jobwatch.airflow._payload import payload_of, payload_of_snapshot, timed_out
from jobwatch.airflow.hooks import DEFAULT_CONN_ID, HuaweiCloudJobHook

__all__ = ["CLIENT_OPTIONS", "HuaweiCloudJobTrigger"]


def _policy(data: Mapping[str, Any] | None) -> PollPolicy:
    try:
        return PollPolicy(**(data or {}))
    except TypeError as exc:
        raise ValueError(f"unknown polling policy field: {exc}") from None


def _deadline(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"deadline {text!r} needs a time zone (UTC: +00:00)")
    return moment


class HuaweiCloudJobTrigger(BaseTrigger):  # type: ignore[misc]
    """Waits for one job and fires exactly one ``TriggerEvent``: its outcome.

    Its arguments are JSON: ``job`` is the reference's JSON form (as
    ``{"api": "evs", "job_id": "..."}``), ``policy`` the fields of a
    ``PollPolicy``, ``deadline`` an ISO 8601 time with its zone, and
    ``client_options`` some ``Client`` options (``CLIENT_OPTIONS``).  The
    credentials are read from the connection ``conn_id`` when the trigger runs,
    never kept in its arguments.  The event's payload is described in
    ``jobwatch.airflow._payload``; it carries no timestamp, so a trigger
    re-created on another triggerer (a triggerer died) re-establishes the job's
    state on its first poll and fires the same payload.

    Its share of the hub is released when the wait ends, however it ends
    (outcome, deadline, or the task cancelled: the job is then unwatched unless
    another trigger waits for it), so ``cleanup`` has nothing left to do.
    """

    def __init__(
        self,
        job: Mapping[str, Any],
        conn_id: str = DEFAULT_CONN_ID,
        endpoint: str | None = None,
        region: str | None = None,
        project_id: str | None = None,
        policy: Mapping[str, Any] | None = None,
        deadline: str | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.ref: JobRef = ref_from_dict(dict(job))
        self.conn_id = conn_id
        self.endpoint = endpoint
        self.region = region
        self.project_id = project_id
        self.policy = _policy(policy)
        self._policy_fields = dict(policy or {})
        self.deadline = deadline
        self._deadline = _deadline(deadline)
        self.client_options = check_client_options(client_options)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the JSON arguments that re-create this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job": ref_to_dict(self.ref),
                "conn_id": self.conn_id,
                "endpoint": self.endpoint,
                "region": self.region,
                "project_id": self.project_id,
                "policy": self._policy_fields,
                "deadline": self.deadline,
                "client_options": self.client_options,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait for the job on the process's shared watcher, then fire its outcome."""
        # The event is built first, and fired once the wait is over: nothing is
        # yielded while the trigger holds its share of the hub.
        yield TriggerEvent(await self._outcome())

    async def _outcome(self) -> dict[str, Any]:
        hook = HuaweiCloudJobHook(self.conn_id)
        target = await hook.atarget(
            self.ref,
            endpoint=self.endpoint,
            region=self.region,
            project_id=self.project_id,
            client_options=self.client_options,
        )
        timeout = None
        if self._deadline is not None:
            timeout = (self._deadline - datetime.now(UTC)).total_seconds()
            if timeout <= 0:
                # Re-created after its deadline: one look, so that a job that ended
                # meanwhile is told as it ended, and one still open as it is now.
                last = await fetch_once(target, self.ref)
                if last is not None and last.terminal:
                    return payload_of_snapshot(last)
                return timed_out(self.ref, last, self.deadline or "")
        final, last = await wait_for_job(target, self.ref, self.policy, timeout)
        if final is None:
            return timed_out(self.ref, last, self.deadline or "")
        return payload_of(final)
