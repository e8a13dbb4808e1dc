"""The operator's dashboard's "Needing attention" says what `smsgw status` exits 1 for.

It said "Nothing." while a full store refused every mail with 452 (status: `store failing`, /healthz
503), with state_dir nearly full, the database locked by another process, a worker stalled or the
queue standing; and it told of a premium answer waiting for its vote's link as if other links took
it. The real panel over HTTP on a real SQLite file: the store made full as SQLite sees a full disk
(`PRAGMA max_page_count`), the daemon's status file written by its own writer.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing_reports import failedjobs, failures
from billing_reports.failedjobs import words
from gateway.config import Config
from gateway.housekeeping import write_status
from gateway.statusfile import STATUS_FILE
from gateway.store import trouble
from gateway.store.db import Store
from gateway.web.app import WebContext
from tests.conftest import smsc_link
from tests.test_disk_full_health import NO_LIMIT
from tests.test_status_pacing import queue_pinned_answer
from tests.web_helpers import OPERATOR, add_mail, as_user, client, seeded_store, web_context


@pytest.fixture
async def panel(tmp_path: Path) -> AsyncIterator[tuple[Store, WebContext]]:
    store = seeded_store(tmp_path)
    store.db.serve()
    web = web_context(tmp_path, store)
    yield store, web
    web.counts.close()
    store.close()


async def attention(web: WebContext) -> str:
    """The dashboard's "Needing attention" card, as the operator sees it."""
    async with as_user(web, OPERATOR) as c:
        page = await c.get("/")
    assert page.status_code == 200, page.text
    card = page.text.split(">Needing attention", 1)[1].split("</section>", 1)[0]
    return html.unescape(re.sub(r"\s+", " ", card))


async def test_nothing_while_all_is_well(panel: tuple[Store, WebContext]) -> None:
    assert "<p>Nothing.</p>" in await attention(panel[1])


async def test_a_full_store_refusing_writes_is_named(panel: tuple[Store, WebContext]) -> None:
    store, web = panel
    conn = store.db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        with pytest.raises(sqlite3.Error, match="full"):
            await store.write(lambda: conn.execute("CREATE TABLE filler AS SELECT randomblob(200000) AS b"))
    finally:
        conn.execute(f"PRAGMA max_page_count = {NO_LIMIT}")
    assert store.db.trouble() is not None
    card = await attention(web)
    assert 'id="trouble-store"' in card, card
    assert "The database refuses writes since " in card and "database or disk is full" in card, card
    assert "New mail is refused meanwhile" in card and "Nothing." not in card, card


