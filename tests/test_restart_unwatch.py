"""unwatch, watch again and unwatch again while the first watch's poll is out.

The watch made again waits for the first one's removal (its events must come after
the first watch's final); unwatched before it opened, it is dropped.  The defect
this guards: it was put back among the open watches, ended, and never left them
(``jobs_open`` stayed 1, ``events()`` never ended).
"""

from __future__ import annotations

import anyio
import trio
from loopclock import LoopClock
from trio.testing import MockClock

from jobwatch import Client, Event, EvsJob, GaveUp, PollPolicy, Watcher
from jobwatch.sim import Fault, Simulator

P = "proj-1"


def test_unwatch_watch_unwatch_while_a_poll_is_in_flight_leaves_no_open_watch() -> None:
    """unwatch (request out) -> watch again (queued behind the removal) -> unwatch again."""

    async def main() -> tuple[int, list[Event]]:
        sim = Simulator(clock=LoopClock())
        sim.add_fault(Fault("latency", latency=1.0, window=(0.5, 100.0)))
        sim.add_evs_job(P, "j", [(0, "RUNNING")])
        ref = EvsJob("j")
        events: list[Event] = []
        async with (
            Client("http://sim.test", P, transport=sim.transport()) as client,
            Watcher(
                client, policy=PollPolicy(wait_initial=1.0, wait_max=1.0, wait_jitter=0.0)
            ) as watcher,
        ):

            async def read() -> None:
                async for e in watcher.events():
                    events.append(e)

            async with anyio.create_task_group() as tg:
                watcher.watch(ref)
                tg.start_soon(read)
                await trio.sleep(1.2)  # the second poll's request (sent at ~1.0) is out for 1 s
                watcher.unwatch(ref)
                watcher.watch(ref)  # opens once the first watch ended
                watcher.unwatch(ref)
                await trio.sleep(10.0)
                open_now = watcher.statistics().jobs_open
                tg.cancel_scope.cancel()
        return open_now, events

    open_now, events = trio.run(main, clock=MockClock(autojump_threshold=0))
    # The watch made again never opened: the first watch's GaveUp is the last event.
    finals = [e for e in events if isinstance(e, GaveUp)]
    assert len(finals) == 1, events
    assert events[-1] is finals[0]
    assert open_now == 0, f"{open_now} watch(es) still open 10 s after the last unwatch"
