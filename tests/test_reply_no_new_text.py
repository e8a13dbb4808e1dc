"""A Reply to one of the gateway's mails with nothing written above the quote is refused, and the
gateway's own notes never reach a phone.

Outlook puts its header block ("Od: … Wysłane: … Do: … Temat: …") at the top of an empty Reply, and
the block was read as a forward with nothing written above it: the phone got its own answer back,
and a Reply to the fallback mail sent the customer our "[Not matched: …]" note. Thunderbird's
empty Reply sent "RE: Re: <topic>" alone, and a Reply holding only Outlook's automatic signature
sent "Pozdrawiam / Anna Nowak". Over real SMTP against the daemon with its simulator; the answer
and fallback mails are caught by a real SMTP sink and answered as the mail programs build replies.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, Running, free_port, mail, running_gateway, smtp_sink
from tests.test_two_way import parsed, two_way_config

CUSTOMER = "+48601123432"
TOPIC = "Wizyta serwisanta w domu klienta"


def config(tmp_path: Path) -> tuple[Any, int]:
    """Two-way config whose fallback address is a user of the account: the one who answers it."""
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    return cfg.model_copy(
        update={"replies": cfg.replies.model_copy(update={"fallback_address": STAFF})}
    ), relay


def outlook_reply(
    got: EmailMessage, typed: str, *, polish: bool = True, threaded: bool = True
) -> EmailMessage:
    """Outlook's plain-text Reply: "RE:", what was typed, then the header block and the original."""
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = got["From"]
    msg["Subject"] = f"RE: {got['Subject']}"
    if threaded:
        msg["In-Reply-To"] = got["Message-ID"]
        msg["References"] = got["Message-ID"]
    labels = ("Od", "Wysłane", "Do", "Temat") if polish else ("From", "Sent", "To", "Subject")
    when = "czwartek, 3 grudnia 2026 10:00" if polish else "Thursday, December 3, 2026 10:00 AM"
    block = (
        f"{labels[0]}: {got['From']}\n{labels[1]}: {when}\n{labels[2]}: {STAFF}\n"
        f"{labels[3]}: {got['Subject']}\n\n"
    )
    msg.set_content(f"{typed}\n\n{block}{got.get_content()}" if typed else f"{block}{got.get_content()}")
    return msg


def thunderbird_reply(got: EmailMessage, typed: str = "") -> EmailMessage:
    """Thunderbird's (and Gmail's) Reply: the attribution and the `>` quote, then what was typed."""
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = got["From"]
    msg["Subject"] = f"RE: {got['Subject']}"
    msg["In-Reply-To"] = got["Message-ID"]
    msg["References"] = got["Message-ID"]
    quoted = "".join(f"> {line}\n" for line in got.get_content().splitlines())
    msg.set_content(f"W dniu 3.12.2026 o 10:00, {got['From']} pisze:\n{quoted}\n{typed}")
    return msg


async def mo(gw: Running, **command: Any) -> None:
    sent = await send_command("127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", **command})
    assert sent["ok"], sent


def refused_as_empty(result: Any) -> bool:
    error = result.error
    return (
        isinstance(error, smtplib.SMTPDataError)
        and error.smtp_code == 554
        and b"5.6.0 Your reply holds no new text: write it above the quoted mail" in error.smtp_error
    )


async def sent_after(gw: Running, before: int) -> list[str]:
    """The SMS texts sent since `before`, once a marker mail sent now has gone (queued after them)."""
    core = gw.daemon.simulator.core
    marker = f"Marker {before}"
    assert (await gw.send(mail(f"601000999@{DOMAIN}", body=marker))).error is None
    await gw.until(lambda: any(r["text"] == marker for r in core.records[before:]))
    return [str(r["text"]) for r in core.records[before:] if not str(r["text"]).startswith("Marker")]


