"""A prefix route keeps its numbers while its link is up, however busy, without holding up the other
routes; only a link that is down hands its numbers to the next route. Real daemon, real SMTP
client, two of the simulator's SMPP servers over TCP.

Defect: a prefix link with its window full let its numbers leave by the default link (another
operator's SMSC, and the parts of one long SMS split between two SMSCs, which the phone cannot
join). The first fix (96f0bab, reverted) made those parts wait in the dispatcher's one queue of
parts claimed ahead, which then filled with them and stalled every other destination.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import parse_config
from tests.conftest import DOMAIN, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_fair_claim import BETA, BOB
from tests.test_routing import two_links

PREFIXED, DEFAULT = 20, 20
LONG = "slowo " * 120  # five parts
SLOW = 0.25  # the prefix SMSC's answer time: with a window of 1, 4 SMS a second


def prefixed(i: int) -> str:
    return f"6019{i:05d}"  # +4860…: the prefix link "main"


def elsewhere(i: int) -> str:
    return f"5119{i:05d}"  # the default link "backup"


async def send(gw: object, numbers: list[str], body: str) -> None:
    rcpts = [f"{n}@{DOMAIN}" for n in numbers]
    res = await gw.send(mail(rcpts, body), rcpts)  # type: ignore[attr-defined]
    assert res.error is None and not res.refused


async def test_a_busy_prefix_link_keeps_its_numbers_and_other_routes_keep_flowing(tmp_path: Path) -> None:
    async with HappySMSC(response_delay=SLOW) as a, HappySMSC() as b:
        text = two_links(tmp_path, a.port, b.port).replace("window = 10", "window = 1", 1)
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            loop = asyncio.get_running_loop()
            # Queued first: a long SMS and 20 more for the prefix link (about 6 s of its time) ...
            await send(gw, [prefixed(99999)], LONG)
            await send(gw, [prefixed(i) for i in range(PREFIXED)], "Meeting at 10")
            # ... then 20 for the default link, which is idle: they go at once, not after those.
            start = loop.time()
            await send(gw, [elsewhere(i) for i in range(DEFAULT)], "Meeting at 11")
            await b.wait_for(DEFAULT, timeout=20)
            waited = loop.time() - start
            assert waited < 1.0, f"the default route waited {waited:.1f} s behind the busy prefix link"
            assert len(a.received) < 5 + PREFIXED, "measured after the prefix link was done: too slow a host?"
            await gw.until(lambda: gw.states() == ["delivered"] * (1 + PREFIXED + DEFAULT), timeout=30)
            # Every prefix number left by its own link, the five parts of the long SMS included.
            spilt = [s.destination for s in b.received if s.destination.startswith("+4860")]
            assert spilt == [], "prefix numbers left by the default link"
            assert len(b.received) == DEFAULT
            assert all(s.destination.startswith("+4860") for s in a.received)
            assert len(a.received) == 5 + PREFIXED


async def test_a_prefix_link_that_goes_down_hands_its_waiting_parts_to_the_default_link(
    tmp_path: Path,
) -> None:
    # Parts waiting for the busy prefix link when it goes away fail over; none is lost or stuck.
    async with HappySMSC() as b:
        async with HappySMSC(response_delay=SLOW) as a:
            text = two_links(tmp_path, a.port, b.port).replace("window = 10", "window = 1", 1)
            cfg = parse_config(text, base_dir=tmp_path)
            async with running_gateway(cfg) as gw:
                await send(gw, [prefixed(i) for i in range(PREFIXED)], "Meeting at 10")
                await a.wait_until(lambda: len(a.received) >= 2 or bool(b.received))
                assert b.received == []  # busy, not down: the prefix link keeps its numbers
                a.drop_all()
                await a.server.stop()  # and it stays down
                await gw.until(lambda: gw.states() == ["delivered"] * PREFIXED, timeout=30)
                reached = {s.destination for s in a.received} | {s.destination for s in b.received}
                assert reached == {f"+48{prefixed(i)}" for i in range(PREFIXED)}
                assert len(b.received) >= PREFIXED - len(a.received)


async def test_the_parts_of_a_long_sms_leave_by_one_link_of_a_route_with_two(tmp_path: Path) -> None:
    # Both links serve +4860; the first is slow with a window of 1, so a long SMS's later parts
    # would find the second link free first: they follow their first part instead.
    async with HappySMSC(response_delay=0.1) as a, HappySMSC() as b:
        text = two_links(tmp_path, a.port, b.port).replace("window = 10", "window = 1", 1)
        async with running_gateway(parse_config(text + 'prefixes = ["+4860"]\n', base_dir=tmp_path)) as gw:
            numbers = [prefixed(i) for i in range(3)]
            await send(gw, numbers, LONG)
            await gw.until(lambda: gw.states() == ["delivered"] * 3, timeout=30)
            for number in numbers:
                links = [name for name, smsc in (("a", a), ("b", b)) for s in smsc.received
                         if s.destination == f"+48{number}"]  # fmt: skip
                assert len(links) == 5 and len(set(links)) == 1, f"{number}: parts by {links}"


async def test_parts_claimed_while_another_link_waits_do_not_hold_up_another_account(tmp_path: Path) -> None:
    # The prefix link is up and idle, so claims go on for it and bring acme's bulk for the default
    # link (50 SMS a second) beyond that link's usual claim-ahead; beta's SMS queued after it takes
    # its turn among them instead of waiting behind them all (test_fair_claim, with two links).
    async with HappySMSC() as a, HappySMSC() as b:
        text = (two_links(tmp_path, a.port, b.port) + BETA).replace(
            "max_per_second = 1000", "max_per_second = 50"
        )
        async with running_gateway(parse_config(text, base_dir=tmp_path)) as gw:
            for start in range(0, 1000, 100):
                await send(gw, [elsewhere(i) for i in range(start, start + 100)], "Our spring catalogue")
            urgent = mail(f"511999999@{DOMAIN}", "The server room is flooding")
            urgent.replace_header("From", BOB)
            loop = asyncio.get_running_loop()
            assert (await gw.send(urgent, sender=BOB)).error is None
            accepted_at = loop.time()
            await b.wait_until(lambda: any(s.destination == "+48511999999" for s in b.received), timeout=60)
            waited = loop.time() - accepted_at
            assert waited < 5.0, f"beta's SMS reached the SMSC {waited:.1f} s after its 250"
            assert a.received == [] and len(b.received) < 1000
