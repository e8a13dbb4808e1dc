"""Who hears that a bounced SMS reached the phone after all (a copy accepted late, then DELIVRD).

Whoever was told of the failure, and whoever a delivery is mailed to, as they asked, one mail each:
a sender with NOTIFY=SUCCESS (no FAILURE: not bounced) had nothing, though it asked for a success
DSN; with NOTIFY=SUCCESS,FAILURE it had a plain notice in place of that DSN. A gateway set to Polish
says the line that takes the bounce back in Polish.

A real gateway on 127.0.0.1 (real SMTP client with DSN options), a scripted SMPP SMSC on TCP, the
real SQLite file and an SMTP sink.
"""

from __future__ import annotations

import asyncio
import smtplib
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
import structlog

from gateway.bouncewords import AFTER_FAILURE
from smsc.base import ReportStatus
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_late_copy_of_ended_part import RefusedCopySMSC
from tests.test_unanswered_copies import MUTE, part_row, slow_link


def _send(port: int, msg: Message, rcpt: str, notify: str | None) -> None:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        client.ehlo()
        client.send_message(msg, STAFF, [rcpt], rcpt_options=[f"NOTIFY={notify}"] if notify else [])
    finally:
        client.quit()


def _read(raw: bytes) -> tuple[str, str]:
    """The mail's report type ("" for a plain mail) and its first text a person reads."""
    msg = message_from_bytes(raw)
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return msg.get_param("report-type") or "", str(text.get_payload(decode=True).decode())


@pytest.mark.parametrize(
    ("notify", "lang", "mails"),
    [
        ("SUCCESS", "en", [("delivery-status", False)]),
        ("SUCCESS,FAILURE", "en", [("delivery-status", True)]),
        (None, "pl", [("", True)]),
    ],
)
async def test_the_notice_goes_as_asked(
    tmp_path: Path, notify: str | None, lang: str, mails: list[tuple[str, bool]]
) -> None:
    port, sink_port = free_port(), free_port()
    with structlog.testing.capture_logs() as logs:
        async with (
            RefusedCopySMSC(port=port) as smsc,
            smtp_sink(sink_port) as sink,
            running_gateway(slow_link(tmp_path, port, 3.0, relay_port=sink_port, language=lang)) as gw,
        ):
            msg = mail(f"{MUTE}@{DOMAIN}", "Late after the end")
            await asyncio.to_thread(_send, gw.port, msg, f"{MUTE}@{DOMAIN}", notify)
            db = gw.store.db.conn
            await gw.until(lambda: part_row(gw)[0] == "failed", timeout=10)
            bounces = 0 if notify == "SUCCESS" else 1
            await gw.until(lambda: db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == bounces)
            await sink.wait(bounces)
            smsc.answer_first("FIRST1")
            await gw.until(lambda: any(e["event"] == "mt.late_accept_ended" for e in logs), timeout=10)
            await smsc.report("FIRST1", ReportStatus.DELIVERED)
            await gw.until(lambda: db.execute("SELECT state FROM messages").fetchone()[0] == "delivered")
            await sink.wait(bounces + len(mails))
            got = [_read(raw) for _frm, _to, raw in sink.messages[bounces:]]
            assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == bounces + len(mails)
    assert len(got) == len(mails), got
    for (kind, text), (want_kind, taken_back) in zip(got, mails, strict=True):
        assert kind == want_kind, (kind, text)
        assert text.startswith(AFTER_FAILURE(lang)) == taken_back, text  # type: ignore[arg-type]
