"""What the scheduled billing run logs when it finds nothing due (`job.run_due`): said at INFO once a
day, or when the month billed last changed, else at DEBUG.

The run is tried every hour, so that a failed one is tried again within the hour rather than next
month (`gateway.scheduler.billing_trigger`), and `billing.up_to_date` came at INFO every hour: 24
lines a day in the journal saying nothing new, among which the lines that did were lost.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import structlog

from gateway.store.db import Store

log = structlog.get_logger(__name__)

# The last said at INFO, by database (tests run several daemons in one process): (the month billed
# last, the local day).
_told: dict[str, tuple[str | None, str]] = {}


def up_to_date(store: Store, last: str | None, tz: ZoneInfo) -> None:
    day = datetime.fromtimestamp(store.clock(), tz).date().isoformat()
    where = str(store.db.path)
    if _told.get(where) == (last, day):
        log.debug("billing.up_to_date", last_billed=last)
        return
    _told[where] = (last, day)
    log.info("billing.up_to_date", last_billed=last)
