"""A wall clock an hour ahead over a month's end, corrected by a step back after the month was billed.

The daemon bills October at its reading of 00:06 on November 1st (really 23:06 on October 31st);
NTP then steps the clock back an hour. An SMS accepted in the rest of October, and an answer the
step moves back over the month's end, were in no billing file: October's was mailed already and
November's starts at midnight. October is billed again once the clock passes its end again, its
changed file mailed, the one mailed before kept on disk (R-5.1, R-5.2). Real SMTP listener and
relay, the SMSC simulator, the CLI as a process; times through the daemon's injected clock.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from billing_reports.repo import LAST_BILLED, BillingRepo
from gateway.config import Config, parse_config
from gateway.housekeeping import Housekeeping
from gateway.store.db import Store
from smsc.outage import boottime
from tests.billing_world import at, billing_mails, cli, last_billed
from tests.conftest import DOMAIN, Sink, config_text, free_port, mail, running_gateway, smtp_sink
from tests.fakes.smsc import HappySMSC
from tests.test_clock_step import HOUR, Monotonic, received
from tests.test_store import Clock as FrozenClock


class Clock:
    """Real time plus an offset the test sets: the daemon's wall clock, stepping under it."""

    def __init__(self, ts: float) -> None:
        self.set(ts)

    def set(self, ts: float) -> None:
        self.offset = ts - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


def config(tmp_path: Path, smsc_port: int, relay: int) -> tuple[Path, Config]:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=smsc_port, relay_port=relay, timezone="Europe/Warsaw"))
    return path, parse_config(path.read_text(), source="test", base_dir=tmp_path)


def october(cfg: Config) -> str:
    return (cfg.state_dir / "billing" / "2027-10" / "acme.txt").read_text()


def replies(text: str) -> int:
    """The lines of two-way answers in a billing file (not its totals)."""
    return sum(
        1 for line in text.splitlines() if line[:4] == "2027" and line.split("\t")[2:3] == ["MO-reply"]
    )


async def test_october_is_billed_again_with_what_a_step_back_brought_into_it(tmp_path: Path) -> None:
    relay = free_port()
    async with HappySMSC() as smsc:
        path, cfg = config(tmp_path, smsc.port, relay)
        clock = Clock(at(2027, 10, 28, 12))
        async with smtp_sink(relay), running_gateway(cfg, clock=clock) as gw:
            assert (await gw.send(mail(f"601111222@{DOMAIN}", "Question?"))).error is None
            await smsc.wait_for(1)
        clock.set(at(2027, 11, 1, 0, 2))  # an hour ahead: really 23:02 on October 31st
        first = Sink()
        with capture_logs() as logs:
            async with smtp_sink(relay, first), running_gateway(cfg, clock=clock, elapsed=boottime) as gw:
                await gw.until(lambda: last_billed(gw.store) == "2027-10", timeout=30)
                await first.wait(1)
                await smsc.inject_mo("48601111222", "48100200300", "Yes, the answer")
                await gw.until(lambda: gw.store.db.conn.execute("SELECT COUNT(*) FROM mo").fetchone()[0] == 1)
                await asyncio.sleep(2.5)  # the housekeeping has a reading from before the step
                clock.set(clock() - HOUR)  # NTP corrects the clock: 23:0x on October 31st
                await gw.until(lambda: any(e["event"] == "clock.stepped_back" for e in logs), timeout=10)
                res = await gw.send(mail(f"601999888@{DOMAIN}", "Sent on October 31st after the step"))
                assert res.error is None, res.error
                listed = cli(path, "billing", "list")
        assert listed.returncode == 0, listed.stderr
        said = listed.stdout.splitlines()
        assert said[0].startswith("2027-10: 1 account file(s)")
        assert said[1].startswith(
            "  to be billed again: the clock stepped back 3600 s into it on 2027-10-31 23:0"
        )
        assert said[1].endswith(
            "the scheduled run after 2027-11-01 00:00 writes it again and mails the files that changed"
        )
        warned = [e for e in logs if e["event"] == "billing.month_to_bill_again"]
        assert [e["month"] for e in warned] == ["2027-10"]
        mailed_first = october(cfg)
        assert "601999888" not in mailed_first and not replies(mailed_first)

        clock.set(at(2027, 11, 1, 0, 10))  # past October's end again: the scheduled run at start
        again = Sink()
        async with smtp_sink(relay, again), running_gateway(cfg, clock=clock) as gw:
            await gw.until(lambda: last_billed(gw.store) == "2027-10", timeout=30)
            now = october(cfg)
            assert "601999888" in now, "the SMS of October 31st after the step is in no billing file"
            assert replies(now) == 1, "the answer moved back into October is in no billing file"
            await again.wait(2)  # acme's file (to the operator: acme has no billing address) and the summary
    files = [m for m in billing_mails(again) if "acme" in m.filename]
    assert len(files) == 1 and b"601999888" in files[0].attachment
    # Two mails of October for acme: the second says that it corrects the first, and since when.
    assert [m.subject for m in billing_mails(first) if "acme" in m.filename] == ["SMS billing 2027-10: acme"]
    assert files[0].subject == "SMS billing 2027-10: acme (corrected)"
    text = next(raw for _, _, raw in again.messages if b"(corrected)" in raw).decode()
    assert "This corrected file replaces the one mailed before (2027-11-01 00:0" in text, text
    kept = list((cfg.state_dir / "billing" / "2027-10").glob("mailed-*/acme.txt"))
    assert [k.read_text() for k in kept] == [mailed_first]  # what was mailed first stays on disk
    listed = cli(path, "billing", "list")
    assert "to be billed again" not in listed.stdout


