"""The client's answer to a premium SMS: one free SMS from the premium number, refused (and recorded,
using nothing up) from outside the reply ACL, beyond the limit, after the window, to a phone that
opted out or that no link serves any more; bounces and receipts are no answers, an auto-reply quoting
the original is one; long, Polish and HTML-only answers. Handlers run on a real SQLite file as in
test_premium.py, split from it by subject (it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

from gateway.config import parse_config
from gateway.premium import answers, passwords
from gateway.smtp import replies
from gateway.smtp.intake import IntakeOptions, read_mail
from gateway.store import forwardsteps
from smsc.base import Ack, InboundSms
from tests.test_premium import BASE, CLIENT, FALLBACK, PHONE, T0, World

# ---- answers -----------------------------------------------------------------------------------


def answers_rows(w: World) -> list[tuple[object, ...]]:
    return w.store.db.conn.execute(
        "SELECT state, reason, mail_from, cut FROM premium_answers ORDER BY id"
    ).fetchall()


def sms(w: World) -> list[tuple[object, ...]]:
    return w.store.db.conn.execute("SELECT recipient, source, text, parts_total FROM messages").fetchall()


async def test_an_answer_becomes_one_free_sms_from_the_premium_number(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Thanks, vote counted!\n\n-- \nACME contests\n> KP123 vote A")
    assert queued and reply.startswith("250 2.0.0 OK: queued")
    assert sms(w) == [(PHONE, "7355", "Thanks, vote counted!", 1)]
    assert answers_rows(w) == [("sent", None, CLIENT, 0)]
    assert w.store.accounts.usage(f"account:{w.account.id}", "2027-01") == 0  # free: no limit charged


async def test_an_answer_to_a_phone_that_opted_out_since_is_refused(tmp_path: Path) -> None:
    # The vote, then a STOP from the same phone: the client's free answer went out all the same.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    w.store.policy.add_optout(PHONE, word="STOP", source="mo")
    reply, queued = w.answer("Thanks, vote counted!")
    assert not queued and reply.startswith("550 5.7.1") and "opted out" in reply
    assert sms(w) == [] and [r[0] for r in answers_rows(w)] == ["refused"]


async def test_an_answer_to_a_phone_that_opted_out_before_its_vote_is_sent(tmp_path: Path) -> None:
    # A STOP months ago, then a paid vote: the client's answer is what the phone paid for.
    w = World(tmp_path)
    w.service()
    w.store.policy.add_optout(PHONE, word="STOP", source="mo")
    w.now += 90 * 86400
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Thanks, vote counted!")
    assert queued and reply.startswith("250"), reply
    assert [(r[0], r[2]) for r in sms(w)] == [(PHONE, "Thanks, vote counted!")]
    assert [r[0] for r in answers_rows(w)] == ["sent"]
    assert w.store.policy.is_opted_out(PHONE)  # still opted out of everything else


async def test_answers_beyond_the_limit_are_refused_and_recorded(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("first")[1]
    reply, queued = w.answer("second", Message_ID="<second@acme.pl>")
    assert (reply, queued) == (replies.PREMIUM_ANSWERED.format(1), False)
    assert len(sms(w)) == 1 and [r[0] for r in answers_rows(w)] == ["sent", "refused"]


async def test_the_same_answer_mail_twice_is_one_sms(tmp_path: Path) -> None:
    w = World(tmp_path, premium="answers_per_mo = 2")
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("ok", Message_ID="<a1@acme.pl>")[1]
    assert w.answer("ok", Message_ID="<a1@acme.pl>") == (replies.OK_DUPLICATE, False)
    assert w.answer("and more", Message_ID="<a2@acme.pl>")[1]
    assert len(sms(w)) == 2


async def test_an_answer_from_outside_the_acl_is_refused_and_uses_nothing(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("free SMS for me", sender="eve@evil.example")
    assert (reply, queued) == (replies.PREMIUM_NOT_ON_ACL.format("eve@evil.example"), False)
    assert answers_rows(w) == [("refused", "sender not on the reply ACL", "eve@evil.example", 0)]
    assert w.answer("the real answer")[1]  # the refusal used up nothing
    assert [r[2] for r in sms(w)] == ["the real answer"]


async def test_bounces_and_receipts_are_not_answers(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Delivery failed", sender="", From="MAILER-DAEMON@acme.pl")
    assert reply.startswith("250 2.0.0 OK: recorded, not sent") and not queued
    assert sms(w) == [] and answers_rows(w)[0][0] == "refused"


async def test_an_auto_reply_that_quotes_the_original_answers_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    body = "Dziekujemy za glos!\n\nOn Mon, SMS gateway wrote:\n> vote A\n> \n> -- \n> Premium SMS to 7355"
    assert w.answer(body, sender="", Auto_Submitted="auto-replied")[1]  # null Return-Path: From decides
    assert sms(w)[0][2] == "Dziekujemy za glos!"
    assert not w.answer(body, sender="", Auto_Submitted="auto-replied", Message_ID="<x@y.z>")[1]


async def test_a_long_answer_is_cut_to_one_sms_and_the_sender_told(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("x" * 150 + " and the rest that does not fit")[1]
    ((_to, _src, text, parts),) = sms(w)
    assert parts == 1 and text == "x" * 150 + " and the " and answers_rows(w)[0][3] == 1  # cut at a word
    ((_k, _f, rcpt, notice),) = w.outbox("premium-cut")
    assert rcpt == CLIENT and "does not fit" in notice.get_content()
    assert w.answer("ą" * 100, token=None) == (replies.PREMIUM_ANSWERED.format(1), False)


async def test_a_polish_answer_is_cut_at_70(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("ą" * 100)[1]
    assert len(str(sms(w)[0][2])) == 70


async def test_an_html_only_answer_is_read(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    raw = (b"From: konkurs@acme.pl\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><body><p>Wygra\xc5\x82e\xc5\x9b!</p></body></html>\r\n")  # fmt: skip
    mail = read_mail(raw, IntakeOptions(subject_max=0, end_marker=None))
    assert answers.answer(w.store, w.config, w.token(), CLIENT, CLIENT, mail)[1]  # type: ignore[arg-type]
    assert sms(w)[0][2] == "Wygrałeś!"


async def test_an_answer_after_the_window_or_to_a_removed_service_is_refused(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service()
    await w.mo("KP123 vote A")
    w.now += 8 * 86400
    assert w.answer("late") == (replies.PREMIUM_TOO_OLD.format(7), False)
    w.now = T0
    w.r.update_service(sid, removed_at=T0)
    assert w.answer("gone") == (replies.PREMIUM_SERVICE_GONE.format("KP123"), False)
    assert sms(w) == []


async def test_a_step_forward_of_the_clock_in_the_window_is_no_time_passed(tmp_path: Path) -> None:
    """A step forward of 8 days made a vote mailed a minute before it read as past the 7-day window:
    the client's answer was refused (the conversations' windows count such a step as no time)."""
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    w.now += 60 + 8 * 86400  # a minute on, the clock steps 8 days forward
    forwardsteps.record_forward(w.store.db.conn, w.now, 8 * 86400)
    assert w.answer("in time")[1]
    w.now += 7 * 86400  # and a week of real time later, past it
    assert w.answer("late") == (replies.PREMIUM_TOO_OLD.format(7), False)


async def test_a_quote_only_answer_is_refused(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("> vote A")
    assert reply == replies.body_only(replies.ONLY_QUOTE) and not queued


def test_only_the_token_names_an_answer() -> None:
    assert passwords.target("premium-" + "a" * 24) == passwords.Target("premium", "a" * 24)
    assert passwords.target("CONFIRM-" + "A2" * 12) == passwords.Target("confirm", "a2" * 12)
    for bad in ("premium-" + "a" * 23, "premium-" + "1" * 24, "info", "48601123456"):
        assert passwords.target(bad) is None


async def test_an_answer_to_a_phone_no_link_serves_whose_votes_link_is_gone_is_refused(
    tmp_path: Path,
) -> None:
    # The vote came by a link since removed from the config, and no link serves the (German) phone:
    # queued, the free answer waited unsent until it expired and the client was never told.
    w = World(tmp_path)
    routes = BASE.replace("port = 2775", 'port = 2775\nprefixes = ["+48"]')
    w.config = parse_config(routes + f'fallback_address = "{FALLBACK}"', source="t")
    w.service()
    german = "+4915112345678"
    vote = InboundSms(source=german, destination="7355", text="KP123 vote A")
    assert await w.events.on_deliver("gone", vote) is Ack.OK
    w.events.on_acked("gone", vote, True)
    await w.store.drain()
    reply, queued = w.answer("Danke!")
    assert (reply, queued) == (replies.PREMIUM_NO_ROUTE.format("+49 1511 2345678"), False)
    assert sms(w) == [] and answers_rows(w) == [("refused", "no SMSC link serves the phone", CLIENT, 0)]
    # By a link still configured, the same phone's vote is answered by it (`via`).
    await w.mo("KP123 vote B", source=german)
    assert w.answer("Danke!")[1]
    assert w.store.db.conn.execute("SELECT destination, via FROM parts").fetchall() == [(german, "main")]


async def test_an_answer_no_smsc_took_uses_up_no_free_answer(tmp_path: Path) -> None:
    # The SMSC refused the answer at submit (an invalid source, say): the client could not answer
    # the phone again ("answered 1 time(s) already"), and the phone never got a word.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("first")[1]

    def last_part() -> int:
        return int(w.store.db.conn.execute("SELECT MAX(id) FROM parts").fetchone()[0])

    w.store.queue.mark_part_final(last_part(), "failed", "ESME_RINVSRCADR (0x0A)", link="main")
    reply, queued = w.answer("second", Message_ID="<second@acme.pl>")
    assert queued, reply
    w.store.queue.mark_submitted(last_part(), "main", "4711")  # this one the SMSC took
    reply, queued = w.answer("third", Message_ID="<third@acme.pl>")
    assert (reply, queued) == (replies.PREMIUM_ANSWERED.format(1), False)
    assert [r[0] for r in answers_rows(w)] == ["sent", "sent", "refused"]
