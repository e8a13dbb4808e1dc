"""Opt-out and opt-in answers as phones write them (SPEC R-2.4), against real peers.

A phone that texted STOP and then START was mailed to its staff member as a bare "START": they
believed the customer had opted back in, and their next mail got 550. Sentences that ask for no more
SMS ("Stop, proszę nie pisać") were mailed as ordinary answers with no hint. Here: SMTP in, the
built-in simulator's SMSC over TCP, its control port for the phone's answers, and the answer mails
caught by a real SMTP sink; the opt-out list is the daemon's SQLite file, an admin's entry made by
the CLI's own command on it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.cli.optouts import cmd_optout_add
from gateway.logging import _redact
from gateway.optoutwords import form as _optout_form
from gateway.optoutwords import may_be_optout as _may_be_optout
from gateway.optoutwords import plain as _plain
from gateway.web.app import WebContext
from smsc.simulator.control import send_command
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.test_policy import code, error_text
from tests.test_two_way import PHONE, parsed, two_way_config
from tests.web_helpers import OPERATOR, OTHER_ADMIN, as_user, csrf_of
from tests.web_helpers import web as web  # the fixture

OPTOUT_WORDS = {_plain(w) for w in ("STOP", "REZYGNUJE")}
MAY_BE_OPTOUTS = [
    "Stop, proszę nie pisać",
    "Stop proszę",
    "STOP STOP",
    "Proszę nie pisać",
    "Wypisz mnie",
    "Proszę mnie wypisać",
]
# "Wypisać" writes out a prescription or an invoice too: a clinic's or an office's answer, no opt-out.
ANSWERS = [
    "Stopień pierwszy?",
    "Stopka",
    "NIE",
    "Nie wiem",
    "Nie, proszę pisać jutro",
    "Proszę wypisać receptę na jutro",
]


def _noted(msg: EmailMessage) -> str:
    """The mail's text with its lines joined: a note may be folded over lines."""
    return " ".join(msg.get_content().split())


async def _answer(gw: Any, sink: Any, text: str) -> EmailMessage:
    """The phone answers the last SMS; the mail that answer becomes, as the staff member reads it."""
    before = len(sink.messages)
    sent = await send_command(
        "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": text}
    )
    assert sent["ok"] and sent["source"] == PHONE
    await sink.wait(before + 1)
    _, rcpts, raw = sink.messages[before]
    assert rcpts == [STAFF]
    return parsed(raw)


async def _texted(gw: Any, body: str) -> Any:
    """The staff member's mail to the phone: the SMTP result (550 when it is opted out)."""
    return await gw.send(mail(f"601123456@{DOMAIN}", body=body, subject="Oferta"))


def _opted_out(gw: Any) -> bool:
    return bool(gw.store.policy.is_opted_out(PHONE))


@asynccontextmanager
async def _phone_texted(tmp_path: Path, link: str = "smpp") -> AsyncIterator[tuple[Running, Sink]]:
    """The daemon, its built-in SMSC on `link` and a sink for the mail it sends, once the staff
    member's first SMS to the phone is taken: the phone may answer it."""
    relay = free_port()
    cfg = two_way_config(tmp_path, link, relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        assert (await _texted(gw, "Nowa oferta")).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
        yield gw, sink


async def test_start_after_stop_takes_the_number_off_the_list_and_the_mail_says_so(tmp_path: Path) -> None:
    async with _phone_texted(tmp_path) as (gw, sink):
        stopped = await _answer(gw, sink, "STOP")
        assert "answered with an opt-out word" in _noted(stopped) and _opted_out(gw)
        refused = await _texted(gw, "Druga oferta")
        assert code(refused) == 550 and "opted out" in error_text(refused)
        with capture_logs() as logs:
            started = await _answer(gw, sink, "Start!")
        assert started.get_content().startswith("Start!\n")
        assert "+48 601 123 456 answered START: it is off the opt-out list, SMS to it are sent again" in (
            _noted(started)
        )
        assert not _opted_out(gw)
        [removed] = [e for e in logs if e["event"] == "optout.removed"]
        assert removed["mo"] > 0 and PHONE not in str(removed)  # by the MO's id: no number in a log line
        gateway = [e for e in logs if not e["event"].startswith("sim.")]  # the simulator is the phone's side
        assert not [e for e in gateway if PHONE in str(e) or PHONE.lstrip("+") in str(e)], gateway
        # The staff member's next mail goes as SMS again.
        assert (await _texted(gw, "Trzecia oferta")).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 2)
        # STOP again opts it out again: START is no lasting pass.
        await _answer(gw, sink, "stop")
        assert _opted_out(gw)


