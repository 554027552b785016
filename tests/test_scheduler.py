"""The scheduler runs the sweep and the deliverer on the event loop: a call
nobody acknowledges gets its nudges delivered without anyone asking."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.delivery import Deliverer
from bot.scheduler import Scheduler
from tests.conftest import T0, Org
from tests.test_delivery import RecordingChannel, render
from workflows import calls
from workflows.context import Context

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_scheduled_sweep_delivers_the_urge(ctx: Context, org: Org) -> None:
    calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    urged = datetime(2025, 10, 9, 18, 1, tzinfo=SHANGHAI)  # the acknowledge limit just passed
    channel = RecordingChannel(ctx, "telegram", {org.water_liaison, org.water_head})

    async def scenario() -> None:
        deliverer = Deliverer(ctx, [channel], clock=lambda: urged, render=render)
        scheduler = Scheduler(ctx, deliverer, clock=lambda: urged, sweep_seconds=0.05,
                              deliver_seconds=0.05)
        scheduler.start()
        try:
            for _ in range(400):  # a safety net, not a timing assertion
                if len([m for m, text in channel.sent if text.startswith("nudge")]) == 3:
                    break
                await asyncio.sleep(0.025)
        finally:
            await scheduler.stop()
        assert scheduler.sweeps >= 1

    asyncio.run(scenario())
    nudges = [m for m, text in channel.sent if text.startswith("nudge")]
    # The liaison: the acknowledge urge (its reminders superseded by it) and the
    # halfway reminder of the respond clock (10-09 17:25 in working time; the
    # resolve clock's is 10-11); the head: the urge.
    assert sorted(nudges) == sorted([org.water_liaison] * 2 + [org.water_head])
