"""A slow or throttled link's backlog does not leave another link idle (head-of-line blocking).

The dispatcher claims parts ahead of the links' windows. After a bulk send through one slow link,
what it had claimed ahead were all that link's parts, and it claimed nothing more until they went:
the SMS to another operator, whose link had its window free, waited behind the whole backlog
(60 SMS on a link answering after a second held 40 for the fast link 17 s; 1,000 on a link
throttled to 2/s would hold them 8 minutes). The slow link's parts kept waiting now go back to the
queue a moment, so that the claim reaches the SMS behind them.

Two real SMPP SMSCs over TCP (tests/fakes/smsc.py), the daemon in-process, a real SMTP client.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from gateway.config import Config, parse_config
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import FakeSMSC, HappySMSC, ThrottlingSMSC
from tests.test_policy import to

SLOW = [f"6010000{i:02d}" for i in range(60)]  # the default link's numbers
FAST = [f"5110000{i:02d}" for i in range(20)]  # +4851: the fast link's


def slow_and_fast(tmp_path: Path, slow: FakeSMSC, fast: HappySMSC) -> Config:
    """The slow SMSC as the default link (a window of 3), the fast one for +4851 (a window of 10)."""
    fast_link = f'\n[[smsc]]\nname = "fast"\ntype = "smpp"\nport = {fast.port}\nwindow = 10\n'
    fast_link += 'system_id = "smsgw"\npassword = "secret"\nprefixes = ["+4851"]\nmax_per_second = 1000\n'
    text = config_text(tmp_path, smsc_port=slow.port, smsc_extra=fast_link)
    text = text.replace("window = 10", "window = 3", 1)
    return parse_config(text, source="t", base_dir=tmp_path)


async def fast_sms_go_beside(slow: FakeSMSC, fast: HappySMSC, tmp_path: Path) -> float:
    """Queue SLOW (some phones twice) then FAST; how long FAST took to reach the fast SMSC once
    queued. Waits for everything and checks the slow link got each SMS once, in order per phone."""
    async with running_gateway(slow_and_fast(tmp_path, slow, fast)) as gw:
        await fast.wait_until(lambda: len(fast.sessions) == 1)
        await slow.wait_until(lambda: len(slow.sessions) == 1)
        assert (await gw.send(mail([to(n) for n in SLOW], "Bulk one"))).error is None
        assert (await gw.send(mail([to(n) for n in SLOW[:10]], "Bulk two"))).error is None
        queued = time.monotonic()
        assert (await gw.send(mail([to(n) for n in FAST], "Other operator"))).error is None
        await fast.wait_for(len(FAST), timeout=60)
        took = time.monotonic() - queued
        total = len(SLOW) + 10 + len(FAST)  # a message per recipient
        await gw.until(lambda: gw.states().count("delivered") == total, timeout=60)
    accepted = [s for s in slow.received if s.destination.startswith("+48601")]
    texts = [s.text for s in accepted]
    assert sorted(texts) == sorted(["Bulk one"] * len(SLOW) + ["Bulk two"] * 10)  # each once
    assert {s.destination for s in accepted if s.text == "Bulk one"} == {"+48" + n for n in SLOW}
    assert all(s.destination.startswith("+4851") for s in fast.received)
    by_phone: dict[str, list[str]] = defaultdict(list)
    for sms in accepted:
        by_phone[sms.destination].append(sms.text)
    for phone in SLOW[:10]:
        assert by_phone["+48" + phone] == ["Bulk one", "Bulk two"], phone  # in order (F5)
    return took


async def test_a_slow_links_backlog_does_not_hold_the_fast_links_sms(tmp_path: Path) -> None:
    # The default link answers after 0.3 s with a window of 3: 70 SMS take it about 7 s.
    async with FakeSMSC(response_delay=0.3) as slow, HappySMSC() as fast:
        took = await fast_sms_go_beside(slow, fast, tmp_path)
    assert took < 2.5, took


async def test_a_throttled_links_backlog_does_not_hold_the_fast_links_sms(tmp_path: Path) -> None:
    # The default link's SMSC takes 8 a second and throttles the rest: 70 SMS take it about 9 s.
    async with ThrottlingSMSC(accept_per_second=8) as slow, HappySMSC() as fast:
        took = await fast_sms_go_beside(slow, fast, tmp_path)
    assert slow.throttled >= 1
    assert took < 2.5, took