async def test_start_leaves_an_operators_entry_and_the_mail_says_it_stays(tmp_path: Path) -> None:
    async with _phone_texted(tmp_path) as (gw, sink):
        # `smsgw optout add +48601123456`, run beside the daemon on its database.
        assert cmd_optout_add(gw.config, argparse.Namespace(number="+48601123456")) == 0
        await gw.until(lambda: _opted_out(gw))
        with capture_logs() as logs:
            started = await _answer(gw, sink, "START")
        noted = _noted(started)
        assert "answered START: it is still on the opt-out list (added by an admin)" in noted
        assert "smsgw optout remove +48601123456" in noted
        assert _opted_out(gw) and not [e for e in logs if e["event"] == "optout.removed"]
        refused = await _texted(gw, "Druga oferta")
        assert code(refused) == 550 and "opted out" in error_text(refused)


async def test_start_from_a_number_never_opted_out_is_told_as_such(tmp_path: Path) -> None:
    async with _phone_texted(tmp_path) as (gw, sink):
        started = await _answer(gw, sink, "start")
        assert "answered START: it is not on the opt-out list, SMS to it are sent as before" in (
            _noted(started)
        )
        assert not _opted_out(gw)


async def test_start_says_an_accounts_own_entry_still_refuses(tmp_path: Path) -> None:
    # A company admin's own entry (migration 59) stays through the phone's START: the mail said "sent
    # as before" while that account's next SMS got 550.
    async with _phone_texted(tmp_path) as (gw, sink):
        acme = gw.store.accounts.get_account("acme").id
        assert await gw.store.write(lambda: gw.store.policy.add_account_optout(acme, "+48601123456"))
        started = await _answer(gw, sink, "start")
        assert (
            "it is not on the opt-out list, SMS to it are sent as before (except where an account's admin"
            " listed it on their panel page)" in _noted(started)
        )
        assert code(await _texted(gw, "Druga oferta")) == 550


async def test_a_sentence_asking_for_no_more_sms_is_flagged_but_not_acted_on(tmp_path: Path) -> None:
    async with _phone_texted(tmp_path) as (gw, sink):
        for text in MAY_BE_OPTOUTS:
            answer = await _answer(gw, sink, text)
            assert answer.get_content().startswith(f"{text}\n")
            assert (
                "[This may be a request to stop SMS: +48 601 123 456 is NOT on the opt-out list"
                " (smsgw optout add +48601123456, or the phone can answer STOP)]"
            ) in _noted(answer), text
            assert not _opted_out(gw), text
        # The staff member may still text it: nothing was decided for them.
        assert (await _texted(gw, "Czy mamy przestać pisać?")).error is None
        for text in ANSWERS:
            answer = await _answer(gw, sink, text)
            assert "request to stop" not in _noted(answer) and "opt-out" not in _noted(answer), text
        assert not _opted_out(gw)


FLAGGED = [
    *MAY_BE_OPTOUTS,
    "REZYGNUJĘ z newslettera",
    "stop stop stop",
    "Nie wysyłać!",
    "Chcę się wypisać",
    "Wypiszcie nas z bazy",
    "wypisz z listy",
    "Proszę o wypisanie mnie",
]
UNFLAGGED = [
    *ANSWERS,
    "STOP",
    "Stopień...",
    "nie",
    "Nie piszę jutro",
    "Niewypisz",
    "Tak",
    "Wypiszcie fakturę na firmę",
    "Wypisz mi receptę",
    "Proszę wypisać skierowanie z datą",
]


@pytest.mark.parametrize("text", FLAGGED)
def test_the_rule_flags_an_opt_out_word_with_more_words_a_repeat_or_a_phrase(text: str) -> None:
    assert _may_be_optout(_optout_form(text), OPTOUT_WORDS)


@pytest.mark.parametrize("text", UNFLAGGED)
def test_the_rule_leaves_answers_and_opt_out_words_alone(text: str) -> None:
    # "STOP" alone is an opt-out, acted on: no note of a possible one.
    assert not _may_be_optout(_optout_form(text), OPTOUT_WORDS)


async def test_a_stop_the_smsc_delivers_again_after_start_leaves_the_phone_opted_in(tmp_path: Path) -> None:
    # The phone texted STOP, then START; the SMSC had not read the acknowledgement of the STOP
    # (the connection dropped) and delivers it again after a reconnect. That copy is the same SMS,
    # not the phone's word again: the number stays off the list, as the phone last asked. The words
    # acted before the copy was known for one, and opted the phone out behind its START.
    from tests.test_mo_crash import AckLosingSMSC, mo_states
    from tests.test_mo_redelivery import SENDER, ask_and_wait

    relay = free_port()
    async with AckLosingSMSC() as smsc, smtp_sink(relay) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=relay)
        async with running_gateway(cfg) as gw:
            await ask_and_wait(gw.port, smsc)
            assert await smsc.inject_mo(PHONE, SENDER, "STOP") == 1
            await gw.until(lambda: gw.store.policy.is_opted_out(PHONE))
            await gw.until(lambda: smsc.stats.commands["ignored"] >= 1)  # its acknowledgement lost
            smsc.losing = False
            assert await smsc.inject_mo(PHONE, SENDER, "START") == 1
            await gw.until(lambda: not gw.store.policy.is_opted_out(PHONE))
            await gw.until(lambda: smsc.stats.commands["deliver_sm_resp"] >= 1)  # the START's answered
            smsc.drop_all()  # the SMSC delivers the STOP it never had an answer to again
            await gw.until(lambda: len(mo_states(cfg.db_path)) == 3)
            await asyncio.sleep(0.5)  # a START delivered again would come now too
            assert mo_states(cfg.db_path) == ["optout", "mailed", "duplicate"]
            assert not gw.store.policy.is_opted_out(PHONE)
            await sink.wait(2)


