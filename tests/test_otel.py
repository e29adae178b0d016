"""jobwatch.otel against the simulator: poll spans, their events, the metrics, and the
HTTP instrumentations of httpx and aiohttp composed with them (AK/SK still verifies)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from jobwatch import (
    AKSKAuth,
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    JobRef,
    PollPolicy,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch.otel import POLL_SPAN, JobwatchInstrumentor
from jobwatch.sim import Fault, SimAuth, Simulator, serve
from jobwatch.testing import wait_until

pytestmark = pytest.mark.anyio

P = "proj"
AK, SK = "AKIDSIM000000001", "sim-SECRET-key-do-not-print"
FAST = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=1.0)
RETRY = RetryPolicy(attempts=4, wait_initial=0.001, wait_max=0.002, retry_after_max=0.05)


class Otel:
    """An SDK of its own (not the global one): spans in memory, metrics on demand."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = JobwatchInstrumentor(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def polls(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name == POLL_SPAN]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, point) of every data point of metric ``name``."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found

    def total(self, name: str, **attributes: Any) -> float:
        """The sum of the points of ``name`` whose attributes include ``attributes``."""
        total = 0.0
        for found, point in self.points(name):
            if all(found.get(k) == v for k, v in attributes.items()):
                value: float = point.value if hasattr(point, "value") else point.sum
                total += value
        return total


@pytest.fixture
def otel() -> Iterator[Otel]:
    made = Otel()
    yield made
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


def client_for(sim: Simulator[Any], **kwargs: Any) -> Client:
    kwargs.setdefault("retry", RETRY)
    return Client("http://sim.test", P, transport=sim.transport(), **kwargs)


async def watch_all(
    otel: Otel, client: Client, refs: Sequence[JobRef], **kwargs: Any
) -> list[Transition | GaveUp]:
    kwargs.setdefault("policy", FAST)
    async with Watcher(client, **kwargs) as watcher:
        otel.instrumentor.instrument(watcher)
        watcher.watch_many(refs)
        with anyio.fail_after(10):
            return [event async for event in watcher.events()]


def attr(span: ReadableSpan, key: str) -> Any:
    """The attribute ``key`` of ``span`` (None when it has none)."""
    return (span.attributes or {}).get(key)


def events_of(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


async def test_a_poll_span_groups_its_retries_and_carries_the_events(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "RUNNING"), (0.5, "SUCCESS")])
    sim.add_fault(Fault("http_500", count=2))  # the first poll: two retries, then an answer
    async with client_for(sim) as client:
        events = await watch_all(otel, client, [EvsJob("j1")])
    assert [e.state.value for e in events if isinstance(e, Transition)] == ["running", "succeeded"]

    spans = otel.polls()
    first, last = spans[0], spans[-1]
    assert first.parent is None  # a trace of its own
    assert attr(first, "http.request.resend_count") == 2
    assert attr(first, "jobwatch.requests") == 3
    assert attr(first, "jobwatch.job.id") == "evs:j1"
    assert attr(first, "jobwatch.job.kind") == "evs"
    assert attr(first, "server.address") == "sim.test"
    retries = events_of(first, "jobwatch.retry")
    assert [r["jobwatch.retry.attempt"] for r in retries] == [1, 2]
    assert {r["error.type"] for r in retries} == {"ServerError"}
    assert {r["http.response.status_code"] for r in retries} == {500}
    assert events_of(first, "jobwatch.transition") == [
        {"jobwatch.job.id": "evs:j1", "jobwatch.job.state": "running"}
    ]
    assert events_of(last, "jobwatch.transition") == [
        {
            "jobwatch.job.id": "evs:j1",
            "jobwatch.job.state": "succeeded",
            "jobwatch.job.previous_state": "running",
        }
    ]
    assert all(attr(s, "http.request.resend_count") == 0 for s in spans[1:])
    # The span covers the retries: it starts before the first request, ends after the last.
    assert (first.end_time or 0) - (first.start_time or 0) > 0

    assert otel.total("jobwatch.polls") == len(spans)
    assert otel.total("jobwatch.requests") == len(sim.requests)
    assert otel.total("jobwatch.client.retries", **{"error.type": "ServerError"}) == 2
    assert otel.total("jobwatch.transitions", **{"jobwatch.job.state": "running"}) == 1
    assert otel.total("jobwatch.transitions", **{"jobwatch.job.state": "succeeded"}) == 1
    assert otel.total("jobwatch.jobs.watched") == 1
    assert otel.total("jobwatch.jobs.open") == 0
    assert otel.total("jobwatch.poll.duration") > 0
    for name in ("jobwatch.polls", "jobwatch.transitions", "jobwatch.poll.duration"):
        assert all("jobwatch.job.id" not in a for a, _ in otel.points(name))


