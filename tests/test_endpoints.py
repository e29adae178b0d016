"""Endpoints that would send requests astray are refused when the client is made.

Before, ``https://evs.example/v1`` gave ``.../v1/v1/{project_id}/jobs/...`` URLs
and a silent 404 per poll; userinfo put credentials where endpoints are logged.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobwatch import Client, EvsJob
from jobwatch.sim import Simulator


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("https://evs.cn-north-4.myhuaweicloud.com/v1", "ends in an API version .v1."),
        ("https://evs.example/v2/", "ends in an API version .v2."),
        ("https://ges.example/v1.0", "ends in an API version .v1.0."),
        ("https://ges.example/gw/v2", "give https://ges.example$"),
        ("https://ak:sk@evs.example", "user or password"),
        ("https://evs.example/?project=1", "query or a fragment"),
        ("https://evs.example/#x", "query or a fragment"),
        ("ftp://evs.example", "http:// or https:// URL"),
        ("evs.example", "http:// or https:// URL"),
        ("https://", "http:// or https:// URL"),
        ("http://[::1", "http:// or https:// URL"),
    ],
)
def test_bad_endpoints_are_refused_before_any_request(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Client(endpoint, "proj-1")
    assert "sk@" not in str(caught.value)  # userinfo is never repeated


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", ["https://gw.example/huawei", "https://gw.example/huawei/"])
async def test_a_path_prefix_is_kept(endpoint: str) -> None:
    """A gateway in front of the service: its prefix goes before each API's path."""
    sim = Simulator()
    sim.add_evs_job("proj-1", "job-1", [(0, "SUCCESS")])
    seen: list[str] = []
    inner = sim.transport()

    class Prefixed:
        async def handle_async_request(self, request):  # type: ignore[no-untyped-def]
            seen.append(request.url.path)
            request.url = request.url.copy_with(path=request.url.path.removeprefix("/huawei"))
            return await inner.handle_async_request(request)

        async def aclose(self) -> None:
            await inner.aclose()

    async with Client(endpoint, "proj-1", transport=Prefixed()) as client:  # type: ignore[arg-type]
        snapshot = await client.fetch(EvsJob("job-1"))
    assert snapshot.state.value == "succeeded"
    assert seen == ["/huawei/v1/proj-1/jobs/job-1"]


def test_the_cli_says_so_as_a_usage_error() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobwatch",
            "watch",
            "--endpoint",
            "https://evs.example/v1",
            "--project-id",
            "p",
            "--api",
            "evs",
            "job-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "ends in an API version (v1)" in done.stderr