async def test_state_dir_nearly_full_is_named(
    panel: tuple[Store, WebContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No real filesystem can be made nearly full here: the floor is said to be above its free space.
    monkeypatch.setattr(trouble, "space_low", lambda free, total: True)
    card = await attention(panel[1])
    assert 'id="trouble-disk"' in card and " is nearly full: " in card, card
    assert "Free space there (old logs, backups) or grow the filesystem." in card, card
    assert "Nothing." not in card


async def test_the_status_files_lock_and_stalled_worker_are_named(
    panel: tuple[Store, WebContext], tmp_path: Path
) -> None:
    worker = {"state": "stalled", "restarts": 2, "last_error": "beat missed", "last_error_at": time.time()}
    running = {"state": "running", "restarts": 0}
    write_status(
        tmp_path / STATUS_FILE,
        {
            "links": {},
            "workers": {"dispatcher": worker, "outbox": running},
            "store_locked": {"for_seconds": 12.0},
        },
    )
    card = await attention(panel[1])
    assert 'id="trouble-store-locked"' in card and "locked by another process since " in card, card
    assert "End the sqlite3 shell or the backup holding it." in card, card
    assert 'id="trouble-worker-dispatcher"' in card and "Worker dispatcher is stalled (restarts 2)" in card
    assert "worker-outbox" not in card and "Nothing." not in card


async def test_another_processs_status_file_is_not_read(
    panel: tuple[Store, WebContext], tmp_path: Path
) -> None:
    """The file the daemon before a restart left says nothing of this one."""
    (tmp_path / STATUS_FILE).write_text(
        '{"pid": 1, "updated_at": 0, "workers": {"dispatcher": {"state": "stalled", "restarts": 9}}}'
    )
    assert "<p>Nothing.</p>" in await attention(panel[1])


async def test_a_standing_queue_is_named(tmp_path: Path) -> None:
    store = seeded_store(tmp_path)
    message = add_mail(store, "acme", "boss@acme.example", "+48601000001", "waits and waits")
    long_ago = store.clock() - 900
    with store.db.transaction():
        store.db.conn.execute("UPDATE messages SET created_at = ? WHERE id = ?", (long_ago, message))
    store.db.serve()
    web = web_context(tmp_path, store)
    try:
        card = await attention(web)
    finally:
        web.counts.close()
        store.close()
    assert 'id="trouble-queue"' in card and "An SMS due has waited 15 min since " in card, card


# --- a link down over a minute, and what waits for it ----------------------------------------------

TWO_LINKS = smsc_link("main", 2775) + smsc_link("ext", 2776, 'prefixes = ["+4951"]')


def links_with_ext_down(store: Store, queued: int) -> Callable[..., dict[str, dict[str, Any]]]:
    """The links' snapshot (`LinkView`): main up, ext down for 5 min; `queued` parts wait in all."""
    down = {"state": "connecting", "down_since": store.clock() - 300, "last_error": "refused"}
    return lambda window="panel": {"main": {"state": "active"}, "ext": {**down, "queued": queued}}


async def test_an_answer_pinned_to_the_link_down_waits_as_status_says(tmp_path: Path) -> None:
    store = seeded_store(tmp_path)
    queue_pinned_answer(store, "ext")  # a premium answer, leaving by its vote's link alone
    store.db.serve()
    web = web_context(tmp_path, store, TWO_LINKS)
    web.links = links_with_ext_down(store, 1)
    try:
        card = await attention(web)
    finally:
        web.counts.close()
        store.close()
    line = card.split('id="link-ext">', 1)[1].split("</p>", 1)[0]
    # main takes +4951 too, but not the answer: `status` exits 1 with "no link up for 1 part(s) pinned
    # to link ext", and the dashboard said only that its numbers went by the other links.
    assert line.split(": ", 1)[1].startswith(
        "1 part(s) pinned to it wait (premium answers leave by their vote's link alone);"
        " its other numbers go by the other links meanwhile; last error: "
    ), line


async def test_parts_held_for_quiet_hours_are_not_told_as_waiting_for_the_link(tmp_path: Path) -> None:
    store = seeded_store(tmp_path)
    add_mail(store, "acme", "boss@acme.example", "+4951000001", "waits for ext")
    for i in range(40):  # bulk SMS to main's numbers, held until the quiet hours end
        add_mail(store, "acme", "boss@acme.example", f"+486010{i:05d}", "promo")
    with store.db.transaction():
        store.db.conn.execute(
            "UPDATE parts SET next_attempt_at = ? WHERE destination LIKE '+48601%'", (store.clock() + 3600,)
        )
        # Held for quiet hours only under an account that has them.
        store.db.conn.execute(
            "UPDATE accounts SET quiet_start = '22:00', quiet_end = '07:00' WHERE name = 'acme'"
        )
    store.db.serve()
    exclusive = smsc_link("main", 2775) + smsc_link("ext", 2776, 'prefixes = ["+4951"]\nexclusive = true')
    web = web_context(tmp_path, store, exclusive)
    web.links = links_with_ext_down(store, 41)  # the queue-depth count: every part waiting
    try:
        card = await attention(web)
    finally:
        web.counts.close()
        store.close()
    line = card.split('id="link-ext">', 1)[1].split("</p>", 1)[0]
    assert (
        ": no link up for +4951: their SMS wait (41 part(s) waiting for all links, 40 of them held for"
        " quiet hours); last error: " in line
    ), line


async def billing_run_failed(store: Store, config: Config) -> Path:
    """A billing run of 2099-01 failed and kept: a file stands where the month's directory goes (the
    file, returned)."""
    blocker = config.billing_dir / "2099-01"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("x")
    try:
        (blocker / "acme.txt").write_text("x")
    except OSError as exc:
        await failures.record(store, config, "billing", exc, "2099-01")
    return blocker


async def test_a_failing_billing_run_is_named_in_statuss_words_until_one_succeeds(
    panel: tuple[Store, WebContext],
) -> None:
    # status exited 1 and the billing page said it, while this list said "Nothing.".
    store, web = panel
    blocker = await billing_run_failed(store, web.config)
    tz = ZoneInfo(web.config.gateway.timezone)
    card = await attention(web)
    assert 'id="trouble-job-billing"' in card and "Nothing." not in card, card
    assert words("billing", failedjobs.failures(store.db.conn)["billing"], tz) in card, card
    assert f"fix: {blocker} is a file, not a directory" in card, card
    await failures.clear(store, "billing")
    assert "<p>Nothing.</p>" in await attention(web)


async def test_a_failure_the_database_could_not_keep_is_named_and_in_metrics(
    panel: tuple[Store, WebContext],
) -> None:
    # Held in memory (`failedjobs.unkept`): /healthz and status said it, this list and /metrics did not.
    store, web = panel
    store.db.conn.execute("PRAGMA query_only = ON")  # the database refuses the failure's record
    try:
        await failures.record(store, web.config, "purge", OSError(28, "No space left on device"), None)
    finally:
        store.db.conn.execute("PRAGMA query_only = OFF")
    assert "purge" in failedjobs.unkept(store) and not failedjobs.failures(store.db.conn)
    card = await attention(web)
    assert 'id="trouble-job-purge"' in card and "Nothing." not in card, card
    assert "not kept: the database takes no writes" in card, card
    async with client(web) as c:
        metrics = (await c.get("/metrics")).text
    assert 'smsgw_job_failing{job="purge"} 1.0' in metrics, metrics
    assert 'smsgw_job_failing{job="billing"} 0.0' in metrics, metrics