async def test_throttling_is_counted_with_its_pause(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "SUCCESS")])
    sim.add_fault(Fault("throttle_429", count=1, retry_after=1))  # clamped to 50 ms
    async with client_for(sim) as client:
        await watch_all(otel, client, [EvsJob("j1")])
    assert otel.total("jobwatch.client.throttles") == 1
    ((_, pause),) = otel.points("jobwatch.client.throttle.pause")
    assert pause.count == 1
    assert 0.05 <= pause.sum <= 0.05 * 1.1  # the pause asked, with up to a tenth of jitter
    (span,) = otel.polls()
    assert attr(span, "http.request.resend_count") == 1
    (retry,) = events_of(span, "jobwatch.retry")
    assert retry["error.type"] == "RateLimitError"
    assert retry["http.response.status_code"] == 429


async def test_a_batch_is_one_span_and_counts_the_requests_it_saved(otel: Otel) -> None:
    sim = Simulator()
    count = 5
    for i in range(count):
        sim.add_engine_job(P, "g", f"e{i}", [(0, "running"), (0.5, "complete")])
    refs = [GesEngineJob("g", f"e{i}") for i in range(count)]
    async with client_for(sim) as client:
        await watch_all(otel, client, refs)
    spans = otel.polls()
    batches = [s for s in spans if attr(s, "jobwatch.job.count")]
    assert batches
    for span in batches:
        assert attr(span, "jobwatch.job.kind") == "ges-engine"
        assert len(list(attr(span, "jobwatch.job.ids"))) == attr(span, "jobwatch.job.count")
    lists = [r for r in sim.requests if r.api == "ges-engine"]
    assert otel.total("jobwatch.requests") == len(lists)
    assert otel.total("jobwatch.polls") - len(lists) == otel.total("jobwatch.requests.saved")
    assert otel.total("jobwatch.requests.saved") >= count  # at least one tick of 5, one request
    assert otel.total("jobwatch.transitions", **{"jobwatch.job.kind": "ges-engine"}) == 2 * count


async def test_give_ups_by_reason_in_a_poll_and_outside_one(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "running", [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0.05)
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        otel.instrumentor.instrument(watcher)
        watcher.watch_many([EvsJob("running"), EvsJob("never")])
        with anyio.fail_after(10):
            async for event in watcher.events():
                if isinstance(event, Transition):
                    watcher.unwatch(event.ref)  # a give-up outside any poll
    assert otel.total("jobwatch.give_ups", **{"jobwatch.give_up.reason": "not_found"}) == 1
    assert otel.total("jobwatch.give_ups", **{"jobwatch.give_up.reason": "removed"}) == 1
    (gave_up,) = [e for s in otel.polls() for e in events_of(s, "jobwatch.give_up")]
    assert gave_up["jobwatch.job.id"] == "evs:never"
    assert gave_up["jobwatch.give_up.reason"] == "not_found"
    failed = [s for s in otel.polls() if s.status.status_code is StatusCode.ERROR]
    assert failed
    assert all(attr(s, "error.type") == "JobNotFound" for s in failed)
    assert otel.total("jobwatch.polls", **{"error.type": "JobNotFound"}) == len(failed)


async def test_detection_lag_from_the_jobs_end_time(otel: Otel) -> None:
    sim = Simulator(epoch=datetime.now(UTC))
    sim.add_evs_job(P, "j1", [(0, "RUNNING"), (0.5, "SUCCESS")])
    async with client_for(sim) as client:
        await watch_all(otel, client, [EvsJob("j1")])
    ((attributes, lag),) = otel.points("jobwatch.detection.lag")
    assert attributes == {"jobwatch.job.kind": "evs", "jobwatch.job.state": "succeeded"}
    assert lag.count == 1
    assert 0 <= lag.sum < 5  # EVS times are whole seconds: the lag is up to a second more


async def test_nothing_happens_without_an_sdk() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "RUNNING"), (0.03, "SUCCESS")])
    sim.add_fault(Fault("http_500", count=1))
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        JobwatchInstrumentor().instrument(watcher)  # the API's no-op providers
        watcher.watch(EvsJob("j1"))
        with anyio.fail_after(10):
            snapshot = await watcher.wait(EvsJob("j1"))
    assert snapshot.state.value == "succeeded"


async def test_the_users_retry_hook_still_runs(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "SUCCESS")])
    sim.add_fault(Fault("http_500", count=1))
    told: list[int] = []
    async with client_for(sim, on_retry=lambda d: told.append(d.attempt)) as client:
        await watch_all(otel, client, [EvsJob("j1")])
    assert told == [1]
    assert otel.total("jobwatch.client.retries") == 1