def served(tmp_path: Path) -> tuple[Store, FrozenClock, Monotonic, Housekeeping]:
    clock, mono = FrozenClock(), Monotonic()
    store = Store.open(tmp_path / "db.sqlite", clock=clock)
    store.db.serve()
    cfg = parse_config(
        config_text(tmp_path, smsc_port=free_port(), timezone="Europe/Warsaw"),
        source="test",
        base_dir=tmp_path,
    )
    notifier: object = SimpleNamespace(config=cfg)  # check_clock reads the time zone off it, nothing else
    unused: object = None
    hk = Housekeeping(store, notifier, unused, dict, Path("/nonexistent"), monotonic=mono)  # type: ignore[arg-type]
    return store, clock, mono, hk


async def look(
    hk: Housekeeping, clock: FrozenClock, mono: Monotonic, seconds: float, step: float = 0.0
) -> float:
    """`seconds` pass, the wall clock stepping by `step` in them; the housekeeping looks."""
    clock.t += seconds + step
    mono.t += seconds
    return await hk.check_clock()


@pytest.mark.parametrize(("received_at", "crosses"), [((0, 20), True), ((1, 5), False)])
async def test_an_answer_moved_back_over_a_billed_months_end_bills_that_month_again(
    tmp_path: Path, received_at: tuple[int, int], crosses: bool
) -> None:
    # October billed; at 01:10 on November 1st the clock steps back an hour, to 00:10: still
    # November, but an answer received at 00:20 moves to 23:20 on October 31st, into the month
    # billed. One received at 01:05 moves to 00:05 and stays in November: nothing to bill again.
    store, clock, mono, hk = served(tmp_path)
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-10"))
    clock.t = at(2027, 11, 1, 0, 0)
    await hk.check_clock()
    await look(hk, clock, mono, at(2027, 11, 1, *received_at) - clock.t)
    mo_id = await received(store, "Tak")
    await look(hk, clock, mono, at(2027, 11, 1, 1, 10) - clock.t)
    with capture_logs() as logs:
        assert await look(hk, clock, mono, 10.0, -HOUR) == pytest.approx(HOUR)
    moved = store.db.conn.execute("SELECT received_at FROM mo WHERE id = ?", (mo_id,)).fetchone()[0]
    assert moved == pytest.approx(at(2027, 11, 1, *received_at) - HOUR)
    warned = [e["month"] for e in logs if e["event"] == "billing.month_to_bill_again"]
    assert warned == (["2027-10"] if crosses else [])
    assert last_billed(store) == ("2027-09" if crosses else "2027-10")
    store.close()


async def test_a_month_billed_for_votes_before_the_first_account_is_billed_again_after_a_step_back(
    tmp_path: Path,
) -> None:
    # Paid votes came to the fallback in October, before any account: October was billed for them
    # (`due_months` bills from the first traffic's month). The first account is made on November 1st
    # at 00:30 by a clock an hour ahead; NTP steps it back to 23:40 on October 31st. An answer received
    # now is October's, and October's file must be written again, though the first account is younger.
    store, clock, mono, hk = served(tmp_path)
    clock.t = at(2027, 10, 20, 12)
    await received(store, "KP100 Tak")
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-10"))
    clock.t = at(2027, 11, 1, 0, 30)
    made = "INSERT INTO accounts (name, created_at) VALUES ('acme', ?)"
    await store.write(lambda: store.db.conn.execute(made, (clock.t,)))
    await hk.check_clock()
    with capture_logs() as logs:
        assert await look(hk, clock, mono, 10.0, -0.85 * HOUR) == pytest.approx(0.85 * HOUR)
    assert [e["month"] for e in logs if e["event"] == "billing.month_to_bill_again"] == ["2027-10"]
    assert last_billed(store) == "2027-09"
    store.close()


async def test_a_paid_vote_moved_back_over_a_billed_months_end_is_billed_in_that_month(
    tmp_path: Path,
) -> None:
    # A vote to a premium number at 00:20 on November 1st by a clock an hour ahead, mailed to its
    # client a second later; the step back makes it 23:20 on October 31st. Its money record, which
    # the billing files and `premium stats` read, moves with its MO: left, the vote stayed in
    # November's bill while `mo list` and the re-billing of October put it in October.
    store, clock, mono, hk = served(tmp_path)
    await store.write(lambda: BillingRepo(store.db, store.clock).put(LAST_BILLED, "2027-10"))
    clock.t = at(2027, 11, 1, 0, 0)
    await hk.check_clock()
    await look(hk, clock, mono, at(2027, 11, 1, 0, 20) - clock.t)
    mo_id = await received(store, "KP100 Tak")
    vote = (
        "INSERT INTO premium_mo (mo_id, number, phone, parts, price, commission, text, state, received_at,"
        " forwarded_at, parts_at) VALUES (?, '7155', '+48601', 1, 100, 40, 'Tak', 'mailed', ?, ?, ?)"
    )
    await store.write(lambda: store.db.conn.execute(vote, (mo_id, clock.t, clock.t + 1, clock.t)))
    await look(hk, clock, mono, at(2027, 11, 1, 1, 10) - clock.t)
    with capture_logs() as logs:
        assert await look(hk, clock, mono, 10.0, -HOUR) == pytest.approx(HOUR)
    assert [e["month"] for e in logs if e["event"] == "billing.month_to_bill_again"] == ["2027-10"]
    (mo_at,) = store.db.conn.execute("SELECT received_at FROM mo WHERE id = ?", (mo_id,)).fetchone()
    paid = store.db.conn.execute(
        "SELECT received_at, parts_at, forwarded_at FROM premium_mo WHERE mo_id = ?", (mo_id,)
    ).fetchone()
    expected = at(2027, 11, 1, 0, 20) - HOUR
    assert mo_at == pytest.approx(expected)
    assert paid == pytest.approx((expected, expected, expected + 1))
    store.close()
