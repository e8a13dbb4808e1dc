"""The relay's password never crosses the network in clear unless the admin said it may.

With `[mail] relay_starttls = "when-offered"` (the default) a relay that did not offer STARTTLS, or
whose handshake failed, got the session in plain text, and with `relay_username` set the AUTH PLAIN
carrying the password too: anyone on the path, or one stripping STARTTLS from the EHLO answer,
read it. Postfix's `may` level keeps plaintext AUTH off an unencrypted session for the same reason.
So with a password the mail waits (a temporary failure, tried again) until the relay's TLS works,
unless the relay is on loopback, where nothing crosses a network, or the admin chose
`relay_starttls = false` (`check-config` warns of that for a relay elsewhere,
`gateway.configdoubts`). Without a password nothing secret is in the session and the mail still
goes in clear rather than not at all.
"""

from __future__ import annotations

import structlog

from gateway.configloops import on_loopback
from gateway.configservices import WHEN_OFFERED, MailSection

log = structlog.get_logger(__name__)

NOT_IN_CLEAR = "the relay password is not sent in clear text"
NOT_OFFERED = "the relay did not offer TLS"
HANDSHAKE_FAILED = "the relay's TLS handshake failed"


class RelayNotEncrypted(Exception):
    """The session to the relay stayed in clear and the relay wants our password: the mail is tried
    again later (not a refusal of the mail), and its text is what `smsgw outbox list` shows."""


def clear_login_allowed(cfg: MailSection, password: str | None) -> bool:
    """Whether a session in clear may carry the relay login: no login to carry, STARTTLS required
    (`true`, or TLS from the connection on: no session stays in clear) or turned off by the admin
    (`false`), or a loopback relay."""
    if not (cfg.relay_username and password):
        return True
    if cfg.relay_starttls != WHEN_OFFERED or cfg.relay_implicit_tls:
        return True
    return on_loopback(cfg.relay_addr[0])


class ClearLoginGuard:
    """Refuses the login on a session in clear, saying so in the log once per episode: every mail
    of a full outbox meets the same relay, and one line says what the next hundred would."""

    def __init__(self, cfg: MailSection, password: str | None) -> None:
        self.allowed = clear_login_allowed(cfg, password)
        host, port = cfg.relay_addr
        self.relay = f"{host}:{port}"
        self._said: str | None = None  # the kind of the episode going on, logged at its start

    def refuse(self, why: str, detail: str | None = None) -> RelayNotEncrypted:
        """The error the send fails with; the first of an episode of `why` is logged."""
        said = f"{why} ({detail})" if detail else why
        if why != self._said:
            self._said = why
            log.warning(
                "mail.relay_not_encrypted",
                relay=self.relay,
                reason=said,
                sending="not sent: queued, tried again",
                note=f"{NOT_IN_CLEAR}; fix the relay's STARTTLS, or for a relay reached over a trusted"
                " network only, set [mail] relay_starttls = false",
            )
        return RelayNotEncrypted(f"{said}; {NOT_IN_CLEAR}")

    def encrypted(self) -> None:
        """A session went over TLS: the episode is over, and the next refusal is said again."""
        self._said = None
