"""jobwatch.testing: the simulated cloud, the waiting helpers and the pytest fixtures."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import jobwatch
from jobwatch import (
    AuthenticationError,
    Client,
    EvsJob,
    GaveUp,
    GesEngineJob,
    GesJob,
    JobState,
    PollPolicy,
    TokenAuth,
    Transition,
    Watcher,
)
from jobwatch.sim import ManualClock, MonotonicClock, Simulator
from jobwatch.testing import (
    DEFAULT_PROJECT_ID,
    FAST_POLL,
    FAST_RETRY,
    IN_PROCESS_URL,
    SimulatedCloud,
    simulated_cloud,
    wait_for_requests,
    wait_until,
)

# Exactly what a user's conftest.py says (here in the module: tests/conftest.py is shared).
pytest_plugins = ["pytester", "jobwatch.testing"]

pytestmark = pytest.mark.anyio

SCENARIO: dict[str, Any] = {
    "clock": "manual",
    "evs_jobs": [
        {
            "project_id": "proj-a",
            "job_id": "evs-1",
            "timeline": [[0, "INIT"], [1, "RUNNING"], [2, "SUCCESS"]],
        }
    ],
    "ges_jobs": [
        {
            "project_id": "proj-a",
            "graph_id": "g1",
            "job_id": "imp-1",
            "timeline": [[0, "pending"], [2, "success"]],
        }
    ],
    "engine_jobs": [
        {
            "project_id": "proj-a",
            "graph_name": "movies",
            "job_id": "eng-1",
            "timeline": [[0, "running"], [2, "complete"]],
        }
    ],
}


async def closed(client: Client) -> bool:
    """True when ``client`` was closed (httpx refuses to send on a closed client)."""
    try:
        await client.fetch(EvsJob("anything"))
    except RuntimeError as exc:
        return "closed" in str(exc)
    return False


async def refuses_connections(base_url: str) -> bool:
    url = httpx.URL(base_url)
    assert url.port is not None
    try:
        stream = await anyio.connect_tcp(url.host, url.port)
    except OSError:
        return True
    await stream.aclose()
    return False


ENGINE_JOB = {"project_id": "p", "graph_name": "g", "job_id": "e1", "timeline": [[0, "running"]]}


# -- simulated_cloud ------------------------------------------------------------------------


async def test_in_process_from_a_scenario_mapping() -> None:
    async with simulated_cloud(SCENARIO) as cloud:
        assert cloud.project_id == "proj-a"  # the scenario's only project
        assert cloud.base_url == IN_PROCESS_URL
        assert cloud.socket is False
        assert cloud.client.project_id == "proj-a"
        assert cloud.client.retry == FAST_RETRY
        first = await cloud.client.fetch(EvsJob("evs-1"))
        assert (first.state, first.raw_status) == (JobState.PENDING, "INIT")
        cloud.manual_clock.advance(2)
        snapshots = await cloud.client.fetch_many(
            [EvsJob("evs-1"), GesJob("g1", "imp-1", "v2"), GesEngineJob("movies", "eng-1")]
        )
        assert [s.state for s in snapshots if isinstance(s, jobwatch.JobSnapshot)] == [
            JobState.SUCCEEDED
        ] * 3
        assert cloud.clock is cloud.simulator.clock
        assert len(cloud.simulator.requests) == 4
        client = cloud.client
    assert await closed(client)


async def test_from_a_json_file_with_clock_override(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    data = {key: value for key, value in SCENARIO.items() if key != "clock"}
    path.write_text(json.dumps(data), encoding="utf-8")
    async with simulated_cloud(path) as cloud:  # the file's default clock: monotonic
        assert isinstance(cloud.clock, MonotonicClock)
        with pytest.raises(TypeError, match="not a ManualClock"):
            _ = cloud.manual_clock
        assert (await cloud.client.fetch(EvsJob("evs-1"))).raw_status == "INIT"
    clock = ManualClock()
    async with simulated_cloud(str(path), clock=clock) as cloud:
        assert cloud.manual_clock is clock
        clock.advance(2)
        assert (await cloud.client.fetch(EvsJob("evs-1"))).state is JobState.SUCCEEDED


async def test_from_a_simulator_and_the_defaults() -> None:
    sim = Simulator(clock=ManualClock())
    async with simulated_cloud(sim) as cloud:
        assert cloud.simulator is sim
        assert cloud.project_id == DEFAULT_PROJECT_ID  # no jobs: the default
        sim.add_evs_job(DEFAULT_PROJECT_ID, "late", [(0, "RUNNING")])  # added while running
        assert (await cloud.client.fetch(EvsJob("late"))).state is JobState.RUNNING
        # another client to the same simulator, e.g. for another project
        async with cloud.new_client(project_id="other") as other:
            with pytest.raises(jobwatch.JobNotFound):
                await other.fetch(EvsJob("late"))
        assert sim.requests[-1].path == "/v1/other/jobs/late"
    async with simulated_cloud() as empty:
        assert isinstance(empty.clock, MonotonicClock)
        assert empty.project_id == DEFAULT_PROJECT_ID


async def test_bad_arguments() -> None:
    two = Simulator()
    two.add_evs_job("p1", "a", [(0, "RUNNING")])
    two.add_graph("p2", "g")
    with pytest.raises(ValueError, match=r"several projects \['p1', 'p2'\]: pass project_id"):
        simulated_cloud(two)
    async with simulated_cloud(two, project_id="p2") as cloud:
        assert cloud.project_id == "p2"
    with pytest.raises(ValueError, match="clock cannot be given with a Simulator"):
        simulated_cloud(Simulator(), clock=ManualClock())  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="scenario must be"):
        simulated_cloud(42)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="unknown keys"):
        simulated_cloud({"evs_job": []})


async def test_auth_defaults_to_what_the_simulator_accepts() -> None:
    job = {"project_id": "p", "job_id": "j", "timeline": [[0, "RUNNING"]]}
    with_token = {"auth": {"tokens": ["tok-1"]}, "evs_jobs": [job]}
    async with simulated_cloud(with_token) as cloud:
        assert (await cloud.client.fetch(EvsJob("j"))).state is JobState.RUNNING
        assert cloud.simulator.requests[-1].headers["x-auth-token"] == "tok-1"
        async with cloud.new_client() as same:  # the simulator's token again
            assert (await same.fetch(EvsJob("j"))).state is JobState.RUNNING
        async with cloud.new_client(auth=TokenAuth("wrong")) as wrong:
            with pytest.raises(AuthenticationError):
                await wrong.fetch(EvsJob("j"))
    with_keys = {"auth": {"credentials": {"AKTEST0001": "secret"}}, "evs_jobs": [job]}
    async with simulated_cloud(with_keys) as cloud:
        assert (await cloud.client.fetch(EvsJob("j"))).state is JobState.RUNNING
        authorization = cloud.simulator.requests[-1].headers["authorization"]
        assert authorization.startswith("SDK-HMAC-SHA256 Access=AKTEST0001,")
    async with simulated_cloud(with_token, auth=TokenAuth("nope")) as cloud:
        with pytest.raises(AuthenticationError):
            await cloud.client.fetch(EvsJob("j"))


async def test_socket_variant_really_listens() -> None:
    async with simulated_cloud(SCENARIO, socket=True) as cloud:
        url = httpx.URL(cloud.base_url)
        assert cloud.socket is True
        assert url.scheme == "http"
        assert url.host == "127.0.0.1"
        assert url.port is not None
        assert url.port > 0
        # A raw TCP connection and a hand-written HTTP request reach the simulator.
        async with await anyio.connect_tcp(url.host, url.port) as stream:
            await stream.send(
                b"GET /v1/proj-a/jobs/evs-1 HTTP/1.1\r\n"
                b"Host: " + url.netloc + b"\r\nConnection: close\r\n\r\n"
            )
            raw = b""
            with anyio.fail_after(5):
                try:
                    while True:
                        raw += await stream.receive()
                except anyio.EndOfStream:
                    pass
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body)["status"] == "INIT"
        # The yielded client talks over the socket too (no in-process transport).
        assert (await cloud.client.fetch(EvsJob("evs-1"))).raw_status == "INIT"
        assert cloud.client.endpoint == cloud.base_url
        # Over a socket the server thread logs a request after answering it, so the
        # log may trail the answer by a moment: wait for it rather than read it at once.
        logged = await cloud.wait_for_requests(count=2)
        assert [(r.path, r.status_code) for r in logged] == [("/v1/proj-a/jobs/evs-1", 200)] * 2
        base_url, client = cloud.base_url, cloud.client
    assert await closed(client)
    assert await refuses_connections(base_url)


async def test_everything_is_closed_when_the_block_fails() -> None:
    seen: list[SimulatedCloud[Any]] = []

    async def fail() -> None:
        async with simulated_cloud(SCENARIO, socket=True) as cloud:
            seen.append(cloud)
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await fail()
    base_url, client = seen[0].base_url, seen[0].client
    assert await closed(client)
    assert await refuses_connections(base_url)


async def test_everything_is_closed_when_the_block_is_cancelled() -> None:
    with anyio.move_on_after(0.2) as scope:
        async with simulated_cloud(SCENARIO, socket=True) as cloud:
            base_url, client = cloud.base_url, cloud.client
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert await closed(client)
    assert await refuses_connections(base_url)


# -- waiting helpers ---------------------------------------------------------------------------


async def test_wait_for_requests_lockstep_with_a_manual_clock() -> None:
    async with simulated_cloud(SCENARIO) as cloud, cloud.watcher() as watcher:
        assert watcher.policy == FAST_POLL
        watcher.watch(EvsJob("evs-1"))
        events: list[jobwatch.Event] = []

        async def consume() -> None:
            async for event in watcher.events():
                events.append(event)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for t in (1.0, 2.0):
                await cloud.wait_for_requests(job="evs-1", since=cloud.clock.now())
                cloud.manual_clock.set(t)
        seen = await wait_for_requests(cloud.simulator, job="evs-1", since=2.0)
        assert all(r.t == 2.0 and r.status_code == 200 for r in seen)
    assert [(e.previous, e.state) for e in events if isinstance(e, Transition)] == [
        (None, JobState.PENDING),
        (JobState.PENDING, JobState.RUNNING),
        (JobState.RUNNING, JobState.SUCCEEDED),
    ]


async def test_wait_for_requests_filters_and_times_out() -> None:
    async with simulated_cloud(SCENARIO) as cloud:
        await cloud.client.fetch(EvsJob("evs-1"))
        await cloud.client.fetch_many([GesEngineJob("movies", "eng-1")])
        got = await cloud.wait_for_requests(api="ges-engine")
        assert [r.job for r in got] == ["eng-1"]  # one engine job alone: its own status path
        got = await cloud.wait_for_requests(lambda r: r.status_code == 200, count=2)
        assert len(got) == 2
        started = anyio.current_time()
        with pytest.raises(TimeoutError, match=r'1 of 3 requests matching \{"job": "evs-1"\}'):
            await cloud.wait_for_requests(job="evs-1", count=3, timeout=0.1)
        assert 0.1 <= anyio.current_time() - started < 2
        with pytest.raises(TimeoutError, match="and where"):
            await cloud.wait_for_requests(lambda r: r.status_code == 500, timeout=0.05)
        with pytest.raises(ValueError, match="count"):
            await cloud.wait_for_requests(count=0)


async def test_wait_until() -> None:
    ticks: list[int] = []

    async def tick() -> None:
        for i in range(5):
            await anyio.sleep(0.01)
            ticks.append(i)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        await wait_until(lambda: len(ticks) >= 3)
        assert len(ticks) >= 3
    with pytest.raises(TimeoutError, match=r"the moon did not hold within 0\.05 s"):
        await wait_until(lambda: False, timeout=0.05, what="the moon")


def test_policies_are_fast() -> None:
    assert FAST_POLL.wait_initial <= 0.01
    assert FAST_POLL.wait_max <= 0.05
    assert FAST_POLL.wait_jitter == 0
    assert FAST_POLL.not_found_grace <= 1
    assert FAST_RETRY.wait_max <= 0.01
    assert FAST_RETRY.retry_after_max <= 0.05
    assert set(jobwatch.testing.__all__) <= set(dir(jobwatch.testing))


# -- the fixtures, used the way a user would ------------------------------------------------------


async def provision_volumes(
    client: Client,
    create_volume: Callable[[str], Awaitable[str]],
    names: Sequence[str],
    *,
    policy: PollPolicy | None = None,
) -> dict[str, str]:
    """A user's orchestrator (the code under test): create volumes, wait for every job.

    Returns each volume's outcome: ``"ok"``, or ``"failed: <reason>"``.
    """
    jobs = {EvsJob(await create_volume(name)): name for name in names}
    outcome: dict[str, str] = {}
    async with Watcher(client, policy=policy, events=False) as watcher:
        async for event in watcher.as_completed(jobs):
            name = jobs[event.ref]  # type: ignore[index]
            if isinstance(event, GaveUp):
                outcome[name] = f"gave up: {event.reason.value}"
            elif event.state is JobState.SUCCEEDED:
                outcome[name] = "ok"
            else:
                outcome[name] = f"failed: {event.snapshot.fail_reason}"
    return outcome


async def test_orchestrator_with_the_fixtures(
    jobwatch_sim: Simulator[ManualClock], jobwatch_client: Client
) -> None:
    async def create_volume(name: str) -> str:
        """Stands in for the EVS create-volume call: the job appears in the simulator."""
        job_id = f"job-{name}"
        final = "FAIL" if name == "bad" else "SUCCESS"
        jobwatch_sim.add_evs_job(
            jobwatch_client.project_id,
            job_id,
            [(0, "INIT"), (1, "RUNNING"), (3, final)],
            fail_reason="no capacity" if final == "FAIL" else None,
        )
        return job_id

    result: dict[str, str] = {}

    async def run() -> None:
        result.update(
            await provision_volumes(
                jobwatch_client, create_volume, ["a", "b", "bad"], policy=FAST_POLL
            )
        )

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            # let the orchestrator see each job pending, then move time past the end
            for name in ("a", "b", "bad"):
                await wait_for_requests(jobwatch_sim, job=f"job-{name}")
            jobwatch_sim.clock.set(3)
    assert result == {"a": "ok", "b": "ok", "bad": "failed: no capacity"}
    assert jobwatch_client.project_id == DEFAULT_PROJECT_ID


async def test_cloud_fixture(jobwatch_cloud: SimulatedCloud[ManualClock]) -> None:
    jobwatch_cloud.simulator.add_engine_job(
        jobwatch_cloud.project_id, "g", "e1", [(0, "pending"), (1, "complete")]
    )
    jobwatch_cloud.clock.advance(1)
    [snapshot] = await jobwatch_cloud.client.fetch_many([GesEngineJob("g", "e1")])
    assert isinstance(snapshot, jobwatch.JobSnapshot)
    assert snapshot.state is JobState.SUCCEEDED


async def test_fetch_of_a_listed_engine_job_closes_the_list_iterator() -> None:
    """Regression: ``Client.fetch(GesEngineJob)`` returned from inside ``async for`` over
    ``list_engine_jobs`` without closing the generator, and trio warned."""
    async with simulated_cloud({"engine_jobs": [ENGINE_JOB]}) as cloud:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            snapshot = await cloud.client.fetch(GesEngineJob("g", "e1"))
            gc.collect()
        assert snapshot.state is JobState.RUNNING
        assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


async def test_server_fixture_with_an_async_client(
    jobwatch_sim: Simulator[ManualClock], jobwatch_server: str
) -> None:
    jobwatch_sim.add_evs_job(DEFAULT_PROJECT_ID, "net", [(0, "RUNNING"), (1, "SUCCESS")])
    assert jobwatch_server.startswith("http://127.0.0.1:")
    async with Client(jobwatch_server, DEFAULT_PROJECT_ID, retry=FAST_RETRY) as client:
        assert (await client.fetch(EvsJob("net"))).state is JobState.RUNNING
        jobwatch_sim.clock.advance(1)
        assert (await client.fetch(EvsJob("net"))).state is JobState.SUCCEEDED
    logged = await wait_for_requests(jobwatch_sim, job="net", count=2)
    assert [r.status_code for r in logged] == [200, 200]


def test_server_fixture_sync(jobwatch_sim: Simulator[ManualClock], jobwatch_server: str) -> None:
    jobwatch_sim.add_evs_job(DEFAULT_PROJECT_ID, "sync", [(0, "RUNNING")])
    with httpx.Client(base_url=jobwatch_server) as http:
        response = http.get(f"/v1/{DEFAULT_PROJECT_ID}/jobs/sync")
    assert response.status_code == 200
    assert response.json()["status"] == "RUNNING"


USER_CONFTEST = """
import pytest

