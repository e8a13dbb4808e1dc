"""The answers kept past `[replies] mails_per_phone_per_hour` reach the staff member once the phone
has been quiet for an hour, in one mail (SPEC R-3): they were kept in the gateway for good, where
staff cannot look. Through the daemon, its built-in SMSC and a real SMTP sink on an injected clock,
and below the network for the mail's limits and where it goes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.config import parse_config
from gateway.web.counts import count
from smsc.simulator.control import send_command
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_account_show import CLI
from tests.test_conversations import BASE, DAY, SENDER, World
from tests.test_reply_refused import RefusingRelay
from tests.test_two_way import parsed

T0 = 1_800_000_000.0
SETTLED = "SELECT state FROM mo WHERE state NOT IN ('new', 'segment', 'joined') ORDER BY id"


def flood_config(tmp_path: Path, relay: int, replies: str) -> Any:
    """A two-way gateway (`tests.test_two_way`) whose phones may have 3 answers mailed an hour."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay, extra=f"\n[replies]\n{replies}\n")
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    return parse_config(text, source="test", base_dir=tmp_path)


async def answer(gw: Any, text: str) -> None:
    """The phone answers the last SMS; returns once the gateway has settled the answer."""
    db = gw.store.db.conn
    before = len(db.execute(SETTLED).fetchall())
    sent = await send_command(
        "127.0.0.1", gw.daemon.simulator.control_port, {"op": "mo", "reply_to_last": True, "text": text}
    )
    assert sent["ok"]
    await gw.until(lambda: len(db.execute(SETTLED).fetchall()) == before + 1)


def states(gw: Any) -> list[str]:
    return [r[0] for r in gw.store.db.conn.execute(SETTLED)]


async def looked(seconds: float = 0.6) -> None:
    """Time for the housekeeping to look many times (every 0.05 s here) and the outbox to send."""
    await asyncio.sleep(seconds)


async def test_kept_answers_reach_the_staff_member_once_after_a_quiet_hour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A customer answers seven times in 40 minutes; the limit is 3 an hour. The last 4 answers
    # were kept for good ("smsgw mo list, or the panel", which staff do not have). Now: while
    # the phone keeps answering past the limit nothing more is mailed; an hour after its last
    # kept answer, one mail brings all four, to the user who wrote, threaded with the others;
    # restarts before and after it neither lose nor repeat it.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = flood_config(tmp_path, relay, "mails_per_phone_per_hour = 3")
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, lambda: now[0]) as gw:
            core = gw.daemon.simulator.core
            first = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie")
            assert (await gw.send(first)).error is None
            await gw.until(lambda: len(core.records) == 1)
            for n in range(6):
                now[0] += 60
                await answer(gw, f"answer {n}")
            await sink.wait(3)
            assert states(gw) == ["mailed"] * 3 + ["throttled"] * 3
            bodies = {parsed(raw).get_content().partition("\n")[0]: raw for _, _, raw in sink.messages}
            last_mailed = parsed(bodies["answer 2"]).get_content()
            assert "come together in one mail once an hour passes" in last_mailed
            now[0] += 1800  # still answering: kept, and the phone is not quiet yet
            await answer(gw, "still here")
            now[0] += 1800  # an hour since the first kept answer, half of one since the last
            await looked()
            assert len(sink.messages) == 3 and states(gw)[-4:] == ["throttled"] * 4
        async with running_gateway(cfg, lambda: now[0]) as gw:  # restarted while they wait
            now[0] += 1801  # an hour since the last kept answer
            await sink.wait(4)
            await looked()
            assert len(sink.messages) == 4
            assert states(gw) == ["mailed"] * 7
        async with running_gateway(cfg, lambda: now[0]) as gw:  # and again, after it went
            now[0] += 7200
            await looked()
            assert len(sink.messages) == 4 and states(gw) == ["mailed"] * 7
    _, rcpts, raw = sink.messages[3]
    digest = parsed(raw)
    assert rcpts == [STAFF]
    assert digest["From"].addresses[0].addr_spec == f"+48601123456@{DOMAIN}"  # a Reply answers the phone
    assert digest["In-Reply-To"] == parsed(sink.messages[0][2])["In-Reply-To"]
    body = digest.get_content()
    assert body.startswith("4 answers from +48 601 123 456 kept during a flood between ")
    texts = ["answer 3", "answer 4", "answer 5", "still here"]
    assert [body.index(f"\n{t}\n") for t in texts] == sorted(body.index(f"\n{t}\n") for t in texts)
    assert "more:" not in body