# -- composing with the HTTP instrumentations --------------------------------------------------


def check_http_children(otel: Otel, sim: Simulator[Any], http_spans: list[ReadableSpan]) -> None:
    """Every HTTP span is a child of a poll span, every request carried its traceparent,
    and every signature verified with it."""
    polls = {s.context.span_id: s for s in otel.polls() if s.context is not None}
    assert http_spans
    assert len(http_spans) == len(sim.requests)
    for span in http_spans:
        assert span.parent is not None
        assert span.parent.span_id in polls
    retried = [s for s in polls.values() if attr(s, "jobwatch.requests") > 1]
    assert retried  # the retries' HTTP spans share one poll span
    sent = {r.headers["traceparent"].split("-")[2] for r in sim.requests}
    assert sent == {format(s.context.span_id, "016x") for s in http_spans if s.context}
    assert all(r.status_code in (200, 500) for r in sim.requests)  # no 401: signatures hold
    assert all("traceparent" not in r.headers["authorization"] for r in sim.requests)


def signed_sim() -> Simulator[Any]:
    sim = Simulator(auth=SimAuth(credentials={AK: SK}))
    sim.add_evs_job(P, "j1", [(0, "RUNNING"), (0.5, "SUCCESS")])
    sim.add_fault(Fault("http_500", count=1))
    return sim


async def test_httpx_instrumentor_spans_are_children_and_signatures_hold(
    otel: Otel, anyio_backend: str
) -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    instrumentor = instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        sim = signed_sim()
        with serve(sim) as url:
            client = Client(url, P, auth=AKSKAuth(AK, SK), retry=RETRY, fast=False)
            async with client:
                assert client.transport_name == "httpx"
                await watch_all(otel, client, [EvsJob("j1")])
    finally:
        instrumentor.uninstrument()
    http_spans = [s for s in otel.spans.get_finished_spans() if s.name == "GET"]
    check_http_children(otel, sim, http_spans)


async def test_aiohttp_instrumentor_spans_are_children_and_signatures_hold(
    otel: Otel, anyio_backend: str
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    pytest.importorskip("aiohttp")
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = instrumentation.AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=otel.tracer_provider)
    try:
        sim = signed_sim()
        with serve(sim) as url:
            client = Client(url, P, auth=AKSKAuth(AK, SK), retry=RETRY, fast=True)
            async with client:
                await watch_all(otel, client, [EvsJob("j1")])
                assert client.transport_name == "aiohttp"
    finally:
        instrumentor.uninstrument()
    http_spans = [s for s in otel.spans.get_finished_spans() if s.name == "GET"]
    check_http_children(otel, sim, http_spans)


async def test_root_spans_false_nests_the_polls_under_the_current_span(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "SUCCESS")])
    nested = JobwatchInstrumentor(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, root_spans=False
    )
    tracer = otel.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer:
        async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
            nested.instrument(watcher)
            with anyio.fail_after(10):
                await watcher.wait(EvsJob("j1"))
    (poll,) = otel.polls()
    assert poll.parent is not None
    assert poll.parent.span_id == outer.get_span_context().span_id


async def test_uninstrument_stops_the_spans(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "SUCCESS")])
    sim.add_evs_job(P, "j2", [(0, "SUCCESS")])
    async with client_for(sim) as client, Watcher(client, policy=FAST) as watcher:
        otel.instrumentor.instrument(watcher)
        otel.instrumentor.instrument(watcher)  # idempotent
        with anyio.fail_after(10):
            await watcher.wait(EvsJob("j1"))
        otel.instrumentor.uninstrument(watcher)
        with anyio.fail_after(10):
            await watcher.wait(EvsJob("j2"))
    (poll,) = otel.polls()
    assert attr(poll, "jobwatch.job.id") == "evs:j1"
    assert otel.total("jobwatch.transitions") == 1


async def test_a_poll_cut_short_by_the_watcher_closing_still_ends_its_span(otel: Otel) -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "RUNNING")])
    sim.add_fault(Fault("latency", latency=30))
    async with client_for(sim) as client:
        async with Watcher(client, policy=FAST) as watcher:
            otel.instrumentor.instrument(watcher)
            watcher.watch(EvsJob("j1"))
            await wait_until(lambda: watcher.statistics().requests, what="a request sent")
        (poll,) = otel.polls()
    assert attr(poll, "jobwatch.poll.cancelled") is True
    assert attr(poll, "jobwatch.requests") == 1
