"""aiosmtpd's warning about a command it does not know, with the client's word replaced by its length.

aiosmtpd (1.4) logs every unrecognised command line's first word at warning level ("%r
unrecognised: %s"), upper-cased. A client that pipelines `AUTH LOGIN` and its answers onto the
relay port (a script's `printf | nc`, a mail client pointed at the wrong port) hears `502` to the
AUTH, and its base64 user name and password lines are then read as commands and written to the
log. Upper-casing does not hide them: each group of four characters has few case variants that
decode to text, and a password was one of 32 candidates. The filter keeps the record (a scanner's
or a confused client's words are worth seeing) but shows such a word only when it looks like a
command: letters alone, and not a length base64 comes in (a multiple of 4 past 4), since 8 or 12
letters may well be a short password's base64. Anything else is shown as its length.

Installed on the "mail.log" logger in every process that serves a listener (the daemon and each
intake worker): a filter on a logger acts in that process only.
"""

from __future__ import annotations

import logging
import re

from gateway.logging import filter_once

# aiosmtpd's messages whose last argument is the client's command word, as it typed it.
_WORD_MESSAGES = frozenset({"%r unrecognised: %s", "%r over limit for %s"})
_COMMAND = re.compile(r"[A-Z]{1,12}")


def shown_word(word: object) -> str:
    """The command word as the log may show it: itself when it looks like one, else its length."""
    text = str(word)
    if _COMMAND.fullmatch(text) and (len(text) <= 4 or len(text) % 4):
        return text
    return f"[{len(text)} characters]"


class UnknownCommandWords(logging.Filter):
    """Rewrites aiosmtpd's unrecognised-command records in place; every record is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _WORD_MESSAGES and isinstance(record.args, tuple) and len(record.args) == 2:
            peer, word = record.args
            record.args = (peer, shown_word(word))
        return True


def install() -> None:
    """Add the filter to "mail.log" once in this process (a daemon may start listeners again)."""
    filter_once("mail.log", UnknownCommandWords)
