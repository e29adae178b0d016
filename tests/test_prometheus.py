"""jobwatch.prometheus: the collector read at scrape time, through generate_latest."""

from __future__ import annotations

import anyio
import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobwatch import Client, EvsJob, GesEngineJob, JobRef, PollPolicy, RetryPolicy, Watcher
from jobwatch.prometheus import JobwatchCollector, register
from jobwatch.sim import Fault, Simulator

pytestmark = pytest.mark.anyio

P = "proj"
FAST = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
RETRY = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by (name, labels)."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_an_empty_collector_exposes_its_families_without_samples() -> None:
    registry = CollectorRegistry()
    register(registry)
    text = generate_latest(registry).decode()
    assert "# TYPE jobwatch_polls_total counter" in text
    assert "# TYPE jobwatch_jobs_open gauge" in text
    assert "# TYPE jobwatch_client_requests_total counter" in text
    assert scrape(registry) == {}


def test_registering_twice_is_refused() -> None:
    registry = CollectorRegistry()
    register(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(JobwatchCollector())


async def test_a_scrape_reads_the_statistics_now() -> None:
    sim = Simulator()
    sim.add_evs_job(P, "j1", [(0, "RUNNING"), (0.5, "SUCCESS")])
    for i in range(3):
        sim.add_engine_job(P, "g", f"e{i}", [(0, "running"), (0.5, "complete")])
    sim.add_fault(Fault("http_500", count=1))
    registry = CollectorRegistry()
    client = Client("http://sim.test", P, transport=sim.transport(), retry=RETRY)
    async with client, Watcher(client, policy=FAST) as watcher:
        watchers = {"main": watcher}
        register(registry, watchers=watchers, clients={"sim": client})
        refs: list[JobRef] = [EvsJob("j1"), *(GesEngineJob("g", f"e{i}") for i in range(3))]
        before = scrape(registry)
        watcher.watch_many(refs)
        watched = scrape(registry)  # before any poll
        with anyio.fail_after(5):
            await watcher.wait_all(refs)
        stats, client_stats = watcher.statistics(), client.statistics()
        samples = scrape(registry)
        second = Watcher(client, policy=FAST)
        watchers["second"] = second  # a mapping added to later is followed
        followed = scrape(registry)
    main = (("watcher", "main"),)
    assert before[("jobwatch_jobs_watched_total", main)] == 0
    assert watched[("jobwatch_jobs_watched_total", main)] == 4
    assert watched[("jobwatch_jobs_open", main)] == 4
    assert watched[("jobwatch_polls_total", main)] == 0
    assert samples[("jobwatch_jobs_watched_total", main)] == stats.jobs_watched == 4
    assert samples[("jobwatch_jobs_open", main)] == stats.jobs_open == 0
    assert samples[("jobwatch_polls_total", main)] == stats.polls
    assert samples[("jobwatch_requests_total", main)] == stats.requests == len(sim.requests)
    assert samples[("jobwatch_retries_total", main)] == stats.retries == 1
    assert samples[("jobwatch_errors_total", main)] == 0
    assert samples[("jobwatch_events_total", main)] == stats.events == 8
    assert samples[("jobwatch_requests_saved_total", main)] == stats.requests_saved > 0
    by_client = (("client", "sim"),)
    assert samples[("jobwatch_client_requests_total", by_client)] == client_stats.requests
    assert samples[("jobwatch_client_retries_total", by_client)] == 1
    assert samples[("jobwatch_client_errors_total", by_client)] == 0
    assert followed[("jobwatch_jobs_watched_total", (("watcher", "second"),))] == 0
    assert not [key for key in samples if "job_id" in dict(key[1])]
