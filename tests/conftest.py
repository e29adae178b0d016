from collections.abc import Callable
from typing import Any

import pytest

from jobwatch import Client


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on both asyncio and trio."""
    return str(request.param)


@pytest.fixture(params=["httpx", "aiohttp"])
def stack(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each HTTP stack: httpx on both backends, aiohttp (the ``fast`` extra) on asyncio."""
    name: str = request.param
    if name == "aiohttp" and anyio_backend != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    return name


@pytest.fixture
def on_stack(stack: str) -> Callable[..., Client]:
    """Makes a ``Client`` for project ``proj-1`` on the stack under test (checked)."""

    def make(url: str, **kwargs: Any) -> Client:
        made = Client(url, "proj-1", fast=stack == "aiohttp", **kwargs)
        assert made.transport_name == stack
        return made

    return make
