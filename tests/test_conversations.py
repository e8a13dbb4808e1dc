"""Two-way SMS (issue 10) below the network: numbers, the pool, the window, the reply mail, bad MOs.

The handlers run on a real SQLite file through `GatewayEvents`, as the daemon runs them; the
clock is injected so that window tests move time instead of sleeping. MOs with no conversation, opt-outs
and odd MOs have a module of their own (test_conversations_mos.py); `World` and the numbers other
modules import stay here.
"""

from __future__ import annotations

import email
import re
import sqlite3
from email import policy
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from gateway import conversations
from gateway.config import ConfigError, parse_config
from gateway.configfeatures import expand_pool
from gateway.conversations.numbers import to_e164
from gateway.events import GatewayEvents, Notifier
from gateway.reassembly import TIMEOUT_SECONDS  # noqa: F401  (test_segment_sets imports it from here)
from gateway.store.db import Store
from gateway.store.records import Acceptance, NewMessage, NewPart
from smsc.base import Ack, InboundSms

PHONE = "+48601123456"
SENDER = "+48100200300"
DAY = 86400.0
T0 = 1_800_000_000.0

BASE = """
[gateway]
domains = ["sms.example.com"]
[[smsc]]
name = "main"
type = "smpp"
port = 2775
"""


def cfg(replies: str = "") -> object:
    return parse_config(BASE + "[replies]\n" + replies, source="test")


class World:
    """A store, its clock and the daemon's MO handling, without the network."""

    def __init__(self, tmp_path: Path, replies: str = "") -> None:
        self.now = T0
        self.config = cfg(replies)
        self.store = Store.open(tmp_path / "db.sqlite", clock=lambda: self.now)
        self.events = GatewayEvents(self.store, Notifier(self.store, self.config))  # type: ignore[arg-type]

    def send(
        self,
        user: str,
        phone: str = PHONE,
        *,
        subject: str = "Meeting",
        text: str = "At 10?",
        sender: str = SENDER,
    ) -> str:
        """An accepted MT from `user`; returns the number it goes out from."""
        if self.store.accounts.find_user(user) is None:  # mail is accepted from users only
            if not any(a.name == "acme" for a in self.store.accounts.list_accounts()):
                self.store.accounts.add_account("acme")
            self.store.accounts.add_user(user, "acme")
        msg = NewMessage(phone, sender, text, 0, [NewPart(1, 0, text.encode(), b"", text)])
        mid = f"<{user.partition('@')[0]}.{int(self.now)}@acme>"
        account = self.store.accounts.find_user(user).account_id  # type: ignore[union-attr]
        acc = Acceptance(user, "127.0.0.1", account, None, mid, None, subject, text, [msg], 3600)
        opening = conversations.opening(
            self.config,  # type: ignore[arg-type]
            user_email=user,
            account_id=account,
            sender=sender,
            domains={phone: "sms.example.com"},
        )
        assert opening is not None
        conversations.on_accept(self.store, opening, acc)
        self.store.queue.insert_email(acc)
        return msg.source

    async def mo(
        self, text: str, *, source: str = PHONE, to: str = SENDER, acked: bool = True, **kw: object
    ) -> None:
        """An MO as a link hands it up; `acked`: the driver then reports that the SMSC read its
        acknowledgement (False: a crash or a dropped connection before it could)."""
        sms = InboundSms(source=source, destination=to, text=text, **kw)  # type: ignore[arg-type]
        if await self.events.on_deliver("main", sms) is Ack.OK:
            self.events.on_acked("main", sms, acked)
            await self.store.drain()

    def mo_states(self) -> list[str]:
        return [
            r[0]
            for r in self.store.db.conn.execute(
                "SELECT state FROM mo WHERE state NOT IN ('segment', 'joined') ORDER BY id"
            )
        ]

    def outbox(self) -> list[tuple[str, str, email.message.EmailMessage]]:
        rows = self.store.db.conn.execute("SELECT kind, rcpt, content FROM outbox ORDER BY id").fetchall()
        return [(k, r, email.message_from_bytes(c, policy=policy.default)) for k, r, c in rows]  # type: ignore[misc]


# ---- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "ton", "expected"),
    [
        ("+48601123456", None, PHONE),  # international with +
        ("48601123456", 1, PHONE),  # SMPP TON 1 digits (international without +)
        ("48601123456", 0, PHONE),  # TON unknown, country code included
        ("48601123456", None, PHONE),  # CIMD2 without prefix
        ("0048601123456", None, PHONE),  # CIMD2's usual international form
        ("601123456", 2, PHONE),  # SMPP TON 2, national
        ("48601123456", 2, PHONE),  # labelled national, carries its country code
        ("601123456", 4, PHONE),  # SMPP TON 4, subscriber
        ("601123456", 0, PHONE),  # TON unknown, national digits
        ("601123456", "2", PHONE),  # TON as the link's raw text
        ("ACME", 5, None),  # alphanumeric
        ("7155", 3, None),  # a short code is no phone
        ("+0048601123456", 1, None),  # junk: a garbled STOP must not opt a real number out
        ("601123456", 5, None),  # a sender ID of digits is a name: was taken for that phone
        ("+4860 1123456", None, None),  # junk, not tidied up
    ],
)
def test_every_form_an_smsc_sends_becomes_e164(address: str, ton: object, expected: str | None) -> None:
    assert to_e164(address, "PL", ton) == expected  # type: ignore[arg-type]


