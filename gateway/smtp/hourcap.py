"""The hour's cap on mail the gateway writes of itself in answer to mail it receives: postmaster@'s
and abuse@'s forwards to the admin address (`gateway.smtp.postmaster`), info@'s answers to a user
(`gateway.smtp.inforeply`). Each answer is one mail out for one mail in, so a loop of mail in (a
script, a mail rule, a stranger) would have the gateway send as fast as it was written to: 30 mails
to info@ in one session got 30 answers. Past its cap a mail is refused with 451: a person tries again
later and is answered then; a sender that retries for days is refused for days, and nobody is mailed.

The caps are counted from the rows the answers left in the database, in the write that would add
one: intake workers take SMTP sessions in processes of their own, each with a cap of its own otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store.forwardsteps import window_start

if TYPE_CHECKING:
    from gateway.store.db import Store

WINDOW_SECONDS = 3600.0
# `address`, the role it is to ("postmaster", "info"), whose share it passed ("" the one in all).
BUSY = "451 4.7.1 <{}>: too much mail to {} {}in the last hour, please try again later"


def hour_ago(store: Store) -> float:
    """Where the hour counted by every cap begins, on the store's clock, moved back by the steps forward
    of the clock made within it (`forwardsteps.window_start`): counted as time passed, a step had the
    hour's answers read as days old, and a loop or a flood had the cap's mails again at once."""
    return window_start(store.db.conn, store.clock(), WINDOW_SECONDS)


def busy(address: str, role: str, whose: str = "") -> str:
    """The refusal of one more mail to `address` past the cap of its `role`."""
    return BUSY.format(address, role, whose)