async def test_a_phone_that_keeps_flooding_gets_no_mail_of_its_kept_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A phone in a loop, an answer every 20 minutes past a limit of 1: it is never quiet for an
    # hour, so its kept answers wait: one answer an hour is mailed, nothing more until it stops.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    relay = free_port()
    cfg = flood_config(tmp_path, relay, "mails_per_phone_per_hour = 1")
    async with smtp_sink(relay) as sink, running_gateway(cfg, lambda: now[0]) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="ping"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        for n in range(12):
            now[0] += 60
            await answer(gw, f"loop {n}")
            now[0] += 19 * 60
            await looked(0.2)
        # An answer mailed, two kept, the next still within the hour of the mailed one: kept too.
        assert states(gw) == ["mailed", "throttled", "throttled", "throttled"] * 3
        await sink.wait(3)
        await looked()
        assert len(sink.messages) == 3
        bodies = [parsed(raw).get_content() for _, _, raw in sink.messages]
        assert all(body.startswith("loop ") for body in bodies)
        now[0] += 3600  # the loop stopped an hour ago: all nine in one mail, once
        await sink.wait(4)
        await looked()
        assert len(sink.messages) == 4 and states(gw) == ["mailed"] * 12
        assert parsed(sink.messages[3][2]).get_content().startswith("9 answers from +48 601 123 456 kept")


# ---- below the network: what one mail holds, and where it goes ----------------------------------


async def mail_due(w: World) -> int:
    from gateway.conversations import kept

    return await w.store.write(lambda: kept.mail_due(w.store, w.config))  # type: ignore[arg-type]


def kept_mails(w: World) -> list[tuple[str, str, str]]:
    return [(k, r, m.get_content()) for k, r, m in w.outbox() if k.startswith("reply-kept")]


async def test_one_mail_holds_fifty_answers_and_the_rest_follow_an_hour_later(tmp_path: Path) -> None:
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    for n in range(61):
        await w.mo(f"answer {n:02}")
        w.now += 10
    assert w.mo_states() == ["mailed"] + ["throttled"] * 60
    assert await mail_due(w) == 0  # not an hour since the last
    w.now += 3600
    assert await mail_due(w) == 1
    ((kind, rcpt, body),) = kept_mails(w)
    assert (kind, rcpt) == ("reply-kept", "anna@acme.example")
    assert body.startswith("60 answers from +48 601 123 456 kept during a flood between ")
    assert "\nanswer 50\n" in body and "answer 51" not in body
    assert "… and 10 more: they follow in the next mail, an hour from now at the earliest" in body
    assert w.mo_states() == ["mailed"] * 51 + ["throttled"] * 10
    assert await mail_due(w) == 0  # at most one an hour
    w.now += 3599
    assert await mail_due(w) == 0
    w.now += 2
    assert await mail_due(w) == 1
    body = kept_mails(w)[1][2]
    assert body.startswith("10 answers from") and "\nanswer 51\n" in body and "more:" not in body
    assert w.mo_states() == ["mailed"] * 61
    assert await mail_due(w) == 0


async def test_one_mail_holds_twenty_thousand_characters(tmp_path: Path) -> None:
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    for n in range(31):
        await w.mo(f"{n:02}" + "x" * 998)
        w.now += 10
    w.now += 3600
    assert await mail_due(w) == 1
    body = kept_mails(w)[0][2]
    # The first was mailed; of the 30 kept, 20 of 1000 characters fill the mail.
    assert "\n20" + "x" * 998 + "\n" in body and "\n21xxx" not in body
    assert "… and 10 more" in body


