"""`smsgw mo list --number` finds a sender ID in every spelling of its letters, through an index.

A sender ID is one sender to people whatever the case ("PROMO", "Promo"), and the hourly limit on
answers holds it so (`gateway.conversations.keptrepo.spellings`); the listing matched the exact
spelling typed, so an admin looking for PROMO's SMS saw those of one spelling, and a sender ID with
a dot or a dash ("Allegro.pl") lost it as a phone number's separator and matched nothing. Read off
`mo_copies` between the ID in capitals and in small letters, never a walk over every MO kept.
Real database file; the CLI in this process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.conftest import config_text, free_port
from tests.test_account_show import CLI
from tests.test_listing_plans import last_select, plan_of

SENDERS = ["PROMO", "Promo", "promo", "PROMOS", "Allegro.pl", "+48601222221"]


def sources(out: list[str]) -> list[str]:
    return [line.split()[3] for line in out]  # id, date, time, source → destination ...


def test_mo_list_finds_a_sender_id_in_any_case_and_with_its_own_dots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))
    store = Store.open(tmp_path / "state" / "smsgw.db")
    for i, sender in enumerate(SENDERS):
        store.mo.record_mo("main", sender, "+48100200300", f"sms {i}", 0, None)
    store.close()
    cli = CLI(path, capsys)
    for typed in ("Promo", "PROMO", "promo", "pRoMo"):
        code, out, err = cli("mo", "list", "--number", typed)
        assert code == 0, err
        assert sources(out) == ["promo", "Promo", "PROMO"], (typed, out)  # newest first; not PROMOS
    for typed in ("allegro.PL", "Allegro.pl"):
        assert sources(cli("mo", "list", "--number", typed)[1]) == ["Allegro.pl"], typed
    assert sources(cli("mo", "list", "--number", "+48 601 222 221")[1]) == ["+48601222221"]  # as before


@pytest.mark.parametrize("analyzed", [False, True], ids=["as-the-store-runs", "with-statistics"])
def test_a_sender_id_is_found_through_the_index_of_sources(tmp_path: Path, analyzed: bool) -> None:
    # Most MOs come from phones ("+…"), which sort before every letter: outside the ID's range.
    store = Store.open(tmp_path / "db.sqlite")
    try:
        conn = store.db.conn
        rows = [(f"+4860{i:07d}" if i % 20 else SENDERS[i // 20 % 5], float(i)) for i in range(20_000)]
        conn.executemany(
            "INSERT INTO mo (link, source, destination, text, state, received_at)"
            " VALUES ('main', ?, '+48100200300', 'x', 'mailed', ?)",
            rows,
        )
        if analyzed:
            conn.execute("ANALYZE")
        repo = ConversationsRepo(store.db, store.clock)
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        found = repo.list_mo(since=None, numbers=("Promo",), limit=50, any_case=True)
        conn.set_trace_callback(None)
        plan = plan_of(conn, last_select(seen))
    finally:
        store.close()
    assert "SEARCH m USING INDEX mo_copies (source>? AND source<?)" in plan, plan
    assert "SCAN m" not in plan, plan
    assert {r["source"] for r in found} == {"PROMO", "Promo", "promo"} and len(found) == 50
    assert [r["id"] for r in found] == sorted((r["id"] for r in found), reverse=True)  # newest first


def test_the_help_says_which_letters_are_found_in_any_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "a sender ID in any case": ASCII letters alone fold, as SQLite's lower() and the hourly limit
    # fold them, so `--number żabka` finds no ŻABKA; the help now says so, and the listing agrees.
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port()))
    store = Store.open(tmp_path / "state" / "smsgw.db")
    for i, sender in enumerate(["żabka", "żABKA", "ŻABKA"]):
        store.mo.record_mo("main", sender, "+48100200300", f"sms {i}", 0, None)
    store.close()
    monkeypatch.setenv("COLUMNS", "100000")
    cli = CLI(path, capsys)
    with pytest.raises(SystemExit):
        cli("mo", "list", "--help")
    said = " ".join(capsys.readouterr().out.split())
    assert "a sender ID, its ASCII letters in any case (PROMO, Promo; not other letters" in said, said
    assert sources(cli.ok("mo", "list", "--number", "żabka")) == ["żABKA", "żabka"]  # no ŻABKA
