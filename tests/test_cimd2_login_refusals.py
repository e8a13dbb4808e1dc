"""The SMSC's answer to our login, against a scripted SMSC over TCP: a 51 whose 900 is no number is a
refusal, not a login that worked (the link never goes active, nothing is submitted); the SMSC's words
quoting the password show it nowhere (journal, `smsgw status`, a part's reason), and words that only
begin as it does are left as they are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import structlog
from structlog.typing import EventDict

from smsc.base import LinkState
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import Op, P, Packet
from tests.fakes.cimd2 import RecordingEvents, ScriptedSmsc
from tests.test_cimd2_link import section, sms


@asynccontextmanager
async def login_refused(
    code: int | str, text: str | Callable[[Packet], str], password: str = "pw", system_id: str = "smsgw"
) -> AsyncIterator[tuple[Cimd2Link, RecordingEvents, ScriptedSmsc, list[EventDict]]]:
    """A link against a scripted SMSC that answers its login with the error `code` and `text` (or the
    words made of the login), once the link has logged the refusal: the link, its events, the SMSC (the
    next login after the back-off comes to it) and the lines logged until the link stops on leaving."""
    async with ScriptedSmsc() as peer:
        link, events = (
            Cimd2Link(section(peer.port, system_id=system_id), password=password),
            RecordingEvents(),
        )
        with structlog.testing.capture_logs() as logs:
            await link.start(events)
            try:
                conn = await peer.accept()
                login = await conn.next()
                assert login.op == Op.LOGIN
                said = text if isinstance(text, str) else text(login)
                conn.send(
                    Packet.make(Op.LOGIN_RESP, login.number, (P.ERROR_CODE, code), (P.ERROR_TEXT, said))
                )
                await events.wait_for(lambda: any(e["event"] == "cimd2.login_refused" for e in logs))
                yield link, events, peer, logs
            finally:
                await link.stop(drain=False)


async def test_a_login_answer_whose_900_is_no_number_is_a_refusal() -> None:
    # 51 with 900:E100 901:invalid login was read as no code: the link went active and its submits
    # went to an SMSC that had not let it in. Refused now, with the SMSC's words; tried again later.
    async with login_refused("E100", "invalid login") as (link, events, peer, logs):
        again = await peer.accept()  # not fatal: a new login after the back-off
        assert (await again.next()).op == Op.LOGIN
        last_error = link.stats().last_error
    assert LinkState.ACTIVE not in events.states
    (refused,) = [e for e in logs if e["event"] == "cimd2.login_refused"]
    assert refused["fatal"] is False and "E100" in refused["error"] and "invalid login" in refused["error"]
    assert last_error == "login refused: unreadable error code 900 'E100': invalid login"


async def test_the_password_the_smsc_quotes_is_in_no_log_line_status_or_stored_reason() -> None:
    # An SMSC refused the login in words quoting the password it was sent and a phone number: the
    # journal had the password, the link's last error (`smsgw status`, status.json) both. A submit
    # refusal quoting it kept it in the part's reason, which a bounce quotes to the sender.
    secret = "bar-SECRETPW"

    def said(login: Packet) -> str:
        return f"user smsgw password {login.get(P.PASSWORD)} busy, call +48601999888"

    async with login_refused(102, said, password=secret) as (link, events, peer, logs):
        last_error = link.stats().last_error
        conn = await peer.accept()
        await conn.login()
        await events.wait_for(lambda: link.state is LinkState.ACTIVE)
        task = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        assert submit.op == Op.SUBMIT
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, 300),
                              (P.ERROR_TEXT, f"account password {secret} may not send")))  # fmt: skip
        result = await asyncio.wait_for(task, 10)
    assert secret not in str(logs) and "601999888" not in str(logs)
    assert last_error == "login refused: 102 user smsgw password <password> busy, call <12 chars>"
    assert result.error == "CIMD2 900:300 account password <password> may not send"


async def test_a_password_the_smscs_words_cut_short_or_echo_after_a_key_is_masked() -> None:
    # A 901 holds 64 characters: an SMSC echoing the password near its end kept all but the cut
    # ones ("pw=S3cretP" for "S3cretPw"), in the journal, `smsgw status`, the part's reason and the
    # bounce; and one it was sent by mistake, after "pw=", whole.
    secret = "S3cretPw"
    async with login_refused(102, "user smsgw pwd: hunter22; denied for S3cr", password=secret) as (
        link,
        events,
        peer,
        logs,
    ):
        last_error = link.stats().last_error
        conn = await peer.accept()
        await conn.login()
        await events.wait_for(lambda: link.state is LinkState.ACTIVE)
        task = asyncio.create_task(link.submit(sms()))
        submit = await conn.next()
        conn.send(Packet.make(Op.SUBMIT_RESP, submit.number, (P.ERROR_CODE, 300),
                              (P.ERROR_TEXT, "bad dest 601557902 pw=S3cretP")))  # fmt: skip
        result = await asyncio.wait_for(task, 10)
    assert "S3cr" not in str(logs) and "hunter22" not in str(logs)
    assert last_error == "login refused: 102 user smsgw pwd: <password>; denied for <password>"
    assert result.error == "CIMD2 900:300 bad dest 601557902 pw=<password>"


@pytest.mark.parametrize(
    ("secret", "words", "user"),
    [
        ("smsc01pass", "Invalid login: user smsc01 not allowed from this address", "smsc01"),
        ("Access2024", "Access denied for user smsgw", "smsgw"),
    ],
)
async def test_the_smscs_words_that_begin_as_the_password_does_are_not_masked(
    secret: str, words: str, user: str
) -> None:
    # A start of the password was masked wherever a word ended: one that starts with the user name
    # hid the user name ("user <password> not allowed"), "Access2024" made "Access denied" "<password>
    # denied": the operator read that the password was echoed, and learnt how it starts. Only a start
    # that ends the SMSC's words (cut at 64 characters) is the password's, or, ending a word, one that
    # is neither the user name (the system_id) nor all letters.
    async with login_refused(102, words, password=secret, system_id=user) as (link, _events, _peer, logs):
        last_error = link.stats().last_error
    assert last_error == f"login refused: 102 {words}"
    assert "<password>" not in str(logs)


@pytest.mark.parametrize(
    ("secret", "words", "shown"),
    [
        ("S3cretPw1x", "wrong password S3cretPw.", "wrong password <password>."),
        ("S3cretPw1x", "invalid password 'S3cretPw' for smsc01", "invalid password '<password>' for smsc01"),
        ("S3cretPw", "user S3cr may not log in; pw expired", "user <password> may not log in; pw expired"),
    ],
)
async def test_a_start_of_the_password_ending_a_word_before_punctuation_is_masked(
    secret: str, words: str, shown: str
) -> None:
    # Masked only where it ended the text, a start of the password the SMSC quoted before a full stop
    # or a quote showed in the journal and `smsgw status`. A word that is neither the user name nor all
    # letters and is the password's start is the password's.
    async with login_refused(102, words, password=secret, system_id="smsc01") as (link, _events, _peer, logs):
        last_error = link.stats().last_error
    assert last_error == f"login refused: 102 {shown}"
    assert secret[:4] not in str(logs)
