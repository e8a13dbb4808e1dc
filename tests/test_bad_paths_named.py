"""Paths a script or a form gets wrong are refused with a reply that names what is wrong (RFC 5321 4.1.2).

`MAIL FROM:<demo@example.com` and `RCPT TO:<48602800001@sms.example.com` (no closing `>`) got 250 and
the SMS went, though nothing says the address ended where the line did. `<601200109;ext=1@…>` got
aiosmtpd's generic "501 Syntax: RCPT TO: <address>", `<48601200149>` (the domain forgotten) "Relay
access denied", and `<<demo@example.com>>` (wrapped twice) "its local part holds '<'". Each is a
`553 5.1.3` now, naming the path and its fault, on the real relay port with a raw client.

A quote left open (`<"601200001@sms.example.com>`) was read as closed at the line's end: the RCPT
heard "Relay access denied" for the address with `">` added, the MAIL "no user". A full-width at sign
(U+FF20) heard "it has no @" next to an echo showing one: the reply names the look-alike, and a
client that asked for SMTPUTF8 gets the address echoed as it typed it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_smtp_unreadable_addresses import Session

SAID = {
    f"MAIL FROM:<{STAFF}": f"553 5.1.3 <{STAFF}>: Address not valid: its < has no closing >",
    "RCPT TO:<48602800001@sms.example.com": "553 5.1.3 <48602800001@sms.example.com>: Address not valid:"
    " its < has no closing >",
    "RCPT TO:<601200109;ext=1@sms.example.com>": "553 5.1.3 <601200109;ext=1@sms.example.com>: Address"
    " not valid: its local part holds ';', which only a quoted local part may hold",
    "RCPT TO:<48601200149>": "553 5.1.3 <48601200149>: Address not valid: it has no @: an address is"
    " local-part@domain",
    f"MAIL FROM:<<{STAFF}>>": f"553 5.1.3 <{STAFF}>: Address not valid: it is in angle brackets twice:"
    f" write <{STAFF}>",
    # A quote left open: read as the quote closed at the line's end, the address with `">` added
    # was "Relay access denied", and a sender "no user".
    'RCPT TO:<"601200001@sms.example.com>': '553 5.1.3 <"601200001@sms.example.com>: Address not valid:'
    ' its quoted local part has no closing ": an address is "local part"@domain',
    f'MAIL FROM:<"{STAFF}>': f'553 5.1.3 <"{STAFF}>: Address not valid: its quoted local part has no'
    ' closing ": an address is "local part"@domain',
    # A quote typed into an address, no quoted part opened: no "closing" quote is missing.
    'RCPT TO:<ab"c@sms.example.com>': '553 5.1.3 <ab"c@sms.example.com>: Address not valid: a stray " in the'
    ' address: a local part is quoted whole ("local part"@domain) or not at all',
    # A full-width at sign: "it has no @" next to an echo that showed one (the ASCII reply writes it @).
    "MAIL FROM:<anna\uff20acme.example>": "553 5.1.3 <anna@acme.example>: Address not valid: its @ is a"
    " look-alike, the fullwidth commercial at (U+FF20): type the plain @",
}


def replies(port: int) -> dict[str, str]:
    got = {}
    for line in SAID:
        session = Session(port, tls=False)
        try:
            if line.startswith("RCPT"):
                assert session.say(f"MAIL FROM:<{STAFF}>").startswith("250")
            got[line] = session.say(line)
            session.say("QUIT")
        finally:
            session.close()
    return got


def good_paths(port: int) -> list[str]:
    """The postmaster needs no domain (RFC 5321 4.5.1); a path as it should be is taken."""
    session = Session(port, tls=False)
    try:
        lines = [f"MAIL FROM:<{STAFF}>", "RCPT TO:<Postmaster>", "RSET", f"MAIL FROM:<{STAFF}> SIZE=100"]
        lines += ["RCPT TO:<48602800001@sms.example.com>", "QUIT"]
        return [session.say(line)[:3] for line in lines]
    finally:
        session.close()


async def test_each_bad_path_is_refused_with_its_fault(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert await asyncio.to_thread(good_paths, gw.port) == ["250"] * 5 + ["221"]
        assert await asyncio.to_thread(replies, gw.port) == SAID
        assert gw.store.admin.count_messages() == 0


def typed_back(port: int) -> str:
    session = Session(port, tls=False)
    try:
        assert session.say(f"MAIL FROM:<{STAFF}> SMTPUTF8").startswith("250")
        return session.say("RCPT TO:<601200001\uff20sms.example.com>")
    finally:
        session.close()


async def test_a_full_width_at_sign_is_echoed_as_typed_to_an_smtputf8_client(
    tmp_path: Path,
) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        assert await asyncio.to_thread(typed_back, gw.port) == (
            "553 5.1.3 <601200001\uff20sms.example.com>: Address not valid: its @ is a look-alike, the"
            " fullwidth commercial at (U+FF20): type the plain @"
        )