def _source(gw_or_store: Any, number: str = PHONE) -> str | None:
    store = getattr(gw_or_store, "store", gw_or_store)
    row = store.db.conn.execute("SELECT source FROM optouts WHERE number = ?", (number,)).fetchone()
    return None if row is None else str(row[0])


async def test_an_admins_add_after_the_phones_stop_is_the_admins_and_start_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The phone texted STOP; the owner then asked in writing and the admin ran `smsgw optout add`.
    # It said "already on", the entry stayed the phone's, and the phone's START took it off the list.
    async with _phone_texted(tmp_path) as (gw, sink):
        await _answer(gw, sink, "STOP")
        assert _source(gw) == "mo"
        capsys.readouterr()
        assert cmd_optout_add(gw.config, argparse.Namespace(number="601123456")) == 0
        assert capsys.readouterr().out == (
            "+48601123456 was on the opt-out list by the phone's STOP; now kept as the admin's:"
            " START will not remove it\n"
        )
        await gw.until(lambda: _source(gw) == "admin")
        assert cmd_optout_add(gw.config, argparse.Namespace(number="601123456")) == 0
        assert capsys.readouterr().out == "+48601123456 already on the opt-out list\n"
        started = await _answer(gw, sink, "START")
        assert "answered START: it is still on the opt-out list (added by an admin)" in _noted(started)
        assert _opted_out(gw)
        refused = await _texted(gw, "Druga oferta")
        assert code(refused) == 550 and "opted out" in error_text(refused)


async def test_the_panels_add_after_the_phones_stop_is_the_admins(web: WebContext) -> None:
    # The same through the panel's form: the operator is told the entry became the admin's; a company
    # admin gets the one answer of every add (it tells no one which numbers said STOP).
    store = web.store
    theirs = "+48602000002"  # rival writes to it, and it texted STOP (`panel_store`)
    await store.write(lambda: store.policy.add_optout("+48601000001", word="STOP", source="mo"))
    async with as_user(web, OPERATOR) as c:
        token = csrf_of((await c.get("/account")).text)
        data = {"csrf": token, "action": "add", "number": "+48601000001"}
        r = await c.post("/optouts", data=data, follow_redirects=True)
        assert (
            "+48601000001 was on the opt-out list by the phone's STOP; now kept as the admin's:"
            " START will not remove it"
        ) in html.unescape(r.text)
    async with as_user(web, OTHER_ADMIN) as c:
        token = csrf_of((await c.get("/account")).text)
        data = {"csrf": token, "action": "add", "number": theirs}
        r = await c.post("/optouts", data=data, follow_redirects=True)
        said = html.unescape(r.text)
        assert f"{theirs} is on the opt-out list" in said and "by the phone's STOP" not in said
    # A company admin's entry is their account's own (migration 59): the shared one stays the phone's,
    # which its START lifts; the account's entry stays, as an admin's entry always did.
    assert (_source(store, "+48601000001"), _source(store, theirs)) == ("admin", "mo")
    assert await store.write(lambda: store.policy.opt_back_in(theirs)) == "mo"  # the phone's START
    rival = store.accounts.get_account("rival").id
    assert store.policy.optout_by(theirs, rival) == ["account"] and not store.policy.is_opted_out(theirs)


async def test_an_mo_over_cimd2_puts_no_phone_number_in_the_log(tmp_path: Path) -> None:
    # The CIMD2 link logged every MO's sender (`cimd2.mo`), and an opt-out its number: a log line
    # that `smsgw phone forget` cannot erase, against "an MO is logged by its id alone".
    async with _phone_texted(tmp_path, "cimd2") as (gw, sink):
        with capture_logs() as logs:
            stopped = await _answer(gw, sink, "STOP")
        assert _opted_out(gw) and "answered with an opt-out word" in _noted(stopped)
    gateway = [e for e in logs if not e["event"].startswith("sim.")]  # the simulator is the phone's side
    assert {"cimd2.mo", "optout.added"} <= {e["event"] for e in gateway}, gateway
    # As the log writes them: its redaction masks the number in a CIMD2 message id (the MT's receipt,
    # `dlr.recorded`, may come while the logs are captured).
    written = [_redact(None, "", dict(e)) for e in gateway]
    assert not [e for e in written if PHONE.lstrip("+") in str(e)], written
