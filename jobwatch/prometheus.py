"""A Prometheus collector of watchers' and clients' counters (the ``prometheus`` extra).

``JobwatchCollector`` reads ``Watcher.statistics()`` and ``Client.statistics()``
at scrape time: nothing is counted twice and nothing runs between scrapes.
Register it with the registry you serve::

    from prometheus_client import REGISTRY, start_http_server
    from jobwatch.prometheus import JobwatchCollector

    REGISTRY.register(JobwatchCollector(watchers={"main": watcher}, clients={"evs": client}))
    start_http_server(9464)

The names are the mappings' keys, as the ``watcher`` and ``client`` labels: a
few, chosen by you (never a job ID).  The mappings are read at every scrape,
so a dict you add to later is followed.  The families:

- per watcher: ``jobwatch_jobs_watched_total``, ``jobwatch_jobs_open`` (a
  gauge), ``jobwatch_polls_total``, ``jobwatch_requests_total``,
  ``jobwatch_retries_total``, ``jobwatch_errors_total``, ``jobwatch_events_total``
  and ``jobwatch_requests_saved_total`` (see ``WatcherStatistics``);
- per client: ``jobwatch_client_requests_total``, ``jobwatch_client_retries_total``
  and ``jobwatch_client_errors_total`` (see ``ClientStatistics``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from jobwatch._client import Client, ClientStatistics
    from jobwatch._watcher import Watcher, WatcherStatistics

__all__ = ["JobwatchCollector", "register"]

_Read = Callable[["WatcherStatistics"], int]
_ReadClient = Callable[["ClientStatistics"], int]

#: (name, help, counter?, read) of the per-watcher families (names without ``_total``).
_WATCHER: tuple[tuple[str, str, bool, _Read], ...] = (
    ("jobwatch_jobs_watched", "Watches started.", True, lambda s: s.jobs_watched),
    ("jobwatch_jobs_open", "Watches not ended yet.", False, lambda s: s.jobs_open),
    ("jobwatch_polls", "Polls of a job (one per job per poll).", True, lambda s: s.polls),
    ("jobwatch_requests", "HTTP requests sent by the watcher's polls.", True, lambda s: s.requests),
    ("jobwatch_retries", "Retries made by the watcher's polls.", True, lambda s: s.retries),
    ("jobwatch_errors", "Polls' calls that failed for good.", True, lambda s: s.errors),
    ("jobwatch_events", "Events emitted (transitions and give-ups).", True, lambda s: s.events),
    (
        "jobwatch_requests_saved",
        "Polls that rode on another job's request (engine jobs of one graph).",
        True,
        lambda s: s.requests_saved,
    ),
)

_CLIENT: tuple[tuple[str, str, _ReadClient], ...] = (
    ("jobwatch_client_requests", "HTTP requests sent by the client.", lambda s: s.requests),
    ("jobwatch_client_retries", "Retries made by the client.", lambda s: s.retries),
    ("jobwatch_client_errors", "Client calls that failed for good.", lambda s: s.errors),
)


# Collector is Any where prometheus-client is not installed (mypy then cannot see it).
class JobwatchCollector(Collector):  # type: ignore[misc, unused-ignore]
    """Yields the counters of ``watchers`` and ``clients`` (name to object) at each scrape."""

    def __init__(
        self,
        watchers: Mapping[str, Watcher] | None = None,
        clients: Mapping[str, Client] | None = None,
    ) -> None:
        self.watchers: Mapping[str, Watcher] = watchers if watchers is not None else {}
        self.clients: Mapping[str, Client] = clients if clients is not None else {}

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (what the registry checks names against)."""
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        """The families with a sample per watcher and per client, read now."""
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        watchers = [(n, w.statistics()) for n, w in self.watchers.items()] if with_samples else []
        for name, documentation, counter, read in _WATCHER:
            family: CounterMetricFamily | GaugeMetricFamily
            if counter:
                family = CounterMetricFamily(name, documentation, labels=["watcher"])
            else:
                family = GaugeMetricFamily(name, documentation, labels=["watcher"])
            for label, stats in watchers:
                family.add_metric([label], read(stats))
            yield family
        clients = [(n, c.statistics()) for n, c in self.clients.items()] if with_samples else []
        for name, documentation, read_client in _CLIENT:
            counted = CounterMetricFamily(name, documentation, labels=["client"])
            for label, client_stats in clients:
                counted.add_metric([label], read_client(client_stats))
            yield counted


def register(
    registry: CollectorRegistry,
    *,
    watchers: Mapping[str, Watcher] | None = None,
    clients: Mapping[str, Client] | None = None,
) -> JobwatchCollector:
    """Make a ``JobwatchCollector`` and register it with ``registry``; returns it
    (``registry.unregister(collector)`` takes it off)."""
    collector = JobwatchCollector(watchers, clients)
    registry.register(collector)
    return collector
