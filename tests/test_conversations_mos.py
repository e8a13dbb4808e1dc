"""Two-way SMS (issue 10) when an MO has no conversation, opts out, or is odd: kept as unmatched or
sent to the fallback, opt-out words matched without case or diacritics, a phone flooding a staff
member kept past the hourly limit, alphanumeric and digit sender IDs, MOs delivered or sent again,
segments out of order with one missing, the purge. Handlers on a real SQLite file with an injected
clock, as in test_conversations.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import conversations
from gateway.events import GatewayEvents, Notifier
from gateway.reassembly import TIMEOUT_SECONDS, gap
from gateway.store.db import Store
from smsc.base import Concat
from smsc.decoding import decode_user_data
from tests.test_conversations import BASE, DAY, PHONE, World

# ---- no conversation, opt-out, bad MOs ----------------------------------------------------------


async def test_without_conversation_or_fallback_the_mo_is_kept_as_unmatched(tmp_path: Path) -> None:
    w = World(tmp_path)
    await w.mo("hello?", to="+48500999999")  # no pool or sender number of ours
    assert w.mo_states() == ["unmatched"] and w.outbox() == []
    (row,) = conversations.handlers.repo(w.store).list_mo(since=None, numbers=None, limit=5)
    assert "no SMS was sent" in row["note"]


async def test_an_optout_acts_and_is_mailed_to_the_user(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("STOP")
    assert w.store.policy.is_opted_out(PHONE)
    # The SMS still queued for the phone ends with the STOP, its bounce queued in the same write.
    (bounce, (_, rcpt, msg)) = w.outbox()
    assert bounce[:2] == ("dsn", "anna@acme.example")
    assert rcpt == "anna@acme.example" and "opt-out" in msg.get_content()
    assert "1 SMS still waiting to go to it ended unsent" in " ".join(msg.get_content().split())
    assert w.mo_states() == ["optout"]


@pytest.mark.parametrize(
    ("text", "opted_out"),
    [
        ("REZYGNUJĘ", True),  # as a phone types it, with its diacritic
        ("rezygnuje!", True),
        ("Stop.", True),
        # What phones put around it: an ellipsis character, quotes, an emoji, a BOM, a zero-width
        # space; the word was missed and the STOP mailed as an ordinary answer.
        ("STOP…", True),
        ("„STOP”", True),
        ("STOP 🙏", True),
        ("STOP :)", True),
        ("\ufeffSTOP", True),
        ("STOP\u200b", True),
        ("Nie.", False),  # "no": the commonest answer to a question, not a wish to hear nothing more
        ("stop it", False),  # not the word alone
        ("nie STOP", False),
        ("STOPka", False),
    ],
)
async def test_opt_out_words_are_matched_without_case_or_diacritics(
    tmp_path: Path, text: str, opted_out: bool
) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo(text)
    assert w.store.policy.is_opted_out(PHONE) is opted_out
    assert w.mo_states() == ["optout" if opted_out else "mailed"]


@pytest.mark.parametrize(
    ("text", "kw"),
    [
        ("", {}),  # empty text
        (decode_user_data(bytes.fromhex("050003010101"), 0, udhi=True)[0], {}),  # only a UDH
        (decode_user_data(b"\x00T\x00a\x00", 8)[0], {"data_coding": 8}),  # UCS-2, odd byte count
    ],
)
async def test_odd_texts_are_still_mailed(tmp_path: Path, text: str, kw: dict[str, object]) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo(text, **kw)
    ((_, rcpt, msg),) = w.outbox()
    assert rcpt == "anna@acme.example" and msg.get_content()


async def test_an_answer_to_a_user_removed_since_goes_to_the_fallback(tmp_path: Path) -> None:
    # Removed from the ACL, the employee kept getting customers' answers for the reply window
    # while the company's fallback got nothing.
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    w.send("anna@acme.example")
    w.store.accounts.remove_user("anna@acme.example")
    await w.mo("Tak, będę")
    ((kind, rcpt, msg),) = w.outbox()
    assert (kind, rcpt, w.mo_states()) == ("reply-fallback", "ops@example.com", ["fallback"])
    assert "anna@acme.example, who is no longer a user" in msg.get_content()


async def test_a_phone_flooding_a_staff_member_is_kept_past_the_hourly_limit(tmp_path: Path) -> None:
    # Every answer became a mail: a phone could fill anna's mailbox through the gateway. Past the
    # limit the answers are kept (listed, not lost) and not mailed; the last mail says so; an hour
    # on, answers are mailed again, and an opt-out word is always acted on.
    w = World(tmp_path, "mails_per_phone_per_hour = 3")
    w.send("anna@acme.example")
    for n in range(5):
        await w.mo(f"answer {n}")
        w.now += 60
    assert w.mo_states() == ["mailed", "mailed", "mailed", "throttled", "throttled"]
    mails = w.outbox()
    assert len(mails) == 3 and "more within the hour are kept" in mails[-1][2].get_content()
    await w.mo("STOP")
    assert w.store.policy.is_opted_out(PHONE)
    w.now += 3600
    await w.mo("an hour later")
    assert w.mo_states()[-1] == "mailed"


async def test_an_alphanumeric_source_goes_to_the_fallback(tmp_path: Path) -> None:
    w = World(tmp_path, 'fallback_address = "ops@example.com"')
    w.send("anna@acme.example")
    await w.mo("Your parcel", source="DHL")
    ((kind, rcpt, msg),) = w.outbox()
    assert (kind, rcpt, w.mo_states()) == ("reply-fallback", "ops@example.com", ["fallback"])
    assert "not a phone number" in msg.get_content()
    # A From a mail server takes (one valid address: the gateway's), the subject not a "Re:".
    assert msg["From"].addresses[0].addr_spec == w.config.mail.from_address  # type: ignore[attr-defined]
    assert msg["Subject"] == "SMS from DHL to +48100200300 (no conversation)"


@pytest.mark.parametrize(
    ("fallback", "state"), [('fallback_address = "ops@example.com"', "fallback"), ("", "unmatched")]
)
async def test_a_sender_id_of_digits_is_not_taken_for_the_phone_it_looks_like(
    tmp_path: Path, fallback: str, state: str
) -> None:
    # "601123456" with TON 5 is a name (alphanumeric sender ID), not PHONE in its national form:
    # it goes where other senders that are no phone go, never into PHONE's conversation, and it
    # does not count against PHONE's hourly limit.
    w = World(tmp_path, f"{fallback}\nmails_per_phone_per_hour = 2")
    w.send("anna@acme.example")
    await w.mo("Tak")
    await w.mo("Promo: 50% taniej", source="601123456", raw={"source_ton": "5"})
    await w.mo("Będę o 10")
    assert w.mo_states() == ["mailed", state, "mailed"]
    mails = [(kind, rcpt, m.get_content().split("\n")[0]) for kind, rcpt, m in w.outbox()]
    assert [m for m in mails if m[1] == "anna@acme.example"] == [
        ("reply", "anna@acme.example", "Tak"),
        ("reply", "anna@acme.example", "Będę o 10"),
    ]
    note = w.store.db.conn.execute("SELECT note FROM mo WHERE source = '601123456'").fetchone()[0]
    assert "not a phone number" in note


async def test_a_redelivered_mo_is_mailed_once(tmp_path: Path) -> None:
    # The SMSC sends the same MO again (our ack was lost, or we were killed before sending it).
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("OK", acked=False)
    w.store.close()
    w2 = World.__new__(World)
    w2.__dict__.update(w.__dict__)
    w2.store = Store.open(tmp_path / "db.sqlite", clock=lambda: w2.now)
    w2.events = GatewayEvents(w2.store, Notifier(w2.store, w.config))  # type: ignore[arg-type]
    w2.now += 5
    await w2.mo("OK")
    assert w2.mo_states() == ["mailed", "duplicate"] and len(w2.outbox()) == 1


@pytest.mark.parametrize(("later", "mailed"), [(130.0, 1), (3600.0, 1)])
async def test_an_answer_whose_ack_never_reached_the_smsc_is_mailed_once_however_late_it_comes_again(
    tmp_path: Path, later: float, mailed: int
) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("OK", acked=False)
    w.now += later
    await w.mo("OK")
    assert len(w.outbox()) == mailed and w.mo_states() == ["mailed", "duplicate"]


async def test_the_same_answer_sent_again_by_the_phone_is_mailed_again(tmp_path: Path) -> None:
    # Its first copy's acknowledgement reached the SMSC: a second "OK" a minute later is the phone's.
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("OK")
    w.now += 60
    await w.mo("OK")
    assert len(w.outbox()) == 2 and w.mo_states() == ["mailed", "mailed"]


async def test_a_stop_delivered_again_or_sent_again_changes_nothing(tmp_path: Path) -> None:
    # The SMSC's second copy of a STOP is a duplicate; the phone's own second STOP is harmless: the
    # number stays opted out, once, and the second is mailed as any answer (held to the hourly limit).
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("STOP", acked=False)
    w.now += 300
    await w.mo("STOP")
    w.now += 300
    await w.mo("STOP")
    assert w.mo_states() == ["optout", "duplicate", "mailed"]
    assert w.store.policy.is_opted_out(PHONE)
    assert w.store.db.conn.execute("SELECT COUNT(*) FROM optouts").fetchone()[0] == 1


async def test_the_same_answer_to_a_new_question_is_mailed_again(tmp_path: Path) -> None:
    # "Tak" to the first question, a new SMS a minute later, "Tak" again: a new answer,
    # not the SMSC delivering the first one again (which it is a second after the first's ack).
    w = World(tmp_path)
    w.send("anna@acme.example", text="Przyjdziesz?")
    await w.mo("Tak")
    w.now += 1
    await w.mo("Tak")  # within REPEAT_AFTER_ACK_SECONDS of the first one's ack: the SMSC again
    w.now += 30
    w.send("anna@acme.example", text="A jutro?")
    w.now += 30
    await w.mo("Tak")
    assert w.mo_states() == ["mailed", "duplicate", "mailed"] and len(w.outbox()) == 2


async def test_segments_out_of_order_with_one_missing_are_mailed_with_a_gap(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.send("anna@acme.example")
    await w.mo("three", concat=Concat(ref=7, total=3, seq=3))
    await w.mo("one ", concat=Concat(ref=7, total=3, seq=1))
    await w.mo("one ", concat=Concat(ref=7, total=3, seq=1))  # twice
    assert w.outbox() == []  # waiting for part 2
    w.now += TIMEOUT_SECONDS + 1
    await w.store.write(lambda: None)

    def expire() -> None:
        for mo_id in w.store.mo.join_stale_segments(w.now - TIMEOUT_SECONDS):
            w.events.whole_mo(mo_id)

    await w.store.write(expire)
    ((_, _, msg),) = w.outbox()
    assert msg.get_content().startswith(f"one  {gap(2, 2, 3)} three")


async def test_conversations_are_purged_after_window_plus_retention(tmp_path: Path) -> None:
    from gateway.retentionpurge import purge_before

    w = World(tmp_path)
    w.send("anna@acme.example")
    w.now += 90 * DAY + 1
    await purge_before(w.store, w.now - 90 * DAY, reply_window=7 * DAY)
    assert conversations.handlers.repo(w.store).list_conversations(user=None, numbers=None, limit=5)
    w.now += 7 * DAY
    await purge_before(w.store, w.now - 90 * DAY, reply_window=7 * DAY)
    assert not conversations.handlers.repo(w.store).list_conversations(user=None, numbers=None, limit=5)


def test_account_commands_say_an_alphanumeric_sender_cannot_be_answered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli.main import main

    conf = tmp_path / "config.toml"
    conf.write_text(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'))
    assert main(["-c", str(conf), "account", "add", "acme", "--sender", "ACME"]) == 0
    assert "replies are impossible" in capsys.readouterr().out
    assert main(["-c", str(conf), "account", "set", "acme", "--sender", "+48500100200"]) == 0
    assert "replies are impossible" not in capsys.readouterr().out
