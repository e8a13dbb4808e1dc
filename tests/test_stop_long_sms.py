"""A STOP from the phone ends a long SMS still to go to it: its sender hears once, truthfully.

Defect: the opted-out parts of one long SMS were ended one by one, each settling the message at
once, so the bounce was written when the first part ended and said of the others, ending in the same
write, "part 2 being sent": the sender believed half the text reached the phone. Now the parts found
together end together and the reason is said once, "both parts: …" / "all 3 parts: …".

Real daemon (its clock injected), a real SMTP client, the SMPP fake over TCP that sends the MO
"STOP", and an aiosmtpd sink as the relay that catches the bounces.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import parse_config
from gateway.store.settling import OPTED_OUT, _all_alike, _the_rest
from tests.conftest import DOMAIN, Running, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC, HeldSMSC
from tests.test_claim_ahead import count
from tests.test_dsn_wording import dsns, human, recipient_fields
from tests.test_policy import Clock

TWO = "601123461"  # a 2-part bulk SMS
THREE = "601123462"  # a 3-part bulk SMS


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def reasons(gw: Running) -> dict[str, tuple[str, int, str]]:
    """Each message's (state, parts, reason) by its number, as `queue list` shows them."""
    rows = gw.store.db.conn.execute("SELECT recipient, state, parts_total, reason FROM messages").fetchall()
    return {number: (state, total, reason) for number, state, total, reason in rows}


def bounces_by_number(sink: Sink) -> dict[str, list[EmailMessage]]:
    said: dict[str, list[EmailMessage]] = {}
    for _sender, _rcpts, report in dsns(sink):
        number = str(report["Subject"]).rsplit(" ", 1)[-1]
        said.setdefault(number, []).append(report)
    return said


async def stop_from(gw: Running, smsc: HappySMSC | HeldSMSC, number: str) -> None:
    assert await smsc.inject_mo(f"+48{number}", "+48100200300", "STOP") >= 1
    await gw.until(lambda: gw.store.policy.is_opted_out(f"+48{number}"))


async def held_long_sms(gw: Running) -> None:
    """A 2-part and a 3-part bulk SMS written in acme's quiet hours (22:00 on the injected clock), held."""
    await gw.store.write(
        lambda: gw.store.accounts.update_account("acme", quiet_start="21:00", quiet_end="08:00")
    )
    for number, words in ((TWO, 40), (THREE, 80)):
        body = " ".join(f"w{i:03d}" for i in range(words))  # 5 characters a word: 2 and 3 parts
        assert (await gw.send(mail(to(number), body, Precedence="bulk"))).error is None
    assert {n: r[1] for n, r in reasons(gw).items()} == {f"+48{TWO}": 2, f"+48{THREE}": 3}


async def window_opens(gw: Running, clock: Clock, sink: Sink) -> tuple[dict[str, list[EmailMessage]], dict]:
    """08:01 the next morning: what the senders heard (by number) and what `queue list` says."""
    clock.t += 10 * 3600 + 60
    gw.daemon.dispatcher.wake()
    await gw.until(lambda: len(dsns(sink)) == 2)
    await asyncio.sleep(1.0)  # a second bounce for either message would have come by now
    return bounces_by_number(sink), reasons(gw)


def quiet_clock() -> Clock:
    return Clock(datetime.now(ZoneInfo("Europe/Warsaw")).replace(hour=22, minute=0, second=0, microsecond=0))


async def test_a_long_sms_held_for_quiet_hours_and_stopped_by_its_phone_bounces_once_saying_none_went(
    tmp_path: Path,
) -> None:
    clock, sink_port = quiet_clock(), free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path), clock) as gw:
            await held_long_sms(gw)
            await stop_from(gw, smsc, TWO)
            await stop_from(gw, smsc, THREE)
            bounces, stored = await window_opens(gw, clock, sink)
    assert smsc.received == []
    for number in (TWO, THREE):
        state, _total, reason = stored[f"+48{number}"]
        assert state == "failed" and OPTED_OUT in reason and "being sent" not in reason, reason
        [report] = bounces[f"+48{number}"]
        said = human(report)
        assert "the number went on the opt-out list (a STOP, or an admin)" in said, said
        assert "being sent" not in said, said
        # The same refusal at RCPT is `550 5.7.1 … opted out`: 5.0.0 read as a failure of no known cause.
        fields = recipient_fields(report)
        assert fields["Status"] == "5.7.1" and fields["Diagnostic-Code"] is None, fields  # no SMSC's word


