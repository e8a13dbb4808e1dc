"""What a company's mail server (Postfix 3.7 relaying to the gateway) sends on the relay port: SMTPUTF8,
numbers written with brackets and spaces, and BATV-tagged staff senders; and the user a wildcard is not.

A real smtplib client against the relay (and submission) listener of a running daemon, the fake SMSC
over TCP for what reaches the phones, a real SMTP server for the DSNs the gateway mails, and the
commands run in this process on a real database.
"""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, free_port, make_config, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_submission import PASSWORD, blocking, secure, submission_config, with_password
from tests.web_helpers import ADMIN, as_user, csrf_of, panel_store, web_context

TAGGED = f"prvs=0123abcdef={STAFF}"
# New replies, spelled out so that the tests also run (and fail) against code without them.
SENDER_NOT_ASCII = f"{replies.SENDER_DENIED} (its users have ASCII addresses only)"
COMMENT_IN_NUMBER = (
    "553 5.1.3 <{}>: a comment in a number address is not read: write the number alone"
    " (digits, + first, spaces, dashes, dots, slashes or brackets between them)"
)


def relay_client(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.command_encoding = "utf-8"  # raw commands with SMTPUTF8 addresses, as Postfix writes them
    client.ehlo("mx.acme.example")
    return client


def transaction(port: int, sender: str, rcpt: str, body: bytes, mail_options: tuple[str, ...] = ()) -> str:
    """MAIL, RCPT and DATA as raw commands (the address exactly as a server writes it); each reply."""
    with relay_client(port) as c:
        answers = []
        for command in (f"MAIL FROM:{sender}{''.join(' ' + o for o in mail_options)}", f"RCPT TO:{rcpt}"):
            code, text = c.docmd(command)
            answers.append(f"{code} {text.decode()}")
            if code >= 400:
                return " | ".join(answers)
        code, text = c.data(body)
        answers.append(f"{code} {text.decode()}")
        return " | ".join(answers)


def body(text: str = "Spotkanie o 10") -> bytes:
    return (
        f"From: {STAFF}\r\nTo: sms@{DOMAIN}\r\nSubject: Zażółć gęślą jaźń\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def emails(gw: Any) -> list[tuple[str, int | None, str | None]]:
    rows = gw.store.db.conn.execute("SELECT mail_from, user_id, envelope FROM emails ORDER BY id").fetchall()
    return [tuple(r) for r in rows]


# ---- SMTPUTF8 -------------------------------------------------------------------------------


async def test_smtputf8_is_offered_and_a_mail_asking_for_it_reaches_the_phone(tmp_path: Path) -> None:
    # Postfix bounced such a mail: "dsn=5.6.7 SMTPUTF8 is required, but was not offered".
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:

        def send() -> tuple[bool, str]:
            with relay_client(gw.port) as c:
                offered = c.has_extn("smtputf8")
            rcpt = f"<601123456@{DOMAIN}>"
            return offered, transaction(gw.port, f"<{STAFF}>", rcpt, body("Zażółć 10:00"), ("SMTPUTF8",))

        offered, answers = await blocking(send)
        assert offered
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as")
        (sms,) = await smsc.wait_for(1)
        assert sms.destination == "+48601123456"
        assert "Zażółć gęślą jaźń" in sms.text and "Zażółć 10:00" in sms.text


async def test_a_utf8_sender_not_on_the_acl_is_refused_saying_why(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        answers = await blocking(
            lambda: transaction(
                gw.port, "<ánna@acme.example>", f"<601123456@{DOMAIN}>", body(), ("SMTPUTF8",)
            )
        )
        assert answers == SENDER_NOT_ASCII
        assert "ASCII" in SENDER_NOT_ASCII and SENDER_NOT_ASCII.startswith(replies.SENDER_DENIED)
        assert emails(gw) == []


async def test_a_user_of_an_idn_domain_is_taken_with_the_domain_in_unicode(tmp_path: Path) -> None:
    # The ACL holds the domain as DNS does; a server with SMTPUTF8 writes it in Unicode.
    jan = "jan@xn--bcher-kva.example"
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.add_user(jan, "acme"))
        answers = await blocking(
            lambda: transaction(
                gw.port, "<jan@bücher.example>", f"<601123456@{DOMAIN}>", body(), ("SMTPUTF8",)
            )
        )
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as")
        (sms,) = await smsc.wait_for(1)
        assert sms.destination == "+48601123456"
        # Recorded as the user, in the ASCII form answers and notices go back to.
        ((mail_from, user_id, _envelope),) = emails(gw)
        assert mail_from == jan and user_id is not None


def test_an_idn_user_address_is_refused_naming_its_ascii_form() -> None:
    from acl.accounts import user_address_problem

    problem = user_address_problem("jan@bücher.example")
    assert problem is not None and "'jan@xn--bcher-kva.example'" in problem


async def test_a_utf8_recipient_is_read_as_a_number_and_refused_in_utf8(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        rcpt = f"<601123456@{DOMAIN}>"
        answers = await blocking(
            lambda: transaction(gw.port, f"<{STAFF}>", f"<zażółć@{DOMAIN}>", body(), ("SMTPUTF8",))
        )
        assert answers.startswith(
            f"{replies.OK_SENDER} | 550 5.1.1 <zażółć@{DOMAIN}>: not a valid phone number"
        )
        answers = await blocking(lambda: transaction(gw.port, f"<{STAFF}>", rcpt, body(), ("SMTPUTF8",)))
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as")


async def test_the_submission_port_offers_smtputf8_too(tmp_path: Path) -> None:
    tls = make_cert_pair(tmp_path / "tls")
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls)) as gw:
        await with_password(gw)

        def send() -> tuple[bool, dict[str, Any]]:
            with secure(gw.daemon.submission_port, tls) as c:
                c.login(STAFF, PASSWORD)
                offered = c.has_extn("smtputf8")
                refused = c.sendmail(STAFF, [f"601123456@{DOMAIN}"], body(), mail_options=["SMTPUTF8"])
            return offered, refused

        offered, refused = await blocking(send)
        assert offered and refused == {}
        (sms,) = await smsc.wait_for(1)
        assert sms.destination == "+48601123456"


# ---- numbers with brackets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rcpt", "number"),
    [
        # The email package read "(601)" as a comment: +48123923, refused, or a stranger's number.
        (f"<+48 (601) 123-923@{DOMAIN}>", "+48601123923"),
        (f'<"+48 (601) 123-923"@{DOMAIN}>', "+48601123923"),
        (f"<(601) 123 456@{DOMAIN}>", "+48601123456"),
        (f"<0048 (601) 123/456@{DOMAIN}>", "+48601123456"),
        (f'<"601 123 456"@{DOMAIN}>', "+48601123456"),
        (f"<+44 (0) 7911 123456@{DOMAIN}>", "+447911123456"),  # a trunk 0 in brackets, as UK numbers go
    ],
)
async def test_a_number_with_brackets_reaches_the_number_as_written(
    tmp_path: Path, rcpt: str, number: str
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        answers = await blocking(lambda: transaction(gw.port, f"<{STAFF}>", rcpt, body()))
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as"), (
            answers
        )
        (sms,) = await smsc.wait_for(1)
        assert sms.destination == number
        (recorded,) = gw.store.db.conn.execute("SELECT rcpt FROM messages").fetchone()
        assert recorded in (rcpt.strip("<>"), None)  # as given, for its bounce's Final-Recipient


