"""OpenTelemetry for jobwatch: a span per logical poll, its events, and metrics.

Imports ``opentelemetry-api`` only (the ``otel`` extra): nothing is recorded
unless the application configures an SDK (a ``TracerProvider``, a
``MeterProvider``), globally or passed here::

    from jobwatch.otel import JobwatchInstrumentor

    instrumentor = JobwatchInstrumentor()  # the global providers, or pass your own
    async with Watcher(client) as watcher:
        instrumentor.instrument(watcher)  # and every client its jobs are polled with
        ...

Spans.  ``jobwatch.poll`` (kind ``INTERNAL``), one per logical poll: the
request for one job, or the one request of a batch (engine jobs of one graph),
*with its retries and the waits between them*.  It is a root span (a watcher
polls for hours: one trace per poll), unless ``root_spans=False``; the HTTP
spans of ``HTTPXClientInstrumentor`` / ``AioHttpClientInstrumentor`` are its
children.  Attributes: ``jobwatch.job.kind`` (``evs``, ``ges``,
``ges-engine``), ``jobwatch.job.id`` (one job) or ``jobwatch.job.ids`` and
``jobwatch.job.count`` (a batch), ``server.address``,
``http.request.resend_count`` (the retries), ``jobwatch.requests`` (HTTP
requests sent), ``error.type`` and status ``ERROR`` when the poll failed for
every job, ``jobwatch.poll.cancelled`` when the watcher closed during it.
Events: ``jobwatch.retry`` (``jobwatch.retry.attempt``, ``jobwatch.retry.wait``
in seconds, ``error.type``, ``http.response.status_code``), ``jobwatch.transition``
(``jobwatch.job.id``, ``jobwatch.job.state``, ``jobwatch.job.previous_state``,
``jobwatch.job.parent``) and ``jobwatch.give_up`` (``jobwatch.job.id``,
``jobwatch.give_up.reason``, ``jobwatch.give_up.message``).

Metrics, with low-cardinality attributes only (never a job ID):
``jobwatch.jobs.watched`` and ``jobwatch.jobs.open`` (observed from
``Watcher.statistics()``), ``jobwatch.polls`` (``jobwatch.job.kind``,
``error.type`` when failed), ``jobwatch.poll.duration`` (s),
``jobwatch.requests`` and ``jobwatch.requests.saved`` (polls that rode on
another job's request), ``jobwatch.transitions`` (``jobwatch.job.kind``,
``jobwatch.job.state``), ``jobwatch.give_ups`` (``jobwatch.job.kind``,
``jobwatch.give_up.reason``), ``jobwatch.detection.lag`` (s, from a job's
``end_time`` to the moment its final state was seen), and per client
``jobwatch.client.retries`` (``error.type``), ``jobwatch.client.throttles``
and ``jobwatch.client.throttle.pause`` (s, the pause each throttling answer
imposed).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.util.types import AttributeValue

from jobwatch._client import Client, RequestLedger, counting
from jobwatch._events import Event, GaveUp, PollDetails, Transition
from jobwatch._exceptions import APIStatusError, RateLimitError
from jobwatch._kinds import kind_of
from jobwatch._poller import PollTrace
from jobwatch._refs import JobRef
from jobwatch._retry import RetryDetails
from jobwatch._version import __version__

if TYPE_CHECKING:
    from jobwatch._watcher import Watcher

__all__ = ["POLL_SPAN", "JobwatchInstrumentor", "instrument"]

#: The name of the span of one logical poll.
POLL_SPAN = "jobwatch.poll"

_Attributes = dict[str, AttributeValue]


class JobwatchInstrumentor:
    """Records the polls, events and retries of the watchers and clients given to it.

    Make one per process (its instruments are made once, on its meter) and call
    ``instrument`` on each watcher.  ``tracer_provider`` and ``meter_provider``
    default to the global ones (those ``opentelemetry.trace.set_tracer_provider``
    sets, even later).  ``root_spans``: True (the default) makes each poll span a
    trace of its own; False makes it a child of the span current where the
    watcher was entered (``wait_for`` inside a request of yours, say).
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        root_spans: bool = True,
    ) -> None:
        self._tracer = trace.get_tracer("jobwatch", __version__, tracer_provider)
        meter = metrics.get_meter("jobwatch", __version__, meter_provider)
        self._root = root_spans
        self._watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()
        self._clients: weakref.WeakSet[Client] = weakref.WeakSet()
        self._last_watched: dict[int, int] = {}
        self._retired_watched = 0
        meter.create_observable_counter(
            "jobwatch.jobs.watched",
            [self._observe_watched],
            unit="{job}",
            description="Watches started (a job watched again counts again).",
        )
        meter.create_observable_up_down_counter(
            "jobwatch.jobs.open",
            [self._observe_open],
            unit="{job}",
            description="Watches whose final event was not emitted yet.",
        )
        self._polls = meter.create_counter(
            "jobwatch.polls", unit="{poll}", description="Polls of a job (one per job per poll)."
        )
        self._duration = meter.create_histogram(
            "jobwatch.poll.duration",
            unit="s",
            description="Logical polls: one request for a job or a batch, retries included.",
        )
        self._requests = meter.create_counter(
            "jobwatch.requests", unit="{request}", description="HTTP requests sent by polls."
        )
        self._saved = meter.create_counter(
            "jobwatch.requests.saved",
            unit="{request}",
            description="Polls that rode on another job's request (engine jobs of one graph).",
        )
        self._transitions = meter.create_counter(
            "jobwatch.transitions", unit="{transition}", description="State transitions emitted."
        )
        self._give_ups = meter.create_counter(
            "jobwatch.give_ups", unit="{give_up}", description="Watches given up, by reason."
        )
        self._lag = meter.create_histogram(
            "jobwatch.detection.lag",
            unit="s",
            description="From a job's end_time to the poll that saw its final state.",
        )
        self._retries = meter.create_counter(
            "jobwatch.client.retries", unit="{retry}", description="Retries of a client's calls."
        )
        self._throttles = meter.create_counter(
            "jobwatch.client.throttles",
            unit="{throttle}",
            description="Throttling answers (HTTP 429, APIGW.0308) that were retried.",
        )
        self._pause = meter.create_histogram(
            "jobwatch.client.throttle.pause",
            unit="s",
            description="The pause a throttling answer imposed on every request of its client.",
        )

    # -- wiring -----------------------------------------------------------------------------

    def instrument(self, watcher: Watcher) -> None:
        """Record ``watcher``'s polls and events, and the retries of its clients.

        Its ``client``, and every client one of its jobs is polled with, is
        instrumented too (``instrument_client``).  Idempotent.
        """
        if watcher in self._watchers:
            return
        self._watchers.add(watcher)
        key = id(watcher)
        self._last_watched[key] = 0
        weakref.finalize(watcher, self._retire, key)
        if watcher.client is not None:  # (a pool's clients: as their jobs are polled)
            self.instrument_client(watcher.client)
        watcher._instrument(_Tracer(self), self._emitted)

    def uninstrument(self, watcher: Watcher) -> None:
        """Stop recording ``watcher``'s polls and events (its clients' retries go on)."""
        if watcher in self._watchers:
            watcher._instrument(None, None)

    def instrument_client(self, client: Client) -> None:
        """Record ``client``'s retries and throttling, composed with its ``on_retry``.

        The retry also becomes an event of the span current when it happens (a
        poll's, or yours around a ``client.fetch``).  Idempotent.
        """
        if client in self._clients:
            return
        self._clients.add(client)
        previous = client._on_retry

        def on_retry(details: RetryDetails) -> None:
            self._retried(details)
            if previous is not None:
                previous(details)

        client._on_retry = on_retry

    # -- what the hooks record --------------------------------------------------------------

    def _retried(self, details: RetryDetails) -> None:
        error = details.caused_by
        error_type = type(error).__name__
        self._retries.add(1, {"error.type": error_type})
        if isinstance(error, RateLimitError):
            self._throttles.add(1)
            self._pause.record(details.wait_for)
        attributes: _Attributes = {
            "jobwatch.retry.attempt": details.attempt,
            "jobwatch.retry.wait": details.wait_for,
            "error.type": error_type,
        }
        if isinstance(error, APIStatusError):
            attributes["http.response.status_code"] = error.status_code
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event("jobwatch.retry", attributes)

    def _emitted(self, event: Event) -> None:
        """Every event a watcher emits (the stream's tap), for the metrics."""
        kind = kind_of(event.ref).name
        if isinstance(event, GaveUp):
            self._give_ups.add(
                1, {"jobwatch.job.kind": kind, "jobwatch.give_up.reason": event.reason.value}
            )
            return
        state = event.state.value
        self._transitions.add(1, {"jobwatch.job.kind": kind, "jobwatch.job.state": state})
        end = event.snapshot.end_time
        if event.final and end is not None:
            lag = (event.observed_at - end).total_seconds()
            self._lag.record(
                max(lag, 0.0), {"jobwatch.job.kind": kind, "jobwatch.job.state": state}
            )

    def _observe_watched(self, options: CallbackOptions) -> Iterator[Observation]:
        total = self._retired_watched
        for watcher in list(self._watchers):
            watched = watcher.statistics().jobs_watched
            self._last_watched[id(watcher)] = watched
            total += watched
        yield Observation(total)

    def _observe_open(self, options: CallbackOptions) -> Iterator[Observation]:
        yield Observation(sum(w.statistics().jobs_open for w in list(self._watchers)))

    def _retire(self, key: int) -> None:
        """A watcher was collected: its count (as last read) stays in the total."""
        self._retired_watched += self._last_watched.pop(key, 0)


