"""``jobwatch watch --metrics-port``: the run's counters for Prometheus to scrape.

A ``jobwatch.prometheus.JobwatchCollector`` on a registry of its own, served by
prometheus-client's HTTP server (a thread) at ``http://HOST:PORT/metrics`` for
as long as the run lasts.  The collector reads the watcher's and the client's
``statistics()`` at each scrape: the watch itself does nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jobwatch._cli._errors import CliError, echo

if TYPE_CHECKING:
    from jobwatch._client import Client
    from jobwatch._watcher import Watcher

__all__ = ["Exposed", "serve_metrics"]


class Exposed:
    """The watchers and clients the collector reads, filled in as the run makes them."""

    def __init__(self) -> None:
        self.watchers: dict[str, Watcher] = {}
        self.clients: dict[str, Client] = {}


@contextmanager
def serve_metrics(host: str, port: int | None) -> Iterator[Exposed | None]:
    """Serve the metrics while the block runs (None, and nothing served, without a port).

    A missing ``prometheus`` extra, or an address that cannot be bound, is a usage
    error, found before any request.
    """
    if port is None:
        yield None
        return
    try:
        from prometheus_client import CollectorRegistry, start_http_server

        from jobwatch.prometheus import register
    except ImportError:
        raise CliError(
            "--metrics-port needs prometheus-client: pip install 'jobwatch[prometheus]'"
        ) from None
    exposed = Exposed()
    registry = CollectorRegistry()
    register(registry, watchers=exposed.watchers, clients=exposed.clients)
    try:
        served: Any = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or exc
        raise CliError(f"--metrics-port: cannot listen on {host}:{port}: {reason}") from None
    server = served[0] if isinstance(served, tuple) else None
    bound = server.server_port if server is not None else port
    shown_host = f"[{host}]" if ":" in host else host  # an IPv6 address, in a URL
    echo(f"jobwatch: metrics on http://{shown_host}:{bound}/metrics", err=True)
    try:
        yield exposed
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