# ---- config -----------------------------------------------------------------------------------


def test_pool_ranges_expand_in_order() -> None:
    assert expand_pool(("+48500100200", "+48500100300..+48500100302", "+48500100200")) == (
        "+48500100200",
        "+48500100300",
        "+48500100301",
        "+48500100302",
    )


@pytest.mark.parametrize("bad", ['"48500100200"', '"+48500100302..+48500100300"', '"+485..+4850010"'])
def test_a_bad_pool_entry_is_named(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"\[replies\] pool: "):
        cfg(f"pool = [{bad}]")


@pytest.mark.parametrize(
    ("section", "key", "new"),
    [("gateway", "reply_window_days = 3", "[replies] window_days"),
     ("mail", 'fallback_address = "x@example.com"', "[replies] fallback_address")],
)  # fmt: skip
def test_an_old_reply_key_names_its_new_place(section: str, key: str, new: str) -> None:
    text = BASE.replace(
        "[gateway]", f"[{section}]\n{key}\n[gateway]" if section == "mail" else f"[gateway]\n{key}"
    )
    with pytest.raises(ConfigError, match=f"has moved: use {re.escape(new)}"):
        parse_config(text, source="test")


def test_an_alphanumeric_sender_is_told_it_cannot_be_answered(capsys: pytest.CaptureFixture[str]) -> None:
    # Said by check-config and at the start (test_mo_crash.py), not at every command's config load.
    config = parse_config(BASE + '[[account]]\nname = "acme"\nsender = "ACME"\n', source="test")
    assert "replies are impossible" not in capsys.readouterr().err
    assert conversations.unanswerable(config) == [
        "account acme: sender 'ACME' is alphanumeric: phones cannot answer it, replies are impossible"
    ]
    assert conversations.opening(cfg(), user_email="a@b.c", account_id=1, sender="ACME", domains={}) is None  # type: ignore[arg-type]


# ---- the reply mail ----------------------------------------------------------------------------


