"""A probe the mailer holds back (`LoginHeld`) sets the wait before the next probe once, and never
less than a second. Its wait was kept for every later turn: when the next turn found no mail waiting
for the relay (sent, expired) it slept that wait again, and a timer firing a little early had made
it a fraction of a millisecond, so the loop read the store some 850 times a second. The mailer and
the store's look are stand-ins: the held wait of 0.4 ms is a timer's, which no real relay gives on cue.
"""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest

import gateway.relayprobe as relayprobe
from gateway.mailauth import LoginHeld
from gateway.relayprobepace import PROBE_EVERY


class HeldMailer:
    async def probe(self) -> None:
        raise LoginHeld(aiosmtplib.SMTPAuthenticationError(535, "5.7.8 refused"), 0.0004)


class NoStore:
    outbox = None


async def test_a_held_probes_wait_serves_one_turn_and_is_at_least_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[None] = []

    def waits(_outbox: object) -> bool:
        looks.append(None)
        return len(looks) == 1  # mail waits at the first look only: sent or expired afterwards

    monkeypatch.setattr(relayprobe, "waits_for_relay", waits)
    back = relayprobe.RelayBack(NoStore(), HeldMailer(), lambda: None, None)  # type: ignore[arg-type]
    task = asyncio.create_task(back.run(lambda: False))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(looks) == 1, f"the store was read {len(looks)} times in 0.3 s after one held probe"
    assert back.interval() >= PROBE_EVERY  # the held wait is gone: the probes' own pace
