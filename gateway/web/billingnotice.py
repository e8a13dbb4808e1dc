"""What a company admin's billing page says of a failing billing run: which of their bills it holds up.

The scheduled run bills month by month, the oldest owed first, and stops at a month that fails
(`billing_reports.job.run_due`): while month M fails, no month after it is made for anyone. The kept
failure names M alone. So a company's bills held up are its own file of M when that one was not
written whole (the run failed on it, or on the whole month), and every later month that has ended
that the company existed in (`billing_reports.repo.accounts`, the rule that says whose files a run
writes). The page said only "The billing of M failed", and that only to a company whose file of M
was not written whole or which was made after M: a company whose file of M was written whole was
told nothing though its next bill waited, and one told of M was not told that its later bills wait.

`notice` alone decides; `told` gathers what it needs. A company is never told another's failure:
the months are named, the error and its paths are the operator's (the page gives them `words`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from billing_reports import repo
from billing_reports.monthly import Month
from billing_reports.writer import file_name, month_dir
from gateway.web import billingfiles

_AFTER = "The operator has been told, and the run is tried again every hour."
_ORDER = "each month is made only after the one before"


@dataclass(frozen=True)
class Notice:
    """A company's bills a failing run holds up. `stopped`: the month the run stops at (None: the
    failure names none); `waiting`: the first and last month of the company's bills not made."""

    stopped: Month | None
    waiting: tuple[Month, Month] | None

    def text(self) -> str:
        """In a company admin's words: their bills and the month the run stops at, nothing else."""
        if self.stopped is None or self.waiting is None:
            return f"A billing run has failed, and your bill may wait for it. {_AFTER}"
        first, last = self.waiting
        bills = _months(first, last)
        if first == self.stopped:
            why = f"the billing run of {self.stopped} failed"
            if last != first:
                why += f", and {_ORDER}"
        else:
            why = f"the billing run is stopped at {self.stopped}; {_ORDER}"
        return f"{bills} not made yet: {why}. {_AFTER}"


def _months(first: Month, last: Month) -> str:
    if first == last:
        return f"Your bill for {first} is"
    if first.next() == last:
        return f"Your bills for {first} and {last} are"
    return f"Your bills for {first} to {last} are"


def notice(stopped: Month | None, now: Month, first: Month | None, own_whole: bool) -> Notice | None:
    """What a company is told of a billing run stopped at `stopped` (None: a failure naming no
    month, everyone's), the month being `now` (not ended, so not owed).

    `first`: the first month from `stopped` on that the company existed in (None: none before
    `now`); `own_whole`: whether its file of `stopped` was written whole by the run (read only
    when `first == stopped`). None: no bill of theirs waits, nothing to tell."""
    if stopped is None:
        return Notice(None, None)
    if first is None or first >= now:
        return None  # made since the last month owed ended: no bill due yet
    if first == stopped and own_whole:
        first = stopped.next()  # its bill of the month was made; the ones after it wait all the same
    last = now.previous()
    if first > last:
        return None  # the stopped month was the last owed, and the company's bill of it was made
    return Notice(stopped, (first, last))


async def told(web: Any, account: str, failed: dict[str, Any], tz: ZoneInfo, now: float) -> Notice | None:
    """`notice` for the company `account`, from the kept failure `failed`: the accounts read on the
    loop's connection, the file in a thread."""
    try:
        stopped = Month.parse(str(failed.get("month") or ""))
    except ValueError:
        return notice(None, Month.containing(now, tz), None, False)
    current = Month.containing(now, tz)
    first, month = None, stopped
    if not repo.accounts(web.store.db.conn, current.bounds(tz)[0], account):
        month = current  # made since the last month owed ended (or gone): no month to look at
    while month < current:  # the months owed: a few, while a failure is fixed
        if repo.accounts(web.store.db.conn, month.bounds(tz)[1], account):
            first = month
            break
        month = month.next()
    whole = False
    if first == stopped:
        directory = month_dir(web.config.state_dir, stopped, web.config.billing_dir)
        whole = await asyncio.to_thread(billingfiles.written_whole, directory, file_name(account))
    return notice(stopped, current, first, whole)
