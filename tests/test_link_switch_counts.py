"""`/metrics` through a link type switch (an `[[smsc]]` block's `type` changed under its name): a part
the old bind had finished was counted under the old name and again under the block keeping the bind,
and with no block keeping it, a half-sent long SMS sent again whole took its delivered part out of the
old name's counter, which fell at the start (Prometheus reads that as a reset). The daemon against the
built-in simulator over TCP, a real SQLite file, /metrics scraped over HTTP."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from gateway.config import parse_config
from gateway.linkcounted import final_parts, moving_to
from gateway.store.db import Store
from gateway.web import counts
from smsc.simulator import Simulator
from smsc.simulator.control import execute
from tests.conftest import DOMAIN, Running, config_text, mail, running_gateway
from tests.test_link_protocol_changed import parts_by, simulator
from tests.test_purge_scale import OLD, _email

WEB = '[web]\nenabled = true\nlisten = "127.0.0.1:0"\n'
Counters = dict[tuple[str, str], float]


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each scrape counts anew: a scrape within 5 s of the last one shares its counts."""
    monkeypatch.setattr(counts, "FRESH_SECONDS", 0.0)


async def parts_total(gw: Running) -> Counters:
    """`smsgw_parts_total` by (link, state), as Prometheus scrapes it."""

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.daemon.web.port}/metrics", timeout=10) as r:
            return str(r.read().decode())

    text = await asyncio.to_thread(scrape)
    return {
        (s.labels["link"], s.labels["state"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "smsgw_parts_total"
    }


def never_fell(before: Counters, after: Counters) -> None:
    fell = {key: (n, after.get(key, 0.0)) for key, n in before.items() if after.get(key, 0.0) < n}
    assert not fell, fell


async def report(gw: Running, sim: Simulator, where: str, sim_ids: list[str] | None = None) -> None:
    """The SMSC's report `delivered` of the submitted parts `where` picks, by the simulator's ids
    (`sim_ids`; else the parts' SMSC ids, as SMPP gives them); waits until the gateway took them."""
    rows = gw.store.db.conn.execute(f"SELECT id, smsc_id FROM parts WHERE state = 'submitted' AND {where}")
    ids, smsc_ids = zip(*rows.fetchall(), strict=True)
    for sid in smsc_ids if sim_ids is None else sim_ids:
        answer = await execute(sim.core, {"op": "report", "message_id": sid, "status": "delivered"})
        assert answer["ok"], answer
    done = f"SELECT COUNT(*) FROM parts WHERE state = 'delivered' AND id IN ({','.join('?' * len(ids))})"
    await gw.until(lambda: gw.store.db.conn.execute(done, ids).fetchone()[0] == len(ids))


async def first_part_delivered(tmp_path: Path, sim: Simulator, clock: list[float]) -> tuple[str, Counters]:
    """A three-part SMS whose first part the SMPP link took and the phone got (its report came), the
    rest still to send, and a short SMS awaiting its report, as when the daemon stopped then; the
    config's text and the counters before the stop."""
    text = config_text(tmp_path, smsc_port=sim.smpp_port, extra=WEB)
    async with running_gateway(parse_config(text, base_dir=tmp_path), lambda: clock[0]) as gw:
        assert (await gw.send(mail(f"601123456@{DOMAIN}", "x" * 400))).error is None
        assert (await gw.send(mail(f"601123457@{DOMAIN}", "short"))).error is None
        await gw.until(lambda: gw.states() == ["submitted", "submitted"])
        await report(gw, sim, "message_id = 1 AND seq = 1")
        before = await parts_total(gw)
    with closing(sqlite3.connect(tmp_path / "state" / "smsgw.db")) as conn, conn:
        conn.execute(
            "UPDATE parts SET state = 'queued', link = NULL, smsc_id = NULL, submitted_at = NULL"
            " WHERE message_id = 1 AND seq > 1"
        )
    assert before[("main", "delivered")] == 1
    return text, before


async def test_a_part_the_old_bind_finished_is_counted_once_under_its_link_after_the_bind_moves(
    tmp_path: Path,
) -> None:
    """The SMPP block kept as "main-smpp" and "main" given to a CIMD2 block: the long SMS's delivered
    first part follows its bind to main-smpp (its rest waits for that link) and was counted as
    delivered under both main and main-smpp. Counted under main, which finished it; what main-smpp
    finishes after the start under main-smpp; no counter falls, at this start or the next."""
    clock = [time.time()]
    async with simulator(tmp_path) as sim:
        text, before = await first_part_delivered(tmp_path, sim, clock)
        sent = len(parts_by(sim, "smpp"))
        kept = text.replace('name = "main"\ntype = "smpp"', 'name = "main-smpp"\ntype = "smpp"', 1)
        block = f'[[smsc]]\nname = "main"\ntype = "cimd2"\nport = {sim.cimd2_port}\nsystem_id = "smsgw"\n'
        both_text = kept.replace("[simulator]", block + 'password = "secret"\n\n[simulator]', 1)
        both = parse_config(both_text, base_dir=tmp_path)
        with capture_logs() as logs:
            async with running_gateway(both, lambda: clock[0]) as gw:
                at_start = await parts_total(gw)
                await gw.until(lambda: len(parts_by(sim, "smpp")) == sent + 2)  # the rest, by main-smpp
                # The messages read submitted from before the stop; parts 2 and 3 once their answers came.
                submitted = "SELECT COUNT(*) FROM parts WHERE state = 'submitted'"
                await gw.until(lambda: gw.store.db.conn.execute(submitted).fetchone()[0] == 3)
                await report(gw, sim, "true")
                finished = await parts_total(gw)
            async with running_gateway(both, lambda: clock[0]) as gw:
                again = await parts_total(gw)
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert changed["followed_by"] == "main-smpp", changed
    never_fell(before, at_start)
    assert at_start.get(("main", "delivered")) == 1, at_start
    assert at_start.get(("main-smpp", "delivered"), 0) == 0, at_start  # was 1: counted twice
    never_fell(at_start, finished)
    # Parts 2 and 3 and the short SMS, finished by main-smpp; part 1 once, under main.
    assert (finished[("main", "delivered")], finished[("main-smpp", "delivered")]) == (1, 3), finished
    assert again == finished


async def test_a_long_sms_sent_again_whole_keeps_its_delivered_part_counted(tmp_path: Path) -> None:
    """No block keeps the SMPP bind: the long SMS goes again whole by the CIMD2 one, and its first part,
    delivered over SMPP, left the `delivered` counter of main (1 before the stop, 0 after the start).
    The short SMS's report, which only an SMPP session brings, never comes: it ends `unreported` a day
    after its validity, counted so."""
    clock = [time.time()]
    async with simulator(tmp_path) as sim:
        text, before = await first_part_delivered(tmp_path, sim, clock)
        switched = text.replace('type = "smpp"', 'type = "cimd2"', 1).replace(
            f"port = {sim.smpp_port}", f"port = {sim.cimd2_port}", 1
        )
        with capture_logs() as logs:
            async with running_gateway(parse_config(switched, base_dir=tmp_path), lambda: clock[0]) as gw:
                at_start = await parts_total(gw)
                await gw.until(lambda: len(parts_by(sim, "cimd2")) == 3)
                resent = "SELECT COUNT(*) FROM parts WHERE message_id = 1 AND state = 'submitted'"
                await gw.until(lambda: gw.store.db.conn.execute(resent).fetchone()[0] == 3)
                cimd2 = [str(r["message_id"]) for r in parts_by(sim, "cimd2")]
                await report(gw, sim, "message_id = 1", cimd2)
                delivered = await parts_total(gw)
                clock[0] += 49 * 3600  # past the short SMS's validity (24 h) and a day
                await gw.store.write(gw.store.queue.expire_due)
                ended = await parts_total(gw)
                short = gw.store.db.conn.execute("SELECT state FROM messages WHERE id = 2").fetchone()[0]
    (changed,) = [e for e in logs if e["event"] == "config.link_protocol_changed"]
    assert (changed["long_sms_sent_again"], changed["waiting"]) == (1, 1), changed
    never_fell(before, at_start)
    assert at_start[("main", "delivered")] == 1, at_start
    never_fell(at_start, delivered)
    # The first part twice (over SMPP, then again over CIMD2 with the whole SMS), the others once.
    assert delivered[("main", "delivered")] == 4, delivered
    never_fell(delivered, ended)
    assert short == "unreported" and ended[("main", "unreported")] == 1, ended


def steps_moving(tmp_path: Path, others: int) -> int:
    """The SQLite VM steps (in hundreds) of keeping counted 10 delivered parts of main that go under
    main-smpp, in a store with `others` delivered parts of another link; the counts checked."""
    store = Store.open(tmp_path / f"moving-{others}.db")
    try:
        conn = store.db.conn
        conn.execute("BEGIN")
        for _ in range(10 + others):
            _email(conn, OLD, "delivered")  # a part each
        conn.execute("UPDATE parts SET link = 'other' WHERE id > (SELECT MIN(id) + 9 FROM parts)")
        conn.execute("UPDATE parts SET link = 'main' WHERE link IS NULL")
        ids = [pid for (pid,) in conn.execute("SELECT id FROM parts WHERE link = 'main'")]
        ticks = [0]

        def tick() -> int:
            ticks[0] += 1
            return 0  # go on

        conn.set_progress_handler(tick, 100)
        moving_to(conn, "main", "main-smpp", ids)
        assert final_parts(conn, 1) == [("main", "delivered", 1)]
        conn.set_progress_handler(None, 0)
        conn.execute("COMMIT")
        kept = conn.execute("SELECT label, state, n FROM purged_counts ORDER BY label").fetchall()
        assert kept == [("main", "delivered", 10), ("main-smpp", "delivered", -10)], kept
        return ticks[0]
    finally:
        store.close()


def test_keeping_the_moved_parts_counted_reads_those_parts_alone(tmp_path: Path) -> None:
    # The moved parts' final states were read by parts_due's range of every final part, each id
    # looked for in it: every delivered SMS ever kept read twice for each 500 parts the switch moved.
    small = steps_moving(tmp_path, 300)
    large = steps_moving(tmp_path, 3000)
    assert large <= small * 1.5 + 5, (small, large)