async def test_an_empty_reply_to_an_answer_mail_is_refused_not_sent_back(tmp_path: Path) -> None:
    cfg, relay = config(tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Jutro o 10?", subject=TOPIC))).error is None
        await gw.until(lambda: len(core.records) == 1)
        await mo(gw, reply_to_last=True, text="Tak, zapraszam o 10")
        await sink.wait(1)
        answer = parsed(sink.messages[0][2])
        before = len(core.records)
        # Outlook, Polish and English, threaded and (the weaker sign) by its "RE:" alone.
        assert refused_as_empty(await gw.send(outlook_reply(answer, "")))
        assert refused_as_empty(await gw.send(outlook_reply(answer, "", polish=False, threaded=False)))
        # Thunderbird's empty Reply: "RE: Re: Wizyta serwisanta w" went alone.
        assert refused_as_empty(await gw.send(thunderbird_reply(answer)))
        # Only Outlook's automatic signature above the quote.
        assert refused_as_empty(await gw.send(outlook_reply(answer, "Pozdrawiam\nAnna Nowak")))
        assert await sent_after(gw, before) == []
        # Something typed is sent, alone, in both kinds of Reply.
        assert (await gw.send(outlook_reply(answer, "Będę o 10:30"))).error is None
        assert (await gw.send(thunderbird_reply(answer, "Dziękuję, do jutra"))).error is None
        assert await sent_after(gw, before) == ["Będę o 10:30", "Dziękuję, do jutra"]


async def test_our_fallback_note_never_reaches_the_customer(tmp_path: Path) -> None:
    cfg, relay = config(tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        await mo(gw, source=CUSTOMER, destination="+48100200300", text="Dzień dobry, proszę o kontakt")
        await sink.wait(1)
        fallback = parsed(sink.messages[0][2])
        assert "[Not matched: no SMS was sent to" in fallback.get_content()
        # Reply with nothing typed: the customer got 4 SMS, their own answer and our note.
        assert refused_as_empty(await gw.send(outlook_reply(fallback, "")))
        assert refused_as_empty(await gw.send(thunderbird_reply(fallback)))
        assert await sent_after(gw, 0) == []
        # Typed above the quote: only that, without our "SMS from … to …" title before it.
        before = len(core.records)
        assert (await gw.send(outlook_reply(fallback, "Oddzwonimy jutro rano"))).error is None
        assert await sent_after(gw, before) == ["Oddzwonimy jutro rano"]
        # Forwarded as it is to a technician's phone: the customer's words go, our note does not.
        forward = outlook_reply(fallback, "", threaded=False)
        forward.replace_header("Subject", f"PD: {fallback['Subject']}")
        forward.replace_header("To", f"601000777@{DOMAIN}")
        before = len(core.records)
        assert (await gw.send(forward)).error is None
        (text,) = await sent_after(gw, before)
        assert text == "Dzień dobry, proszę o kontakt", text
        assert all("Not matched" not in str(r["text"]) for r in core.records)


async def test_a_forward_of_another_mail_with_nothing_above_is_still_sent(tmp_path: Path) -> None:
    cfg, relay = config(tmp_path)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        third = EmailMessage()
        third["From"] = "klient@firma.example"
        third["Subject"] = "Awaria pieca"
        third["Message-ID"] = "<awaria-1@firma.example>"
        third.set_content("Piec nie grzeje od rana.\n\n[Pilne: prosimy o szybki kontakt]\n")
        for subject, number in (("FW: Awaria pieca", "601123456"), ("Awaria pieca", "601123457")):
            forward = outlook_reply(third, "", polish=False, threaded=False)
            forward.replace_header("Subject", subject)
            forward.replace_header("To", f"{number}@{DOMAIN}")
            assert (await gw.send(forward)).error is None
        sent = await sent_after(gw, 0)
        # A bracketed line of the forwarded mail that is no note of ours stays.
        assert sent == ["Awaria pieca: Piec nie grzeje od rana.\n\n[Pilne: prosimy o szybki kontakt]"] * 2, (
            sent
        )


async def test_a_reply_whose_first_line_reads_like_an_attribution_is_sent_not_refused(tmp_path: Path) -> None:
    """Under a "RE:" subject alone, a person's own first line "Dnia 5 maja klient napisał:" was taken
    for a quote's attribution and the mail refused as holding no new text, the request below it
    included. A header block (no one types one) or a Reply to one of our mails is still refused."""
    cfg, relay = config(tmp_path)
    async with smtp_sink(relay), running_gateway(cfg) as gw:
        before = len(gw.daemon.simulator.core.records)
        own = "Dnia 5 maja klient napisał:\nProszę oddzwonić do niego dziś, paczka nie doszła."
        result = await gw.send(mail(f"601123457@{DOMAIN}", body=own, subject="RE: Zamówienie 123"))
        assert result.error is None, result
        text = "".join(await sent_after(gw, before))  # one SMS, in as many parts as it takes
    # The line is the person's own (a mail client's attribution names a time or an address): sent too.
    assert text.endswith(own), text


async def test_an_empty_reply_to_a_bounce_without_a_reply_prefix_is_refused(tmp_path: Path) -> None:
    """A bounce's Message-ID ends in the first of [gateway] domains, not in [gateway] hostname: a
    Reply to one without "RE:" (a client set not to add it) was not known for a reply to our mail,
    and the bounce's text above which nothing was typed went to the phone."""
    cfg, relay = config(tmp_path)
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"hostname": "gw.example.net"})})
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        sent = await gw.send(mail(f"601123413@{DOMAIN}", body="Jutro o 10?", subject="Wizyta"))
        assert sent.error is None
        await sink.wait(1)
        bounce = parsed(sink.messages[0][2])
        assert str(bounce["Message-ID"]).rstrip(">").endswith(f"@{cfg.gateway.domains[0]}")
        before = len(gw.daemon.simulator.core.records)
        reply = EmailMessage()  # Reply with nothing typed, set not to add "RE:", the phone put in To
        reply["From"], reply["To"], reply["Subject"] = STAFF, f"601123457@{DOMAIN}", str(bounce["Subject"])
        reply["In-Reply-To"] = reply["References"] = str(bounce["Message-ID"])
        reply.set_content(
            f"From: {bounce['From']}\nSent: Thursday, December 3, 2026 10:00 AM\nTo: {STAFF}\n"
            f"Subject: {bounce['Subject']}\n\nYour SMS to +48601123413 could not be delivered.\n"
        )
        assert refused_as_empty(await gw.send(reply))
        assert await sent_after(gw, before) == []
