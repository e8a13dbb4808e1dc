"""A long premium SMS whose first part, the one with the password, comes after the timeout mailed
the rest to the fallback (no password there): the SMS is the client's (R-4.4). Both pieces went
to the fallback, and the client never got the vote nor the commission the phone paid for."""

from __future__ import annotations

from pathlib import Path

from gateway.premium import passwords
from tests.test_late_segments import TIMEOUT_SECONDS, charged, housekeeping, vote
from tests.test_premium import CLIENT, FALLBACK, World


async def _password_late(w: World) -> None:
    hk = housekeeping(w)
    for seq in (2, 3):  # part 1, "KP123 long vote ", is held by the SMSC
        await vote(w, seq)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    w.now += 600
    await vote(w, 1)  # the password arrives
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()


async def test_a_late_first_part_with_the_password_takes_its_sms_to_the_client(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await _password_late(w)
    (kind, _f, to, _m), (late_kind, _f2, late_to, mail) = w.outbox()
    assert (kind, to, late_kind, late_to) == ("premium-fallback", FALLBACK, "premium", CLIENT)
    # The client gets the whole SMS, the parts the fallback had first among it, and can answer it.
    body = mail.get_content()
    assert body.startswith("long vote part one part two part three\n") and "came late" in body
    target = passwords.target(mail["Reply-To"].addresses[0].username)
    assert target is not None and w.r.by_token(target.token) is not None
    # Both pieces are the client's money now: 3 parts of 7355, 3.00 PLN and 1.10 commission each.
    assert [r[1:6] for r in charged(w)] == [(1, "KP123", 2, 600, 220), (1, "KP123", 1, 300, 110)]
    account = w.store.db.conn.execute("SELECT DISTINCT account_id FROM premium_mo").fetchall()
    assert account == [(w.account.id,)]


async def test_a_late_first_part_kept_until_the_client_confirms(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service(verified=False)
    await _password_late(w)
    # The pieces the fallback had are the client's now, kept with the late part until it confirms
    # (listed pending in the month's file, not failed); their text goes whole in the late part's mail.
    assert [r[:3] for r in charged(w)] == [("awaiting", 1, "KP123"), ("awaiting", 1, "KP123")]


async def test_a_late_first_part_naming_no_service_stays_with_the_fallback(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service("KP999")
    await _password_late(w)
    assert [o[0] for o in w.outbox()] == ["premium-fallback"] * 2
    assert [r[1:3] for r in charged(w)] == [(None, None)] * 2


def test_the_pieces_of_one_sms_are_merged_where_their_gaps_are() -> None:
    from gateway.reassembly import OLD_GAP as GAP
    from gateway.reassembly import gap, merge

    assert merge([(f"a{GAP}c{GAP}", {1, 3}), (f"{GAP}b{GAP}d", {2, 4})], 4) == "abcd"
    merged = merge([(f"a{GAP}{GAP}{GAP}", {1}), (f"{GAP}{GAP}c{GAP}", {3})], 4)
    assert merged == f"a {gap(2, 2, 4)} c {gap(4, 4, 4)}"
    # A part whose own text holds a gap marker: which part is where cannot be told.
    assert merge([(f"a{GAP}", {1}), (f"{GAP}b{GAP}", {2})], 2) is None
