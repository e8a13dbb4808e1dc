"""What a whole MO holds of the phone's SMS: the parts that came, and the SMS whose late rest it is.

A set joined by the timeout holds fewer parts than it declared, and a late rest only its own
(`gateway.store.segments`): billing charges those that came, and the handlers send a late rest
where the SMS's first whole text went.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.repository import Repository

# The columns of table mo (alias `mo`) `counted` reads, in its arguments' order: for a reader that
# counts rows of its own (`billing_reports.repo.reply_rows`), so that a reply's line and a premium
# vote count by one rule. The text only for a row of no concatenation whose parts were not counted at
# its receipt (from before migration 65): a month's rows are read without their texts.
_COLUMNS = (
    "mo.seqs",
    "mo.concat_total",
    "mo.parts",
    "CASE WHEN mo.parts IS NULL AND COALESCE(mo.concat_total, 1) <= 1 THEN mo.text END",
    "mo.data_coding",
    "mo.protocol",
    "mo.smsc_time",
)
COUNTED, COUNTED_WIDTH = ", ".join(_COLUMNS), len(_COLUMNS)
_PROTOCOLS = frozenset({"smpp", "cimd2"})


def read_as_smpp(protocol: str | None, smsc_time: str | None) -> bool:
    """Whether an MO's DCS is read by SMPP's table (1-3: IA5, binary, Latin-1) rather than CIMD2's
    (1-3: the GSM alphabet): by the protocol of the link it came by, kept on its row (migration 65);
    a row without (older, its link's bind never noted) by CIMD2's stamp (060), which SMPP never
    gives, though a CIMD2 SMSC may leave it out or write one that reads as no time."""
    if protocol in _PROTOCOLS:
        return protocol == "smpp"
    return smsc_time is None


def whole_parts(text: str, data_coding: int, protocol: str | None, smsc_time: str | None) -> int:
    """The parts a phone's split needed for a whole text that came with no concatenation, counted at
    its receipt (`MoRepo.record_mo`) and kept in `mo.parts`."""
    # Imported here: the billing files' reader imports this module, and `smsgw --help` (which
    # imports it through the premium commands) must not load the SMSC drivers' decoding with it.
    from gateway.reassembly import parts_sent

    return parts_sent(text, data_coding, smpp=read_as_smpp(protocol, smsc_time))


def counted(
    seqs: str | None,
    total: int | None,
    parts: int | None,
    text: str | None,
    data_coding: int,
    protocol: str | None,
    smsc_time: str | None,
) -> int:
    """The parts of the phone's SMS a whole MO holds (its `COUNTED` columns): what the operator
    charged the phone for it, which a premium vote is billed at and a reply's billing line shows.
    A set joined by the timeout holds fewer than it declared, and a late rest only its own (`seqs`);
    the parts that never came are no one's to pay for. A text that came with no concatenation holds
    as many as the phone's split needed for it (`whole_parts`): an SMSC that joins a long SMS
    delivers it as one (SMPP's message_payload), and a vote of two parts was billed as one."""
    if seqs:
        return len(seqs.split(","))
    if total is not None and int(total) > 1:
        return int(total)
    if parts is not None:
        return int(parts)
    return whole_parts(text or "", data_coding, protocol, smsc_time)


@dataclass(frozen=True, slots=True)
class Earlier:
    """The first whole text of an SMS whose late parts a later one holds, and what became of it."""

    id: int
    state: str
    received_at: float
    # When its first part came (`mo.parts_at`): the time of the SMS the late parts' mail names. Its
    # join's time (`received_at`) is the timeout later, 5 minutes with the default.
    parts_at: float | None = None


class MoPartsRepo(Repository):
    def first_part_at(self, mo_id: int) -> float | None:
        """When the first part of a whole MO's SMS came; None for a row without (or purged)."""
        row = self.conn.execute("SELECT parts_at FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return row[0] if row else None

    def parts(self, mo_id: int) -> int:
        """The parts of the phone's SMS a whole text holds (`counted`)."""
        row = self.conn.execute(f"SELECT {COUNTED} FROM mo WHERE id = ?", (mo_id,)).fetchone()
        return counted(*row)

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
            "SELECT m.id, m.state, m.received_at, m.parts_at"
            " FROM mo l JOIN mo m ON m.id = l.follows WHERE l.id = ?",
            (mo_id,),
        ).fetchone()
        return Earlier(*row) if row else None