class _Tracer:
    """The watcher's ``PollTracer``: a ``_PollTrace`` per logical poll."""

    def __init__(self, owner: JobwatchInstrumentor) -> None:
        self._owner = owner
        self._empty = otel_context.Context()

    def poll(self, client: Client, refs: Sequence[JobRef]) -> PollTrace:
        owner = self._owner
        owner.instrument_client(client)
        parent = self._empty if owner._root else None
        return _PollTrace(owner, client, refs, parent)


class _PollTrace:
    """One logical poll: its span, and the requests it sent (a ledger of its own)."""

    __slots__ = ("_attributes", "_failed", "_ledger", "_owner", "_refs", "_span", "_started")

    def __init__(
        self,
        owner: JobwatchInstrumentor,
        client: Client,
        refs: Sequence[JobRef],
        parent: otel_context.Context | None,
    ) -> None:
        self._owner = owner
        self._refs = refs
        self._attributes: _Attributes = {"jobwatch.job.kind": kind_of(refs[0]).name}
        attributes: _Attributes = {**self._attributes, "server.address": _host(client)}
        if len(refs) == 1:
            attributes["jobwatch.job.id"] = str(refs[0])
        else:
            attributes["jobwatch.job.ids"] = [str(ref) for ref in refs]
            attributes["jobwatch.job.count"] = len(refs)
        self._span = owner._tracer.start_span(
            POLL_SPAN, context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        )
        self._ledger = RequestLedger()
        self._failed: list[str] = []
        self._started = time.perf_counter()

    def request(self) -> AbstractContextManager[object]:
        return self._active()

    @contextmanager
    def _active(self) -> Iterator[None]:
        with (
            trace.use_span(
                self._span,
                end_on_exit=False,
                record_exception=False,
                set_status_on_exception=False,
            ),
            counting(self._ledger),
        ):
            try:
                yield
            except BaseException:  # the watcher closing mid-request: the poll ends here
                self._span.set_attribute("jobwatch.poll.cancelled", True)
                self.end()
                raise

    def observed(self, events: Sequence[Event], details: PollDetails | None) -> None:
        owner, span = self._owner, self._span
        if details is not None:
            attributes = self._attributes
            if details.error is not None:
                error_type = type(details.error).__name__
                self._failed.append(error_type)
                attributes = {**attributes, "error.type": error_type}
            owner._polls.add(1, attributes)
        if not span.is_recording():
            return
        for event in events:
            described: _Attributes = {"jobwatch.job.id": str(event.ref)}
            if event.parent is not None:
                described["jobwatch.job.parent"] = str(event.parent)
            if isinstance(event, Transition):
                described["jobwatch.job.state"] = event.state.value
                if event.previous is not None:
                    described["jobwatch.job.previous_state"] = event.previous.value
                span.add_event("jobwatch.transition", described)
            else:
                described["jobwatch.give_up.reason"] = event.reason.value
                described["jobwatch.give_up.message"] = event.message
                span.add_event("jobwatch.give_up", described)

    def end(self) -> None:
        owner, span, ledger = self._owner, self._span, self._ledger
        attributes = self._attributes
        sent = ledger.requests
        if sent:
            owner._requests.add(sent, attributes)
        saved = max(len(self._refs) - max(sent, 1), 0) if len(self._refs) > 1 else 0
        if saved:
            owner._saved.add(saved, attributes)
        failed = self._failed
        if failed and len(failed) == len(self._refs):
            attributes = {**attributes, "error.type": failed[0]}
            span.set_attribute("error.type", failed[0])
            span.set_status(Status(StatusCode.ERROR))
        owner._duration.record(time.perf_counter() - self._started, attributes)
        span.set_attribute("http.request.resend_count", ledger.retries)
        span.set_attribute("jobwatch.requests", sent)
        span.end()


def _host(client: Client) -> str:
    return client.endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]


def instrument(
    watcher: Watcher,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    root_spans: bool = True,
) -> JobwatchInstrumentor:
    """Instrument one watcher with a new ``JobwatchInstrumentor``; returns it.

    For several watchers, make one instrumentor and call its ``instrument``
    on each: every instrumentor makes its own instruments.
    """
    instrumentor = JobwatchInstrumentor(
        tracer_provider=tracer_provider, meter_provider=meter_provider, root_spans=root_spans
    )
    instrumentor.instrument(watcher)
    return instrumentor
