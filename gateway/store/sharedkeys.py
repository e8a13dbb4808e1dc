"""A CIMD2 report key (the SMSC's 060 stamp and the phone) the SMSC gave two SMS: it names neither.

A CIMD2 report names its SMS by the second the SMSC stamped it and the phone (`receiptkeys`). One
link spaces one phone's submits a second apart and takes a key it was given twice as none
(`smsc.cimd2.stampkeys`), but it sees only its own submits, and only since its start: two binds of
one SMSC account each sent an SMS to one phone in one second, or an SMSC stamping to the minute
answered an SMS after a restart with the key of one from before it. Both SMS then waited under one
key, and the reports went to them oldest first whatever the SMSC reported for which: the sender of
the delivered SMS got a bounce, and the failed one showed delivered.

So when a submit answer is recorded under a key a submitted part of another SMS holds (on any bind
of the account, or a link renamed since), every part waiting under it takes a form no report names
(`shared_form`): their reports are kept unmatched, and the SMS end `unreported` by their own
validity, never wrongly. One look at parts_link_state_smsc (link, state, smsc_id) per bind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

import structlog

from gateway.store.receiptkeys import stamped_key

log = structlog.get_logger(__name__)

SHARED_KEY_NOTE = (
    "the SMSC gave another SMS to this phone the same 060 stamp: no delivery report can be matched to either"
)


def shared_form(key: str) -> str:
    """A shared key as its parts keep it: no report's (`stamp:digits`, nor the link's
    `stamp-repeated:digits`), and still masked after its colon in the log."""
    stamp, _, digits = key.partition(":")
    return f"{stamp}-shared:{digits}"


class SharedKeys:
    conn: sqlite3.Connection
    siblings: Mapping[str, tuple[str, ...]]
    gone_links: tuple[str, ...]
    # The links whose shared keys were said (once each: an SMSC stamping to the minute repeats often).
    _shared_said: set[str] | None = None

    def shared_key(self, part_id: int, link: str, smsc_id: str) -> bool:
        """Whether the CIMD2 key part `part_id` was just recorded under is held by a submitted part of
        another SMS too: if so every part waiting under it, this one included, keeps it in its shared
        form (`shared_form`). Called in the write that records the submit answer, after it."""
        if stamped_key(smsc_id) is None:
            return False
        links = (link, *self.siblings.get(link, ()), *(n for n in self.gone_links if n != link))
        marks, shared = ",".join("?" * len(links)), shared_form(smsc_id)
        held = self.conn.execute(
            f"SELECT 1 FROM parts WHERE link IN ({marks}) AND state = 'submitted' AND smsc_id IN (?, ?)"
            " AND message_id != (SELECT message_id FROM parts WHERE id = ?) LIMIT 1",
            (*links, smsc_id, shared, part_id),
        ).fetchone()
        if held is None:
            return False
        self.conn.execute(
            f"UPDATE parts SET smsc_id = ?, error = COALESCE(error, ?) WHERE link IN ({marks})"
            " AND state = 'submitted' AND smsc_id = ?",
            (shared, SHARED_KEY_NOTE, *links, smsc_id),
        )
        said = self._shared_said = self._shared_said or set()
        if link not in said:
            said.add(link)
            log.warning("dlr.key_shared", link=link,
                        effect="two SMS to one phone were given one 060 stamp (by two binds of one SMSC"
                        " account, or across a restart by an SMSC stamping to the minute): their delivery"
                        " reports are kept unmatched, never applied to the wrong SMS")  # fmt: skip
        return True
