"""Long MOs whose parts come late (R-3.4, R-4.4, R-4.6): charged for what came, the rest follows.

An SMSC that holds a part of a long MO through an outage delivers it after the gateway joined the
others by the timeout. That part is the rest of the same SMS: it goes where the first parts went
and is charged for itself only. The timeout itself does not run while the gateway cannot receive.
Everything runs on a real SQLite file with an injected clock: through `GatewayEvents` and the
`Housekeeping` worker below the network, and once through the daemon and its built-in simulator.
The late part of a two-way answer and what late parts are billed have modules of their own
(test_late_segments_answers.py, test_late_segments_billing.py), the helpers staying here.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.housekeeping import Housekeeping
from gateway.premium import handlers, passwords
from gateway.reassembly import TIMEOUT_SECONDS, gap
from smsc.base import Concat, LinkState
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import free_port, running_gateway, smtp_sink
from tests.test_conversations import World as TwoWayWorld
from tests.test_premium import CLIENT, PHONE, World
from tests.test_premium_loop import premium_config
from tests.test_two_way import parsed

PIECES = ((1, "KP123 long vote "), (2, "part one part two "), (3, "part three"))


def housekeeping(w: World | TwoWayWorld, timeout: float = TIMEOUT_SECONDS) -> Housekeeping:
    """The daemon's housekeeping worker, started now on the world's clock."""
    return Housekeeping(
        w.store, w.events.notifier, w.events, dict, Path("/nonexistent"), reassembly_timeout=timeout
    )


async def vote(w: World, seq: int, *, ref: int = 7, acked: bool = True) -> None:
    text = dict(PIECES)[seq]
    await w.mo(text, concat=Concat(ref=ref, total=3, seq=seq), acked=acked)


def charged(w: World) -> list[tuple[object, ...]]:
    """(state, service, password, parts, price, commission, text) of each premium MO."""
    return [(r[0], r[1], r[2], *r[4:]) for r in w.premium_mo()]


async def first_two_parts_timed_out(w: World, *, acked: bool = True) -> Housekeeping:
    """Parts 1 and 2 of the 3-part vote came; the housekeeping joins them at the timeout."""
    hk = housekeeping(w)
    for seq in (1, 2):
        await vote(w, seq, acked=acked)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    return hk


async def answer_to_anna_timed_out(w: TwoWayWorld, timeout: float = TIMEOUT_SECONDS) -> Housekeeping:
    """Anna's SMS, answered by a 3-part SMS whose parts 1-2 the timeout mailed to her without part 3."""
    hk = housekeeping(w, timeout)
    w.send("anna@acme.example", subject="Meeting", text="At 10?")
    for seq, piece in ((1, "Yes, "), (2, "at ten, ")):
        await w.mo(piece, concat=Concat(ref=5, total=3, seq=seq))
    w.now += timeout + 1
    await hk.expire()
    return hk


async def test_a_set_joined_by_the_timeout_is_charged_for_the_parts_that_came(tmp_path: Path) -> None:
    # Parts 1 and 2 of 3 came; the timeout mails them with a gap. The phone paid for two parts,
    # not three: 7355 is 3.00 PLN (1.10 commission) a part, in grosze.
    w = World(tmp_path)
    w.service()
    await first_two_parts_timed_out(w)
    assert charged(w) == [("mailed", 1, "KP123", 2, 600, 220, f"long vote part one part two  {gap(3, 3, 3)}")]