@pytest.mark.parametrize(
    ("fallback", "state"), [('fallback_address = "ops@example.com"', "fallback"), ("", "unmatched")]
)
async def test_the_kept_answers_of_a_user_gone_go_where_answers_go(
    tmp_path: Path, fallback: str, state: str
) -> None:
    # Anna was removed while her customer's answers were kept: a mail to her would reach a former
    # employee. They go to the fallback address, as her answers do now, or are recorded unmatched.
    w = World(tmp_path, f"mails_per_phone_per_hour = 1\n{fallback}")
    w.send("anna@acme.example")
    for n in range(3):
        await w.mo(f"answer {n}")
        w.now += 60
    w.store.accounts.remove_user("anna@acme.example")
    w.now += 3600
    await mail_due(w)
    assert w.mo_states() == ["mailed", state, state]
    mails = kept_mails(w)
    if fallback:
        ((kind, rcpt, body),) = mails
        assert (kind, rcpt) == ("reply-kept-fallback", "ops@example.com")
        assert body.startswith("2 answers from +48 601 123 456 kept during a flood")
        assert "anna@acme.example, who is no longer a user" in body
    else:
        assert mails == []


@pytest.mark.parametrize(
    ("fallback", "state"), [('fallback_address = "ops@example.com"', "fallback"), ("", "failed")]
)
async def test_a_refused_mail_of_kept_answers_goes_on_to_the_fallback(
    tmp_path: Path, fallback: str, state: str
) -> None:
    # Anna's mailbox is gone (550 at RCPT): each answer the mail carried goes to the fallback
    # address, as a single answer's refused mail does, or says it reached nobody.
    w = World(tmp_path, f"mails_per_phone_per_hour = 1\n{fallback}")
    w.send("anna@acme.example")
    for n in range(3):
        await w.mo(f"answer {n}")
        w.now += 60
    w.now += 3600
    assert await mail_due(w) == 1
    (mail_id,) = w.store.db.conn.execute("SELECT id FROM outbox WHERE kind = 'reply-kept'").fetchone()
    error = "SMTPRecipientRefused(550, '5.1.1 User unknown', 'anna@acme.example')"
    await w.store.write(lambda: w.store.outbox.finish_mail(mail_id, "failed", error))
    assert w.mo_states() == ["mailed", state, state]
    notes = [n for (n,) in w.store.db.conn.execute("SELECT note FROM mo WHERE id > 1 ORDER BY id")]
    assert all("550 5.1.1 User unknown" in n for n in notes)
    copies = [m for m in kept_mails(w) if m[0] == "reply-kept-fallback"]
    if fallback:
        ((_, rcpt, body),) = copies
        assert rcpt == "ops@example.com" and body.startswith("2 answers from +48 601 123 456 kept during")
        assert (
            "\nanswer 1\n" in body and "\nanswer 2\n" in body and "Not delivered to anna@acme.example" in body
        )
    else:
        assert copies == []


# ---- whose they are, how many go, how old, and in which words ------------------------------------


