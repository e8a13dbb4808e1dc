"""Fault matrix rows F15 and F16 with a running gateway: automatic mail is recorded, never sent.

An out-of-office reply, an Outlook recall known only by its TNEF class, the Precedence values of
automatic mail, a DSN and an MDN are each answered 250 (no bounce loop), kept for audit, and give
no SMS. A later human mail is the marker each test waits for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import STAFF, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_faults import to


async def test_automatic_mail_is_recorded_never_sent(tmp_path: Path) -> None:
    # F16: an auto-reply gets 250 (no bounce loop) but produces no SMS; it is kept for audit.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        res = await gw.send(mail(to("601123456"), "I am out of office", Auto_Submitted="auto-replied"))
        assert res.error is None
        # A later human mail is the marker: an SMS for the auto-reply would be queued before it.
        await gw.send(mail(to("601123457"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Marker"]
        row = gw.store.db.conn.execute("SELECT automatic FROM emails ORDER BY id").fetchone()
        assert row is not None and "auto" in row[0].lower()


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "emails"


def _corpus(name: str, *, drop: str | None = None) -> bytes:
    """A corpus mail as received, optionally without one header (a sign some senders leave out)."""
    raw = (CORPUS / name).read_bytes()
    if drop is None:
        return raw
    head, sep, body = raw.partition(b"\n\n")
    lines = [ln for ln in head.split(b"\n") if not ln.lower().startswith(drop.lower().encode() + b":")]
    assert len(lines) < len(head.split(b"\n")), f"{name} has no {drop}"
    return b"\n".join(lines) + sep + body


def _recall_with_tnef() -> bytes:
    """An Outlook recall as Exchange sends it to SMTP, from a French Outlook: the MAPI class in
    winmail.dat is its only sign the gateway knows (the wording is in no language it reads)."""
    from tests.test_intake import multipart, part, tnef_blob, winmail

    raw = multipart(
        "mixed",
        part("text/plain", "Anna Nowak souhaite rappeler le message << Offer >>."),
        winmail(tnef_blob("IPM.Outlook.Recall")),
        subject="Recall: Offer",
    )
    return raw.replace(b"From: Jan <jan@example.com>", f"From: {STAFF}".encode())


def _headed(header: str) -> bytes:
    msg = mail(to("601123456"), "Thank you for your message, we will answer soon")
    name, _, value = header.partition(": ")
    msg[name] = value
    return msg.as_bytes()


@pytest.mark.parametrize(
    "kind",
    [
        "tnef recall",
        "Precedence: junk",
        "Precedence: list",
        "Precedence: auto_reply",
        "bounce_flanker_office365_ndr.eml",
        "bounce_flanker_mailbox_full.eml",
        "bounce_flanker_mailbox_full.eml without Auto-Submitted",
        "flanker_mdn_read_receipt.eml",
    ],
)
async def test_recalls_reports_and_automatic_mail_give_no_sms(tmp_path: Path, kind: str) -> None:
    # F15 / F16 beyond `Auto-Submitted: auto-replied`: an Outlook recall known only by its TNEF
    # class, the Precedence values of automatic mail, a DSN (multipart/report; also one without
    # Auto-Submitted, so that the report type alone must tell it), an MDN. Each is answered 250
    # (no bounce loop), recorded as automatic, and sends nothing.
    if kind == "tnef recall":
        raw = _recall_with_tnef()
    elif kind.startswith("Precedence"):
        raw = _headed(kind)
    elif kind.endswith(" without Auto-Submitted"):
        raw = _corpus(kind.split()[0], drop="Auto-Submitted")
    else:
        raw = _corpus(kind)
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert (await gw.send(raw, [to("601123456")])).error is None
        await gw.send(mail(to("601123457"), "Marker"))
        await smsc.wait_until(lambda: any(s.text == "Marker" for s in smsc.received))
        assert [s.text for s in smsc.received] == ["Marker"]
        rows = gw.store.db.conn.execute("SELECT automatic FROM emails ORDER BY id").fetchall()
        assert len(rows) == 2 and rows[0][0] and rows[1][0] is None, rows