async def test_a_late_part_follows_its_sms_to_the_client_charged_for_itself(tmp_path: Path) -> None:
    # After an hour's outage the SMSC delivers part 3: it goes to the client with the first mail's
    # answer address, its gap markers showing which part it is, charged one part. Copies of parts
    # mailed already whose acknowledgements the SMSC never read (the link kept dropping) are the
    # SMSC again, each delivered as the link came up again: recorded as duplicates, mailed and
    # charged never again. (Without a fall of the link, an unread acknowledgement makes a copy of
    # the SMSC only within `DOUBT_SECONDS` of its part: `tests.test_smpp_long_vote_sent_again`.)
    w = World(tmp_path)
    w.service()
    w.events.on_state("main", LinkState.ACTIVE)
    hk = await first_two_parts_timed_out(w, acked=False)
    w.now += 3600
    await vote(w, 3, acked=False)
    assert len(charged(w)) == 1  # it could be a new SMS under a reused reference: the timeout tells
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert charged(w) == [
        ("mailed", 1, "KP123", 2, 600, 220, f"long vote part one part two  {gap(3, 3, 3)}"),
        ("mailed", 1, "KP123", 1, 300, 110, f"{gap(1, 2, 3)} part three"),
    ]
    first, late = w.outbox()
    assert [m[:3] for m in (first, late)] == [("premium", first[1], CLIENT)] * 2
    assert late[3]["Reply-To"] == first[3]["Reply-To"] and late[3]["Subject"] == first[3]["Subject"]
    body = late[3].get_content()
    assert body.startswith(f"{gap(1, 2, 3)} part three\n") and "came late" in body
    # An answer to either mail answers the one SMS: its first premium MO, by the same token.
    target = passwords.target(late[3]["Reply-To"].addresses[0].username)
    assert target is not None and w.r.by_token(target.token) == w.r.by_id(1)
    for seq in (3, 1):
        w.now += 60
        w.events.on_state("main", LinkState.RECONNECTING)
        w.events.on_state("main", LinkState.ACTIVE)
        await vote(w, seq)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert len(charged(w)) == 2 and len(w.outbox()) == 2
    states = w.store.db.conn.execute("SELECT state FROM mo ORDER BY id").fetchall()
    assert [s for (s,) in states][-2:] == ["duplicate", "duplicate"]
    assert sum(parts for _s, _v, _p, parts, *_ in charged(w)) == 3


async def test_late_parts_before_the_address_confirmed_wait_and_go_with_the_answer_address(
    tmp_path: Path,
) -> None:
    # Kept with the first parts until the client confirms, then mailed after them, same Reply-To.
    w = World(tmp_path)
    sid = w.service(verified=False)
    hk = await first_two_parts_timed_out(w)
    w.now += 600
    await vote(w, 3)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert [r[:4] for r in charged(w)] == [("awaiting", sid, "KP123", 2), ("awaiting", sid, "KP123", 1)]
    w.r.update_service(sid, verified_at=w.now)
    assert handlers.forward_awaiting(w.store, w.config, w.r.service(sid)) == 2  # type: ignore[arg-type]
    first, late = w.outbox("premium")
    assert late[3]["Reply-To"] is not None and late[3]["Reply-To"] == first[3]["Reply-To"]
    assert late[3].get_content().startswith(f"{gap(1, 2, 3)} part three")


async def test_a_late_part_of_an_unknown_password_goes_to_the_fallback_once(tmp_path: Path) -> None:
    # The first parts went to the fallback (no such service): so does the rest, charged for itself.
    w = World(tmp_path)
    hk = await first_two_parts_timed_out(w)
    w.now += 600
    await vote(w, 3)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    assert [r[:5] for r in charged(w)] == [
        ("fallback", None, "KP123", 2, 600),
        ("fallback", None, "KP123", 1, 300),
    ]
    assert [o[0] for o in w.outbox()] == ["premium-fallback"] * 2


async def test_the_timeout_waits_after_a_restart_for_the_parts_the_smsc_held(tmp_path: Path) -> None:
    # Parts 1 and 2 came an hour before the daemon went down; it starts an hour later. The SMSC
    # delivers part 3 a little after the start: one whole SMS, charged three parts, mailed once.
    w = World(tmp_path)
    w.service()
    for seq in (1, 2):
        await vote(w, seq)
    w.now += 3600
    hk = housekeeping(w)  # the daemon starts
    await hk.expire()
    assert charged(w) == []
    w.now += 20
    await vote(w, 3)
    assert charged(w) == [("mailed", 1, "KP123", 3, 900, 330, "long vote part one part two part three")]
    # A set the SMSC does not complete is joined once the timeout has passed since the start.
    await vote(w, 1, ref=8)
    w.now += TIMEOUT_SECONDS - 30
    await hk.expire()
    assert len(charged(w)) == 1
    w.now += 60
    await hk.expire()
    assert charged(w)[1][3:5] == (1, 300)