async def test_a_held_long_sms_to_a_number_the_admin_opted_out_is_said_once_for_all_its_parts(
    tmp_path: Path,
) -> None:
    # The opt-out the panel adds ends nothing at once: the claim ends the held parts when they come due.
    clock, sink_port = quiet_clock(), free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path), clock) as gw:
            await held_long_sms(gw)
            for number in (TWO, THREE):  # what the panel's opt-out page calls
                await gw.store.write(
                    lambda n=number: gw.store.policy.add_optout(f"+48{n}", word=None, source="admin")
                )
            bounces, stored = await window_opens(gw, clock, sink)
    assert smsc.received == []
    assert stored == {
        f"+48{TWO}": ("failed", 2, f"both parts: {OPTED_OUT}"),
        f"+48{THREE}": ("failed", 3, f"all 3 parts: {OPTED_OUT}"),
    }
    for number, prefix in ((TWO, "both parts: "), (THREE, "all 3 parts: ")):
        [report] = bounces[f"+48{number}"]
        said = human(report)
        assert f"Reason: {prefix}the number went on the opt-out list (a STOP, or an admin)" in said, said
        assert "being sent" not in said and "part 1 of" not in said, said


async def test_a_long_sms_claimed_ahead_of_a_full_window_and_stopped_bounces_once(tmp_path: Path) -> None:
    # The dispatcher's own end of the parts it claimed ahead, not yet sent, when the STOP comes.
    sink_port = free_port()
    async with HeldSMSC() as smsc, smtp_sink(sink_port) as sink:
        text = config_text(tmp_path, smsc_port=smsc.port, relay_port=sink_port).replace(
            "window = 10", "window = 4"
        )
        text = text.replace("response_timeout_seconds = 5", "response_timeout_seconds = 60")
        async with running_gateway(parse_config(text, source="test", base_dir=tmp_path)) as gw:
            others = [to(f"6011000{i:02d}") for i in range(4)]
            assert (await gw.send(mail(others, "Fills the window"), others)).error is None
            await smsc.wait_for(4)  # the window is full, unanswered
            body = " ".join(f"w{i:03d}" for i in range(80))
            assert (await gw.send(mail(to(THREE), body))).error is None
            await gw.until(lambda: count(gw, "state = 'active'") == 7)  # its 3 parts claimed ahead
            await stop_from(gw, smsc, THREE)
            await gw.until(lambda: len(dsns(sink)) == 1)
            smsc.answer(4)
            await gw.until(lambda: count(gw, "state = 'submitted'") == 4)
            await asyncio.sleep(1.0)
            bounces = bounces_by_number(sink)
            stored = reasons(gw)[f"+48{THREE}"]
    assert len(smsc.received) == 4
    assert stored == ("failed", 3, f"all 3 parts: {OPTED_OUT}")
    [report] = bounces[f"+48{THREE}"]
    said = human(report)
    assert "Reason: all 3 parts: the number went on the opt-out list (a STOP, or an admin)" in said, said
    assert "being sent" not in said, said


def test_a_part_sent_before_the_stop_is_still_said_as_sent() -> None:
    # Only a long SMS whose every part ended alike is said once; one part went, and says so.
    rows = [(1, "submitted", None), (2, "failed", OPTED_OUT), (3, "failed", OPTED_OUT)]
    assert _all_alike(rows) is None
    assert _the_rest(rows) == " (part 1 sent, report pending)"
    # An SMSC's refusal keeps "part N of M: " before it, which `gateway.reasons` reads its code after.
    assert (
        _all_alike([(1, "failed", "ESME_RINVDSTADR (0x0B)"), (2, "failed", "ESME_RINVDSTADR (0x0B)")]) is None
    )
