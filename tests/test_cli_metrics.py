"""``jobwatch watch --metrics-port``: Prometheus scrapes the run's counters while it runs."""

from __future__ import annotations

import re
import socket
import sys

import anyio
import httpx
import pytest
from anyio.streams.text import TextReceiveStream

from jobwatch.sim import ManualClock, Simulator
from jobwatch.testing import simulated_cloud, wait_for_requests

pytest.importorskip("prometheus_client")

P = "proj-metrics"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def command(endpoint: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "jobwatch", "watch", "--api", "evs", "--endpoint", endpoint,
        "--project-id", P, "--json", *extra, "job-1",
    ]  # fmt: skip


@pytest.mark.anyio
async def test_the_counters_are_scraped_while_the_run_lasts() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "job-1", [(0, "RUNNING"), (5, "SUCCESS")])
    async with (
        simulated_cloud(sim, socket=True, project_id=P) as cloud,
        await anyio.open_process(command(cloud.base_url, "--metrics-port", "0")) as proc,
    ):
        assert proc.stderr is not None
        url = None
        with anyio.fail_after(20):
            async for chunk in TextReceiveStream(proc.stderr):
                found = re.search(r"metrics on (http://\S+/metrics)", chunk)
                if found:
                    url = found[1]
                    break
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        await wait_for_requests(sim, job="job-1", count=2, timeout=20)
        async with httpx.AsyncClient() as http:
            page = (await http.get(url)).text
        polls = re.search(r'^jobwatch_polls_total\{watcher="watch"\} (\S+)$', page, re.M)
        assert polls is not None, page
        assert float(polls[1]) >= 2
        assert re.search(r'^jobwatch_jobs_open\{watcher="watch"\} 1\.0$', page, re.M), page
        assert re.search(r'^jobwatch_client_requests_total\{client="watch"\} \S+$', page, re.M)
        sim.clock.advance(10)
        with anyio.fail_after(20):
            assert await proc.wait() == 0
    with socket.socket() as probe:  # the server went with the run
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.anyio
async def test_a_port_in_use_is_a_usage_error_before_any_request() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "job-1", [(0, "RUNNING")])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with simulated_cloud(sim, socket=True, project_id=P) as cloud:
            done = await anyio.run_process(
                command(cloud.base_url, "--metrics-port", str(port)), check=False
            )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert sim.requests == []
