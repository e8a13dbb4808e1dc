"""Two-way SMS (SPEC R-3): conversations, the reply-number pool, MO → reply mail, answer → MT.

The package owns its table (`conversations`, migration 5) and its SQL (`repo`), its handlers and
its CLI subcommands. The spine calls it through one function each: `on_accept` from the
acceptance write (gateway/smtp/accept.py), `on_whole_mo` from the MO write (gateway/events.py),
`add_commands` from the command line (gateway/cli/main.py), `as_answer` from the SMTP side
before it plans the SMS (an answer is sent without its "Re: …" subject). An answer mailed back to
`<number>@<domain>` needs nothing else: it is a normal mail, and `on_accept` sends it from the
number its conversation already uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.lazynames import lazy_getattr

if TYPE_CHECKING:
    from gateway.conversations.answers import as_answer
    from gateway.conversations.cli import add_commands
    from gateway.conversations.handlers import Opening, on_accept, on_whole_mo, opening, unanswerable
    from gateway.conversations.ownnotes import own_number_notes

# Each name and the module that defines it, imported the first time the name is read (PEP 562): the
# command line imports this package to add its subcommands, and `smsgw --help` must not import the
# handlers, the store and the SMTP side for that.
_WHERE = {
    "as_answer": "gateway.conversations.answers",
    "add_commands": "gateway.conversations.cli",
    "Opening": "gateway.conversations.handlers",
    "on_accept": "gateway.conversations.handlers",
    "on_whole_mo": "gateway.conversations.handlers",
    "opening": "gateway.conversations.handlers",
    "unanswerable": "gateway.conversations.handlers",
    "own_number_notes": "gateway.conversations.ownnotes",
}

__all__ = [
    "Opening",
    "add_commands",
    "as_answer",
    "on_accept",
    "on_whole_mo",
    "opening",
    "own_number_notes",
    "unanswerable",
]


__getattr__ = lazy_getattr(__name__, _WHERE, globals())
