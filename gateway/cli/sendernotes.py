"""`check-config`'s notes on the senders accounts send from: a name phones cannot answer (R-1.11), a
number the numbering plan does not know, a number the reply pool stands in for (R-3.2).

Said of the accounts the database holds as well as of the config's `[[account]]` blocks: a block only
creates a missing account, and most accounts are made with `smsgw account add` or the panel; only
the blocks were read, so an account made `--sender ACME` got no word from check-config that phones
cannot answer it, nor one sending from a number while `[replies] pool` sends instead. Read-only and
without waiting on the daemon, as every stored warning (`gateway.cli.stored`); no database yet: the
blocks alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config


def account_senders(cfg: Config) -> list[tuple[str, str | None]]:
    """(who, sender) for each account that sends, once each (`gateway.accountsenders.merged`)."""
    from gateway.accountsenders import merged
    from gateway.cli.stored import check_wal_first, read_rows

    check_wal_first(cfg)  # before the first read, as `stored_warnings`: a lost WAL exits 3 unread
    rows = read_rows(cfg.db_path, "SELECT name, sender FROM accounts ORDER BY name")
    return merged(cfg, {name: sender or None for name, sender in rows})


def sender_notes(cfg: Config) -> list[str]:
    """Each `note:` line check-config prints of the senders, the stored accounts' among them."""
    from gateway.accountsenders import by_sender, named
    from gateway.cli.poolsender import pool_note
    from gateway.conversations import own_number_notes, unanswerable

    accounts = account_senders(cfg)
    notes = [*unanswerable(cfg, accounts), *own_number_notes(cfg, accounts)]
    # One pool note a sender: every account without a sender of its own sends from the default one.
    for sender, names in by_sender(accounts).items():
        if (note := pool_note(cfg, sender, accounts=len(names))) is not None:
            notes.append(f"{named(names)}: {note}")
    return notes
