"""What the sender is told: a cancel bounces (R-8.1), a held notice says when a mail's own validity
ends first, a Polish bounce has no English sentence, NOTIFY without FAILURE gets no bounce (RFC
3461), a bounce says what to do and names an SMSC code only when the SMSC gave one, and the info@
answer threads with its request.

A real smtplib client mails the running daemon, an SMPP fake over TCP takes (or fails) what goes,
an aiosmtpd sink is the relay and catches every mail out, `smsgw` runs as another process on the
same store, and the panel is the app over the daemon's own store.
"""

from __future__ import annotations

import asyncio
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping
from gateway.claims import OPTED_OUT
from gateway.config import Config, parse_config
from gateway.outcomes import NO_ROUTE_NOTE
from gateway.reasons import human_reason
from gateway.store.admin import CANCELLED_BY_ADMIN
from gateway.store.partnotes import MAYBE_SENT_EXPIRED, NEVER_SENT_EXPIRED
from gateway.store.queue import NO_RECEIPT, UNCONFIRMED_EXPIRED
from gateway.store.settling import NO_REPORT, _the_rest
from tests.conftest import (
    DOMAIN,
    STAFF,
    Sink,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import FakeSMSC, HappySMSC
from tests.test_dsn_notify import report_fields, transaction
from tests.test_mail_expiry import Clock, expiry_date
from tests.test_process import smsgw
from tests.test_quiet_hours_view import held_newsletter, window
from tests.web_helpers import as_user, csrf_of, password_hash, web_context

OFFICE = "office@acme.example"


def to(number: str) -> str:
    return f"{number}@{DOMAIN}"


def configured(tmp_path: Path, smsc_port: int, relay_port: int, **gateway: Any) -> tuple[Path, Config]:
    """The config as a file too: `smsgw` (another process) reads it."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, relay_port=relay_port, **gateway))
    return path, parse_config(path.read_text(), source=str(path), base_dir=tmp_path)


def parsed(sink: Sink) -> list[tuple[str, list[str], EmailMessage]]:
    out = []
    for sender, rcpts, raw in sink.messages:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        out.append((sender, rcpts, msg))
    return out


def dsns(sink: Sink) -> list[tuple[str, list[str], EmailMessage]]:
    return [m for m in parsed(sink) if m[2].get_content_type() == "multipart/report"]


def human(report: EmailMessage) -> str:
    part = report.get_payload()[0]  # the part a person reads, first in the report
    assert isinstance(part, EmailMessage)
    # 7bit or quoted-printable: read from the wire, its lines end as SMTP carries them.
    return str(part.get_content()).replace("\r\n", "\n")


def recipient_fields(report: EmailMessage) -> Message:
    return report_fields(report)[1]


# ---- 1. a cancel tells the sender, once ------------------------------------------------------------


async def test_queue_cancel_of_a_held_bulk_sms_bounces_once_to_its_sender(tmp_path: Path) -> None:
    start, end = window(2)
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        path, cfg = configured(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            held = await held_newsletter(gw, smsc, start, end)
            done = await asyncio.to_thread(smsgw, path, "queue", "cancel", str(held))
            assert done.returncode == 0, done.stderr
            await gw.until(lambda: len(dsns(sink)) == 1)
            again = await asyncio.to_thread(smsgw, path, "queue", "cancel", str(held))
            await asyncio.sleep(1.5)  # the outbox worker looks for another process's commit twice a second
            bounces = dsns(sink)
            state = gw.store.admin.message_info(held)["state"]
    assert again.returncode == 1 and "nothing cancelled" in again.stderr, again.stderr
    assert state == "cancelled"
    [(sender, rcpts, report)] = bounces
    assert sender in ("", "<>") and rcpts == [STAFF]  # a DSN's empty envelope sender
    assert str(report["Subject"]) == "Undelivered SMS to +48601123456"
    assert recipient_fields(report)["Status"] == "5.0.0"  # the operator's one-off act, no policy refusal
    text = human(report)
    assert text.startswith(
        "Your SMS to +48601123456 was cancelled.\n\nReason: cancelled by the administrator\n"
    )
    assert "What to do: it was not sent; send the mail again if it is still needed." in text
    fields = recipient_fields(report)
    assert fields["Action"] == "failed" and fields["Status"] == "5.0.0"
    assert fields["Diagnostic-Code"] is None  # the gateway's own verdict, not the SMSC's


async def test_panel_cancel_bounces_to_the_accounts_notify_address_and_not_to_a_sender_who_said_never(
    tmp_path: Path,
) -> None:
    # The account's rule sends failures to its notify address; the sender asked NOTIFY=NEVER, which
    # speaks for the sender alone: the office still hears of the cancel, the sender does not.
    start, end = window(2)
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        _path, cfg = configured(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            store = gw.store
            await store.write(lambda: store.accounts.update_account("acme", notify_address=OFFICE))
            await store.write(lambda: store.accounts.update_account("acme", quiet_start=start, quiet_end=end))
            bulk = mail(to("601123456"), "Newsletter", Precedence="bulk").as_bytes()
            said = await asyncio.to_thread(
                transaction, gw.port, [], [(to("601123456"), ["NOTIFY=NEVER"])], bulk
            )
            assert said["DATA"][0] == 250, said
            (held,) = [r[0] for r in store.db.conn.execute("SELECT id FROM messages")]
            await store.write(
                lambda: store.accounts.set_user(STAFF, password_hash=password_hash(), role="operator")
            )
            web = web_context(tmp_path, store)
            try:
                async with as_user(web, STAFF) as c:
                    token = csrf_of((await c.get(f"/messages/{held}")).text)
                    r = await c.post(f"/messages/{held}/cancel", data={"csrf": token, "confirm": "yes"})
                    assert r.status_code == 303, r.text[-500:]
            finally:
                web.counts.close()
            await gw.until(lambda: len(dsns(sink)) == 1)
            await asyncio.sleep(1.0)
            bounces = dsns(sink)
    [(_sender, rcpts, report)] = bounces
    assert rcpts == [OFFICE]
    assert "cancelled by the administrator" in human(report)


# ---- 2. a held notice whose mail expires before the quiet hours end ------------------------------------


async def test_a_held_notice_says_the_sms_expires_unsent_when_the_mail_expires_before_the_hours_end(
    tmp_path: Path,
) -> None:
    start, end = window(2)
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        _path, cfg = configured(tmp_path, smsc.port, sink_port)
        async with running_gateway(cfg) as gw:
            await gw.store.write(
                lambda: gw.store.accounts.update_account("acme", quiet_start=start, quiet_end=end)
            )
            expires = formatdate(time.time() + 600)
            msg = mail(to("601123481"), "Bulk Q", subject="Biuletyn Q", Precedence="bulk", Expires=expires)
            assert (await gw.send(msg)).error is None
            await sink.wait(1)
            [(_s, _r, notice)] = parsed(sink)
    assert str(notice["Subject"]).startswith("SMS held until ")
    text = str(notice.get_content())
    assert "will be sent at" not in text, text
    assert re.search(r"the SMS will expire unsent at \d{4}-\d\d-\d\d \d\d:\d\d", text), text


# ---- 3. Polish reasons -------------------------------------------------------------------------------------


def every_own_reason() -> list[str]:
    """Every reason of its own the gateway stores for a message that a bounce or notice may word."""
    rows = [(1, "failed", "x"), (2, "delivered", None), (3, "submitted", None), (4, "submitted", None)]
    rest = _the_rest([*rows, (5, "unreported", None), (6, "active", None), (7, "queued", None)])
    return [
        NEVER_SENT_EXPIRED,
        MAYBE_SENT_EXPIRED,
        UNCONFIRMED_EXPIRED,
        NO_RECEIPT,
        NO_REPORT,
        OPTED_OUT,
        CANCELLED_BY_ADMIN,
        NO_ROUTE_NOTE.format("+48601123456"),
        "sent, delivery of part 2 of 3 unconfirmed: the SMSC sent no delivery report",
        "sent, delivery of parts 2, 3 of 4 unconfirmed: the SMSC sent no delivery report",
        f"part 1 of 7: {NEVER_SENT_EXPIRED}; part 2 of 7: {MAYBE_SENT_EXPIRED}{rest}",
        f"part 1 of 2: UNDELIV err:001{_the_rest([(1, 'failed', 'x'), (2, 'submitted', None)])}",
        f"part 1 of 3: {OPTED_OUT}; part 2 of 3: {CANCELLED_BY_ADMIN} (parts 2, 3 not sent)",
    ]


# Words that may stay in a Polish text: codes, names and Polish words made of ASCII letters alone.
_KEPT = {"SMS", "SMSC", "STOP", "UNDELIV", "err", "nie", "go", "po", "lub", "ani", "bez", "raport", "numer"}


@pytest.mark.parametrize("reason", every_own_reason())
def test_every_reason_of_the_gateways_own_is_worded_in_polish(reason: str) -> None:
    said = human_reason(reason, "pl")
    english = [w for w in re.findall(r"[^\W\d_]+", said) if w not in _KEPT and w.isascii()]
    # A Polish sentence has Polish words of plain letters too; an English one has these.
    assert not {w.lower() for w in english} & {
        "the", "sent", "part", "parts", "of", "delivery", "report", "expired", "before", "it", "could",
        "be", "unknown", "phone", "answered", "with", "word", "after", "this", "mail", "was", "accepted",
        "not", "cancelled", "by", "admin", "administrator", "link", "serves", "any", "more", "took",
        "within", "its", "validity", "and", "day", "pending", "came", "being", "delivered", "unconfirmed",
        "period", "earlier", "attempt", "went", "unanswered", "may", "have", "reached", "message", "id",
        "no", "can", "matched", "opt", "out", "prefixes", "changed", "so",
    }, said  # fmt: skip


async def test_a_polish_bounce_of_an_expired_sms_has_no_english_sentence_nor_smsc_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(housekeeping, "EXPIRY_INTERVAL", 0.05)
    sink_port = free_port()
    clock = Clock()
    async with smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=free_port(), relay_port=sink_port, language="pl")
        async with running_gateway(cfg, clock) as gw:
            at = int(clock()) + 2 * 3600
            msg = mail(to("601123411"), "Kod do bramy: 4711", Expiry_Date=expiry_date(at))
            assert (await gw.send(msg)).error is None
            clock.skew = at - time.time() + 1
            await gw.until(lambda: gw.states() == ["expired"])
            await sink.wait(1)
            [(_s, _r, report)] = dsns(sink)
    text = human(report)
    # No SMSC listens: the cause is the link, in Polish as the rest.
    cause = "okres ważności minął, gdy żadne połączenie z operatorem obsługujące ten numer nie działało"
    assert f"Przyczyna: {cause}\n" in text, text
    assert "Co zrobić: bramka przez cały okres ważności SMS-a nie miała działającego połączenia" in text
    assert "validity" not in text and "expired" not in text
    fields = recipient_fields(report)
    assert fields["Status"] == "5.4.7" and fields["Diagnostic-Code"] is None


# ---- 4. NOTIFY without FAILURE; 5. advice and Diagnostic-Code ----------------------------------------------


async def test_notify_success_or_delay_alone_gets_no_bounce_and_an_smsc_failure_says_what_to_do(
    tmp_path: Path,
) -> None:
    # Then, with a notify address on the account, NOTIFY=SUCCESS still leaves the account's copy to it:
    # NOTIFY speaks for the envelope sender alone.
    sink_port = free_port()
    async with FakeSMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            rcpts = [
                (to("601123413"), ["NOTIFY=SUCCESS"]),
                (to("601123513"), ["NOTIFY=DELAY"]),
                (to("601123613"), []),
            ]
            body = mail(to("601123413"), "Meeting at 10", subject="Meeting").as_bytes()
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body)
            assert said["DATA"][0] == 250, said
            await gw.until(lambda: gw.states() == ["failed"] * 3)
            await sink.wait(1)
            await asyncio.sleep(1.0)  # a bounce for the others would be out by now
            first = dsns(sink)
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", notify_address=OFFICE))
            rcpts = [(to("601123713"), ["NOTIFY=SUCCESS"])]
            said = await asyncio.to_thread(transaction, gw.port, [], rcpts, body)
            assert said["DATA"][0] == 250, said
            await gw.until(lambda: gw.states() == ["failed"] * 4)
            await sink.wait(2)
            await asyncio.sleep(1.0)
            then = dsns(sink)[len(first) :]
    [(_s, rcpts_out, report)] = first
    assert rcpts_out == [STAFF]
    assert str(report["Subject"]) == "Undelivered SMS to +48601123613"  # the one that asked nothing
    text = human(report)
    assert "What to do: the phone may be off or unable to take SMS; try again later." in text
    assert str(recipient_fields(report)["Diagnostic-Code"]).startswith("X-SMSC; ")  # the SMSC's own reason
    assert [r for _s, r, _m in then] == [[OFFICE]]


# ---- 5c. the info@ answer threads with its request ---------------------------------------------------------


async def test_the_info_answer_is_threaded_with_the_request(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port)
        async with running_gateway(cfg) as gw:
            ask = mail(to("info"), "", Message_ID="<ask-1@acme.example>")
            assert (await gw.send(ask, [to("info")])).error is None
            await sink.wait(1)
            [(_s, _r, answer)] = parsed(sink)
    assert answer["In-Reply-To"] == "<ask-1@acme.example>"
    assert answer["References"] == "<ask-1@acme.example>"
