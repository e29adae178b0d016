"""Virtual time for the tests: trio on an autojumping ``MockClock``, and a simulator
clock that follows the event loop's (so virtual on trio)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import trio
import trio.testing


def virtual_backend(name: str) -> str | tuple[str, dict[str, Any]]:
    """``anyio_backend`` for ``name``: trio on a fresh autojumping ``MockClock``."""
    if name == "trio":
        return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return name


def virtual(main: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``main(*args, **kwargs)`` on trio in virtual time (an autojumping clock)."""
    return trio.run(
        partial(main, *args, **kwargs), clock=trio.testing.MockClock(autojump_threshold=0)
    )


class LoopClock:
    """Sim time that follows the event loop's clock (virtual on trio's MockClock), from 0."""

    def __init__(self) -> None:
        self._origin = anyio.current_time()

    def now(self) -> float:
        return anyio.current_time() - self._origin
