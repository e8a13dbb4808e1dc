"""`smsgw premium stats`: a month's premium MOs and the corrections booked in it, as billed.

Apart from gateway.premium.cli because it reads the billing side (billing_reports: the months it
takes, its grosze-to-PLN) and none of the service table's commands do; cli registers it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from billing_reports.monthly import Month
from billing_reports.render import pln
from gateway.cli.common import EXIT_USAGE, CliError, open_store, when

if TYPE_CHECKING:
    from gateway.config import Config

_MOVED = "corrections booked in {month} (SMS of billed months moved to another party, signed):"


def _figures(label: str | None, number: str, sms: int, parts: int, price: int, commission: int) -> str:
    # A space between every two fields, not widths alone: at 7 digits the counts of a TV vote ran
    # together ("9000011800001" for 900001 MOs and 1800001 parts), as a script splitting them read it.
    return f"{label or '(none)':<10} {number:<8} {sms:>7} {parts:>7} {pln(price):>12} {pln(commission):>12}"


def cmd_stats(cfg: Config, args: argparse.Namespace) -> int:
    """The month as its billing files bill it: the MOs received in it and, listed apart and in the
    total, the corrections booked in it (SMS of a billed month moved to another party)."""
    from gateway.premium.stats import PremiumStats

    try:
        month = Month.parse(args.month, option="--month")  # the months the billing takes
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    start, end = month.bounds(ZoneInfo(cfg.gateway.timezone))
    store = open_store(cfg, must_exist=True)
    figures = PremiumStats(store.db, store.clock)
    rows = figures.traffic(start, end)
    moved = figures.moved(start, end)
    print(f"premium SMS {args.month} (PLN net; price and commission per SMS part)")
    print(f"{'service':<10} {'number':<8} {'MOs':>7} {'parts':>7} {'price':>12} {'commission':>12}")
    totals = [0, 0, 0, 0]
    for title, lines in (("", rows), (_MOVED.format(month=args.month), moved)):
        if title and lines:
            print(title)
        for f in lines:
            label = f"{f.password}*" if f.password and f.removed else f.password
            print(_figures(label, f.number, f.sms, f.parts, f.price, f.commission))
            totals = [a + b for a, b in zip(totals, (f.sms, f.parts, f.price, f.commission), strict=True)]
    print(f"{'total':<19} {totals[0]:>7} {totals[1]:>7} {pln(totals[2]):>12} {pln(totals[3]):>12}")
    if any(f.removed for f in rows + moved):
        print("* a removed service")
    if moved:
        print("the corrections, as the billing files of the month list them:")
        for c in figures.corrections(start, end):
            print(
                f"  {when(c.booked_at)}  {c.password or '(none)'}  {c.number}  {c.sms:+d} SMS"
                f"  {c.parts:+d} parts  {pln(c.price)}  {pln(c.commission)}  {c.status}  {c.note}"
            )
    return 0
