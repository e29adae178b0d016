"""An in-process httpx transport to the simulator that reports resets as httpx does."""

from __future__ import annotations

import httpx

from jobwatch.sim._app import SimApp
from jobwatch.sim._faults import SimulatedReset

__all__ = ["SimTransport"]


class SimTransport(httpx.AsyncBaseTransport):
    """``httpx.ASGITransport`` to a simulator, with ``SimulatedReset`` → ``httpx.ReadError``."""

    def __init__(self, app: SimApp) -> None:
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` to the app in process."""
        try:
            return await self._inner.handle_async_request(request)
        except SimulatedReset as exc:
            raise httpx.ReadError("connection reset by peer (simulated)", request=request) from exc

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
