"""A second mail under the same subject to a phone goes as its text alone only when an SMS under that
subject reached the phone (R-1.3 and the conversations' answers).

The conversation is opened when the first mail is accepted, whatever becomes of its SMS. When that
SMS was refused at submit, failed (the SMSC's report) or expired unsent, the phone never saw the
subject, and the sender's resend, what the bounce tells them to do, must carry it: it went as the
bare text, "subject not sent (an answer in a conversation)". Once the first SMS was delivered, the
second still goes without the subject.

A real daemon with its built-in SMSC simulator (numbers ending 0000 refused at submit, 13 failed by
report), mail through a real SMTP client, bounces to a real SMTP sink; for expiry an SMSC that
comes up only after the first SMS expired in the queue, on the daemon's injected clock.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping
from gateway.conversations.answers import SUBJECT_DROPPED
from tests.conftest import DOMAIN, free_port, mail, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_mail_expiry import Clock, expiry_date
from tests.test_two_way import two_way_config

SUBJECT = "Spotkanie"
FIRST = "Czy 10:00 pasuje?"
AGAIN = "Czy 10:00 pasuje? (wysyłam ponownie)"


def final(gw: Any, number: str) -> str | None:
    """The state of the first SMS to `number` once it is final, else None."""
    row = gw.store.db.conn.execute(
        "SELECT state FROM messages WHERE recipient = ? ORDER BY id LIMIT 1", (f"+48{number}",)
    ).fetchone()
    return row[0] if row and row[0] in ("delivered", "failed", "expired", "cancelled") else None


def removed_of_last(gw: Any) -> str:
    """What was cut from the newest mail, as `queue show` says it."""
    (removed,) = gw.store.db.conn.execute("SELECT removed FROM emails ORDER BY id DESC LIMIT 1").fetchone()
    return removed or ""


@pytest.mark.parametrize(
    ("number", "state", "subject", "second"),
    [
        ("601120000", "failed", f"RE: {SUBJECT}", f"{SUBJECT}: {AGAIN}"),  # refused at submit
        ("601123413", "failed", f"RE: {SUBJECT}", f"{SUBJECT}: {AGAIN}"),  # the SMSC's report: failed
        ("601123401", "delivered", f"RE: {SUBJECT}", AGAIN),  # the phone saw the subject: the answer alone
        # A new mail, not a Reply, under the same subject (a helpdesk's, an alert's): R-1.3's subject
        # first. It went as the text alone, and from its second SMS on the phone lost the topic.
        ("601123402", "delivered", SUBJECT, f"{SUBJECT}: {AGAIN}"),
    ],
    ids=["refused", "failed-report", "delivered", "delivered-new-mail"],
)
async def test_the_second_sms_carries_the_subject_unless_the_first_reached_the_phone(
    tmp_path: Path, number: str, state: str, subject: str, second: str
) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core

        def texts() -> list[str]:
            return [str(r["text"]) for r in core.records if str(r["destination"]).endswith(number)]

        assert (await gw.send(mail(f"{number}@{DOMAIN}", body=FIRST, subject=SUBJECT))).error is None
        await gw.until(lambda: final(gw, number) is not None)
        assert final(gw, number) == state
        assert texts() == [f"{SUBJECT}: {FIRST}"]
        assert (await gw.send(mail(f"{number}@{DOMAIN}", body=AGAIN, subject=subject))).error is None
        await gw.until(lambda: len(texts()) == 2)
        assert texts()[1] == second
        assert (SUBJECT_DROPPED in removed_of_last(gw)) == (second == AGAIN)


async def test_a_resend_after_the_first_sms_expired_unsent_carries_the_subject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No SMSC listens: the first SMS waits, and expires at its mail's Expiry-Date, two hours on the
    # injected clock. The SMSC comes up after that, and the resend reaches it.
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    relay, port, number = free_port(), free_port(), "601123402"
    clock = Clock()
    async with smtp_sink(relay):
        cfg = make_config(tmp_path, smsc_port=port, relay_port=relay)
        async with running_gateway(cfg, clock) as gw:
            at = int(clock()) + 2 * 3600
            first = mail(f"{number}@{DOMAIN}", body=FIRST, subject=SUBJECT, Expiry_Date=expiry_date(at))
            assert (await gw.send(first)).error is None
            clock.skew = at - time.time() + 1
            await gw.until(lambda: final(gw, number) == "expired")
            async with HappySMSC(port=port) as smsc:
                assert (await gw.send(mail(f"{number}@{DOMAIN}", body=AGAIN, subject=SUBJECT))).error is None
                [sms] = await smsc.wait_for(1, timeout=20)
            assert sms.text == f"{SUBJECT}: {AGAIN}"
            assert SUBJECT_DROPPED not in removed_of_last(gw)
