"""A form posted after its session ran out, kept for its own user's next login.

An admin who filled a form (an account's settings, a user's limits) and pressed Save after the idle
time got the login page, and what they had typed was gone. Such a form is not taken (its session is
over); when it carries that session's CSRF token it is kept here, in memory, under a random token
that only the login page it gets carries, bound to the user whose session it was. A login with that
token by that user hands it to the new session, and the form's page shows it filled in again, to be
checked and sent by its user; a login by anyone else on that browser drops it unseen. Passwords and
tokens are never kept; a form is kept for `KEEP_MINUTES` at most, for one login, and nothing of it
is logged.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# How long a kept form waits for its user's login: long enough to find the password, not a day.
KEEP_MINUTES = 15
# Memory's bounds: forms kept at once, everyone's, and one user's (the oldest goes first), and the
# characters of one form (names and values; a settings form is a few hundred). A larger one is not
# kept, and the login page does not say it is.
MAX_KEPT = 200
MAX_PER_USER = 4
MAX_CHARS = 32_000
FIELD = "kept"  # the login form's field carrying the token
# Never kept: the session's token (the new session's page has its own) and anything named a password.
NOT_KEPT = ("csrf",)


@dataclass(frozen=True, slots=True)
class Kept:
    """A form as it was posted: for whom, from which page, to where, and its fields in order."""

    user_id: int
    email: str
    page: str  # the page the form was on (where the login goes back to)
    action: str  # where it was posted (its path and query): which of the page's forms it was
    fields: tuple[tuple[str, str], ...]
    at: float


def fields_kept(items: Iterable[tuple[str, object]]) -> tuple[tuple[str, str], ...] | None:
    """The fields of a posted form worth keeping (text only, no password, no token); None when they
    are more than `MAX_CHARS`."""
    kept: list[tuple[str, str]] = []
    size = 0
    for name, value in items:
        if not isinstance(value, str) or name in NOT_KEPT or "password" in name.lower():
            continue
        size += len(name) + len(value)
        if size > MAX_CHARS:
            return None
        kept.append((name, value))
    return tuple(kept)


class KeptForms:
    """The kept forms by token, the oldest first."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._by_token: dict[str, Kept] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def fresh(self, kept: Kept) -> bool:
        return 0 <= self.clock() - kept.at < KEEP_MINUTES * 60

    def put(self, kept: Kept) -> str:
        """Keep `kept`; the token its login page carries."""
        for token in [t for t, k in self._by_token.items() if not self.fresh(k)]:
            del self._by_token[token]
        mine = [t for t, k in self._by_token.items() if k.user_id == kept.user_id]
        for token in mine[: max(0, len(mine) - MAX_PER_USER + 1)]:
            del self._by_token[token]
        while len(self._by_token) >= MAX_KEPT:
            del self._by_token[next(iter(self._by_token))]
        token = secrets.token_urlsafe(32)
        self._by_token[token] = kept
        return token

    def held(self, token: str) -> bool:
        """Whether `token` still names a kept form (the login page then says it is kept)."""
        kept = self._by_token.get(token)
        return kept is not None and self.fresh(kept)

    def take(self, token: str, user_id: int) -> Kept | None:
        """The form `token` names, for a login of `user_id`: given once, and only to its own user and
        while fresh; a login by anyone else drops it all the same."""
        kept = self._by_token.pop(token, None) if token else None
        if kept is None or kept.user_id != user_id or not self.fresh(kept):
            return None
        return kept

    def drop_login(self, email: str) -> None:
        """A login removed or its role changed: what it kept goes with its sessions."""
        for token in [t for t, k in self._by_token.items() if k.email.lower() == email.lower()]:
            del self._by_token[token]
