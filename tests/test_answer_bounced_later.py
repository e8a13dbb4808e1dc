"""A phone's answer whose mail the relay took (250) and the recipient's server bounced later is
handled as a refusal at the session: the answer mail fails with the bounce's reason, its copy goes to
the fallback address once, the MO's note says why, and the forward of the bounce names the answer.

The bounce came back to the answer mail's envelope sender and went to the fallback address as any
bounce ("it was not sent as SMS"), naming neither the answer, its phone nor its user; the answer
stayed `mailed` in `smsgw mo list` and the panel, and its copy never went. Real mail over SMTP, the
built-in simulator over SMPP injecting the phone's answer, a real SMTP sink for the relay, the
bounce delivered to the gateway's relay port as the smarthost delivers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.conftest import STAFF, Running, Sink, free_port, running_gateway, smtp_sink
from tests.test_bounces import delivered, parsed
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import mo_row, outbox, sms_and_answer


def dsn(answer_id: str, own_id: str) -> bytes:
    """The recipient's server's DSN of the answer mail, quoting it whole, to the gateway's From."""
    return (
        "From: MAILER-DAEMON@mx.acme.example\r\nTo: smsgw@sms.example.com\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {own_id}\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered: mailbox full.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {STAFF}\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: +48601222222@sms.example.com\r\nTo: {STAFF}\r\nSubject: Re: Spotkanie\r\n"
        f"Message-ID: {answer_id}\r\n\r\nTak, bede o 10:00\r\n--b--\r\n"
    ).encode()


def body(raw: bytes) -> str:
    return str(parsed(raw).get_body(("plain",)).get_content())


async def answered(gw: Any, relay: Any) -> str:
    """The phone's answer mailed to its user and taken by the relay: its Message-ID."""
    await sms_and_answer(gw)
    await gw.until(lambda: outbox(gw) == [("reply", STAFF, "sent")])
    await relay.wait(1)
    return str(parsed(relay.messages[0][2])["Message-ID"]).strip()


@asynccontextmanager
async def answer_mailed(tmp_path: Path) -> AsyncIterator[tuple[Running, Sink, str]]:
    """The gateway of `own_config` and its relay, the phone's answer mailed through them: the gateway,
    the relay and the answer mail's Message-ID."""
    port = free_port()
    async with smtp_sink(port) as relay, running_gateway(own_config(tmp_path, "smpp", port)) as gw:
        yield gw, relay, await answered(gw, relay)


async def test_a_later_bounce_of_an_answer_mail_sends_its_copy_once_and_names_it(tmp_path: Path) -> None:
    async with answer_mailed(tmp_path) as (gw, relay, answer_id):
        sender = gw.config.mail.from_address
        first = await delivered(gw.port, dsn(answer_id, "<dsn1@mx.acme.example>"), rcpt=sender)
        assert first.startswith("250 "), first
        await gw.until(lambda: len(outbox(gw)) == 3)
        kinds = [(kind, rcpt) for kind, rcpt, _ in outbox(gw)]
        assert kinds == [("reply", STAFF), ("reply-fallback", FALLBACK), ("bounce-forward", FALLBACK)]
        assert outbox(gw)[0][2] == "failed"
        said = (
            f"the mail to {STAFF} bounced after the mail relay took it (5.2.2 smtp; 552 5.2.2 Mailbox full)"
        )
        assert mo_row(gw) == ("fallback", f"{said}; sent to {FALLBACK}")
        # A second bounce of the same mail (another hop's): named too, no second copy.
        second = await delivered(gw.port, dsn(answer_id, "<dsn2@mx.acme.example>"), rcpt=sender)
        assert second.startswith("250 "), second
        await gw.until(lambda: len(outbox(gw)) == 4)
        assert [kind for kind, *_ in outbox(gw)].count("reply-fallback") == 1
        await relay.wait(4)
        mails: dict[str, list[Any]] = {}
        for *_, raw in relay.messages[1:]:
            mails.setdefault(parsed(raw)["Subject"].split(":")[0], []).append(raw)
        copy, forwards = mails.pop(next(s for s in mails if s.startswith("SMS from"))), mails
    assert f"[Not delivered: {said}. Sent to the fallback address instead]" in body(copy[0])
    (both,) = forwards.values()
    texts = [body(raw) for raw in both]
    head = f"A bounce of the mail with the answer from +48******222 to {STAFF} (MO 1)"
    assert all(t.startswith(head) for t in texts), texts
    assert "not sent as SMS" not in texts[0] and "5.2.2 smtp; 552 5.2.2 Mailbox full" in texts[0]
    assert "The answer is sent to the fallback address instead" in texts[0]
    assert "no second copy is sent" in texts[1]
