"""What `smsgw status` shows of the relay login while no mail logs in: a refusal held (the relay
refused our login whole, and no send logs in until a probe's login is taken) or the relay's
authentication failing for now (454). Kept by `gateway.mailauth.RelayLogins`, written into the
daemon's status file (`login_report`) and read back by `gateway.cli.statusrelay`. Free of
aiosmtplib, as the status command is.

A held refusal was said once in the log (`mail.relay_login_refused`) and nowhere else: status showed
mail waiting "which goes once a probe of the relay gets through", not that no send logged in, since
when, with which mechanisms, nor what the relay answered.

The relay's words are cleaned where its reply to AUTH becomes an error (`unsaid`), not only for
status: kept whole, a relay echoing our password had it in the mail's error (`smsgw outbox list`,
the panel), in the probe's log line and in every send failing with the refusal held.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.secretmask import Secrets, unsaid_line

if TYPE_CHECKING:
    from aiosmtplib import SMTPResponseException

Reply = TypeVar("Reply", bound="SMTPResponseException")

REFUSED = "refused"  # our login refused whole: no send logs in until a probe's login is taken
FAILING = "failing for now"  # a 454: the relay's own authentication failing, not our password
NO_COMMON = "impossible"  # the relay offers no AUTH mechanism smsgw speaks: no login tried
WAITING = "waiting"  # the ten minutes' budget spent, by failed logins before a restart too
REPLY_MAX = 200  # characters of the relay's reply kept: a reply is a line, not a page


def login_by(probe: bool) -> str:
    """Whose login it was, as the log and the report say it."""
    return "a probe" if probe else "a send"


@dataclass
class LoginEpisode:
    """A refusal held, or the relay's authentication failing, from its first failed login on."""

    state: str
    since: float  # on the logins' clock (monotonic in the daemon): `for_seconds` in the report
    by: str  # "a send" or "a probe"
    reply: str = ""  # the relay's last answer, sanitised
    mechanisms: list[str] = field(default_factory=list)  # those refused since, in the order tried
    # The relay's last such answer: a 454 episode lasts from the first to a login taken or a mail
    # sent, and the admin asks whether the relay still answers so, not only since when.
    last: float | None = None

    def saw(self, tried: Iterable[str], reply: str, at: float) -> None:
        for mechanism in tried:
            if (name := mechanism.upper()) not in self.mechanisms:
                self.mechanisms.append(name)
        self.reply = reply
        self.last = at

    def report(self, now: float, next_login_at: float, failed: int) -> dict[str, Any]:
        return {
            "state": self.state,
            "for_seconds": round(max(now - self.since, 0.0), 1),
            "last_seconds_ago": round(max(now - (self.since if self.last is None else self.last), 0.0), 1),
            "by": self.by,
            "mechanisms": list(self.mechanisms),
            "reply": self.reply,
            "failed_logins": failed,
            "next_login_in_seconds": round(max(next_login_at - now, 0.0), 1),
        }


def sanitised(reply: str, secrets: Iterable[str] = ()) -> str:
    """The relay's reply as kept and shown (`gateway.secretmask.unsaid_line`), at most REPLY_MAX
    characters: a reply is a line, not a page."""
    return unsaid_line(reply, Secrets.of(secrets), REPLY_MAX)


def unsaid(exc: Reply, secrets: Iterable[str]) -> Reply:
    """The relay's reply to AUTH as it is kept, held, logged and raised (`gateway.mailauth`): one
    plain line with the password masked (`sanitised`, as status shows it). A new error of the same
    kind (aiosmtplib's `SMTPAuthenticationError`, or its `SMTPResponseException` for a reply it
    could not read), raised without `exc` as its cause or context: the reply as the relay gave it
    is in no mail's kept error, no log line and no traceback."""
    return type(exc)(exc.code, sanitised(exc.message, secrets))


def login_secrets(username: str, password: str) -> list[str]:
    """The forms of the password a relay could echo in its reply to AUTH. The base64 ones with and
    without their padding: a relay echoing one without it still has it masked."""
    plain = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    alone = base64.b64encode(password.encode()).decode("ascii")
    return [plain, plain.rstrip("="), alone, alone.rstrip("="), password]


def relay_secrets(mailer: object) -> list[str]:
    """The relay login's secrets of a mailer (`login_secrets`), none without a relay login (a
    capture directory, a relay without a user name or password)."""
    username = getattr(getattr(mailer, "cfg", None), "relay_username", None)
    password = getattr(mailer, "password", None)
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return []
    return login_secrets(username, password)


def login_report(mailer: object) -> dict[str, Any] | None:
    """The relay login's episode for the daemon's status file, None while logins go (or with no
    relay login: a capture directory, a relay without a user name)."""
    report = getattr(getattr(mailer, "logins", None), "report", None)
    return None if report is None else report()
