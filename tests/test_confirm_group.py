"""One confirmation for the SMS of one mail that were delivered, not one a number (R-6.3, RFC 3464).

A staff member mailed thirty numbers with confirmations on and got thirty mails. The deliveries of one
mail to one address now make one mail: the plain delivered notice of `dlr_mail = all` names each
number delivered, and the receipt a mail program asked for with NOTIFY=SUCCESS is one report with a
field group a number. The failures of the mail are not in it: they have their one bounce. A delivery
while other SMS of the mail are in flight waits for them up to `HOLD_SECONDS`, as a failure does.

Real peers: a real SMTP client, the daemon (in this process with an injected clock, or as a process
killed with SIGKILL), the simulator's core over SMPP reporting some numbers undeliverable, a real SMTP
server taking what the gateway mails, a real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from gateway.config import parse_config
from gateway.notifygroup import group_notice, group_success_dsn
from gateway.store.outboxgroups import CONFIRM_GROUP_KIND
from smsc.base import ReportStatus
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import FakeSMSC
from tests.test_bounce_group import finals, human, number, sent_once_across_a_sigkill, smsc_id, state_of
from tests.test_dsn_notify import transaction
from tests.test_mail_expiry import Clock
from tests.test_process import smsgw

DELIVERED = [f"601123400@{DOMAIN}", f"601123401@{DOMAIN}", f"601123402@{DOMAIN}"]
UNDELIVERABLE = f"601123413@{DOMAIN}"  # the SMSC takes it and reports it undeliverable
NOTICES = "kind IN ('delivered', 'unreported', 'notify-group') AND mail_from <> ''"


async def every_outcome(gw: Any) -> None:
    """The account on `dlr_mail = all`: a delivered notice for each SMS delivered."""
    await gw.store.write(lambda: gw.store.accounts.update_account("acme", dlr_mail="all"))


@asynccontextmanager
async def confirmed_unsent(path: Path, to: list[str]) -> AsyncIterator[Running]:
    """The daemon on the config it writes at `path`, acme on `dlr_mail = all`, its mail to `to`
    delivered: nothing listens at the relay, so the confirmation of them waits in the outbox."""
    async with FakeSMSC() as smsc:
        text = config_text(path.parent, smsc_port=smsc.port)
        await asyncio.to_thread(path.write_text, text)  # for the CLI
        cfg = parse_config(text, source=str(path), base_dir=path.parent)
        async with running_gateway(cfg) as gw:
            await every_outcome(gw)
            assert (await gw.send(mail(to, "Gate code 4711"))).error is None
            await gw.until(lambda: gw.states() == ["delivered"] * len(to))
            yield gw


def outbound(sink: Any) -> list[tuple[str, EmailMessage]]:
    """Each mail the gateway sent, with its envelope sender."""
    out = []
    for sender, _rcpts, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        out.append((sender, msg))
    return out


def subjects(sink: Any) -> list[str]:
    return sorted(str(msg["Subject"]) for _sender, msg in outbound(sink))


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_the_deliveries_of_one_mail_make_one_notice_naming_each_number(tmp_path: Path) -> None:
    # Under `dlr_mail = all`: one notice for the three delivered, one bounce for the one that failed.
    sink_port = free_port()
    to = [DELIVERED[0], UNDELIVERABLE, DELIVERED[1], DELIVERED[2]]
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            await every_outcome(gw)
            assert (await gw.send(mail(to, "Meeting moved to 15:00", subject="Meeting"))).error is None
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "delivered", "delivered", "failed"])
            await sink.wait(2, timeout=30)
            await asyncio.sleep(0.5)  # a third mail would be queued by now
            conn = gw.store.db.conn
            [(kind, message_ref, bounced)] = conn.execute(
                f"SELECT kind, message_ref, bounced FROM outbox WHERE {NOTICES}"
            ).fetchall()
    assert subjects(sink) == ["SMS delivered to 3 numbers", f"Undelivered SMS to {number(UNDELIVERABLE)}"]
    [(sender, notice)] = [(s, m) for s, m in outbound(sink) if m.get_content_type() == "text/plain"]
    assert sender == cfg.mail.from_address and notice["To"] == STAFF and notice["In-Reply-To"]
    assert kind == CONFIRM_GROUP_KIND and message_ref is None and len(bounced.split(",")) == 3
    text = text_of(notice)
    assert text.startswith("Your SMS reached 3 of the numbers your mail was sent to")
    for address in DELIVERED:  # each in the words of the notice of one
        assert f"Your SMS to {number(address)} was delivered (1 part(s))." in text, text
    assert number(UNDELIVERABLE) not in text  # its bounce names it


async def test_notify_success_receipts_of_one_mail_make_one_report(tmp_path: Path) -> None:
    # A mail program's NOTIFY=SUCCESS,FAILURE on every RCPT, the account on its default (failures):
    # one receipt with a field group a delivered number, and the failure's bounce apart.
    sink_port = free_port()
    to = [DELIVERED[0], UNDELIVERABLE, DELIVERED[1]]
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [(address, ["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;{address}"]) for address in to]
            body = mail(to, "Gate code 4711", subject="Gate").as_bytes()
            said = await asyncio.to_thread(transaction, gw.port, ["ENVID=gate-1"], rcpts, body)
            assert said["DATA"][0] == 250, said
            await gw.until(lambda: sorted(gw.states()) == ["delivered", "delivered", "failed"])
            await sink.wait(2, timeout=30)
            await asyncio.sleep(0.5)
    assert subjects(sink) == ["SMS delivered to 2 numbers", f"Undelivered SMS to {number(UNDELIVERABLE)}"]
    [(sender, receipt)] = [(s, m) for s, m in outbound(sink) if "delivered to" in str(m["Subject"])]
    assert sender == "<>" and receipt.get_content_type() == "multipart/report"  # RFC 3461 6.2
    assert finals(receipt) == [DELIVERED[0], DELIVERED[1]]
    (status,) = [p for p in receipt.walk() if p.get_content_type() == "message/delivery-status"]
    per_message, *blocks = status.get_payload()
    assert str(per_message["Original-Envelope-Id"]) == "gate-1"
    assert [(str(b["Action"]), str(b["Status"])) for b in blocks] == [("delivered", "2.0.0")] * 2
    assert [str(b["Original-Recipient"]) for b in blocks] == [f"rfc822; {a}" for a in DELIVERED[:2]]
    text = human(receipt)
    assert all(f"Your SMS to {number(a)} was delivered" in text for a in DELIVERED[:2]), text
    assert number(UNDELIVERABLE) not in text and "Gate code 4711" not in text  # no content with a success


async def test_a_confirmation_waits_for_the_sms_in_flight_and_goes_when_the_last_ends(tmp_path: Path) -> None:
    # The reports come when the test injects them (the simulator's own would come in an hour).
    sink_port, clock = free_port(), Clock()
    first, second = DELIVERED[:2]
    async with FakeSMSC(dlr_delay_seconds=3600) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg, clock) as gw:
            await every_outcome(gw)
            conn = gw.store.db.conn
            assert (await gw.send(mail([first, second], "Pickup at 14:00"))).error is None
            await gw.until(lambda: smsc_id(conn, first) is not None and smsc_id(conn, second) is not None)
            assert await smsc.inject_report(str(smsc_id(conn, first)), ReportStatus.DELIVERED)
            await gw.until(lambda: state_of(conn, first) == "delivered")
            rows = f"SELECT kind, state, attempts, next_attempt_at FROM outbox WHERE {NOTICES}"
            await gw.until(lambda: len(conn.execute(rows).fetchall()) == 1)
            [(kind, state, attempts, due)] = conn.execute(rows).fetchall()
            assert (kind, state, attempts) == ("delivered", "queued", 0) and due > clock()  # held
            assert sink.messages == []
            assert await smsc.inject_report(str(smsc_id(conn, second)), ReportStatus.DELIVERED)
            await sink.wait(1, timeout=30)  # the clock did not move: the last delivery let it go
            await asyncio.sleep(0.5)
    [(_sender, notice)] = outbound(sink)
    assert str(notice["Subject"]) == "SMS delivered to 2 numbers"
    assert all(number(a) in text_of(notice) for a in (first, second))


async def test_a_daemon_killed_while_sending_the_confirmation_sends_it_once_naming_each_number(
    tmp_path: Path,
) -> None:
    async with FakeSMSC() as smsc:
        sink = await sent_once_across_a_sigkill(
            tmp_path,
            smsc.port,
            DELIVERED,
            ended=["delivered"] * 3,
            kinds=NOTICES,
            what="notice",
            first=("account", "set", "acme", "--dlr-mail", "all"),
        )
    [(_sender, notice)] = outbound(sink)  # once, and every number in it
    assert str(notice["Subject"]) == "SMS delivered to 3 numbers"
    assert all(number(a) in text_of(notice) for a in DELIVERED)


async def test_erasing_one_number_of_a_queued_confirmation_leaves_the_others_in_it(tmp_path: Path) -> None:
    # A confirmation of several numbers is about its mail, not one SMS: `smsgw phone forget` finds it
    # by what it says, takes the phone's number out, and it still goes to tell of the others.
    path = tmp_path / "config.toml"
    kept, erased = DELIVERED[:2]
    async with confirmed_unsent(path, [kept, erased]) as gw:
        conn = gw.store.db.conn
        rows = f"SELECT kind, state FROM outbox WHERE {NOTICES}"
        await gw.until(lambda: conn.execute(rows).fetchall() == [(CONFIRM_GROUP_KIND, "queued")])
        forgot = await asyncio.to_thread(smsgw, path, "phone", "forget", number(erased), "--yes")
        [(state, content)] = conn.execute(f"SELECT state, content FROM outbox WHERE {NOTICES}")
    assert forgot.returncode == 0, forgot.stderr
    assert "  erased: its number in 1 outbox mail naming other numbers too" in forgot.stdout.splitlines()
    assert state == "queued"
    assert number(erased)[3:].encode() not in content and number(kept).encode() in content


def test_a_confirmation_naming_an_unreported_sms_says_sent_not_delivered() -> None:
    # An SMS the SMSC took whose report never came is confirmed as the notice of one confirms it:
    # sent, delivery unconfirmed; the Subject of the mail naming it claims no delivery either.
    def info(id_: int, state: str) -> dict[str, Any]:
        recipient = number(DELIVERED[id_])
        return dict(id=id_, recipient=recipient, parts_total=1, state=state, reason=None, created_at=0.0,
                    header_message_id="<m1@acme.example>", mail_from=STAFF, rcpt=DELIVERED[id_])  # fmt: skip

    where = dict(sender="smsgw@gw.example", rcpt=STAFF)
    both = [info(0, "delivered"), info(1, "unreported")]
    notice = message_from_bytes(
        group_notice(both, domain="gw.example", now=0.0, **where), policy=policy.default
    )
    receipt = message_from_bytes(
        group_success_dsn(both, reporting_mta="gw.example", domain=DOMAIN, now=0.0, **where),
        policy=policy.default,
    )
    assert isinstance(notice, EmailMessage) and isinstance(receipt, EmailMessage)
    assert str(notice["Subject"]) == str(receipt["Subject"]) == "SMS sent to 2 numbers"
    assert "its delivery is unconfirmed" in text_of(notice)
    (status,) = [p for p in receipt.walk() if p.get_content_type() == "message/delivery-status"]
    assert [str(b["Action"]) for b in status.get_payload()[1:]] == ["delivered", "relayed"]
    delivered = [info(0, "delivered"), info(2, "delivered")]
    alike = message_from_bytes(
        group_notice(delivered, domain="gw.example", now=0.0, **where), policy=policy.default
    )
    assert str(alike["Subject"]) == "SMS delivered to 2 numbers"
