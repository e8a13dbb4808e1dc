"""The relay port's log of refusals a client can repeat at will, said for whom they were refused.

One process-wide throttle keyed `sender_refused` gave a stranger's first refusal a line and the other
19 a `suppressed=19` minutes later, on a line about another sender; with the relay port in an intake
worker most refused senders were never named. Each sender is now its own kind, its held-back count
said on a line naming it once its second has passed (`LogThrottle` with `when_quiet`), and a flood of
made-up senders is capped at `MAX_KINDS` lines a second, the rest counted together (`others`).

Mails refused at DATA (a user's daily or monthly limit, the same text to one phone too often) had no
line at all: the client alone had the reply. They are logged the same way, per sender, with the
reply's code and words, its phone numbers masked (`gateway.privacy`: a number is never in a log line).
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from smsc.logthrottle import LogThrottle

log = structlog.get_logger("gateway.smtp.relay")

# Refused senders (and DATA refusals) named on their own lines within one second; past this, counted.
MAX_KINDS = 20
_NUMBER = re.compile(r"\+?\d[\d ]{5,}\d")


class RefusalLog:
    """The relay handler's refusals: its throttle also takes a user's recipients past the 100th."""

    def __init__(self) -> None:
        self.throttle = LogThrottle(log, when_quiet=True, max_kinds=MAX_KINDS)

    def sender_refused(self, session: Any, refused: dict[str, object]) -> None:
        """A refused sender, logged once per session (its every MAIL and RCPT is refused alike)."""
        if getattr(session, "smsgw_sender_refused", False):
            return
        session.smsgw_sender_refused = True
        self.throttle.info("smtp.sender_refused", kind=f"sender_refused:{refused['sender']}", **refused)

    def data_refused(self, sender: str, ip: str | None, reply: str) -> None:
        """A mail refused after its DATA: by the sender's limits, or as the same text too often."""
        said = _NUMBER.sub("…", reply)
        self.throttle.info(
            "smtp.data_refused", kind=f"data_refused:{sender}:{reply[:3]}", sender=sender, ip=ip, reply=said
        )
