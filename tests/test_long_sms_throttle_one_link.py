"""A long SMS whose first part a prefix link's SMSC throttled, the other parts already given to that link.

The throttled part went by the default link, and the link choice then pointed the SMS at it, while
the parts already reserved on the prefix link went there: one SMS in two SMSCs' halves, which a
phone whose SMSC rewrites the originator does not join (in 2-3 of 40 three-part SMS on an SMSC
throttling every other submit). A throttle is the SMSC asking us to slow down: the part waits for
its SMS's link. With that link down, the whole SMS still leaves by the default link.

Two real SMPP SMSCs (`tests/fakes/smsc.py`) over TCP, the daemon in-process, a real SMTP client.
The prefix SMSC throttles exactly the first submit of each SMS's part 1, so the split is not left
to chance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config import Config, parse_config
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import ESME_RTHROTTLED, FakeSMSC, HappySMSC
from tests.test_policy import to

NUMBERS = [f"4860100{i:04d}" for i in range(10)]  # each throttle halves the rate: 1/s from the tenth
LONG_TEXT = " ".join(f"word{i}" for i in range(50))  # three parts


class FirstPartThrottled(FakeSMSC):
    """Throttles the first submit of part 1 of every long SMS; with `down_after_throttle`, the next
    submit after such a throttle finds the SMSC gone (connections cut, no more binds taken)."""

    def __init__(self, *, down_after_throttle: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttled: list[str] = []  # the phones whose part 1 was throttled
        self.down_after_throttle = down_after_throttle

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if self.throttled and self.down_after_throttle:
            if self.server.listener is not None:
                self.server.listener.close()  # no new connection is taken
            self.drop_all()
            return
        if sms.udh and sms.udh[-1] == 1 and sms.destination not in self.throttled:
            self.throttled.append(sms.destination)
            session.answer_submit(seq, None, status=ESME_RTHROTTLED)
            return
        await super().on_submit(session, seq, sms)


def prefix_and_default(tmp_path: Path, plus: FakeSMSC, orange: HappySMSC) -> Config:
    """plus for +48601 (not exclusive), orange the default link: a prefix route beside the default."""
    orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
    orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
    # A part lost with plus's session waits for no receipt (grace 0): plus gone, it goes by orange.
    plus_extra = 'prefixes = ["+48601"]\nlate_answer_grace_seconds = 0\n'
    text = config_text(tmp_path, smsc_port=plus.port, smsc_extra=plus_extra + orange_link)
    return parse_config(text.replace('name = "main"', 'name = "plus"', 1), source="t", base_dir=tmp_path)


async def both_bound(plus: FakeSMSC, orange: HappySMSC) -> None:
    await orange.wait_until(lambda: len(orange.sessions) == 1)
    await plus.wait_until(lambda: len(plus.sessions) == 1)


def parts_by_phone(smsc: FakeSMSC) -> dict[str, list[int]]:
    """The part numbers (from the UDH) each phone's SMS had accepted by this SMSC."""
    parts: dict[str, list[int]] = {}
    for sms in smsc.received:
        parts.setdefault(sms.destination, []).append(sms.udh[-1])
    return parts


async def test_a_throttled_part_waits_for_the_link_its_sms_is_tied_to(tmp_path: Path) -> None:
    async with FirstPartThrottled() as plus, HappySMSC() as orange:
        async with running_gateway(prefix_and_default(tmp_path, plus, orange)) as gw:
            await both_bound(plus, orange)
            plus_pacer = gw.daemon.dispatcher.pacers["plus"]
            for sent, number in enumerate(NUMBERS, 1):
                # One at a time, each after the last has gone: its three parts are claimed and given
                # to plus together once its throttle pause is over (a paused link takes no new SMS
                # first).
                assert (await gw.send(mail([to(number)], LONG_TEXT))).error is None
                await gw.until(lambda: gw.states().count("delivered") == sent, timeout=10)  # noqa: B023
                await gw.until(lambda: plus_pacer.pause_left() == 0, timeout=10)
    assert sorted(plus.throttled) == sorted(f"+{n}" for n in NUMBERS)  # every SMS had a part throttled
    split = set(parts_by_phone(plus)) & set(parts_by_phone(orange))
    assert split == set(), f"parts of one SMS left by both links: {sorted(split)}"
    assert {phone: sorted(parts) for phone, parts in parts_by_phone(plus).items()} == {
        f"+{n}": [1, 2, 3] for n in NUMBERS
    }


async def test_with_its_link_down_the_whole_sms_still_fails_over(tmp_path: Path) -> None:
    async with FirstPartThrottled(down_after_throttle=True) as plus, HappySMSC() as orange:
        async with running_gateway(prefix_and_default(tmp_path, plus, orange)) as gw:
            await both_bound(plus, orange)
            # Part 1 throttled while parts 2 and 3 were given to plus; plus then gone: none of them
            # waits for it, the whole SMS leaves by orange.
            assert (await gw.send(mail([to(NUMBERS[0])], LONG_TEXT))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=30)
    assert plus.throttled == [f"+{NUMBERS[0]}"]
    assert plus.received == []
    assert parts_by_phone(orange) == {f"+{NUMBERS[0]}": [1, 2, 3]}
