"""An SMSC that takes only absolute validity (Kannel's `YYMMDDhhmmss000+`), met with relative ones.

Since 0.2.37 SMPP validity goes relative by default. Such an SMSC answers every relative one
ESME_RINVEXPIRY (0x62), read as a refusal for good: after an upgrade every SMS failed and bounced, those
queued before it too, and once the admin set `validity_format = "absolute"`, `smsgw queue retry` still
refused them ("it would be refused again"). A 0x62 to a relative validity now turns the link to the
absolute form for the rest of its run, said once with the key that keeps it so, and the part goes
again, no attempt counted; those written relative before the turn too. A 0x62 to an absolute validity
stays a refusal, and the admin's retry of an SMS failed for it is let through.

Real peers: a scripted SMPP SMSC on the simulator's server over TCP, the daemon in this process with a
real SQLite file, mail by a real SMTP client, the CLI as a process.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.reasons import refused_for_good
from smsc.base import Outcome
from smsc.simulator.core import SubmittedSms
from smsc.simulator.smpp_server import SmppSession
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway
from tests.fakes.smsc import FakeSMSC
from tests.test_process import smsgw
from tests.test_simulator import part
from tests.test_smpp_link import running_link

ESME_RINVEXPIRY = 0x62
KEY_HINT = 'set validity_format = "absolute" in [[smsc]] "op" to keep it so'


class AbsoluteOnlySMSC(FakeSMSC):
    """ESME_RINVEXPIRY for a relative validity (for any while `refuse_all`); the refusals go out in
    batches of `batch`, so that several submits are out when the first comes back, in a generic_nack
    when `nack` (as some SMSCs refuse a submit they will not read)."""

    def __init__(self, batch: int = 1, nack: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch, self.refuse_all, self.nack = batch, False, nack
        self.held: list[int] = []
        self.validities: list[str] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.validities.append(sms.validity)
        if not (self.refuse_all or sms.validity.endswith("R")):
            await super().on_submit(session, seq, sms)
            return
        self.server.record(sms)
        self.held.append(seq)
        if len(self.held) >= self.batch:
            for held in self.held:
                if self.nack:
                    session.nack(held, ESME_RINVEXPIRY)
                else:
                    session.answer_submit(held, None, status=ESME_RINVEXPIRY)
            self.held.clear()


def said(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "smpp.validity_refused"]


@pytest.mark.parametrize("nack", [False, True], ids=["submit_sm_resp", "generic_nack"])
async def test_a_refused_relative_validity_turns_the_link_absolute_and_its_parts_go_again(nack: bool) -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    with capture_logs() as logs:
        async with AbsoluteOnlySMSC(batch=3, nack=nack) as smsc, running_link(smsc.port) as (link, _ev):
            out = [link.send(replace(part(), part_id=n, validity=until)) for n in (1, 2, 3)]
            results = await asyncio.gather(*out)
            after = await link.submit(replace(part(), part_id=4, validity=until))
    for result in results:  # each goes again, no attempt counted: none refused for good
        assert result.outcome is Outcome.TEMPORARY and result.retry_after > 0, result
        assert result.error is not None and "ESME_RINVEXPIRY (0x62)" in result.error
    assert after.outcome is Outcome.ACCEPTED
    assert [v[-1] for v in smsc.validities] == ["R", "R", "R", "+"]
    warned = said(logs)
    assert len(warned) == 1 and warned[0]["log_level"] == "warning", warned
    assert warned[0]["switched_to"] == "absolute" and warned[0]["hint"].endswith(KEY_HINT)


async def test_an_absolute_validity_refused_stays_a_refusal() -> None:
    until = datetime.now(UTC) + timedelta(hours=1)
    with capture_logs() as logs:
        async with AbsoluteOnlySMSC() as smsc, running_link(smsc.port) as (link, _ev):
            first = await link.submit(replace(part(), validity=until))
            taken = await link.submit(replace(part(), validity=until))  # absolute: kept so
            smsc.refuse_all = True
            second = await link.submit(replace(part(), part_id=2, validity=until))
            third = await link.submit(replace(part(), part_id=3, validity=until))
        async with (
            AbsoluteOnlySMSC() as smsc,
            running_link(smsc.port, validity_format="absolute") as (link, _),
        ):
            smsc.refuse_all = True
            configured = await link.submit(replace(part(), validity=until))
    assert first.outcome is Outcome.TEMPORARY and taken.outcome is Outcome.ACCEPTED
    for refused in (second, third, configured):
        assert refused.outcome is Outcome.REJECTED and refused.error == "ESME_RINVEXPIRY (0x62)"
    assert len(said(logs)) == 1  # the configured absolute link's refusal has nothing to turn


class RelativeOnlyCappedSMSC(FakeSMSC):
    """Takes relative validities of up to 3 days only: 0x62 to a longer one, as to any absolute one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validities: list[str] = []

    async def on_submit(self, session: SmppSession, seq: int, sms: SubmittedSms) -> None:
        self.validities.append(sms.validity)
        v = sms.validity
        if v.endswith("R") and int(v[0:2]) == int(v[2:4]) == 0 and int(v[4:6]) <= 3:
            await super().on_submit(session, seq, sms)
            return
        self.server.record(sms)
        session.answer_submit(seq, None, status=ESME_RINVEXPIRY)