async def test_the_timeout_counts_from_the_newest_part(tmp_path: Path) -> None:
    # A set still arriving is not stale: part 2 came four minutes after part 1.
    w = World(tmp_path)
    w.service()
    hk = housekeeping(w)
    w.now += TIMEOUT_SECONDS
    await vote(w, 1)
    w.now += 240
    await vote(w, 2)
    w.now += TIMEOUT_SECONDS - 60
    await hk.expire()
    assert charged(w) == []
    w.now += 120
    await hk.expire()
    assert [r[3:5] for r in charged(w)] == [(2, 600)]


async def test_a_link_that_keeps_dropping_does_not_keep_a_set_from_being_mailed(tmp_path: Path) -> None:
    # A hold-back while no link was bound restarted the timeout at each drop: a link down ten
    # seconds every four minutes kept part 1 of 2 waiting for hours, never mailed nor charged.
    w = World(tmp_path)
    w.service()
    hk = housekeeping(w)
    w.now += TIMEOUT_SECONDS + 1
    await vote(w, 1)
    for _ in range(3):
        w.events.states["main"] = LinkState.RECONNECTING
        w.now += 10
        await hk.expire()
        w.events.states["main"] = LinkState.ACTIVE
        w.now += 230
        await hk.expire()
    assert [r[3:5] for r in charged(w)] == [(1, 300)]


@pytest.mark.parametrize("order", [(3, 1, 2), (1, 2, 3)])
async def test_a_new_sms_under_a_reused_reference_is_never_taken_for_a_late_rest(
    tmp_path: Path, order: tuple[int, ...]
) -> None:
    # SMS A lost a part and was mailed without it; hours later the phone sends SMS B to another
    # service under the same reference. B's first parts were among those A lacked: they were
    # mailed at once to A's client (B's text leaked) and charged to A's account, the rest of B
    # gap-marked. Whole B goes to its own client, charged three parts; A keeps its two.
    w = World(tmp_path)
    w.service()
    other = w.r.add_service("KPZZ9", 1, "other@client.example", [], ["other@client.example"])
    w.r.update_service(other, verified_at=w.now)
    lost = 3 if order[0] == 3 else 1
    hk = housekeeping(w)
    w.now += TIMEOUT_SECONDS + 1
    for seq in (1, 2, 3):
        if seq != lost:
            await vote(w, seq)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    w.now += 3 * 3600
    pieces = {1: "KPZZ9 my ", 2: "message SECRET ", 3: "tail"}
    for seq in order:
        await w.mo(pieces[seq], concat=Concat(ref=7, total=3, seq=seq))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    a, b = charged(w)
    assert a[3:5] == (2, 600)  # A (to its client, or to the fallback without its password part)
    assert b == ("mailed", other, "KPZZ9", 3, 900, 330, "my message SECRET tail")
    secret = [o[2] for o in w.outbox() if "SECRET" in o[3].get_content()]
    assert secret == ["other@client.example"]


