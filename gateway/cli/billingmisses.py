"""What `smsgw billing run` and `billing show` say where there is nothing to find: an account named in
another case than its own (`acme` for `ACME`), and a month with nothing to bill in it.

`billing run --account acme` said "no account named 'acme' existed" and no more; `billing show` of a
month that ended before the gateway had an account said "write it with `smsgw billing run`", which
answered "nothing to bill", exit 0, and still wrote no file.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.cli.common import CliError, open_store

if TYPE_CHECKING:
    from billing_reports.monthly import Month
    from gateway.config import Config
    from gateway.store.db import Store


def _day(at: float, tz: ZoneInfo) -> str:
    return f"on {datetime.fromtimestamp(at, tz):%Y-%m-%d}"


def before_accounts(store: Store, month: Month, tz: ZoneInfo) -> str | None:
    """When `month` ended before this gateway had an account (nothing to bill in it): since when it has
    one, in words; else None."""
    from billing_reports import repo as billing_repo

    end = month.bounds(tz)[1]
    since, used = billing_repo.installed_at(store.db.conn), billing_repo.first_use(store.db.conn)
    if (since is None or since >= end) and (used is None or used >= end):
        return "no account exists yet" if since is None else f"the first account was added {_day(since, tz)}"
    return None


def meant(store: Store, name: str) -> str:
    """`; did you mean 'ACME'?` for an account named in another case (`acme`): the names are exact."""
    # Not `a == b != c`: chained, that compares the typed name's casefold with the account's name, and
    # an account named in lower case was never suggested.
    folded = name.casefold()
    alike = [a.name for a in store.accounts.list_accounts() if a.name.casefold() == folded and a.name != name]
    return f"; did you mean {alike[0]!r}?" if len(alike) == 1 else ""


def how_to_write(cfg: Config, month: Month) -> str:
    """How a month with no files gets them: `billing run`, unless there is nothing to bill in it (it
    ended before the gateway had an account, or has not begun), where that run writes nothing."""
    tz = ZoneInfo(cfg.gateway.timezone)
    if month.bounds(tz)[0] > time.time():
        return f"{month} has not begun: there is nothing to bill yet"
    try:
        first = before_accounts(open_store(cfg, must_exist=True), month, tz)
    except CliError:  # no database here: the run would refuse as well, saying why
        first = None
    if first is not None:
        return f"{month} ended before this gateway had an account ({first}): there is nothing to bill in it"
    return f"write it with `smsgw billing run --month {month}`"