@pytest.mark.parametrize(
    ("rcpt", "read"),
    [
        (f"<+48601123456(mobile)@{DOMAIN}>", f"+48601123456@{DOMAIN}"),
        (f"<601123456@(x){DOMAIN}>", f"601123456@{DOMAIN}"),
        (f'<"601 123"(456)@{DOMAIN}>', f'"601 123"@{DOMAIN}'),
    ],
)
async def test_any_other_comment_in_a_number_address_is_refused_not_dropped(
    tmp_path: Path, rcpt: str, read: str
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        answers = await blocking(lambda: transaction(gw.port, f"<{STAFF}>", rcpt, body()))
        assert answers == f"{replies.OK_SENDER} | {COMMENT_IN_NUMBER.format(read)}"
        assert smsc.received == [] and emails(gw) == []


async def test_a_real_comment_in_a_mail_from_address_works_as_before(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        answers = await blocking(
            lambda: transaction(gw.port, "<anna(Anna Nowak)@acme.example>", f"<601123456@{DOMAIN}>", body())
        )
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as")
        await smsc.wait_for(1)
        user = gw.store.accounts.find_user(STAFF)
        assert gw.store.db.conn.execute("SELECT mail_from, user_id FROM emails").fetchall() == [
            (STAFF, user.id)
        ]


# ---- BATV-tagged senders --------------------------------------------------------------------


async def test_a_batv_tagged_staff_sender_is_taken_and_recorded_untagged(tmp_path: Path) -> None:
    # "550 5.7.1 Relay access denied: sender not allowed…" to every mail of a tagging server.
    relay = free_port()
    async with (
        HappySMSC(fail_suffixes=["999"]) as smsc,
        smtp_sink(relay) as sink,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)) as gw,
    ):
        answers = await blocking(lambda: transaction(gw.port, f"<{TAGGED}>", f"<601123999@{DOMAIN}>", body()))
        assert answers.startswith(f"{replies.OK_SENDER} | {replies.OK_RCPT} | 250 2.0.0 OK: queued as")
        (sms,) = await smsc.wait_for(1)
        assert sms.destination == "+48601123999"
        user = gw.store.accounts.find_user(STAFF)
        # The user's mail, usage and conversations under one address, whatever the day's tag.
        assert emails(gw) == [(STAFF, user.id, TAGGED)]
        # Its DSN goes to the envelope as received: the tagging server refuses a bounce to anna@.
        await sink.wait(1)
        ((dsn_from, dsn_to, _content),) = sink.messages
        assert (dsn_from, dsn_to) == ("<>", [TAGGED])  # aiosmtpd writes the null sender so


