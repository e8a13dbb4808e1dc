"""How a delivery receipt's SMSC id leads to its part (`gateway.store.reports`): a CIMD2 key read for
the number its report wrote, the parts of a link looked up in every state they are in, and which of
the candidates takes it.

Both serve the index parts_link_state_smsc (link, state, smsc_id), migration 62.
"""

from __future__ import annotations

import re

# Each state the parts of a link (`?`, twice) are in, as `s`, one step of parts_link_state_smsc each:
# a receipt's part in any state is then found by (link, state, id). By the link and id alone, the id
# is past the state in that index: every part the link ever sent was read, 0.1 s a receipt at a million
# parts kept. SQLite skips through the states by itself only with statistics, which the store never
# gathers.
EACH_STATE = (
    "WITH RECURSIVE s(state) AS (SELECT MIN(state) FROM parts WHERE link = ?"
    " UNION ALL SELECT (SELECT MIN(state) FROM parts WHERE link = ? AND state > s.state) FROM s"
    " WHERE s.state IS NOT NULL)"
)

# A receipt kept unmatched (`d`, of dlrs) that named a phone (its `phone`, "+" and digits) is the SMS's
# (`m`, of messages) only when that phone's digits end the recipient's or the sender's number, as the
# ordinary order matches (`ReportsRepo.record_report`): one overtaking the submit answer that named
# another phone was applied to the SMS all the same, an UNDELIV of someone else's bouncing it.
NAMED_PHONE = (
    "(d.phone IS NULL OR substr(m.recipient, 1 - length(d.phone)) = substr(d.phone, 2)"
    " OR substr(m.source, 1 - length(d.phone)) = substr(d.phone, 2))"
)

# CIMD2's key (`smsc.cimd2.messages`): the SMSC's 060 stamp and the phone's digits.
_STAMPED = re.compile(r"([0-9]{10,20}):([0-9]{1,20})")
# Fewer digits, once leading zeros are gone, are a short code's: matched by the key as written only.
TAIL_MIN = 7


def stamped_key(smsc_id: str) -> tuple[str, str | None] | None:
    """A CIMD2 key's 060 stamp, and the number its report wrote, without a leading "0" or "00",
    to be matched as the end of the recipient's E.164 number; None for any other id.

    The submit answer's key has the phone in E.164 (the SMS's recipient), the report's the number
    however the SMSC wrote it: "601569013" and "0601569013" as well as "+48…" and "0048…". The
    gateway reads the first with its `default_region` (the `phone` given), but not a national
    number with a trunk "0" where the region has none, as in Poland. Each such report was kept
    unmatched and its SMS waited `submitted` for two days, a failed one bounced to no one. Within
    one 060 second the number's last digits tell the SMS apart: one phone's submits on a CIMD2
    link go a second apart (`smsc.cimd2.spacing`)."""
    m = _STAMPED.fullmatch(smsc_id)
    if m is None:
        return None
    tail = m.group(2).lstrip("0")
    return m.group(1), tail if len(tail) >= TAIL_MIN else None


def receipt_order(
    row: tuple[int, int, float | None, int, int | None, str | None, int],
) -> tuple[int, int, bool, float, int]:
    """The order in which a receipt's candidate parts take it: those of its own link (and the other binds
    of its SMSC account) before those of links gone from the config, whose SMSC may be another operator's
    giving the same ids; then the one to the phone it names, then the earliest submitted (SQLite's
    order: NULL first), then the lowest id. Row: (part, message, submitted_at, to the phone named,
    account, notify, of a gone link)."""
    part_id, _message, submitted_at, to_phone, _account, _notify, gone = row
    return (gone, -to_phone, submitted_at is not None, submitted_at or 0.0, part_id)
