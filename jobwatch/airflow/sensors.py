"""``HuaweiCloudJobSensor``: wait in a DAG for a Huawei Cloud job to end.

Deferrable by default: ``execute`` checks the connection and hands the wait to
``HuaweiCloudJobTrigger`` in the triggerer, and ``execute_complete`` decides
from the trigger's payload.  With ``deferrable=False`` it pokes with one
``Client.fetch`` per poke.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import anyio
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from jobwatch._events import GiveUpReason
from jobwatch._policies import PollPolicy
from jobwatch._refs import JobRef, ref_from_dict, ref_to_dict
from jobwatch.airflow._hub import Target, fetch_once
from jobwatch.airflow._payload import (
    FAILED,
    GAVE_UP,
    SUCCEEDED,
    not_found,
    payload_of_snapshot,
)
from jobwatch.airflow.hooks import DEFAULT_CONN_ID, HuaweiCloudJobHook
from jobwatch.airflow.triggers import HuaweiCloudJobTrigger

__all__ = ["HuaweiCloudJobSensor"]

# Give-ups that a retry of the task will not mend: the task fails without retrying.
_FINAL_REASONS = frozenset(
    {GiveUpReason.NOT_FOUND, GiveUpReason.EXPIRED, GiveUpReason.PENDING_PAYMENT}
)

# The deferral's own timeout comes this long after the trigger's deadline: a backstop.
_DEFERRAL_MARGIN = timedelta(minutes=5)


class HuaweiCloudJobSensor(BaseSensorOperator):  # type: ignore[misc]
    """Succeeds when the job ``job`` succeeds; fails when it fails, or is given up on.

    ``job`` is a reference (``jobwatch.EvsJob("...")``) or its JSON form, whose
    strings are templated (``{"api": "evs", "job_id": "{{ ti.xcom_pull('create') }}"}``).
    A failed job, or a failed sub-job (unless ``fail_on_sub_job_failure`` is
    False), or a GES import with failed files when ``fail_on_import_failures``,
    fails the task without retries (``AirflowFailException``); so does a job not
    found, expired or left unpaid.  The sensor's ``timeout`` gives up with
    ``AirflowSensorTimeout``; trouble that a retry may mend (credentials refused,
    an unreachable endpoint) raises ``AirflowException``, which retries.  The
    return value (an XCom) is the trigger's payload.
    """

    template_fields: ClassVar[Sequence[str]] = ("job", "endpoint", "region", "project_id")

    def __init__(
        self,
        *,
        job: JobRef | Mapping[str, Any],
        huaweicloud_conn_id: str = DEFAULT_CONN_ID,
        endpoint: str | None = None,
        region: str | None = None,
        project_id: str | None = None,
        policy: PollPolicy | Mapping[str, Any] | None = None,
        fail_on_sub_job_failure: bool = True,
        fail_on_import_failures: bool = False,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job = dict(job) if isinstance(job, Mapping) else ref_to_dict(job)
        self.huaweicloud_conn_id = huaweicloud_conn_id
        self.endpoint = endpoint
        self.region = region
        self.project_id = project_id
        self.policy = _policy_fields(policy)
        PollPolicy(**self.policy)  # bad fields fail when the DAG is parsed
        self.fail_on_sub_job_failure = fail_on_sub_job_failure
        self.fail_on_import_failures = fail_on_import_failures
        self.deferrable = deferrable
        self._first_poke: float | None = None

    def _target(self, ref: JobRef) -> Target:
        return HuaweiCloudJobHook(self.huaweicloud_conn_id).target(
            ref, endpoint=self.endpoint, region=self.region, project_id=self.project_id
        )

    def execute(self, context: Any) -> Any:
        """Defer to the trigger (or, not deferrable, poke)."""
        if not self.deferrable:
            return super().execute(context)
        ref = ref_from_dict(self.job)
        self._target(ref)  # a connection that lacks something fails here, in the task's log
        deadline = datetime.now(UTC) + timedelta(seconds=float(self.timeout))
        trigger = HuaweiCloudJobTrigger(
            job=ref_to_dict(ref),
            conn_id=self.huaweicloud_conn_id,
            endpoint=self.endpoint,
            region=self.region,
            project_id=self.project_id,
            policy=self.policy,
            deadline=deadline.isoformat(),
        )
        self.log.info("deferring the wait for %s to the triggerer", ref)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)) + _DEFERRAL_MARGIN,
        )

    def execute_complete(self, context: Any, event: Any) -> dict[str, Any]:
        """Decide from the trigger's payload (see the class docstring)."""
        if not isinstance(event, dict) or event.get("status") not in (SUCCEEDED, FAILED, GAVE_UP):
            raise AirflowException(f"not an event of HuaweiCloudJobTrigger: {str(event)[:200]}")
        ref = event.get("ref")
        status = event["status"]
        if status == GAVE_UP:
            reason = event.get("reason")
            message = f"gave up on {ref} ({reason}): {event.get('message')}"
            if reason == GiveUpReason.TIMED_OUT:
                raise AirflowSensorTimeout(message)
            if reason in _FINAL_REASONS:
                raise AirflowFailException(message)
            raise AirflowException(message)
        if status == FAILED:
            raise AirflowFailException(
                f"{ref} failed: {event.get('fail_reason') or event.get('raw_status')}"
                + (f" (error code {event['error_code']})" if event.get("error_code") else "")
            )
        failed = event.get("failed_sub_jobs") or []
        if failed and self.fail_on_sub_job_failure:
            names = ", ".join(_sub_job_name(sub) for sub in failed)
            raise AirflowFailException(f"{ref} ended with failed sub-jobs: {names}")
        if event.get("import_has_failures") and self.fail_on_import_failures:
            raise AirflowFailException(f"{ref}: the import reported failed files")
        self.log.info("%s %s", ref, status)
        return event

    def poke(self, context: Any) -> PokeReturnValue:
        """One status query; done, with the payload as the XCom, once the job ended."""
        ref = ref_from_dict(self.job)
        payload = anyio.run(self._fetch, ref, self._target(ref))
        if payload is None:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, payload))

    async def _fetch(self, ref: JobRef, target: Target) -> dict[str, Any] | None:
        snapshot = await fetch_once(target, ref)  # the triggers' path, on this poke's loop
        if snapshot is None:
            now = time.monotonic()
            first = self._first_poke = self._first_poke or now
            if now - first < PollPolicy(**self.policy).not_found_grace:
                return None
            return not_found(ref)
        if not snapshot.terminal:
            return None
        return payload_of_snapshot(snapshot)


def _sub_job_name(sub: object) -> str:
    if isinstance(sub, dict):
        return f"{sub.get('ref')} ({sub.get('fail_reason')})"
    return str(sub)[:100]


def _policy_fields(policy: PollPolicy | Mapping[str, Any] | None) -> dict[str, Any]:
    if policy is None:
        return {}
    if isinstance(policy, PollPolicy):
        defaults = PollPolicy()
        names = [n for n in PollPolicy.__dataclass_fields__ if not n.startswith("_")]
        return {n: getattr(policy, n) for n in names if getattr(policy, n) != getattr(defaults, n)}
    return dict(policy)
