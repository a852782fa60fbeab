"""The page's live channel resynchronises when the server's sequence numbers restart (a new epoch,
after Redis lost its counters), instead of dropping fresh events as old ones."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser

#: Feeds messages to a LiveChannel (never connected) and reports what the page would have done.
FEED = """async (messages) => {
  const { LiveChannel } = await import("/static/js/live.js");
  const shown = [], gaps = [];
  const channel = new LiveChannel({
    path: "/ws/stations/1",
    onMessage: (msg) => shown.push(msg.type + ":" + (msg.seq ?? "")),
    onGap: (id) => gaps.push(id),
  });
  for (const msg of messages) channel.dispatch(msg);
  return { shown, gaps };
}"""


def status(seq: int, epoch: str) -> dict[str, Any]:
    return {"type": "status", "seq": seq, "epoch": epoch, "station_id": 1, "is_open": seq % 2 == 0}


async def test_an_event_of_a_new_epoch_is_shown_and_resyncs_the_page(new_page: Any) -> None:
    page = await new_page()
    await page.goto("/kiosk/1")
    snapshot = {"type": "snapshot", "seq": 7, "epoch": "a", "station_id": 1, "is_open": True}
    result = await page.evaluate(FEED, [snapshot, status(8, "a"), status(1, "b"), status(2, "b")])
    # Before: seq 1 and 2 are "older than 8" and dropped; the board would stay wrong.
    assert result == {"shown": ["snapshot:7", "status:8", "status:1", "status:2"], "gaps": [1]}


async def test_a_snapshot_of_a_new_epoch_is_the_new_truth_without_a_resync(new_page: Any) -> None:
    page = await new_page()
    await page.goto("/kiosk/1")
    first = {"type": "snapshot", "seq": 7, "epoch": "a", "station_id": 1, "is_open": True}
    fresh = {**first, "seq": 0, "epoch": "b"}
    result = await page.evaluate(FEED, [first, fresh, status(1, "b"), status(1, "b")])
    assert result == {"shown": ["snapshot:7", "snapshot:0", "status:1"], "gaps": []}