pytest_plugins = ["jobwatch.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def jobwatch_project_id():
    return "my-project"
"""

USER_TESTS = """
import anyio
import httpx
import pytest

import jobwatch
from jobwatch.testing import FAST_POLL


@pytest.mark.anyio
async def test_waits(jobwatch_sim, jobwatch_client):
    jobwatch_sim.add_evs_job("my-project", "j1", [(0, "RUNNING"), (1, "SUCCESS")])
    async with jobwatch.Watcher(jobwatch_client, policy=FAST_POLL, events=False) as watcher:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.wait, jobwatch.EvsJob("j1"))
            jobwatch_sim.clock.advance(1)
        snapshot = await watcher.wait(jobwatch.EvsJob("j1"))
    assert snapshot.state is jobwatch.JobState.SUCCEEDED
    assert jobwatch_client.project_id == "my-project"


def test_socket(jobwatch_sim, jobwatch_server):
    jobwatch_sim.add_graph("my-project", "g")
    answer = httpx.get(f"{jobwatch_server}/ges/v1.0/my-project/graphs/g/jobs/status")
    assert answer.json()["jobs"] == []
"""


def test_a_user_project_enables_the_plugin_in_its_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)  # test_waits on asyncio and trio, test_socket


def test_importing_without_pytest_still_gives_the_context_manager() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        import anyio
        import jobwatch.testing as t
        assert not hasattr(t, "jobwatch_sim")

        async def main():
            async with t.simulated_cloud({"graphs": [{"project_id": "p", "graph_name": "g"}]}) as c:
                print(c.project_id, c.base_url)

        anyio.run(main)
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["p", IN_PROCESS_URL]