async def test_a_late_part_through_the_daemon_and_its_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # End to end: the simulator delivers parts 1-2 of a long premium vote over SMPP, the daemon's
    # own housekeeping joins them after the timeout, and part 3 delivered afterwards reaches the
    # client at the real SMTP sink as the rest of the vote, charged one part: three in all.
    monkeypatch.setattr(housekeeping_module, "EXPIRY_INTERVAL", 0.05)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [1_800_000_000.0]
    relay = free_port()
    _path, cfg = premium_config(tmp_path, "smpp", relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:  # type: ignore[arg-type]
        db = gw.store.db.conn
        account = db.execute("SELECT id FROM accounts WHERE name = 'acme'").fetchone()[0]

        def add_service() -> None:
            r = handlers.repo(gw.store)
            r.update_service(r.add_service("KP123", account, CLIENT, [], [CLIENT]), verified_at=now[0])

        await gw.store.write(add_service)
        core = gw.daemon.simulator.core
        await gw.until(lambda: core._pick("smpp") is not None)
        session = core._pick("smpp")
        assert session is not None
        text = "KP123 " + "glosuje na A, " * 25
        parts = mo_parts(text, ref=42, parts=3)
        for esm, dc, sm in parts[:2]:
            fields = dict(address_fields(PHONE, "7355"), esm_class=esm, data_coding=dc, short_message=sm)
            await session.send_part(tuple(fields.items()))
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == 2
        )
        now[0] += TIMEOUT_SECONDS + 1
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 1)
        await sink.wait(1)
        now[0] += 1800  # the SMSC delivers part 3 half an hour later
        esm, dc, sm = parts[2]
        fields = dict(address_fields(PHONE, "7355"), esm_class=esm, data_coding=dc, short_message=sm)
        await session.send_part(tuple(fields.items()))
        await gw.until(
            lambda: db.execute("SELECT COUNT(*) FROM mo WHERE state = 'segment'").fetchone()[0] == 1
        )
        now[0] += TIMEOUT_SECONDS + 1  # a new SMS under the same reference would have come whole by now
        await gw.until(lambda: db.execute("SELECT COUNT(*) FROM premium_mo").fetchone()[0] == 2, timeout=10)
        await sink.wait(2)
        rows = db.execute("SELECT state, password, parts, price, commission FROM premium_mo ORDER BY id")
        assert rows.fetchall() == [("mailed", "KP123", 2, 600, 220), ("mailed", "KP123", 1, 300, 110)]
        mails = [parsed(raw) for _, _, raw in sink.messages]
        assert [rcpts for _, rcpts, _ in sink.messages] == [[CLIENT], [CLIENT]]
        assert mails[1]["Reply-To"] is not None and mails[1]["Reply-To"] == mails[0]["Reply-To"]
        first_text = mails[0].get_content().partition("\n")[0]
        late_text = mails[1].get_content().partition("\n")[0]
        missing, mailed = f" {gap(3, 3, 3)}", f"{gap(1, 2, 3)} "
        assert first_text.endswith(missing) and late_text.startswith(mailed)
        assert (first_text.removesuffix(missing) + late_text.removeprefix(mailed)).strip() == text[6:].strip()


def entries(text: str, kind: str) -> list[list[str]]:
    """The columns of a billing file's SMS lines of one kind (not its totals)."""
    return [line.split("\t") for line in text.splitlines() if line[:1].isdigit() and f"\t{kind}\t" in line]


def _minute(w: World | TwoWayWorld, at: float) -> str:
    from datetime import datetime

    return f"{datetime.fromtimestamp(at, ZoneInfo(w.config.gateway.timezone)):%Y-%m-%d %H:%M}"


async def test_the_late_parts_note_names_when_the_phone_sent_the_sms_not_when_it_was_joined(
    tmp_path: Path,
) -> None:
    # "The part of the SMS of 14:28 that came late": 14:28 was the timeout's join of parts 1-2,
    # which the phone had sent at 14:27:18 (five minutes earlier with the default timeout; a day
    # with the longest). The note names when the first part came, for answers and premium votes.
    w = TwoWayWorld(tmp_path, f"reassembly_timeout_seconds = {86400.0}")
    sent = w.now
    hk = await answer_to_anna_timed_out(w, 86400.0)
    joined = w.now
    w.now += 60
    await w.mo("see you there", concat=Concat(ref=5, total=3, seq=3))
    w.now += 86400.0 + 1
    await hk.expire()
    late_text = [m for m in w.outbox() if m[0] == "reply"][-1][2].get_content()
    assert f"The part of the SMS of {_minute(w, sent)} that came late" in late_text, late_text
    assert _minute(w, joined) not in late_text

    v = World(tmp_path / "premium")
    v.service()
    sent = v.now
    hk = await first_two_parts_timed_out(v, acked=False)
    v.now += 3600
    await vote(v, 3, acked=False)
    v.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    body = v.outbox()[-1][3].get_content()
    assert f"The part of the SMS of {_minute(v, sent)} that came late" in body, body