async def test_a_batv_tag_does_not_make_a_stranger_a_user(tmp_path: Path) -> None:
    async with running_gateway(make_config(tmp_path, smsc_port=1)) as gw:
        for sender in (
            "prvs=0123abcdef=eve@acme.example",
            f"SRS0=HHH=TT=acme.example={STAFF}",
            "anna+sms@acme.example",
        ):
            answers = await blocking(
                lambda s=sender: transaction(gw.port, f"<{s}>", f"<601123456@{DOMAIN}>", body())
            )
            assert answers == replies.SENDER_NOT_HERE.format(ip="127.0.0.1"), sender
        assert gw.store.db.conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] == 0


# ---- users are mailboxes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("*@acme.example", "has a wildcard (*)"),
        ("anna@*.acme.example", "has a wildcard (*)"),
        ("staff%@acme.example", "has a wildcard (%)"),
        ("anna@[192.0.2.1]", "names an IP address"),
        (TAGGED, f"add '{STAFF}'"),
    ],
)
def test_a_user_must_be_one_mailbox(cli: Any, address: str, said: str) -> None:
    # `smsgw user add '*@acme.example'` was taken, and then matched only a sender writing "*".
    cli.ok("account", "add", "acme", "--relay-network", "192.0.2.0/24")
    code, out, err = cli("user", "add", address, "--account", "acme")
    assert code != 0 and out == []
    assert said in err and ("each user is one address" in err or "BATV" in err), err
    assert address not in "\n".join(cli.ok("user", "list"))
    cli.ok("user", "add", "boss@acme.example", "--account", "acme")  # a mailbox still is


async def test_the_panel_user_form_refuses_a_wildcard_as_the_cli_does(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        async with as_user(web, ADMIN) as c:
            token = csrf_of((await c.get("/users")).text)
            data = {"csrf": token, "action": "add", "account": "acme", "email": "*@acme.example"}
            r = await c.post("/users", data=data)
            assert r.status_code == 400 and "has a wildcard (*)" in r.text, r.text
            assert "each user is one address" in r.text
            assert store.accounts.find_user("*@acme.example") is None
            r = await c.post("/users", data={**data, "email": "kasia@acme.example"})
            assert r.status_code in (200, 303), r.text
            assert store.accounts.find_user("kasia@acme.example") is not None
    finally:
        store.close()
