"""The relay's reply in a failed mail's error, as the outbox keeps it (`OutboxRepo`, the worker's
`error_text`): read back for the MO's note, `smsgw status` and the panel. Apart from
`gateway.store.outbox`, which names it for its importers.
"""

from __future__ import annotations

import ast
import re

# An SMTP reply inside the text of an aiosmtplib exception, `SMTPRecipientRefused(550, '5.1.1 …', …)`
# (a reply code, not an errno: `ConnectionRefusedError(111, …)`), or one the worker wrote out.
_REPLY_IN_REPR = re.compile(r"\(([2-5][0-5]\d), ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")
_REPLY_TEXT = re.compile(r"([2-5][0-5]\d)[ -](.*)", re.DOTALL)
_WRAPPED = re.compile(r"\w+\(('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)", re.DOTALL)
WORDS_MAX = 300


def relay_reply(error: str) -> tuple[int | None, str]:
    """The relay's reply in a failed mail's error as an SMTP reply reads ("550 5.1.1 User unknown"),
    with its code; without one (a connection that failed), the error's own words. The worker keeps
    the exception's text, which puts the reply in Python's quotes and brackets."""
    code: int | None = None
    words = error or "no reason given"
    if (m := _REPLY_IN_REPR.search(error)) is not None:
        code, words = int(m[1]), f"{m[1]} {_unquoted(m[2])}"
    elif (m := _REPLY_TEXT.match(error)) is not None:
        code = int(m[1])
    elif (m := _WRAPPED.fullmatch(error)) is not None:
        words = _unquoted(m[1])
    words = " ".join(words.split())
    return code, words if len(words) <= WORDS_MAX else words[: WORDS_MAX - 1] + "…"


def _unquoted(literal: str) -> str:
    """The text of a string literal as Python's repr wrote it; the literal itself if it is none."""
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return literal
    return value if isinstance(value, str) else literal
