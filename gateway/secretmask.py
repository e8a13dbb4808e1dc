"""The relay password kept out of everything the gateway keeps, shows and logs.

A relay may echo what it was sent in its reply to AUTH, or in any reply after it in the session:
the password as typed, or in the base64 AUTH LOGIN sends it in, or AUTH PLAIN's whole response.
That reply became a mail's kept error (`smsgw outbox list`, the panel), the probe's log line and a
warning's field, and only `smsgw status` masked it. One cleaning (`unsaid_line`) serves all of
them: the relay's reply to AUTH as it is kept, a mail's kept error, a probe's failure in the log.
It masks the forms the secrets take inside a kept error's repr (a password with a quote or a
backslash is escaped there, and the plain form would not be found), a secret too short for those
where it stands as a word of its own, and makes one plain line, as a relay's reply with CR, LF or a
terminal's escape in it must not print as more than a line of text. Three callers each did a part
of it: a password of three characters was masked in the reply to AUTH alone, and a relay echoing it
in its reply to MAIL or RCPT had it whole in the mail's kept error (`smsgw outbox list`).

Free of aiosmtplib and of the log, which uses it too (`gateway.logging`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MASK = "***"
SECRET_SHORTEST = 4  # a shorter secret masked would garble every text it is a part of
# A character repr() could not print, as it escapes it (`\x1b`, `\n`, `\u202e`); an escaped
# backslash (`\\`) is matched whole so that what follows it is read as itself.
_ESCAPED = re.compile(r"\\\\|\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[nrt])")


def _escaped(secret: str) -> str:
    """`secret` as repr() writes it inside quotes, its quotes themselves left bare."""
    return "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in secret)


def secret_forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """The texts to mask: each secret (SECRET_SHORTEST characters or more) and its forms in a
    repr, longest first, so that a secret within a longer one leaves no part of the longer."""
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) < SECRET_SHORTEST:
            continue
        bare = _escaped(secret)
        forms.update({secret, bare, bare.replace("'", "\\'"), bare.replace('"', '\\"')})
    return tuple(sorted(forms, key=len, reverse=True))


def masked(text: str, forms: Iterable[str]) -> str:
    """`text` with each of `forms` (`secret_forms`) replaced by MASK."""
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def masked_words(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret too short for `secret_forms` replaced by MASK where it stands as a
    word of its own (no letter, digit or underscore either side): for the relay's reply to AUTH,
    which echoed a password of three characters as typed, while a word merely holding its letters
    stays whole."""
    for secret in secrets:
        if 0 < len(secret) < SECRET_SHORTEST:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
    return text


def plain_line(text: str, limit: int | None = None) -> str:
    """`text` as one plain line: control, format (bidi) and separator characters made spaces, and
    so their escapes in an error's repr (`smsgw status` reads the relay's reply back out of the
    repr, escapes and all: a terminal's escape from a relay's 550 went to the terminal), runs of
    spaces one; cut to `limit` characters, if given, with an ellipsis."""
    text = _ESCAPED.sub(lambda m: m[0] if m[0] == "\\\\" else " ", text)
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    words = " ".join(cleaned.split())
    return words if limit is None or len(words) <= limit else words[: limit - 1] + "…"


@dataclass(frozen=True)
class Secrets:
    """What `unsaid_line` masks, worked out once for the texts of a whole run: the forms of the
    secrets long enough for `secret_forms`, and those shorter, masked as words (`masked_words`)."""

    forms: tuple[str, ...] = ()
    short: tuple[str, ...] = ()

    @classmethod
    def of(cls, secrets: Iterable[str]) -> Secrets:
        secrets = tuple(secrets)
        return cls(secret_forms(secrets), tuple(s for s in secrets if 0 < len(s) < SECRET_SHORTEST))


def unsaid_line(text: str, secrets: Secrets, limit: int | None = None) -> str:
    """`text` (a relay's reply, an error's repr) as the gateway keeps, shows and logs it: the secrets
    masked before the cut, which would leave a part of one no mask finds, then one plain line of at
    most `limit` characters (`plain_line`)."""
    return plain_line(masked_words(masked(text, secrets.forms), secrets.short), limit)