async def test_an_answer_is_mailed_from_the_phone_threaded_and_quoted(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example", subject="Spotkanie", text="Czy 10:00 pasuje?")
    await w.mo("Tak, będę o 10:00")
    ((kind, rcpt, msg),) = w.outbox()
    assert (kind, rcpt) == ("reply", "anna@acme.example")
    raw = w.store.db.conn.execute("SELECT content FROM outbox").fetchone()[0]
    assert raw.startswith(b'From: "+48 601 123 456" <+48601123456@sms.example.com>\n')
    assert msg["Subject"] == "Re: Spotkanie (SMS from +48 601 123 456)"
    assert msg["In-Reply-To"] == msg["References"] == f"<anna.{int(T0)}@acme>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert body.startswith("Tak, będę o 10:00\n")
    assert "> Czy 10:00 pasuje?" in body
    assert w.mo_states() == ["mailed"]


async def test_without_a_subject_the_reply_names_the_number(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example", subject="")
    await w.mo("OK")
    assert w.outbox()[0][2]["Subject"] == "SMS from +48 601 123 456"


# ---- the window -------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "state"), [(6 * DAY + 23 * 3600, "mailed"), (7 * DAY + 60, "fallback")])
async def test_window_boundary(tmp_path: Path, after: float, state: str) -> None:
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    w.send("anna@acme.example")
    w.now += after
    await w.mo("late answer")
    assert w.mo_states() == [state]
    assert w.outbox()[0][1] == ("anna@acme.example" if state == "mailed" else "ops@example.com")


# ---- the pool ---------------------------------------------------------------------------------

POOL2 = 'pool = ["+48500100200..+48500100201"]'


async def test_two_users_to_one_phone_get_their_own_numbers_and_answers(tmp_path: Path) -> None:
    w = World(tmp_path, POOL2)
    a = w.send("anna@acme.example", text="from Anna")
    b = w.send("bob@other.example", text="from Bob")
    assert {a, b} == {"+48500100200", "+48500100201"}
    assert w.send("anna@acme.example") == a  # the conversation keeps its number
    await w.mo("for Bob", to=b)
    await w.mo("for Anna", to=a)
    assert [(rcpt, m.get_content().split("\n")[0]) for _, rcpt, m in w.outbox()] == [
        ("bob@other.example", "for Bob"),
        ("anna@acme.example", "for Anna"),
    ]


async def test_a_user_writing_their_address_in_another_case_keeps_their_own_number(tmp_path: Path) -> None:
    # Anna and ANNA are one mailbox; her conversation is her own, not another user's to
    # displace (which moved her onto Bob's number: Bob's answers went to her, hers to nobody).
    w = World(tmp_path, POOL2)
    b = w.send("bob@other.example")
    w.now += 60
    a = w.send("anna@acme.example")
    w.now += 60
    assert w.send("ANNA@Acme.example") == a
    await w.mo("for Bob", to=b)
    await w.mo("for Anna", to=a)
    assert [rcpt.lower() for _, rcpt, _ in w.outbox()] == ["bob@other.example", "anna@acme.example"]


@pytest.mark.parametrize("sender", ["48500100200", "500100200"])
async def test_a_sender_configured_without_its_plus_is_answered(tmp_path: Path, sender: str) -> None:
    # the answer names our number in E.164 whichever way the SMSC writes it; the number
    # the conversation keeps must be read the same way, or every answer went to the fallback.
    w = World(tmp_path)
    w.send("anna@acme.example", sender=sender)
    await w.mo("Yes", to="48500100200")
    assert w.mo_states() == ["mailed"] and w.outbox()[0][1] == "anna@acme.example"


async def test_an_exhausted_pool_takes_over_the_least_recent_conversation(tmp_path: Path) -> None:
    w = World(tmp_path, POOL2)
    a = w.send("anna@acme.example")
    w.now += 60
    w.send("bob@other.example")
    w.now += 60
    with capture_logs() as logs:
        c = w.send("carol@third.example")
    assert c == a
    (warning,) = [e for e in logs if e["event"] == "conversation.displaced"]
    assert warning["log_level"] == "warning"
    assert (warning["user"], warning["displaced_user"], warning["phone"]) == (
        "carol@third.example",
        "anna@acme.example",
        PHONE,
    )
    await w.mo("who gets this?", to=a)
    assert w.outbox()[0][1] == "carol@third.example"


async def test_different_phones_share_pool_numbers(tmp_path: Path) -> None:
    w = World(tmp_path, 'pool = ["+48500100200"]')
    assert w.send("anna@acme.example", PHONE) == w.send("bob@other.example", "+48601999888")


# ---- what an MT reads ---------------------------------------------------------------------------


def conversation_reads(w: World, action: object) -> int:
    seen: list[str] = []
    w.store.db.conn.set_trace_callback(seen.append)
    try:
        action()  # type: ignore[operator]
    finally:
        w.store.db.conn.set_trace_callback(None)
    return sum(1 for sql in seen if sql.startswith("SELECT") and "FROM conversations WHERE phone" in sql)


async def test_a_pool_number_is_chosen_in_one_read_of_the_phones_conversations(tmp_path: Path) -> None:
    w = World(tmp_path, POOL2)
    a = w.send("anna@acme.example")
    w.send("bob@other.example")
    # The others' live conversations and the user's own come from one statement.
    assert conversation_reads(w, lambda: w.send("anna@acme.example")) == 1
    assert w.send("anna@acme.example") == a


async def test_find_live_tells_what_find_and_the_window_tell(tmp_path: Path) -> None:
    w = World(tmp_path, "window_days = 1")
    w.send("anna@acme.example")
    repo = conversations.handlers.repo(w.store)
    conv = repo.find(PHONE, "anna@acme.example")
    assert repo.find_live(PHONE, "anna@acme.example", w.now + DAY, DAY) == (conv, True)
    assert repo.find_live(PHONE, "anna@acme.example", w.now + DAY + 1, DAY) == (conv, False)
    assert repo.find_live(PHONE, "bob@other.example", w.now, DAY) is None


async def test_a_handler_failing_on_an_mo_keeps_it_as_failed_and_the_smsc_hears_ok(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug (or data a handler cannot take) must not make the SMSC deliver the same MO forever.
    w = World(tmp_path)
    w.send("anna@acme.example")

    def broken(*_args: object, **_kwargs: object) -> None:
        w.store.db.after_commit(lambda: pytest.fail("an undone handler's callback ran"))
        raise ValueError("handler bug")

    monkeypatch.setattr(conversations, "on_whole_mo", broken)
    with capture_logs() as logs:
        ack = await w.events.on_deliver("main", InboundSms(source=PHONE, destination=SENDER, text="Yes"))
    assert ack is Ack.OK
    state, note = w.store.db.conn.execute("SELECT state, note FROM mo").fetchone()
    assert state == "failed" and "handler bug" in note
    assert "mo.handling_failed" in [e["event"] for e in logs]
    monkeypatch.undo()
    await w.mo("Yes, at 10")
    assert w.mo_states() == ["failed", "mailed"]
    assert [kind for kind, _rcpt, _msg in w.outbox()] == ["reply"]


async def test_an_mo_meeting_a_full_disk_is_not_stored_and_comes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No fault of the MO: the whole write fails, the SMSC hears "retry", and the copy it delivers
    # again is handled once the store can take it (not kept as `failed`).
    w = World(tmp_path)
    w.send("anna@acme.example")
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise full

    monkeypatch.setattr(conversations, "on_whole_mo", disk_full)
    sms = InboundSms(source=PHONE, destination=SENDER, text="Yes")
    assert await w.events.on_deliver("main", sms) is Ack.RETRY
    assert w.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone()[0] == 0
    monkeypatch.undo()
    assert await w.events.on_deliver("main", sms) is Ack.OK
    assert w.mo_states() == ["mailed"]
