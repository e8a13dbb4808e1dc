"""The command line lengths a session's EHLO allows: RFC 5321 4.5.3.1.4's 512 octets, raised by each
extension advertised for the parameters it adds (`guard.GuardedSMTP.smtp_EHLO`).

aiosmtpd raises MAIL's limit for SIZE and SMTPUTF8 only (and again on every EHLO of a session), and
knows nothing of the keywords the handler adds. With DSN advertised, a mail program's RCPT with an
ORCPT of 483 characters, well within RFC 3461's allowance, heard `500 Command line too long`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from gateway.smtp.sessionlimits import COMMAND_LINE_CAP

COMMAND_LINE = 512  # RFC 5321 4.5.3.1.4 (aiosmtpd compares it with the line without its CR LF)
# EHLO keyword -> what its parameters add to which command's line, as the extension's RFC says.
RAISES: dict[str, dict[str, int]] = {
    "SIZE": {"MAIL": 26},  # RFC 1870 3: SIZE=
    "8BITMIME": {"MAIL": 16},  # RFC 6152 2: BODY=
    "SMTPUTF8": {"MAIL": 10},  # RFC 6531 3.4, as aiosmtpd counts it
    "DSN": {"MAIL": 100, "RCPT": 500},  # RFC 3461 4: RET and ENVID; NOTIFY and ORCPT
    "AUTH": {"MAIL": 500},  # RFC 4954 5: AUTH=
}


def _line() -> int:
    return COMMAND_LINE


# The limits of each list of keywords seen, made once: every session's EHLO advertises the same few
# lists (and the guard's start the empty one), and making them for an EHLO's nine keywords cost some
# 29 k instructions, at every connection. Bounded: a hook's lines with a client's words would make more.
_MADE_MAX = 64
_made: dict[tuple[str, ...], dict[str, int]] = {}


def for_keywords(keywords: Iterable[str]) -> defaultdict[str, int]:
    """Each command's limit after an EHLO that advertised `keywords`. An AUTH line carries the
    initial response (RFC 4954 4), so a long password must not meet "500 Command line too long".
    A new mapping at each call: aiosmtpd and the EHLO add to it, and each look-up of a command
    not in it puts the command in."""
    key = tuple(keywords)
    made = _made.get(key)
    if made is None:
        made = {"AUTH": COMMAND_LINE_CAP}
        for keyword in key:
            for command, extra in RAISES.get(keyword.upper(), {}).items():
                made[command] = made.get(command, COMMAND_LINE) + extra
        if len(_made) < _MADE_MAX:
            _made[key] = made
    return defaultdict(_line, made)
