"""The ten minutes' budget of failed logins at the relay: at most four in any ten minutes, under the
five of Postfix's SASL jail in fail2ban (maxretry 5, findtime 10 min) and well under an Exchange or
Active Directory lockout.

The probes' back-off (`gateway.relayprobepace`) kept it alone while a held probe made one failed
login: three sends refused at once, the next probe 240 s on, the one after it 480 s later. A held
probe whose mechanism, the one the relay last took, is refused goes on to the others offered (a
relay that stopped taking PLAIN while it still offers it, and takes LOGIN, was refused at every
probe until a restart), and each of those is one more failed login: so a login's further mechanism
goes only while the last ten minutes leave room for it, and a held probe logs in no sooner than they
leave room for one. Counted whatever the relay answered, 454 too: Postfix logs a temporary failure
as the same failed SASL login the jail counts.
"""

from __future__ import annotations

import math

FINDTIME = 600.0  # seconds: fail2ban's postfix-sasl jail looks back this far
MOST_FAILED = 4  # failed logins in any FINDTIME, one under the jail's maxretry of 5


class LoginBudget:
    """The times of the last MOST_FAILED failed logins, on the logins' clock: all that decides
    whether one more fits in any FINDTIME."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def spend(self, at: float) -> None:
        self.times = [*self.times, at][-MOST_FAILED:]

    def room(self, now: float) -> int:
        """How many more failed logins fit now, within FINDTIME of those made."""
        return MOST_FAILED - sum(1 for t in self.times if t > now - FINDTIME)

    def open_at(self) -> float:
        """The first time one more failed login fits (minus infinity while it fits at once)."""
        if len(self.times) < MOST_FAILED:
            return -math.inf
        return self.times[0] + FINDTIME
