"""What the CLI knows of a run: every job and sub-job, outcomes, exit status, summary."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobwatch import (
    Event,
    GaveUp,
    GiveUpReason,
    JobRef,
    JobState,
    Transition,
)
from jobwatch._apis import api_of as word_of
from jobwatch._apis import graph_of as graph_in
from jobwatch._cli._errors import EXIT_FAILED, EXIT_GAVE_UP, EXIT_OK
from jobwatch._cli._summary import Summary
from jobwatch._cli._trouble import Trouble

__all__ = ["Node", "Run", "api_of", "graph_of", "import_note", "label", "reason_name"]


def api_of(ref: JobRef) -> str:
    """The ``--api`` word of a job reference: ``evs``, ``ecs``, ``cce``, ``ges-v1``..."""
    return word_of(ref)


def graph_of(ref: JobRef) -> str | None:
    """The graph ID (``ges-v1``, ``ges-v2``) or graph name (``ges-engine``); None for others."""
    return graph_in(ref)


def reason_name(reason: GiveUpReason) -> str:
    """The CLI's name of a give-up reason (``removed`` cannot happen here: ``error``)."""
    return GiveUpReason.ERROR.value if reason is GiveUpReason.REMOVED else reason.value


@dataclass(slots=True)
class Node:
    """One job or sub-job as the CLI shows it."""

    ref: JobRef
    parent: JobRef | None
    depth: int
    started: float
    state: JobState | None = None
    raw_status: str | None = None
    gave_up: str | None = None
    detail: str | None = None  # fail reason or give-up message
    ended: float | None = None
    import_failures: int = 0  # GES import files that failed or partly failed
    failed_subs: bool = False
    children: list[JobRef] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """True once the job reached a final state or was given up."""
        return self.ended is not None

    @property
    def failed(self) -> bool:
        """True when the job itself failed."""
        return self.state is JobState.FAILED


