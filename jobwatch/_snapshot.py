"""The normalised snapshot of a job, the same for every API."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from jobwatch._refs import JobRef

__all__ = ["ImportDetail", "ImportFile", "JobSnapshot", "JobState"]

_PENDING_PAYMENT = "PENDING_PAYMENT"
"""The raw status of an ECS/BMS job whose yearly/monthly order is not paid (ECS API
page ecs_02_0901): ``pending`` to jobwatch, and it never changes if the order is
cancelled (the job is deleted 14 days later)."""


class JobState(enum.StrEnum):
    """A job's state, normalised across the APIs.

    ``unknown`` stands for a status jobwatch does not recognise: it is not
    terminal, so a watch goes on until the job reports a known final state
    (or a deadline ends it).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        """True for ``succeeded`` and ``failed``: the job will not change again."""
        return self in (JobState.SUCCEEDED, JobState.FAILED)


ImportFileStatus = Literal["success", "failed", "partFailed"]
ImportFileKind = Literal["schema", "edges", "vertices"]


@dataclass(frozen=True, slots=True)
class ImportFile:
    """One file of a GES graph import, as ``jobDetail`` reports it.

    Line counts are None where GES did not return them (it sends -1).
    ``status`` is kept as sent; it is ``success``, ``failed`` or ``partFailed``.
    """

    kind: ImportFileKind
    path: str | None
    status: str | None
    cause: str | None = None
    log: str | None = None
    total_lines: int | None = None
    failed_lines: int | None = None
    successful_lines: int | None = None

    @property
    def ok(self) -> bool:
        """True when the file was imported completely."""
        return self.status == "success"


@dataclass(frozen=True, slots=True)
class ImportDetail:
    """The per-file detail of a GES ``ImportGraph`` job."""

    schema: tuple[ImportFile, ...] = ()
    edges: tuple[ImportFile, ...] = ()
    vertices: tuple[ImportFile, ...] = ()

    def __iter__(self) -> Iterator[ImportFile]:
        yield from self.schema
        yield from self.edges
        yield from self.vertices

    @property
    def problems(self) -> tuple[ImportFile, ...]:
        """Files that failed or partly failed (``status`` other than ``success``)."""
        return tuple(f for f in self if not f.ok)

    @property
    def has_failures(self) -> bool:
        """True when any file failed or partly failed, whatever the job's own status."""
        return any(not f.ok for f in self)


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """What one status query said about one job, normalised.

    ``raw_status`` is the status exactly as the API sent it and ``raw`` the
    JSON object the snapshot was read from (the job's own object for
    sub-jobs and engine list entries).  Times are timezone-aware UTC.
    """

    ref: JobRef
    state: JobState
    raw_status: str | None
    job_type: str | None = None
    job_name: str | None = None
    begin_time: datetime | None = None
    end_time: datetime | None = None
    fail_reason: str | None = None
    error_code: str | None = None
    progress: float | None = None
    related_graph: str | None = None
    import_detail: ImportDetail | None = None
    entities: Mapping[str, Any] | None = None
    request: Mapping[str, Any] | None = None
    sub_jobs: tuple[JobSnapshot, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        """True when the job has ended (succeeded or failed)."""
        return self.state.terminal

    @property
    def awaiting_payment(self) -> bool:
        """True when the raw status is ``PENDING_PAYMENT`` (ECS, BMS): the job waits
        for its yearly/monthly order to be paid, and will not move until it is.

        Its ``state`` is ``pending``; ``PollPolicy.pending_payment_timeout`` bounds
        how long a watcher waits for the payment (``GaveUp`` reason ``pending_payment``).
        """
        return self.raw_status is not None and self.raw_status.upper() == _PENDING_PAYMENT

    @property
    def import_has_failures(self) -> bool:
        """True when a GES import reported failed or partly failed files.

        GES may say ``success`` for the job while some files failed: check this
        too before trusting an import.
        """
        return self.import_detail is not None and self.import_detail.has_failures

    def walk(self) -> Iterator[JobSnapshot]:
        """This snapshot, then every sub-job at any depth (depth first, in order)."""
        stack: list[JobSnapshot] = [self]
        while stack:
            snap = stack.pop()
            yield snap
            stack.extend(reversed(snap.sub_jobs))

    @property
    def failed_sub_jobs(self) -> tuple[JobSnapshot, ...]:
        """Sub-jobs at any depth whose state is ``failed``."""
        return tuple(s for s in self.walk() if s is not self and s.state is JobState.FAILED)
