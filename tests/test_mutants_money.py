"""Premium money no test held: late parts of a long vote charged for each of their parts, their move
after the month was billed taking back their money but no second SMS, and a vote sent at local
midnight on the 1st billed in the month it starts.

Real SQLite file, the premium handler fed as a link hands MOs up, the daemon's housekeeping joining
sets at the reassembly timeout on an injected clock, the month billed by the scheduled job's
`bill_month` and the files read back by the tests' reader (tests/test_premium_corrections.py)."""

from __future__ import annotations

from pathlib import Path

from gateway.reassembly import TIMEOUT_SECONDS
from tests.billing_reader import grosze
from tests.test_late_segments import charged, housekeeping, vote
from tests.test_premium import World
from tests.test_premium_corrections import (
    FEB,
    JAN,
    acme_file,
    at,
    bill,
    money,
    remove,
    summary,
    total_is_the_sum,
)

# 7355: 3.00 PLN a part, 1.10 PLN commission, in grosze (tests/test_premium.py's tariffs)
PRICE, COMMISSION = 300, 110


async def first_part_then_two_late(w: World) -> int:
    """A 3-part vote of 30 January to a service not yet confirmed: part 1 alone at the timeout,
    parts 2 and 3 ten minutes later, joined as the late parts of the same SMS."""
    w.now = at(2027, 1, 30, 12)
    sid = w.service(verified=False)
    hk = housekeeping(w)
    await vote(w, 1)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    w.now += 600
    for seq in (2, 3):
        await vote(w, seq)
    w.now += TIMEOUT_SECONDS + 1
    await hk.expire()
    return sid


async def test_late_parts_are_charged_for_each_of_their_parts_and_moved_back_as_no_second_sms(
    tmp_path: Path,
) -> None:
    w = World(tmp_path)
    sid = await first_part_then_two_late(w)
    assert [(r[0], r[3], r[4], r[5]) for r in charged(w)] == [
        ("awaiting", 1, PRICE, COMMISSION),
        ("awaiting", 2, 2 * PRICE, 2 * COMMISSION),  # the phone paid for both late parts
    ]
    w.now = at(2027, 2, 1, 0, 5)
    await bill(w, JAN)
    jan = summary(w, JAN)
    assert money(jan, "acme") == (1, 3 * PRICE, 3 * COMMISSION)  # one SMS, three parts' money

    # The service removed before its address confirmed: the vote goes to no service, booked in
    # February against January's bill. One SMS taken back, with all three parts' money.
    w.now = at(2027, 2, 3, 12)
    remove(w, sid)
    feb = acme_file(w, FEB)
    back = sorted((m["parts"], m["price_pln"]) for m in feb.sms)
    assert back == [("-1", "-3.00"), ("-2", "-6.00")], back
    assert feb.totals[("all", "-")]["sms"] == "-1"
    feb_rows = summary(w, FEB)
    assert money(feb_rows, "acme") == (-1, -3 * PRICE, -3 * COMMISSION)
    assert money(feb_rows, "(premium MO without a service)") == (1, 3 * PRICE, 0)
    total_is_the_sum(feb_rows)


async def test_a_vote_at_local_midnight_on_the_first_is_billed_in_the_month_it_starts(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.now = at(2027, 1, 20, 12)
    w.service()
    w.now = at(2027, 2, 1, 0, 0, 0)  # 1 February 00:00:00 in Warsaw, to the second
    await w.mo("KP123 vote at midnight")
    w.now = at(2027, 3, 1, 0, 5)
    await bill(w, JAN)
    await bill(w, FEB)
    assert money(summary(w, JAN), "acme") == (0, 0, 0)
    assert money(summary(w, FEB), "acme") == (1, PRICE, COMMISSION)
    [line] = acme_file(w, FEB).sms
    assert (line["date"], line["time"]) == ("2027-02-01", "00:00:00")
    assert grosze(line["price_pln"]) == PRICE