async def test_kept_answers_never_reach_another_companys_user_given_their_conversation_id(
    tmp_path: Path,
) -> None:
    # An answer kept before migration 39 may name a conversation the purge took since, whose id
    # SQLite gave to another company's conversation: its customer's answer, with the other user's
    # SMS quoted and their phone as the Reply address, went to that user. It goes to the fallback.
    w = World(tmp_path, 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"')
    w.send("anna@acme.example")
    await w.mo("ok")
    w.now += 10
    await w.mo("Mój PESEL to 85010112345")
    conn = w.store.db.conn
    with conn:  # what the purge before migration 39 did
        conn.execute("DELETE FROM conversations WHERE id = 1")
    w.store.accounts.add_account("globex")
    w.store.accounts.add_user("bob@globex.example", "globex")
    w.send("bob@globex.example", phone="+48602999888")
    assert conn.execute("SELECT id, user_email FROM conversations").fetchall() == [(1, "bob@globex.example")]
    w.now += 3700
    assert await mail_due(w) == 1
    ((kind, rcpt, body),) = kept_mails(w)
    assert (kind, rcpt) == ("reply-kept-fallback", "ops@example.com")
    assert "85010112345" in body and "bob@globex.example" not in body and "At 10?" not in body
    assert w.mo_states() == ["mailed", "fallback"]


async def flood(w: World, per_phone: int, phones: int = 1) -> None:
    """`per_phone` answers kept for each of `phones` phones, 10 s apart: copies of one the daemon kept."""
    await w.mo("first")
    w.now += 10
    await w.mo("kept 0")
    conn = w.store.db.conn
    (seed,) = conn.execute("SELECT id FROM mo WHERE state = 'throttled'").fetchone()
    cols = [r[1] for r in conn.execute("PRAGMA table_info(mo)") if r[1] not in ("id", "source", "text")]
    with conn:
        for p in range(phones):
            conn.executemany(
                f"INSERT INTO mo (source, text, {', '.join(cols)}) SELECT ?, ?, {', '.join(cols)} FROM mo"
                " WHERE id = ?",
                [(f"+4860{p:07d}" if p else "+48601123456", f"kept {n}", seed) for n in range(1, per_phone)],
            )
            conn.execute(
                "UPDATE mo SET received_at = received_at + (id - ?) * 10 WHERE id > ? AND source = ?",
                (seed, seed, f"+4860{p:07d}" if p else "+48601123456"),
            )
    w.now += per_phone * 10


async def test_a_phone_with_thousands_kept_gets_five_mails_then_one_saying_where_the_rest_are(
    tmp_path: Path,
) -> None:
    # 400 answers kept: eight hourly mails of 50 would follow (400 for 20,000). The fifth says how
    # many more stay kept and where they are listed; the phone's older ones are not mailed after it.
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    await flood(w, 400)
    for hour in range(1, 8):
        w.now += 3601
        assert await mail_due(w) == (1 if hour <= 5 else 0), hour
    bodies = [body for _, _, body in kept_mails(w)]
    assert all("… and " in body and "they follow in the next mail" in body for body in bodies[:4])
    assert (
        "\n… and 150 more, which are not mailed: too many were kept. They stay in the gateway, where your"
        " administrator lists them: smsgw mo list --number +48601123456\n"
    ) in bodies[4]
    assert w.mo_states() == ["mailed"] * 251 + ["throttled"] * 150
    # A new flood later is mailed: only its own answers.
    await w.mo("a new one")
    await w.mo("and another, kept")
    w.now += 3601
    assert await mail_due(w) == 1
    body = kept_mails(w)[-1][2]
    assert body.startswith("1 answer from +48 601 123 456 kept during a flood at ")
    assert "and another, kept" in body and "kept 399" not in body


async def test_the_kept_answers_housekeeping_reads_them_off_their_index(tmp_path: Path) -> None:
    # Every kept answer of the database was read (off mo_state) and sorted for each phone due, in
    # the store's only write: 100 phones of 2,000 took 6 s. Each statement now reads its phone's
    # range of `mo_kept`, at most a mail's worth of rows, with no sort.
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    await flood(w, 120, phones=3)
    w.now += 3601
    conn = w.store.db.conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        assert await mail_due(w) == 1  # the two other phones answered no conversation: recorded
    finally:
        conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "throttled" in s]
    assert len(reads) >= 3
    for sql in reads:
        plan = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "mo_kept" in plan and "TEMP B-TREE" not in plan and "mo_state" not in plan, (sql, plan)
    assert [s for s in statements if "LIMIT 51" in s], "a phone's kept answers are read a mail's worth"


async def test_kept_answers_older_than_the_reply_window_stay_kept_and_a_date_is_shown(
    tmp_path: Path,
) -> None:
    # On the first start after the upgrade, answers kept weeks before were mailed at once, dated by
    # their time alone ("between 09:00 and 09:00" for one 25 days old). Those older than the reply
    # window (7 days) stay kept, listed by `smsgw mo list`; a younger one is mailed with its date.
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    await w.mo("ok")
    w.now += 10
    await w.mo("answer from long ago")
    w.now += 25 * DAY
    assert await mail_due(w) == 0 and kept_mails(w) == []
    assert w.mo_states() == ["mailed", "throttled"]
    w.send("anna@acme.example")
    await w.mo("ok again")
    w.now += 10
    await w.mo("kept two days ago")
    kept_at = w.now
    w.now += 2 * DAY
    assert await mail_due(w) == 1
    ((_, _, body),) = kept_mails(w)
    day = datetime.fromtimestamp(kept_at, ZoneInfo(w.config.gateway.timezone))  # type: ignore[attr-defined]
    assert body.startswith(f"1 answer from +48 601 123 456 kept during a flood at {day:%Y-%m-%d %H:%M} (")
    assert f"\n{day:%Y-%m-%d %H:%M}\nkept two days ago" in body
    assert "long ago" not in body
    assert w.mo_states() == ["mailed", "throttled", "mailed", "mailed"]
    w.now += 30 * DAY
    assert await mail_due(w) == 0