class Run:
    """Every job and sub-job of one run, updated event by event."""

    def __init__(self, refs: Sequence[JobRef]) -> None:
        self.started = time.monotonic()
        self.trouble = Trouble()
        self.nodes: dict[JobRef, Node] = {}
        self.roots: list[JobRef] = list(refs)
        for ref in self.roots:
            self.nodes[ref] = Node(ref, None, 0, self.started)

    def elapsed(self, node: Node | None = None) -> float:
        """Seconds since the run (or ``node``) started, up to its end."""
        if node is None:
            return time.monotonic() - self.started
        return (node.ended if node.ended is not None else time.monotonic()) - node.started

    def apply(self, event: Event) -> Node:
        """Record ``event``; return the node it concerns."""
        node = self.nodes.get(event.ref)
        if node is None:
            parent = self.nodes.get(event.parent) if event.parent is not None else None
            depth = parent.depth + 1 if parent is not None else 0
            node = self.nodes[event.ref] = Node(event.ref, event.parent, depth, time.monotonic())
            if parent is not None:
                parent.children.append(event.ref)
            else:
                self.roots.append(event.ref)
        if isinstance(event, Transition):
            snapshot = event.snapshot
            node.state = event.state
            node.raw_status = snapshot.raw_status
            if event.final:
                node.ended = time.monotonic()
                node.detail = snapshot.fail_reason
                detail = snapshot.import_detail
                node.import_failures = len(detail.problems) if detail is not None else 0
                node.failed_subs = bool(event.failed_sub_jobs)
        else:
            node.gave_up = reason_name(event.reason)
            node.detail = event.message
            node.ended = time.monotonic()
        return node

    def restore(
        self,
        ref: JobRef,
        parent: JobRef | None,
        *,
        state: JobState | None,
        raw_status: str | None,
        gave_up: str | None,
        detail: str | None,
        failed_subs: bool,
        import_failures: int,
    ) -> None:
        """Put back a job or sub-job that ended in an earlier run (``--state``)."""
        node = self.nodes.get(ref)
        if node is None:
            parent_node = self.nodes.get(parent) if parent is not None else None
            depth = parent_node.depth + 1 if parent_node is not None else 0
            node = self.nodes[ref] = Node(ref, parent, depth, time.monotonic())
            if parent_node is not None:
                parent_node.children.append(ref)
            elif parent is None:
                self.roots.append(ref)
        node.state, node.raw_status, node.gave_up, node.detail = state, raw_status, gave_up, detail
        node.failed_subs, node.import_failures = failed_subs, import_failures
        node.ended = node.started

    def expire(self, message: str) -> list[GaveUp]:
        """Give up, as ``timeout``, on every job still open (the run's safety deadline)."""
        now = datetime.now(UTC)
        events = [
            GaveUp(node.ref, node.parent, GiveUpReason.TIMED_OUT, message, now)
            for node in self.walk()
            if not node.done
        ]
        for event in events:
            self.apply(event)
        return events

    def walk(self) -> Iterator[Node]:
        """Every node, each job followed by its sub-jobs (depth first)."""
        stack = [self.nodes[ref] for ref in reversed(self.roots)]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(self.nodes[ref] for ref in reversed(node.children))

    def progress(self, node: Node) -> str:
        """Sub-job progress at any depth, e.g. ``3/5 done, 1 failed``; empty without sub-jobs."""
        stack = list(node.children)
        total = done = failed = gave_up = 0
        while stack:
            sub = self.nodes[stack.pop()]
            stack.extend(sub.children)
            total += 1
            done += sub.done
            failed += sub.state is JobState.FAILED
            gave_up += sub.gave_up is not None
        if not total:
            return ""
        text = f"{done}/{total} done"
        if failed:
            text += f", {failed} failed"
        if gave_up:
            text += f", {gave_up} gave up"
        return text

    def exit_status(self) -> int:
        """1 if any job or sub-job failed, else 3 if any was given up, else 0."""
        nodes = list(self.nodes.values())
        if any(node.failed or node.failed_subs for node in nodes):
            return EXIT_FAILED
        if any(node.gave_up is not None or not node.done for node in nodes):
            return EXIT_GAVE_UP
        return EXIT_OK

    def summary(
        self,
        *,
        polls: int,
        requests: int,
        retries: int,
        rate: float | None = None,
        paused: float = 0.0,
    ) -> Summary:
        """The numbers of the run so far (``rate`` and ``paused``: the client's budget)."""
        elapsed = self.elapsed()
        outcomes: Counter[str] = Counter()
        sub_outcomes: Counter[str] = Counter()
        problems: list[str] = []
        for node in self.walk():
            counter = outcomes if node.parent is None else sub_outcomes
            counter[_outcome(node)] += 1
            if node.failed or node.gave_up is not None or node.import_failures:
                problems.append(_problem(node))
        roots = [self.nodes[ref] for ref in self.roots]
        return Summary(
            jobs=len(roots),
            sub_jobs=len(self.nodes) - len(roots),
            outcomes=dict(outcomes),
            sub_outcomes=dict(sub_outcomes),
            imports_with_failed_files=sum(node.import_failures > 0 for node in roots),
            batches_with_failed_sub_jobs=sum(node.failed_subs for node in roots),
            polls=polls,
            requests=requests,
            retries=retries,
            naive_requests=int(len(roots) * elapsed),
            elapsed=elapsed,
            problems=tuple(problems),
            apis=frozenset(api_of(ref) for ref in self.roots),
            throttled=self.trouble.throttled,
            paused=max(self.trouble.paused, paused),
            rate=rate,
            transport_errors=dict(self.trouble.transport),
        )


def _outcome(node: Node) -> str:
    if node.gave_up is not None:
        return f"gave up: {node.gave_up}"
    if node.state is None:
        return "open"
    return node.state.value if node.done else "open"


def _problem(node: Node) -> str:
    where = f" (in {node.parent})" if node.parent is not None else ""
    if node.gave_up is not None:
        what = f"gave up ({node.gave_up})"
    elif node.failed:
        what = "failed"
    else:
        what = f"{node.state}, {import_note(node)}"
    detail = f": {node.detail}" if node.detail else ""
    return f"{node.ref}{where}: {what}{detail}"


def import_note(node: Node) -> str:
    """``N import file(s) failed or partly failed``; empty when none did."""
    count = node.import_failures
    return f"{count} import file(s) failed or partly failed" if count else ""


def label(node: Node) -> str:
    """The state word shown for a job: its state, ``gave up (reason)`` or ``not seen``."""
    if node.gave_up is not None:
        return f"gave up ({node.gave_up})"
    return node.state.value if node.state is not None else "not seen"
