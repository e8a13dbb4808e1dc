"""ESME_RMSGQFUL (0x14) for two or more phones whose queues are full, with nothing else to send. Each
part's 0x14 found the others' 0x14s answered since its last, no submit accepted, and was read as the
SMSC's queue full: a throttle, every time, for as long as they retried. The link stayed paused (up to
30 s) and at its slowest rate, and the SMS arriving later for other phones met it so. Refusals that
are only repeats of parts refused before tell nothing new of the SMSC: such a part's next 0x14 is
retried at its own pace, uncounted, the link left alone (`smsc.smpp.submits.QueueFull`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.smpp import submits
from tests.conftest import DOMAIN, mail
from tests.test_smpp_queue_full_phone import full_at_99

FULL = [f"601150099@{DOMAIN}", f"601150199@{DOMAIN}", f"601150299@{DOMAIN}"]


async def test_full_phones_alone_on_a_link_leave_it_unthrottled_for_later_sms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submits, "UNSURE_FIRST_SECONDS", 0.05)
    async with full_at_99(tmp_path) as (smsc, gw):
        conn = gw.store.db.conn
        link, pacer = gw.daemon.dispatcher.links["main"], gw.daemon.dispatcher.pacers["main"]
        await gw.send(mail(FULL, "Full phones"), FULL)
        await gw.until(lambda: smsc.refused >= 3 * len(FULL), timeout=60)
        # Each part's first 0x14 is a throttle (protocols.md 2.8), and one more of a part refused before
        # another's first was answered; after that the link hears no throttle from them.
        throttled, rate = link.stats().throttled, pacer.rate
        counted = "SELECT SUM(attempts - (state = 'active')) FROM parts WHERE destination LIKE '%99'"
        attempts = conn.execute(counted).fetchone()[0]
        others = [f"60116{i:04d}@{DOMAIN}" for i in range(20)]
        await gw.send(mail(others, "Later"), others)

        def delivered() -> int:
            return conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'delivered'").fetchone()[0]

        await gw.until(lambda: delivered() == len(others), timeout=60)
        after = link.stats().throttled
    assert throttled <= 2 * len(FULL) < smsc.refused, (throttled, smsc.refused)
    # Three throttles at most halve the rate three times; read as throttles, the repeats took it to 1/s.
    assert rate >= pacer.max_rate / 2 ** (2 * len(FULL)), (rate, pacer.max_rate)
    assert attempts == 0, attempts  # retried uncounted: no hold after 50 "attempts"
    assert after == throttled, (after, throttled)  # the later SMS met no throttle of theirs
