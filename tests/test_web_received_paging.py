"""The SMS received on the conversations page, a page at a time: the operator's "SMS received" and a
company admin's "Answers received" showed the newest 100 with nothing saying the list was cut, and an
older one could not be reached from the panel. They page as the conversations above them do: by MO id
for the operator, by (received, id) for an account's answers (index mo_billing's order), the position
carried in the "Older →" link, so that an SMS received meanwhile does not shift the next page.

The panel's real server on 127.0.0.1 with a logged-in session, on a real SQLite file."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from gateway.conversations.queries import account_answers
from gateway.conversations.repo import ConversationsRepo
from gateway.store.db import Store
from tests.test_web_conversations_paging import _panel
from tests.web_helpers import ADMIN, OPERATOR, OTHER_ADMIN, PASSWORD, login

T0 = 1_780_000_000.0
ACME, RIVAL, STRAY = 160, 60, 39  # 259 in all: past two operator's pages, and an admin's one


def _seed(store: Store) -> dict[str, list[tuple[float, int, str]]]:
    """(received, id, phone) of each MO written, by whose answer it is ("stray": matched to nobody).
    Seven at a time share their time, and the times do not follow the ids: an account's answers are
    in time order, the operator's list in id order, and each must be paged in its own."""
    conn, made = store.db.conn, {"acme": [], "rival": [], "stray": []}
    accounts = {a.name: a.id for a in store.accounts.list_accounts()}
    total = ACME + RIVAL + STRAY
    with store.db.transaction():
        for i in range(total):
            whose = "acme" if i % 13 < 8 else ("rival" if i % 13 < 11 else "stray")
            at, phone = T0 + 60 * ((i * 37) % total // 7) + 0.5, f"+48601{i:06d}"
            mid = conn.execute(
                "INSERT INTO mo (link, source, destination, text, state, received_at, account_id)"
                " VALUES ('main', ?, '+48500100200', ?, ?, ?, ?)",
                (
                    phone,
                    f"answer {i}",
                    "mailed" if whose != "stray" else "unmatched",
                    at,
                    accounts.get(whose),
                ),
            ).lastrowid
            made[whose].append((at, int(mid), phone))
        # Parts of a long SMS not yet joined are in no list, and take no place on a page.
        for n in range(3):
            conn.execute(
                "INSERT INTO mo (link, source, destination, text, state, received_at, account_id)"
                " VALUES ('main', '+48609000000', '+48500100200', 'part', 'segment', ?, ?)",
                (T0 + n, accounts["acme"]),
            )
    return made


def _listed(page: str, table: str) -> tuple[list[str], str | None]:
    """The phones in the received table, and where its "Older →" link leads."""
    rows = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    older = re.search(r'<a href="([^"]+)" id="mo-older">Older →</a>', page)
    phones = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td>", rows)
    return phones, html.unescape(older.group(1)) if older else None


async def _walk(c: httpx.AsyncClient, table: str, start: str = "/conversations") -> list[list[str]]:
    pages, link = [], start
    while link is not None:
        assert len(pages) < 10, "the older links go round"
        r = await c.get(link)
        assert r.status_code == 200, (link, r.text[:500])
        phones, link = _listed(r.text, table)
        pages.append(phones)
    return pages


@asynccontextmanager
async def _logged_in(port: int, email: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await login(c, email, PASSWORD)
        assert r.status_code == 303, r.text
        yield c


def _by_id(rows: list[tuple[float, int, str]]) -> list[str]:
    return [phone for _, _, phone in sorted(rows, key=lambda r: r[1], reverse=True)]


def _by_time(rows: list[tuple[float, int, str]]) -> list[str]:
    return [phone for _, _, phone in sorted(rows, reverse=True)]


async def test_every_sms_received_is_reached_once_by_the_older_links(tmp_path: Path) -> None:
    async with _panel(tmp_path, _seed) as (_web, port, made):
        walks = {}
        for email, table in ((OPERATOR, "mo"), (ADMIN, "answers"), (OTHER_ADMIN, "answers")):
            async with _logged_in(port, email) as c:
                walks[email] = await _walk(c, table)
    everyone = walks[OPERATOR]
    assert [len(p) for p in everyone] == [100, 100, 59]
    assert [p for page in everyone for p in page] == _by_id(made["acme"] + made["rival"] + made["stray"])
    # A company admin pages through their own account's answers only, newest received first.
    assert [len(p) for p in walks[ADMIN]] == [100, ACME - 100]
    assert [p for page in walks[ADMIN] for p in page] == _by_time(made["acme"])
    assert walks[OTHER_ADMIN] == [_by_time(made["rival"])]


async def test_an_sms_received_meanwhile_does_not_shift_the_next_page(tmp_path: Path) -> None:
    """OFFSET would show the 100th again as the 101st once a new MO came in; the link's id does not."""
    async with _panel(tmp_path, _seed) as (web, port, made):
        async with _logged_in(port, OPERATOR) as c:
            first, older = _listed((await c.get("/conversations")).text, "mo")
            await web.store.write(
                lambda: web.store.db.conn.execute(
                    "INSERT INTO mo (link, source, destination, text, state, received_at)"
                    " VALUES ('main', '+48608888888', '+48500100200', 'new', 'unmatched', ?)",
                    (T0 + 99_999,),
                )
            )
            assert older is not None
            second, _ = _listed((await c.get(older)).text, "mo")
            fresh, _ = _listed((await c.get("/conversations")).text, "mo")
    everyone = _by_id(made["acme"] + made["rival"] + made["stray"])
    assert first + second == everyone[:200]
    assert fresh[0] == "+48608888888"


async def test_the_lists_keep_each_others_place_and_a_wrong_position_is_said(tmp_path: Path) -> None:
    async with _panel(tmp_path, _seed) as (_web, port, made):
        async with _logged_in(port, ADMIN) as c:
            first = (await c.get("/conversations?before=1780000000.25_7")).text
            _, older = _listed(first, "answers")
            assert older is not None and older.startswith("/conversations?before=1780000000.25_7&mo_before=")
            assert older.endswith("#answers")
            second = (await c.get(older)).text
            # The conversations' own older link, if any, and the way back keep the answers' page.
            assert 'id="mo-newest"' in second
            newest = re.search(r'<a href="([^"]+)" id="mo-newest">', second)
            assert (
                newest and html.unescape(newest.group(1)) == "/conversations?before=1780000000.25_7#answers"
            )
            assert "No older answers." not in second
            wrong = await c.get("/conversations?mo_before=12")
            past = await c.get("/conversations?mo_before=1000000000.5_1")
        async with _logged_in(port, OPERATOR) as c:
            junk = await c.get("/conversations?mo_before=1780000000.5_12")
            last = await c.get("/conversations?mo_before=1")
    assert wrong.status_code == 400 and "mo_before: '12' is not a position in the answers" in html.unescape(
        wrong.text
    )
    # The answers are still shown, from the newest, under the error.
    assert _listed(wrong.text, "answers")[0] == _by_time(made["acme"])[:100]
    assert past.status_code == 200 and "No older answers." in past.text
    assert junk.status_code == 400 and "is not a position in the SMS received" in junk.text
    assert last.status_code == 200 and "No older SMS received." in last.text


def test_a_page_of_the_sms_received_is_one_index_range_however_deep(tmp_path: Path) -> None:
    """Read in their index's order, never sorted whole: a deep page costs what the first does."""

    class Planned:
        """The connection, asked for the plan of the page's query instead of its rows."""

        def __init__(self, conn: Any) -> None:
            self.conn, self.steps = conn, ""

        def execute(self, sql: str, args: tuple[Any, ...]) -> Any:
            found = self.conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
            self.steps = " ".join(row[3] for row in found)
            return self.conn.execute("SELECT 1 WHERE 0")

    store = Store.open(tmp_path / "plan.db")
    try:
        planned = Planned(store.db.conn)
        account_answers(planned, 1, 101, before=(T0, 5))  # type: ignore[arg-type]
        assert (
            "TEMP B-TREE" not in planned.steps
            and "mo_billing (account_id=? AND received_at<?)" in planned.steps
        )

        class PlannedRepo(ConversationsRepo):
            @property
            def conn(self) -> Any:
                return planned

        repo = PlannedRepo(store.db, store.clock)
        repo.list_mo(since=None, numbers=None, limit=101, before=5)
        assert (
            "TEMP B-TREE" not in planned.steps
            and "SEARCH m USING INTEGER PRIMARY KEY (rowid<?)" in planned.steps
        )
    finally:
        store.close()
