"""What the login guard (`acl.lockout.AuthGuard`) answers a guess: a reserved attempt, the reason
one is not even checked, the lockout a failure started; and the unlock requests it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from acl.logins import Key

# What the store hands back for unlock requests newer than an id: (id, target, wall time it was made).
UnlockRow = tuple[int, str, float]


class Refused(Enum):
    """Why an attempt was not even checked; the reply is the same for all, the log says which."""

    PAIR = "login locked at this address"
    ADDRESS = "address locked"
    LOGIN = "login locked"
    OVERALL = "too many failures overall"
    BUSY = "as many checks in flight as failures allowed"  # not a lock: try again when they settle


@dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved guess; `settle` or `cancel` it exactly once.

    `delay` is how long the caller must wait before checking the password: its turn in the lane
    for fresh addresses while the overall rate is exceeded (0 otherwise). `overall` says whether
    it holds a slot of the overall rate (a known-good pair does not).
    """

    keys: tuple[Key, Key, Key]
    overall: bool = True
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Lockout:
    """What a failure started: the counters it locked and for how long."""

    seconds: float
    pair: bool
    address: bool
    login: bool


REFUSED = {"pair": Refused.PAIR, "address": Refused.ADDRESS, "login": Refused.LOGIN}
