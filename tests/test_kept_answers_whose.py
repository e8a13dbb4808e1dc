"""Kept answers (SPEC R-3), whose they are, how many go, how old, and in which words: never another
company's user's, five mails for a phone with thousands kept then one saying where the rest are, the
housekeeping reading them off their index, ones older than the reply window kept with a date, their
own notes, Polish for a Polish office, first contacts to each number's inbound address. Split from
test_kept_answers.py by subject (it was over 400 lines)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.config import parse_config
from tests.test_conversations import BASE, DAY, SENDER, World
from tests.test_kept_answers import kept_mails, mail_due

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
