"""What a long MO whose part came late is billed (R-5.2): one SMS, each part once.

The late part of a premium vote and of a two-way answer is a line of its own in the month's file,
tied to its SMS by a note, and the totals count one SMS with all its parts. Runs on a real SQLite
file with an injected clock, below the network.
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.writer import write_month
from gateway.premium.stats import PremiumStats
from gateway.reassembly import TIMEOUT_SECONDS
from smsc.base import Concat
from tests.billing_reader import read
from tests.test_conversations import World as TwoWayWorld
from tests.test_late_segments import answer_to_anna_timed_out, entries, first_two_parts_timed_out, vote
from tests.test_premium import T0, World


async def test_a_late_part_bills_its_parts_and_money_but_no_second_sms(tmp_path: Path) -> None:
    # one line per SMS: the late part of a vote was a second premium-MO line with nothing
    # tying it to the first, and every total counted 2 SMS for one. A long two-way answer joined
    # without a part was billed all its declared parts, on each of its two lines (2 SMS, 6 parts).
    w = World(tmp_path)
    w.service()
    hk = await first_two_parts_timed_out(w)
    w.now += 3600
    await vote(w, 3)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    tz = ZoneInfo(w.config.gateway.timezone)
    (account,) = write_month(w.store.path, tmp_path / "state", Month.containing(T0, tz), tz).accounts
    text = account.path.read_text()
    read(account.path.read_bytes())  # the end line counts the lines, the late one too
    lines = entries(text, "premium-MO")
    assert [(cols[6], cols[8], cols[9]) for cols in lines] == [("2", "", "6.00"), ("1", lines[1][8], "3.00")]
    assert lines[1][8].startswith("late part of the SMS of ")
    total = next(line for line in text.splitlines() if line.startswith("total\tkind\tpremium-MO\t"))
    assert total.split("\t")[3:5] == ["1", "3"]  # one SMS, three parts
    stats = PremiumStats(w.store.db, w.store.clock).traffic(0, w.now + 1)
    assert [(f.sms, f.parts) for f in stats] == [(1, 3)]


async def test_a_long_answer_is_billed_for_the_parts_that_came_once(tmp_path: Path) -> None:
    w = TwoWayWorld(tmp_path)
    hk = await answer_to_anna_timed_out(w)
    await w.mo("see you there", concat=Concat(ref=5, total=3, seq=3))
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    tz = ZoneInfo(w.config.gateway.timezone)
    files = write_month(w.store.path, tmp_path / "state", Month.containing(w.now, tz), tz).accounts
    text = "".join(f.path.read_text() for f in files)
    replies = entries(text, "MO-reply")
    assert [cols[6] for cols in replies] == ["2", "1"]
    total = next(line for line in text.splitlines() if line.startswith("total\tkind\tMO-reply\t"))
    assert total.split("\t")[3:5] == ["1", "3"]
