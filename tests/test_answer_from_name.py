"""A phone's answer is named as the user's mail named the phone (two-way, R-3).

Staff write to `"Pan Kowalski" <601123430@sms.example.com>`, an Outlook contact. The answer came
from `"+48 601 123 430" <+48601123430@sms.example.com>`: a bare number, which Outlook could not name
either, its contact having another address form. It now comes from "Pan Kowalski (+48 601 123 430)"
at the same address (Reply rules depend on it). Real mail over SMTP into the daemon, the built-in
simulator over SMPP, the answer caught by a real SMTP relay.
"""

from __future__ import annotations

import base64
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, free_port, mail, running_gateway, smtp_sink
from tests.test_own_numbers import FALLBACK, own_config
from tests.test_reply_refused import RefusingRelay, refused
from tests.test_two_way import answer_to, parsed, two_way_config

PHONE = "+48601123430"
SHOWN = "+48 601 123 430"
RCPT = f"601123430@{DOMAIN}"
ADDRESS = f"{PHONE}@{DOMAIN}"


def raw_mail(to: str, msgid: str, body: str = "Czy 10:00 pasuje?") -> bytes:
    """A mail as a client writes it, its To header exactly `to` (hostile names included; a
    `to` with a line break carries a Cc of its own)."""
    return (
        f"From: {STAFF}\r\nTo: {to}\r\nSubject: Spotkanie\r\nMessage-ID: {msgid}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def sender_of(raw: bytes) -> tuple[str, str]:
    """(display name, address) of a mail's From as RFC 2047 6.2 reads it, as mail clients do: the
    email package's address parser of Python 3.11 puts a space between two encoded words that part
    a long non-ASCII name, where the RFC (and Outlook, Thunderbird) join them."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
    [value] = [f[5:] for f in head.replace("\n ", " ").split("\n") if f.lower().startswith("from:")]
    parsed(raw)["From"].addresses  # noqa: B018  # one valid address, or this raises
    name, _, address = str(make_header(decode_header(value.strip()))).rpartition(" <")
    return name.strip('"'), address.removesuffix(">")


async def answered(gw: Any, sink: Any, to: str, *, n: int = 1, text: str = "Tak") -> tuple[str, str]:
    """(From display name, From address) of the answer to a mail whose To header is `to`."""
    core = gw.daemon.simulator.core
    sent = len(core.records)
    assert (await gw.send(raw_mail(to, msgid=f"<n{n}@acme.example>"), [RCPT])).error is None
    await gw.until(lambda: len(core.records) == sent + 1)
    command = {"op": "mo", "reply_to_last": True, "text": text}
    assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
    await sink.wait(n)
    return sender_of(sink.messages[n - 1][2])


async def test_the_answer_is_named_as_the_users_mail_named_the_phone(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        got = await answered(gw, sink, f'"Pan Kowalski" <{RCPT}>, "Biuro" <biuro@acme.example>')
        assert got == (f"Pan Kowalski ({SHOWN})", ADDRESS)


async def test_a_hostile_name_comes_out_sanitised(tmp_path: Path) -> None:
    # Line breaks (with a header after them), quotes, brackets, a right-to-left override, 500 characters.
    hostile = 'Evil"\r\nBcc: victim\r\n\u202e<Kowalski>' + "x" * 500
    word = base64.b64encode(hostile.encode()).decode()
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        name, address = await answered(gw, sink, f"=?utf-8?b?{word}?= <{RCPT}>")
        assert (name, address) == (f"Evil Bcc: victim Kowalski {'x' * 33}… ({SHOWN})", ADDRESS)
        reply = parsed(sink.messages[0][2])
        assert reply["Bcc"] is None and len(reply.get_all("From")) == 1
        # A quoted name with escaped quotes and our own "(+48 …)" after it: read once, not twice.
        name, address = await answered(gw, sink, f'"Pan \\"Szef\\" ({SHOWN})" <{RCPT}>', n=2)
        assert (name, address) == (f"Pan Szef ({SHOWN})", ADDRESS)


async def test_no_name_or_a_number_for_a_name_is_as_before(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        assert await answered(gw, sink, RCPT) == (SHOWN, ADDRESS)
        assert await answered(gw, sink, f'"601 123 430" <{RCPT}>', n=2) == (SHOWN, ADDRESS)
        assert await answered(gw, sink, f'"{RCPT}" <{RCPT}>', n=3) == (SHOWN, ADDRESS)


async def test_a_later_mail_without_a_name_keeps_it_and_a_new_name_replaces_it(tmp_path: Path) -> None:
    relay = free_port()
    async with (
        smtp_sink(relay) as sink,
        running_gateway(two_way_config(tmp_path, "smpp", relay_port=relay)) as gw,
    ):
        assert await answered(gw, sink, f"Pan Kowalski <{RCPT}>") == (f"Pan Kowalski ({SHOWN})", ADDRESS)
        # The user presses Reply: To is our From, name and number; the name is not doubled.
        reply = answer_to(parsed(sink.messages[0][2]), "Dobrze")
        core = gw.daemon.simulator.core
        assert (await gw.send(reply, [ADDRESS])).error is None
        await gw.until(lambda: len(core.records) == 2)
        command = {"op": "mo", "reply_to_last": True, "text": "Ok"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await sink.wait(2)
        assert sender_of(sink.messages[1][2]) == (f"Pan Kowalski ({SHOWN})", ADDRESS)
        assert await answered(gw, sink, RCPT, n=3) == (f"Pan Kowalski ({SHOWN})", ADDRESS)
        assert await answered(gw, sink, f'"Jan Kowalski" <{RCPT}>', n=4) == (
            f"Jan Kowalski ({SHOWN})",
            ADDRESS,
        )


async def test_the_fallback_copy_of_a_refused_answer_is_named_the_same(tmp_path: Path) -> None:
    port = free_port()
    async with (
        smtp_sink(port, RefusingRelay(STAFF)) as relay,
        running_gateway(own_config(tmp_path, "smpp", port)) as gw,
    ):
        core = gw.daemon.simulator.core
        first = mail(f'"Pan Kowalski" <{RCPT}>', body="Czy 10:00?", subject="Spotkanie")
        assert (await gw.send(first, [RCPT])).error is None
        await gw.until(lambda: len(core.records) == 1)
        command = {"op": "mo", "reply_to_last": True, "text": "Tak"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, command))["ok"]
        await refused(gw, "reply", STAFF)
        await relay.wait(1)
        _, rcpts, raw = relay.messages[0]
        assert rcpts == [FALLBACK]
        assert sender_of(raw) == (f"Pan Kowalski ({SHOWN})", ADDRESS)