async def test_a_kept_answers_own_note_is_in_its_mail(tmp_path: Path) -> None:
    # "This may be a request to stop SMS" (or START, or a part that never came) was lost when the
    # answer was kept: the staff member never learnt the customer may have asked to be left alone.
    w = World(tmp_path, "mails_per_phone_per_hour = 1")
    w.send("anna@acme.example")
    await w.mo("ok")
    w.now += 10
    await w.mo("Proszę nie pisać więcej")
    await w.mo("and a plain one")
    w.now += 3601
    assert await mail_due(w) == 1
    ((_, _, body),) = kept_mails(w)
    said = body.split("\nProszę nie pisać więcej\n", 1)[1].split("\n", 1)[0]
    assert said.startswith("[This may be a request to stop SMS"), body
    assert body.count("\n[") == 1  # the plain one has none
    # A refused mail's copy to the fallback carries it too.
    (note,) = w.store.db.conn.execute("SELECT note FROM mo WHERE text LIKE 'Proszę%'").fetchone()
    assert note.startswith("kept past the hourly limit, then mailed") and "request to stop SMS" in note


async def test_the_mail_of_kept_answers_is_in_polish_for_a_polish_office(tmp_path: Path) -> None:
    w = World(tmp_path, 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"')
    w.config = parse_config(
        BASE.replace("[gateway]\n", '[gateway]\nlanguage = "pl"\n')
        + '[replies]\nmails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"\n',
        source="test",
    )
    w.send("anna@acme.example")
    await flood(w, 60)
    await w.mo("spoza rozmowy", source="+48609000111")  # no conversation: to the fallback address
    await w.mo("ok", source="+48609000111")
    w.now += 3601
    assert await mail_due(w) == 2
    mails = {
        rcpt: (body, m) for (_, rcpt, m), (_, _, body) in zip(w.outbox()[-2:], kept_mails(w), strict=True)
    }
    body, _ = mails["anna@acme.example"]
    assert body.startswith("Odpowiedzi z numeru +48 601 123 456 zatrzymane w bramce (od ")
    assert "razem 60, bo przyszło ich więcej, niż bramka przesyła e-mailem" in body
    assert (
        "\n… pozostałe zatrzymane odpowiedzi (liczba: 10) przyjdą w następnym e-mailu, najwcześniej za"
        " godzinę (administrator bramki wyświetli wszystkie poleceniem:"
        " smsgw mo list --number +48601123456)\n"
    ) in body
    body, m = mails["ops@example.com"]
    assert body.startswith("Odpowiedź z numeru +48 609 000 111 zatrzymana w bramce (")
    assert m["Subject"] == "SMS-y z numeru +48609000111 zatrzymane w bramce (zbyt wiele naraz)"


async def test_kept_first_contacts_go_to_each_own_numbers_inbound_address_and_the_rest_as_before(
    tmp_path: Path,
) -> None:
    # One phone floods acme's number, beta's number and the shared default number: each company's
    # inbound address gets the kept ones sent to its number, the operator those to the shared one.
    # A second phone whose last SMS from acme's number was beta's (the number changed hands) is the
    # operator's too, as its own answer would have been.
    w = World(tmp_path, 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"')
    for name, number in (("acme", "+48500600700"), ("beta", "+48500600800")):
        w.store.accounts.add_account(name, sender=number)
        w.store.accounts.update_account(name, inbound_address=f"reception@{name}.example")
    w.store.accounts.add_user("bob@beta.example", "beta")
    w.now -= 30 * DAY
    w.send("bob@beta.example", "+48601999888", sender="+48500600700")
    w.now += 30 * DAY
    for n, to in enumerate(["+48500600700"] * 3 + ["+48500600800"] * 2 + [SENDER] * 2):
        await w.mo(f"answer {n}", to=to)
        await w.mo(f"other {n}", source="+48601999888", to="+48500600700")
        w.now += 60
    assert w.mo_states().count("throttled") == 12
    w.now += 3600
    assert await mail_due(w) == 4
    mails = {(kind, rcpt): body for kind, rcpt, body in kept_mails(w)}
    assert set(mails) == {
        ("reply-kept-inbound", "reception@acme.example"),
        ("reply-kept-inbound", "reception@beta.example"),
        ("reply-kept-fallback", "ops@example.com"),
    }
    acme, beta = (
        mails["reply-kept-inbound", "reception@acme.example"],
        mails["reply-kept-inbound", "reception@beta.example"],
    )
    assert (
        acme.startswith("2 answers from +48 601 123 456")
        and "\nanswer 1\n" in acme
        and "\nanswer 2\n" in acme
    )
    assert (
        beta.startswith("2 answers from +48 601 123 456")
        and "\nanswer 3\n" in beta
        and "\nanswer 4\n" in beta
    )
    to_ops = sorted(body for _, rcpt, body in kept_mails(w) if rcpt == "ops@example.com")
    assert to_ops[0].startswith("2 answers from +48 601 123 456") and "\nanswer 5\n" in to_ops[0]
    assert to_ops[1].startswith("6 answers from +48 601 999 888") and "\nother 6\n" in to_ops[1]
    assert w.mo_states().count("throttled") == 0


async def test_a_cut_read_counts_only_the_kept_first_contacts_to_the_inbound_addresss_number(
    tmp_path: Path,
) -> None:
    # 54 kept to acme's number, then 3 to the shared one: acme's mail lists 50 and says 4 more follow,
    # not the operator's 3 as well.
    w = World(tmp_path, 'mails_per_phone_per_hour = 1\nfallback_address = "ops@example.com"')
    w.store.accounts.add_account("acme", sender="+48500600700")
    w.store.accounts.update_account("acme", inbound_address="reception@acme.example")
    for n, to in enumerate(["+48500600700"] * 55 + [SENDER] * 3):
        await w.mo(f"answer {n:02}", to=to)
        w.now += 10
    w.now += 3600
    assert await mail_due(w) == 1
    ((kind, rcpt, body),) = kept_mails(w)
    assert (kind, rcpt) == ("reply-kept-inbound", "reception@acme.example")
    assert body.startswith("54 answers from +48 601 123 456") and "\nanswer 50\n" in body
    assert "… and 4 more: they follow in the next mail" in body


# ---- a refused mail of kept answers, sent after all on `smsgw outbox retry` ---------------------


async def kept_mail_refused(gw: Any, relay: RefusingRelay, now: list[float]) -> None:
    """Anna's first answer mailed; her mailbox then gone (550 at RCPT), three more answers kept past
    the hourly limit, and their mail refused for good: each answer reached nobody."""
    conn = gw.store.db.conn
    assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
    await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
    await answer(gw, "ok")
    await relay.wait(1)
    relay.gone.add(STAFF.casefold())  # her mailbox is gone
    for n in range(3):
        now[0] += 60
        await answer(gw, f"answer {n}")
    assert states(gw) == ["mailed"] + ["throttled"] * 3
    now[0] += 3601
    await gw.until(
        lambda: conn.execute("SELECT state FROM outbox WHERE kind = 'reply-kept'").fetchall() == [("failed",)]
    )
    assert states(gw) == ["mailed"] + ["failed"] * 3


async def test_a_refused_mail_of_kept_answers_sent_on_a_retry_tells_each_answer_it_was_mailed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anna's mailbox was gone when the mail of three kept answers came (550 at RCPT, no fallback):
    # each said it reached nobody. Her mailbox made again, the admin ran `smsgw outbox retry` and
    # the mail went, but only its first answer turned `mailed`: the other two stayed `failed` in
    # her history, `smsgw conversation`, the panel and /metrics, though she had them.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    cfg = flood_config(tmp_path, port, "mails_per_phone_per_hour = 1")
    cli_config = tmp_path / "cli.toml"
    cli_config.write_text(config_text(tmp_path, smsc_port=free_port()))  # the same state_dir
    relay = RefusingRelay()
    kept_mail = "SELECT state FROM outbox WHERE kind = 'reply-kept'"
    async with smtp_sink(port, relay):
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await kept_mail_refused(gw, relay, now)
            refused = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 1 ORDER BY id")]
            assert all(n.startswith("kept past the hourly limit") and "550 5.1.1" in n for n in refused)
        relay.gone.clear()  # made again
        assert CLI(cli_config, capsys).ok("outbox", "retry", "--all")[0].startswith("1 mail(s)")
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await gw.until(lambda: conn.execute(kept_mail).fetchall() == [("sent",)])
            assert states(gw) == ["mailed"] * 4
            notes = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 1 ORDER BY id")]
            assert notes == [f"{n}; mailed to {STAFF} after all, on a retry" for n in refused]
            counted = dict(count(conn).mo)
    assert counted["failed"] == 3 and counted["mailed"] >= 4  # the counters did not fall
    body = parsed(relay.messages[-1][2]).get_content()
    assert all(f"\nanswer {n}\n" in body or body.endswith(f"\nanswer {n}") for n in range(3))


async def test_a_retried_mail_of_kept_answers_whose_first_answer_was_purged_tells_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The retention purge deleted the mail's first answer (the oldest) before `smsgw outbox retry`
    # sent it: the others were found by that answer's phone alone, so none of them turned `mailed`.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    cfg = flood_config(tmp_path, port, "mails_per_phone_per_hour = 1")
    cli_config = tmp_path / "cli.toml"
    cli_config.write_text(config_text(tmp_path, smsc_port=free_port()))  # the same state_dir
    relay = RefusingRelay()
    kept_mail = "SELECT state FROM outbox WHERE kind = 'reply-kept'"
    async with smtp_sink(port, relay):
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await kept_mail_refused(gw, relay, now)
            refused = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 2 ORDER BY id")]
            # as the purge deletes an MO older than the others
            await gw.store.write(lambda: conn.execute("DELETE FROM mo WHERE id = 2"))
        relay.gone.clear()
        assert CLI(cli_config, capsys).ok("outbox", "retry", "--all")[0].startswith("1 mail(s)")
        async with running_gateway(cfg, lambda: now[0]) as gw:
            conn = gw.store.db.conn
            await gw.until(lambda: conn.execute(kept_mail).fetchall() == [("sent",)])
            assert states(gw) == ["mailed"] * 3
            notes = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 2 ORDER BY id")]
            assert notes == [f"{n}; mailed to {STAFF} after all, on a retry" for n in refused]


async def test_a_refused_mail_of_kept_answers_whose_first_answer_was_purged_goes_on_to_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Greylisted, then refused for good once the purge had deleted its first answer: the refusal
    # found no answers by that answer's phone, sent no copy to the fallback address, and the other
    # answers said they were mailed to a user who never had them.
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [T0]
    port = free_port()
    ops = "ops@gateway.example"
    cfg = flood_config(tmp_path, port, f'mails_per_phone_per_hour = 1\nfallback_address = "{ops}"')
    relay = RefusingRelay()
    kept_mail = "SELECT state FROM outbox WHERE kind = 'reply-kept'"
    async with smtp_sink(port, relay), running_gateway(cfg, lambda: now[0]) as gw:
        conn = gw.store.db.conn
        assert (await gw.send(mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?"))).error is None
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 1)
        await answer(gw, "ok")
        await relay.wait(1)
        relay.gone.add(STAFF.casefold())
        relay.later = True  # greylisted: the mail stays queued
        for n in range(3):
            now[0] += 60
            await answer(gw, f"answer {n}")
        now[0] += 3601
        await gw.until(lambda: relay.refused != [])
        assert states(gw) == ["mailed"] * 4
        await gw.store.write(lambda: conn.execute("DELETE FROM mo WHERE id = 2"))  # as the purge does
        relay.later = False  # now refused for good
        now[0] += 86400
        await gw.until(lambda: conn.execute(kept_mail).fetchall() == [("failed",)])
        await relay.wait(2)
        assert states(gw) == ["mailed", "fallback", "fallback"]
        notes = [n for (n,) in conn.execute("SELECT note FROM mo WHERE id > 2 ORDER BY id")]
        assert all("550 5.1.1" in n and f"sent to {ops}" in n for n in notes), notes
    [(_, rcpts, raw)] = relay.messages[1:]
    assert rcpts == [ops]
    body = parsed(raw).get_content()
    assert "\nanswer 1\n" in body and "answer 2" in body and "answer 0" not in body