async def test_a_validity_refused_for_its_length_fails_its_sms_and_leaves_the_link_relative() -> None:
    """0x62 is also the refusal of a value: the part that asked 30 days fails, and the next SMS goes
    relative as before, not absolute to an SMSC that refuses every absolute one."""
    now = datetime.now(UTC)
    with capture_logs() as logs:
        async with RelativeOnlyCappedSMSC() as smsc, running_link(smsc.port) as (link, _ev):
            month = replace(part(), part_id=1, validity=now + timedelta(days=30))
            first = await link.submit(month)
            again = await link.submit(month)  # the retry the first answer asks for: absolute
            day = await link.submit(replace(part(), part_id=2, validity=now + timedelta(days=1)))
            later = await link.submit(replace(part(), part_id=3, validity=now + timedelta(days=2)))
    assert first.outcome is Outcome.TEMPORARY and first.retry_after > 0
    assert again.outcome is Outcome.REJECTED and again.error == "ESME_RINVEXPIRY (0x62)"
    assert day.outcome is Outcome.ACCEPTED and later.outcome is Outcome.ACCEPTED
    assert [v[-1] for v in smsc.validities] == ["R", "+", "R", "R"]
    assert said(logs) == []  # the link never turned absolute for good


async def test_another_parts_absolute_validity_refused_on_trial_goes_again_relative() -> None:
    """Written absolute while the link was on trial, another part's 0x62 is the form's refusal:
    it goes again relative, no attempt counted, and is taken."""
    now = datetime.now(UTC)
    async with RelativeOnlyCappedSMSC() as smsc, running_link(smsc.port) as (link, _ev):
        first = await link.submit(replace(part(), part_id=1, validity=now + timedelta(days=30)))
        other = replace(part(), part_id=2, validity=now + timedelta(days=1))
        tried = await link.submit(other)  # absolute, on trial
        again = await link.submit(other)
    assert first.outcome is Outcome.TEMPORARY
    assert tried.outcome is Outcome.TEMPORARY and tried.retry_after > 0, tried
    assert (
        tried.error
        == "ESME_RINVEXPIRY (0x62) to an absolute validity, on trial: sent again with a relative one"
    )
    assert again.outcome is Outcome.ACCEPTED
    assert [v[-1] for v in smsc.validities] == ["R", "+", "R"]


def parts(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT state, attempts FROM parts ORDER BY id"))


async def test_sms_queued_before_the_upgrade_are_delivered_not_bounced(tmp_path: Path) -> None:
    port = free_port()
    cfg = parse_config(config_text(tmp_path, smsc_port=port), source="test config", base_dir=tmp_path)
    numbers = [f"6011235{n:02d}@{DOMAIN}" for n in range(3)]
    async with running_gateway(cfg) as gw:  # the SMSC not up yet: they wait in the queue
        for number in numbers:
            assert (await gw.send(mail(number, "Pickup at 14:00"))).error is None
        await gw.until(lambda: len(gw.states()) == 3)
    with capture_logs() as logs:
        async with AbsoluteOnlySMSC(port=port), running_gateway(cfg) as gw:
            await gw.until(lambda: gw.states() == ["delivered"] * 3, timeout=30)
            bounces = gw.store.db.conn.execute("SELECT COUNT(*) FROM outbox WHERE kind LIKE 'dsn%'")
            assert bounces.fetchone()[0] == 0
    assert parts(cfg.db_path) == [("delivered", 1)] * 3  # the refused relative try counted no attempt
    assert len(said(logs)) == 1


async def test_the_admins_retry_of_an_sms_failed_for_its_validity_is_let_through(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    async with AbsoluteOnlySMSC() as smsc:
        smsc.refuse_all = True  # refuses either form, until its operator fixes it
        path.write_text(config_text(tmp_path, smsc_port=smsc.port))
        cfg = parse_config(path.read_text(), source=str(path), base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail(f"601123600@{DOMAIN}", "Pickup at 14:00"))).error is None
            await gw.until(lambda: gw.states() == ["failed"])
            reason = gw.store.db.conn.execute("SELECT reason FROM messages").fetchone()[0]
            assert reason == "ESME_RINVEXPIRY (0x62)"
            assert refused_for_good(reason) is not None  # its bounce: sending it again as it is fails
            smsc.refuse_all = False
            done = await asyncio.to_thread(smsgw, path, "queue", "retry", "1")
            assert done.returncode == 0, done.stderr
            await gw.until(lambda: gw.states() == ["delivered"], timeout=30)
