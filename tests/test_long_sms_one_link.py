"""The parts of a long SMS leave by one link when one of them meets a temporary error or the link
goes down partway.

Part 1 taken by the prefix link, part 2 refused there for now (ESME_RSYSERR, or the session cut
under it): part 2, and with it the rest, went by the default link at once. The phone joins the parts
by originator and reference, which the two SMSCs write their own way; it was left with an SMS it
could not put together, billed by two operators. The rest now waits for the link that took part 1
while that link answers or is back within LONG_SMS_WAIT_SECONDS (or leaves by another bind of the same
SMSC account); a link gone longer makes the whole SMS go again by the other link, under a new reference.

Two real SMPP SMSCs (`tests/fakes/smsc.py`, the built-in simulator's server) over TCP, the daemon
in-process, a real SMTP client; time moved by the injected clock.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway.config import Config, parse_config
from gateway.longsms import LONG_SMS_WAIT_SECONDS
from smsc.cimd2.packet import Op, P, Packet
from smsc.simulator.smpp_server import SmppSession
from smsc.simulator.submitted import SubmittedSms
from tests.conftest import config_text, mail, running_gateway
from tests.fakes.cimd2 import ScriptedSmsc
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_cimd2_general_error import next_submit
from tests.test_policy import to

NUMBER = "48601000123"
LONG_TEXT = " ".join(f"word{i}" for i in range(50))  # three parts
ESME_RSYSERR = 0x08  # a temporary error (`smsc.smpp.pdu.STATUS_OUTCOMES`), not a throttle


class PartTwoTrouble(FakeSMSC):
    """Takes part 1 of the long SMS, then at the first submit of part 2 answers a temporary error
    (`refuse`), or cuts every session (`drop`), with `gone` also taking no new connection."""

    def __init__(self, trouble: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trouble = trouble
        self.troubled = 0

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        if sms.udh and sms.udh[-1] == 2 and not self.troubled:
            self.troubled += 1
            if self.trouble == "refuse":
                session.answer_submit(seq, None, status=ESME_RSYSERR)
                return
            if self.trouble == "gone" and self.server.listener is not None:
                self.server.listener.close()  # no new connection is taken
            self.drop_all()
            return
        await super().on_submit(session, seq, sms)


def prefix_and_default(tmp_path: Path, plus: FakeSMSC, orange: HappySMSC) -> Config:
    """plus for +48601 (part 1 goes there), orange the default link: both can take the number.
    The prefix link sends one part at a time, so part 2 goes after part 1 was taken."""
    orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
    orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
    # A part lost with plus's session waits for no receipt (grace 0): plus gone, it goes by orange.
    plus_extra = 'prefixes = ["+48601"]\nlate_answer_grace_seconds = 0\n'
    text = config_text(tmp_path, smsc_port=plus.port, smsc_extra=plus_extra + orange_link)
    text = text.replace('name = "main"', 'name = "plus"', 1).replace("window = 10", "window = 1", 1)
    return parse_config(text, source="t", base_dir=tmp_path)


def parts_seen(smsc: FakeSMSC) -> list[tuple[int, int]]:
    """(reference, part number) of each part the SMSC took, from its UDH."""
    return [(sms.udh[-3], sms.udh[-1]) for sms in smsc.received]


def part_rows(gw: Any) -> list[tuple[int, str, str | None]]:
    sql = "SELECT seq, state, link FROM parts ORDER BY seq"
    return [tuple(row) for row in gw.store.db.conn.execute(sql)]


async def test_a_part_refused_for_now_goes_again_by_the_link_that_took_part_one(tmp_path: Path) -> None:
    async with PartTwoTrouble("refuse") as plus, HappySMSC() as orange:
        async with running_gateway(prefix_and_default(tmp_path, plus, orange)) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=20)
            rows = part_rows(gw)
    assert plus.troubled == 1
    assert orange.received == [], "parts of one SMS left by both links"
    [ref] = {ref for ref, _seq in parts_seen(plus)}
    assert sorted(parts_seen(plus)) == [(ref, 1), (ref, 2), (ref, 3)]
    assert rows == [(1, "delivered", "plus"), (2, "delivered", "plus"), (3, "delivered", "plus")]


async def test_the_rest_waits_for_its_link_back_after_a_cut_session(tmp_path: Path) -> None:
    # The session cut with part 2 on the wire: the link reconnects a moment later and takes the rest.
    async with PartTwoTrouble("drop") as plus, HappySMSC() as orange:
        async with running_gateway(prefix_and_default(tmp_path, plus, orange)) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            await gw.until(lambda: gw.states() == ["delivered"], timeout=30)
    assert plus.troubled == 1
    assert orange.received == [], "parts of one SMS left by both links"
    assert [seq for _ref, seq in parts_seen(plus)] == [1, 2, 3]


async def test_a_link_gone_for_good_has_the_whole_sms_sent_again_by_the_other(tmp_path: Path) -> None:
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    async with PartTwoTrouble("gone") as plus, HappySMSC() as orange:
        async with running_gateway(prefix_and_default(tmp_path, plus, orange), clock=clock) as gw:
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            await plus.wait_until(lambda: len(plus.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # Part 1 taken by plus (its receipt may come before), which is then gone: the rest waits for it.
            await gw.until(lambda: plus.troubled == 1 and not plus.sessions)
            await gw.until(lambda: gw.daemon.dispatcher.choice.waiting() == 1)
            assert orange.received == []
            assert part_rows(gw)[0] in [(1, "submitted", "plus"), (1, "delivered", "plus")]
            offset[0] += LONG_SMS_WAIT_SECONDS + 1  # plus still gone: the SMS goes by orange, whole
            await gw.until(lambda: gw.states() == ["delivered"], timeout=20)
            rows = part_rows(gw)
            [concat_ref] = gw.store.db.conn.execute("SELECT concat_ref FROM messages").fetchone()
    [(old_ref, first)] = parts_seen(plus)
    assert first == 1
    assert sorted(parts_seen(orange)) == [(concat_ref, 1), (concat_ref, 2), (concat_ref, 3)]
    assert concat_ref != old_ref  # a phone holding part 1 from plus does not mix it in
    assert rows == [(1, "delivered", "orange"), (2, "delivered", "orange"), (3, "delivered", "orange")]


async def test_the_rest_leaves_by_another_bind_of_the_same_smsc_account_at_once(tmp_path: Path) -> None:
    # Two binds of one SMSC account (`smsc_account`): the SMSC writes every part alike, whichever bind
    # carries it. With the first gone, the rest goes by the second now, under the same reference.
    async with PartTwoTrouble("gone") as plus1, HappySMSC() as plus2, HappySMSC() as orange:
        # A part lost with plus1's session waits for no receipt (grace 0): it goes by plus2 at once.
        account = 'smsc_account = "plus"\nprefixes = ["+48601"]\nlate_answer_grace_seconds = 0\n'
        binds = f'\n[[smsc]]\nname = "plus2"\ntype = "smpp"\nport = {plus2.port}\n{account}'
        binds += 'system_id = "smsgw"\npassword = "secret"\n'
        binds += f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
        binds += 'system_id = "smsgw"\npassword = "secret"\n'
        text = config_text(tmp_path, smsc_port=plus1.port, smsc_extra=account + binds)
        text = text.replace('name = "main"', 'name = "plus1"', 1).replace("window = 10", "window = 1", 1)
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path)) as gw:
            for smsc in (plus1, plus2, orange):
                await smsc.wait_until(lambda: len(smsc.sessions) == 1, timeout=20)  # noqa: B023
            # plus1 is first in the routes and takes part 1; part 2's session goes with plus1.
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            # Part 1's receipt may have gone with plus1's session: taken is enough.
            taken = {"submitted", "delivered"}
            await gw.until(lambda: {state for _seq, state, _link in part_rows(gw)} <= taken)
            rows = [(seq, link) for seq, _state, link in part_rows(gw)]
    assert orange.received == []
    [(ref, first)] = parts_seen(plus1)
    assert first == 1
    assert sorted(parts_seen(plus2)) == [(ref, 2), (ref, 3)]
    assert rows == [(1, "plus1"), (2, "plus2"), (3, "plus2")]


async def test_a_cimd2_temporary_error_keeps_the_rest_on_its_link(tmp_path: Path) -> None:
    # The CIMD2 equivalent: 900:6 (general system error) to part 2, a temporary error, on a CIMD2
    # prefix link whose SMSC (scripted over TCP) took part 1; the SMPP default link is up meanwhile.
    async with ScriptedSmsc() as plus, HappySMSC() as orange:
        orange_link = f'\n[[smsc]]\nname = "orange"\ntype = "smpp"\nport = {orange.port}\n'
        orange_link += 'system_id = "smsgw"\npassword = "secret"\n'
        text = config_text(tmp_path, smsc_port=plus.port, smsc_extra='prefixes = ["+48601"]\n' + orange_link)
        text = text.replace('name = "main"', 'name = "plus"', 1).replace('type = "smpp"', 'type = "cimd2"', 1)
        async with running_gateway(parse_config(text, source="t", base_dir=tmp_path)) as gw:
            conn = await plus.accept()
            await conn.login()
            await orange.wait_until(lambda: len(orange.sessions) == 1, timeout=20)
            assert (await gw.send(mail([to(NUMBER)], LONG_TEXT))).error is None
            seen = []
            for answer in ("taken", "refused", "taken", "taken"):
                submit = await next_submit(conn)
                seen.append(bytes.fromhex(submit.get(P.UDH) or "")[-1])
                if answer == "refused":
                    conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, 6),
                                          (P.ERROR_TEXT, "general system error")))  # fmt: skip
                    continue
                conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.DESTINATION, f"+{NUMBER}"),
                                      (P.SCTS, f"26112104562{len(seen)}")))  # fmt: skip
            await gw.until(lambda: gw.states() == ["submitted"])
            rows = [(seq, link) for seq, _state, link in part_rows(gw)]
    assert orange.received == [], "parts of one SMS left by both links"
    assert sorted(seen) == [1, 2, 2, 3]  # part 2 again by plus (after part 3 or before)
    assert rows == [(1, "plus"), (2, "plus"), (3, "plus")]
