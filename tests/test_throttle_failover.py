"""A prefix link whose SMSC throttles every submit for minutes, with a default link up.

The parts the throttling link was given stayed with it: each throttle released the part, and the
next pick chose the same link again (up, its window free), while its pause grew to half a minute;
later SMS to the same phones went by the default link past them. The default link now takes them
while the prefix link is throttled.

Two real SMPP SMSCs (tests/fakes/smsc.py), the daemon in-process, a real SMTP client.
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config, parse_config
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.smsc import HappySMSC, ThrottlingSMSC
from tests.test_policy import to

NUMBERS = [f"51130000{i}" for i in range(8)]


def prefix_and_spare(tmp_path: Path, throttling: ThrottlingSMSC, spare: HappySMSC) -> Config:
    """The throttling SMSC's link for +4851, and a default link to the spare; the shipped pause
    (1 s after the first throttle, growing with each)."""
    spare_link = f'\n[[smsc]]\nname = "spare"\ntype = "smpp"\nport = {spare.port}\n'
    spare_link += 'system_id = "smsgw"\npassword = "secret"\n'
    text = config_text(tmp_path, smsc_port=throttling.port, smsc_extra='prefixes = ["+4851"]\n' + spare_link)
    text = text.replace("throttle_pause_seconds = 0.05", "throttle_pause_seconds = 1", 1)
    return parse_config(text, source="t", base_dir=tmp_path)


async def both_bound(throttling: ThrottlingSMSC, spare: HappySMSC) -> None:
    await spare.wait_until(lambda: len(spare.sessions) == 1)
    await throttling.wait_until(lambda: len(throttling.sessions) == 1)


async def test_sms_given_to_a_throttling_link_leave_by_the_default_link(tmp_path: Path) -> None:
    async with ThrottlingSMSC(accept_per_second=0.01) as throttling, HappySMSC() as spare:
        async with running_gateway(prefix_and_spare(tmp_path, throttling, spare)) as gw:
            await both_bound(throttling, spare)
            assert (await gw.send(mail([to(n) for n in NUMBERS], "Busy operator"))).error is None
            await gw.until(lambda: gw.states().count("delivered") == len(NUMBERS), timeout=10)
    assert throttling.throttled >= 1  # the prefix link was tried first, and throttled
    assert len(spare.received) + len(throttling.received) == len(NUMBERS)  # each once


async def test_the_rest_of_a_long_sms_waits_out_its_own_links_throttling(tmp_path: Path) -> None:
    # Its first parts taken by the prefix link, the parts throttled after them went by the default
    # link: two SMSCs' halves of one SMS, which a phone may not join (each SMSC writes the
    # originator its own way). Only SMS none of whose parts left yet go by another link.
    async with ThrottlingSMSC(accept_per_second=2) as throttling, HappySMSC() as spare:
        async with running_gateway(prefix_and_spare(tmp_path, throttling, spare)) as gw:
            await both_bound(throttling, spare)
            long_text = " ".join(f"word{i}" for i in range(90))  # five parts
            assert (await gw.send(mail([to(NUMBERS[0])], long_text))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=20)
    assert throttling.throttled >= 1
    assert spare.received == []
    assert len(throttling.received) == 5
