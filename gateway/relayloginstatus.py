"""What `smsgw status` shows of the relay login while no mail logs in: a refusal held (the relay
refused our login whole, and no send logs in until a probe's login is taken) or the relay's
authentication failing for now (454). Kept by `gateway.mailauth.RelayLogins`, written into the
daemon's status file (`login_report`) and read back by `gateway.cli.statusrelay`. Free of
aiosmtplib, as the status command is.

A held refusal was said once in the log (`mail.relay_login_refused`) and nowhere else: status showed
mail waiting "which goes once a probe of the relay gets through", not that no send logged in, since
when, with which mechanisms, nor what the relay answered.
"""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

REFUSED = "refused"  # our login refused whole: no send logs in until a probe's login is taken
FAILING = "failing for now"  # a 454: the relay's own authentication failing, not our password
REPLY_MAX = 200  # characters of the relay's reply kept: a reply is a line, not a page
SECRET_SHORTEST = 4  # a shorter password masked would garble every reply it is a part of


@dataclass
class LoginEpisode:
    """A refusal held, or the relay's authentication failing, from its first failed login on."""

    state: str
    since: float  # on the logins' clock (monotonic in the daemon): `for_seconds` in the report
    by: str  # "a send" or "a probe"
    reply: str = ""  # the relay's last answer, sanitised
    mechanisms: list[str] = field(default_factory=list)  # those refused since, in the order tried

    def saw(self, tried: Iterable[str], reply: str) -> None:
        for mechanism in tried:
            if (name := mechanism.upper()) not in self.mechanisms:
                self.mechanisms.append(name)
        self.reply = reply

    def report(self, now: float, next_login_at: float, failed: int) -> dict[str, Any]:
        return {
            "state": self.state,
            "for_seconds": round(max(now - self.since, 0.0), 1),
            "by": self.by,
            "mechanisms": list(self.mechanisms),
            "reply": self.reply,
            "failed_logins": failed,
            "next_login_in_seconds": round(max(next_login_at - now, 0.0), 1),
        }


def sanitised(reply: str, secrets: Iterable[str] = ()) -> str:
    """The relay's reply as one plain line: control, format (bidi) and separator characters made
    spaces, runs of spaces one, at most REPLY_MAX characters; the password masked where the relay
    echoed it, as typed or in base64 (AUTH LOGIN's answer, AUTH PLAIN's whole response)."""
    for secret in secrets:
        if len(secret) >= SECRET_SHORTEST:
            reply = reply.replace(secret, "***")
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in reply)
    words = " ".join(cleaned.split())
    return words if len(words) <= REPLY_MAX else words[: REPLY_MAX - 1] + "…"


def login_secrets(username: str, password: str) -> list[str]:
    """The forms of the password a relay could echo in its reply to AUTH."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")

    return [b64(f"\0{username}\0{password}"), b64(password), password]


def login_report(mailer: object) -> dict[str, Any] | None:
    """The relay login's episode for the daemon's status file, None while logins go (or with no
    relay login: a capture directory, a relay without a user name)."""
    report = getattr(getattr(mailer, "logins", None), "report", None)
    return None if report is None else report()
