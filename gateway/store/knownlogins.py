"""The pairs (login, client address) that logged in lately, kept across restarts for acl/lockout.py.

The per-login lock and the overall rate spare a client from which the login has lately succeeded
(the owner's office, home or phone). Held in memory only, that list was empty after every restart,
and anyone who knew a login could then lock its owner out at every address with ten guesses. The
guard reads these rows at start and writes a pair at a success, at most once a day (so a busy
mailbox costs one small write a day per address, not one per login). Only successes are written:
failures cannot make the daemon write, so guessing cannot be turned into load on the disk.

Writes go through the store's write path (the loop thread's group commit) like every other; each
one also deletes a few rows past the 30 days, and the start deletes them all in chunks, so the
table holds at most the logins of the last 30 days times the guard's bound per login.
"""

from __future__ import annotations

from gateway.store.repository import Repository

# Rows past their time deleted by one write: bounds the loop's work when many expired at once.
PRUNE_CHUNK = 500

Pair = tuple[str, str, float]  # (login key, client key, wall time of the success written)


class KnownLoginsRepo(Repository):
    """SQL of `auth_known_good` (migration 58)."""

    def since(self, cutoff: float) -> list[Pair]:
        """The pairs written at or after `cutoff`, least recent first (the guard's order)."""
        return self.conn.execute(
            "SELECT login, address, last_at FROM auth_known_good WHERE last_at >= ? ORDER BY last_at",
            (cutoff,),
        ).fetchall()

    def any_before(self, cutoff: float) -> bool:
        """Whether a pair was written before `cutoff` (one probe of the age index): the start
        writes only when there is something to delete."""
        return (
            self.conn.execute("SELECT 1 FROM auth_known_good WHERE last_at < ? LIMIT 1", (cutoff,)).fetchone()
            is not None
        )

    def record(self, login: str, address: str, at: float, *, keep: int, cutoff: float) -> None:
        """A success of `login` from `address` at `at`; keeps the `keep` newest pairs of the login
        (as the guard does in memory, so one user logging in from many addresses only pushes out
        their own) and deletes a chunk of the rows older than `cutoff`."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO auth_known_good (login, address, last_at) VALUES (?, ?, ?)"
                " ON CONFLICT (login, address) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
                (login, address, at),
            )
            conn.execute(
                "DELETE FROM auth_known_good WHERE login = ? AND address NOT IN"
                " (SELECT address FROM auth_known_good WHERE login = ? ORDER BY last_at DESC LIMIT ?)",
                (login, login, keep),
            )
            self._prune(cutoff)

    def prune(self, cutoff: float) -> int:
        """Delete a chunk of the pairs written before `cutoff`; returns how many went."""
        with self.transaction():
            return self._prune(cutoff)

    def _prune(self, cutoff: float) -> int:
        return self.conn.execute(
            "DELETE FROM auth_known_good WHERE rowid IN"
            " (SELECT rowid FROM auth_known_good WHERE last_at < ? ORDER BY last_at LIMIT ?)",
            (cutoff, PRUNE_CHUNK),
        ).rowcount
