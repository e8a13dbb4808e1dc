"""A phone's premium SMS, from the SMSC to the client's mailbox: mailed in the write that stores it,
charged once however often the SMSC delivers it again, an unknown or misdirected password sent to the
fallback address, every form of the premium number found; and the client's address verification
that MOs wait for. Handlers run on a real SQLite file as in test_premium.py, split from it by subject
(it was over 400 lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.premium import answers, handlers, passwords
from gateway.smtp import replies
from gateway.smtp.intake import read_mail
from smsc.base import Concat
from tests.test_premium import CLIENT, FALLBACK, PHONE, World

# ---- routing an MO -----------------------------------------------------------------------------


async def test_an_mo_with_a_password_is_mailed_in_the_write_that_stores_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("  Kp123, vote A")
    assert w.premium_mo() == [("mailed", 1, "KP123", "7355", 1, 300, 110, "vote A")]
    ((kind, mail_from, rcpt, mail),) = w.outbox()
    token = w.token()
    assert (kind, rcpt) == ("premium", CLIENT)
    assert mail_from == f"premium-{token}@sms.example.com"  # auto-responders answer the Return-Path
    assert mail["Subject"] == "KP123 · 7355 · +48 601 123 456"
    assert mail["Reply-To"] == f"premium-{token}@sms.example.com"
    assert "Auto-Submitted" not in mail
    assert mail.get_content().startswith("vote A\n")
    assert w.store.db.conn.execute("SELECT state FROM mo").fetchone()[0] == "premium"


async def test_a_redelivered_mo_is_one_mail_and_one_charge(tmp_path: Path) -> None:
    # The SMSC sends the MO again (our OK was lost in a crash): recognised, not mailed or charged twice.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += 5
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == 1 and len(w.outbox()) == 1
    assert [r[0] for r in w.store.db.conn.execute("SELECT state FROM mo ORDER BY id")] == [
        "premium",
        "duplicate",
    ]
    w.now += 600  # the same vote much later is a new SMS the phone paid for again
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == 2 and len(w.outbox()) == 2


@pytest.mark.parametrize(("later", "charged"), [(130.0, 1), (23 * 3600.0, 1), (86400.0 + 60, 2)])
async def test_a_vote_never_acknowledged_is_the_same_sms_however_late_it_comes_again(
    tmp_path: Path, later: float, charged: int
) -> None:
    # Killed before the SMSC had the acknowledgement (or its connection dropped first): the SMSC
    # delivers it again after the outage, however long; one charge. Looked back on for a day.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += later
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == charged and len(w.outbox()) == charged


@pytest.mark.parametrize(("later", "charged"), [(1.0, 1), (3.0, 2), (600.0, 2)])
async def test_the_same_vote_after_its_acknowledgement_reached_the_smsc_is_a_new_sms(
    tmp_path: Path, later: float, charged: int
) -> None:
    # The phone sent the same vote again and paid again: charged again, unless within 2 s of the
    # first one's acknowledgement (an SMSC that had stopped waiting for it may have repeated it).
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    w.now += later
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == charged and len(w.outbox()) == charged


async def test_once_a_copy_delivered_again_is_acknowledged_the_next_identical_vote_is_new(
    tmp_path: Path,
) -> None:
    # Copy 1 never acknowledged, copy 2 (the SMSC again) acknowledged: the SMSC has stopped
    # delivering that SMS, so the same text a minute later is a new vote.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += 300
    await w.mo("KP123 vote A")
    w.now += 60
    await w.mo("KP123 vote A")
    states = [r[0] for r in w.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
    assert states == ["premium", "duplicate", "premium"] and len(w.premium_mo()) == 2


async def test_a_long_vote_sent_twice_is_charged_twice_and_its_segment_delivered_again_once(
    tmp_path: Path,
) -> None:
    # Segments keep their own rule (a segment of a set already joined is the SMSC again); the whole
    # text of a second long SMS with the same words is a new vote once the first was acknowledged.
    w = World(tmp_path)
    w.service()
    for ref in (7, 8):
        for seq, piece in ((1, "KP123 first half, "), (2, "second half")):
            await w.mo(piece, concat=Concat(ref=ref, total=2, seq=seq))
        w.now += 30
    await w.mo("second half", concat=Concat(ref=8, total=2, seq=2), acked=False)
    assert [r[4:6] for r in w.premium_mo()] == [(2, 600), (2, 600)] and len(w.outbox()) == 2


@pytest.mark.parametrize(
    ("text", "source", "reason"),
    [
        ("KP999 vote", PHONE, "no premium service has the password KP999"),
        ("vote KP123", PHONE, "does not start with a premium password"),
        ("\u041aP123 vote", PHONE, "does not start with a premium password"),
        ("KP123 vote", "ACME", "not a phone number"),
    ],
)
async def test_an_unknown_password_goes_to_the_fallback_recorded(
    tmp_path: Path, text: str, source: str, reason: str
) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo(text, source=source)
    ((state, service, _pw, number, parts, price, commission, _text),) = w.premium_mo()
    assert (state, service, number, parts, price, commission) == ("fallback", None, "7355", 1, 300, 110)
    ((kind, _from, rcpt, mail),) = w.outbox()
    assert (kind, rcpt) == ("premium-fallback", FALLBACK) and "Reply-To" not in mail
    assert reason in mail.get_content() and text.strip() in mail.get_content()


async def test_a_vote_from_a_sender_id_of_digits_is_not_the_phone_it_looks_like(tmp_path: Path) -> None:
    # "601123456" with TON 5 is a name (alphanumeric sender ID), not PHONE in its national form:
    # no service gets it, and no charge is recorded against PHONE.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote", source="601123456", raw={"source_ton": "5"})
    ((state, service, *_),) = w.premium_mo()
    assert (state, service) == ("fallback", None)
    assert w.store.db.conn.execute("SELECT phone FROM premium_mo").fetchone() == ("601123456",)
    ((kind, _from, rcpt, mail),) = w.outbox()
    assert (kind, rcpt) == ("premium-fallback", FALLBACK)
    assert "not a phone number" in mail.get_content()


async def test_without_a_fallback_address_an_unknown_password_goes_to_the_admin(tmp_path: Path) -> None:
    # With neither [premium] nor [replies] fallback_address the paid SMS was recorded and mailed to
    # nobody (R-4.4: "mailed to the operator's fallback address"), and check-config said nothing.
    w = World(tmp_path, premium='[mail]\nadmin_address = "ops@example.com"')
    await w.mo("KP999 vote")
    await w.mo("no password at all")
    assert [r[0] for r in w.premium_mo()] == ["fallback", "fallback"]
    assert [(o[0], o[2]) for o in w.outbox()] == [("premium-fallback", "ops@example.com")] * 2
    assert "no premium service has the password KP999" in w.outbox()[0][3].get_content()


async def test_the_fallback_defaults_to_the_replies_one(tmp_path: Path) -> None:
    w = World(tmp_path, premium='[replies]\nfallback_address = "replies@example.com"')
    await w.mo("KP999 vote")
    assert w.outbox()[0][2] == "replies@example.com"


async def test_a_password_sent_to_another_premium_number_is_unknown(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service(numbers=("7355",))
    await w.mo("KP123 vote", to="7955")
    assert w.premium_mo()[0][:2] == ("fallback", None)
    assert "does not run on 7955" in w.outbox()[0][3].get_content()
    await w.mo("KP123 vote", to="7355")
    assert w.premium_mo()[1][:2] == ("mailed", 1)


async def test_the_password_matches_in_any_case(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service("KPKPK")
    await w.mo("kpkpk yes")
    await w.mo("KpKpKyes", source="+48601123457")
    assert [r[:3] for r in w.premium_mo()] == [("mailed", 1, "KPKPK")] * 2


async def test_a_multipart_premium_mo_is_one_mail_charged_per_part(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    for seq, piece in ((2, "second half"), (1, "KP123 first half, ")):
        await w.mo(piece, concat=Concat(ref=7, total=2, seq=seq))
    ((state, _s, _p, _n, parts, price, commission, text),) = w.premium_mo()
    assert (state, parts, price, commission, text) == ("mailed", 2, 600, 220, "first half, second half")
    assert len(w.outbox()) == 1


@pytest.mark.parametrize("to", ["7355", "+487355", "487355", "00487355"])
async def test_a_premium_number_is_found_in_every_form_an_smsc_writes_it(tmp_path: Path, to: str) -> None:
    # With the country code (SMPP TON 1 or 0, CIMD2's "00") the vote went to the conversations as an
    # unmatched MO: no money record, no mail to the client nor to the fallback.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote", to=to)
    assert [r[:6] for r in w.premium_mo()] == [("mailed", 1, "KP123", "7355", 1, 300)]
    assert [o[2] for o in w.outbox()] == [CLIENT]


async def test_mos_to_other_numbers_stay_with_the_conversations(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 hello", to="+48100200300")
    assert w.premium_mo() == []


# ---- verification ------------------------------------------------------------------------------


async def test_mos_wait_for_the_address_then_go_in_order_once_confirmed(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    ((kind, _f, rcpt, ask),) = w.outbox()
    assert (kind, rcpt) == ("premium-verify", CLIENT)
    confirm = passwords.target(ask["Reply-To"].addresses[0].username)
    assert confirm is not None and confirm.kind == "confirm" and confirm.token in ask.get_content()
    for vote in ("A", "B", "C"):
        w.now += 1
        await w.mo(f"KP123 {vote}")
    assert [r[0] for r in w.premium_mo()] == ["awaiting"] * 3 and len(w.outbox()) == 1
    reply = read_mail(b"From: konkurs@acme.pl\r\nSubject: Re: confirm\r\n\r\nyes\r\n")
    assert answers.confirm(w.store, w.config, confirm.token, reply) == replies.PREMIUM_CONFIRMED.format(
        "KP123", 3
    )  # type: ignore[arg-type]
    assert [m.get_content().split("\n")[0] for *_, m in w.outbox("premium")] == ["A", "B", "C"]
    assert [r[0] for r in w.premium_mo()] == ["mailed"] * 3
    # Single use: the client's server sending the confirmation again changes nothing.
    again = answers.confirm(w.store, w.config, confirm.token, reply)  # type: ignore[arg-type]
    assert again == replies.PREMIUM_ALREADY_CONFIRMED.format("KP123") and len(w.outbox("premium")) == 3
    assert w.r.service(sid).verified_at is not None


async def test_a_bounce_or_an_expired_token_does_not_confirm(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    token = passwords.target(w.outbox()[0][3]["Reply-To"].addresses[0].username).token  # type: ignore[union-attr]
    bounce = read_mail(b"From: MAILER-DAEMON@acme.pl\r\nSubject: Undelivered\r\n\r\nx\r\n", empty_sender=True)
    assert answers.confirm(w.store, w.config, token, bounce).startswith("250 2.0.0 OK: recorded, not sent")  # type: ignore[arg-type]
    assert w.r.service(sid).verified_at is None
    w.now += 8 * 86400
    person = read_mail(b"From: konkurs@acme.pl\r\n\r\nyes\r\n")
    assert answers.confirm(w.store, w.config, token, person) == replies.PREMIUM_CONFIRM_EXPIRED  # type: ignore[arg-type]
    assert w.r.service(sid).verified_at is None


async def test_a_service_removed_while_mos_wait_sends_them_to_the_fallback(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    await w.mo("KP123 vote")
    handlers.release_awaiting(w.store, w.config, w.r.service(sid), "removed")  # type: ignore[arg-type]
    assert w.premium_mo()[0][0] == "fallback"
    assert w.outbox()[-1][2] == FALLBACK and "vote" in w.outbox()[-1][3].get_content()
