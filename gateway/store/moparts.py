"""What a whole MO holds of the phone's SMS: the parts that came, and the SMS whose late rest it is.

A set joined by the timeout holds fewer parts than it declared, and a late rest only its own
(`gateway.store.segments`): billing charges those that came, and the handlers send a late rest
where the SMS's first whole text went.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.reassembly import parts_sent
from gateway.store.repository import Repository


@dataclass(frozen=True, slots=True)
class Earlier:
    """The first whole text of an SMS whose late parts a later one holds, and what became of it."""

    id: int
    state: str
    received_at: float
    user_email: str | None  # of the conversation it was mailed to, if any
    # When its first part came (`mo.parts_at`): the time of the SMS the late parts' mail names. Its
    # join's time (`received_at`) is the timeout later, 5 minutes with the default.
    parts_at: float | None = None


class MoPartsRepo(Repository):
    def first_part_at(self, mo_id: int) -> float | None:
        """When the first part of a whole MO's SMS came; None for a row without (or purged)."""
        row = self.conn.execute("SELECT parts_at FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return row[0] if row else None

    def parts(self, mo_id: int) -> int:
        """The parts of the phone's SMS a whole text holds: what the operator charged the phone for
        it. A set joined by the timeout holds fewer than it declared, and a late rest only its own;
        the parts that never came are no one's to pay for. A text that came with no concatenation
        holds as many as the phone's split needed for it (`gateway.reassembly.parts_sent`): an SMSC
        that joins a long SMS delivers it as one (SMPP's message_payload), and a vote of two parts
        was billed as one."""
        total, seqs, text, data_coding, smsc_time = self.conn.execute(
            "SELECT concat_total, seqs, text, data_coding, smsc_time FROM mo WHERE id = ?", (mo_id,)
        ).fetchone()
        if seqs:
            return len(seqs.split(","))
        if total is not None and int(total) > 1:
            return int(total)
        # The DCS is read by the link's protocol: only CIMD2 gives the SMSC's stamp (migration 22),
        # where 1-3 name the GSM alphabet that SMPP's data_coding gives IA5, binary and Latin-1.
        return parts_sent(text, data_coding, smpp=smsc_time is None)

    def held(self, mo_id: int) -> tuple[int, set[int]] | None:
        """(the parts its SMS declared, those of them a whole MO holds); None once the retention
        purge has deleted it."""
        row = self.conn.execute("SELECT concat_total, seqs FROM mo WHERE id = ?", (mo_id,)).fetchone()
        if row is None:
            return None
        total = max(int(row[0] or 1), 1)
        return total, {int(x) for x in row[1].split(",")} if row[1] else set(range(1, total + 1))

    def followed(self, mo_id: int) -> Earlier | None:
        """The first whole text of the SMS whose late parts the whole text `mo_id` holds, else None:
        the late rest goes where that one went, not where its own gap-marked text would lead."""
        row = self.conn.execute(
            "SELECT m.id, m.state, m.received_at, c.user_email, m.parts_at"
            " FROM mo l JOIN mo m ON m.id = l.follows"
            " LEFT JOIN conversations c ON c.id = m.conversation_id WHERE l.id = ?",
            (mo_id,),
        ).fetchone()
        return Earlier(*row) if row else None
