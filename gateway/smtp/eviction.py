"""Which session gives way to a new connection at the cap, and how fast a stranger's body must come.

Its own module because choosing whom to close under a flood is one concern of the session guard
(gateway/smtp/guard.py), apart from counting connections, lines and bytes as they arrive.

Two kinds of session may go, and nobody else (a logged-in user, an ACL'd sender of an account, a
session that had a mail taken):
- one that has neither logged in nor had a mail taken and has made no progress for a while, or has
  held its slot long without either (`unproven`);
- one in DATA for a sender without an account (a stranger's mail to postmaster, an answer to a premium
  SMS from the public, a sender the ACL does not know) whose body has been coming for a while. MAIL
  lets anyone through to postmaster, so 520 such sessions sending a body byte every 3 s, each byte
  moving the idle deadline, filled a cap of 500 for the body's 10-minute bound and every normal mail
  heard 421. Of those, the slowest body (fewest bytes a second since its 354) goes first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

# At the connection cap, a session without a login or a mail taken may give way to a new one once it
# has made no progress for this long: a step that moves a mail forward (an EHLO, STARTTLS, a login,
# MAIL or RCPT answered as taken, a body's bytes) counts, other bytes do not. A byte of a command line
# or a NOOP every few seconds held a slot as long as the client liked, so ten addresses dripping them
# kept every Outlook user out with 421.
EVICT_SILENT_SECONDS = 10.0
# ... or once it has held its slot this long without a login or a mail taken: MAIL, RSET, MAIL... each
# a step, would otherwise hold one for the 250 commands of `max_commands`. A mail server's session
# sends its first mail within seconds of the greeting, and Outlook logs in as soon as TLS is up.
EVICT_UNPROVEN_SECONDS = 60.0
# A stranger's body must come at this many bytes a second on average from its 354, once this long
# has passed since it (then checked as each piece arrives; below it: 421 4.4.2). A mail server sends
# a body at network speed, a whole megabyte in seconds; 100 bytes a second is a link no MTA runs on,
# and one body byte every 3 s held a slot for the whole 10 minutes of `DATA_SECONDS_MAX`. Sessions of
# accounts (a user's Outlook over a poor mobile link) are never held to it.
STRANGER_DATA_GRACE_SECONDS = 30.0
STRANGER_DATA_MIN_RATE = 100.0


class Session(Protocol):
    """What the choice reads of a session (`gateway.smtp.guard.GuardedSMTP`)."""

    def unproven(self) -> bool: ...
    def stalled_for(self) -> float: ...
    def age(self) -> float: ...
    def stranger_data_rate(self, after: float) -> float | None: ...


S = TypeVar("S", bound=Session)


def who_gives_way(sessions: Iterable[S], silent: float, unproven_for: float, data_after: float) -> S | None:
    """The session to close for a new connection at the cap, or None when none may go.

    An idle unproven one first, the one stalled longest (as Postfix's stress mode ends idle
    sessions); else the stranger's body in DATA for `data_after` seconds that comes slowest."""
    idle: S | None = None
    slow: S | None = None
    slowest = 0.0
    for s in sessions:
        if s.unproven():
            if (s.stalled_for() >= silent or s.age() >= unproven_for) and (
                idle is None or s.stalled_for() > idle.stalled_for()
            ):
                idle = s
        elif (rate := s.stranger_data_rate(data_after)) is not None and (slow is None or rate < slowest):
            slow, slowest = s, rate
    return idle if idle is not None else slow
