"""The note of an answer no conversation took, where an SMS to the phone from that number is known:
whose SMS it most likely answers, when it went, and why it was not mailed to them.

It began "no SMS was sent to <phone> from <number> within the reply window (7 days unless the
account sets its own)" and went on "<carl>'s ... 0 days ago, past the reply window" where carl's
account has a shorter window: true of neither window as it read. It now names the newest SMS, the
time since it went (in seconds, minutes or hours under a day), its account's own window, and the
older SMS of another user that a newer one displaced, which is not answered past it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from gateway import accountrules
from gateway.config import Config
from gateway.conversations.repo import Conversation, ConversationsRepo
from gateway.store.forwardsteps import kept_steps, seconds_after

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def ago(seconds: float) -> str:
    """A time since in its largest whole unit: "3 days", "40 minutes", "12 seconds"."""
    for size, unit in _UNITS:
        if seconds >= size or size == 1:
            n = max(0, int(seconds // size))
            return f"{n} {unit}{'' if n == 1 else 's'}"
    raise AssertionError("unreachable")


def last_sms(r: ConversationsRepo, cfg: Config, last: Conversation, at: float) -> str:
    """The newest conversation on the phone and number an answer no conversation took, as its note
    names it. Never mailed to its user: the phone's number may have changed hands since."""
    account = r.account_of(last.account_id)
    days = accountrules.reply_window_days(cfg, account[1] if account else None)
    sent = datetime.fromtimestamp(last.last_mt_at, ZoneInfo(cfg.gateway.timezone))
    # Time as it passed, and the window as the match counts it: a step forward of the clock is neither.
    steps, start = kept_steps(r.conn), at - days * 86400
    since = at - last.last_mt_at - seconds_after(steps, last.last_mt_at)
    said = (
        f"the newest SMS to this phone from this number was {last.user_email}'s"
        + (f" ({account[0]})" if account else "")
        + f" on {sent:%Y-%m-%d %H:%M}, {ago(since)} ago"
    )
    if last.last_mt_at >= start - seconds_after(steps, start):
        return f"{said}, within its reply window, but that SMS is not known to have reached the phone before"
    window = f"{days:g} day{'' if days == 1 else 's'}"
    said = (
        f"{said}, past its reply window of {window}: not mailed to them, as the number may have changed hands"
    )
    older = r.conn.execute(
        "SELECT user_email FROM conversations WHERE phone = ? AND number = ? AND id != ?"
        " ORDER BY last_mt_at DESC LIMIT 1",
        (last.phone, last.number, last.id),
    ).fetchone()
    if older is not None:
        said += f"; {older[0]}'s older SMS is not answered past a newer one"
    return said
