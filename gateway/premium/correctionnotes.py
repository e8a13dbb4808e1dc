"""A premium correction's note as each of its readers reads it: the company whose line it is, or the
operator.

A vote kept until its service's address confirms goes with the service when it moves to another
account (`moves.kept_to`); booked after its month was billed, the move is a correction with a line
for each company (`corrections.move`). One note naming both ("moved from account acme to account
beta") told each company the other's account name, which the gateway never says to a company (whose
a former user is now stays unsaid too, `conversations.inbound.told`). So each line holds its
company's own words ("moved to another account", "moved here from another account") and, after
them, the full note the operator reads (`premium stats`, the operator's panel). Both in the one
column the table has: a line of one party, or one written before, holds one note that is both.

Its own module, light: the billing files read it, and `smsgw --help` imports billing's months.
"""

from __future__ import annotations

# Never typed by anyone nor in a name (an account's name takes no control character), and a note
# is never shown raw: each reader takes its part (`told`, `full`).
_SPLIT = "\x1f"


def both(company: str, operator: str) -> str:
    """The note of a line: `company`'s words for the company whose line it is, `operator`'s for the
    operator (the same text when the line names no other company)."""
    return company if company == operator else f"{company}{_SPLIT}{operator}"


def told(note: str) -> str:
    """The note as the company whose line it is reads it."""
    return note.split(_SPLIT, 1)[0]


def full(note: str) -> str:
    """The note as the operator reads it: every party named."""
    return note.rsplit(_SPLIT, 1)[-1]
