"""Delivery reports: applied to the oldest part the SMSC gave that id, or kept unmatched until the
submit answer naming the id comes (a receipt may overtake it).

`QueueRepo` (gateway/store/queue.py) builds on it; a report settles its part's message here, in
the transaction that stores it (`gateway/store/settling.py`).

A part the SMSC took twice (a submit that went unanswered, sent again and answered, then the first
one's late answer) has two SMSC ids: the late one is kept in its note (`SECOND_ID_NOTE`, `second_id`),
and the receipts of both copies count. A receipt saying either reached the phone makes it delivered;
one saying a copy failed fails it only once the other failed too. Kept as a log line only, the
receipt of the copy that reached the phone matched nothing, and the other's failure bounced the SMS.
A part that ended meanwhile keeps the late id as its own (`gateway.store.latecopies`).
"""

from __future__ import annotations

import re

import structlog

from gateway.store.latecopies import COPY_FAILED_NOTE, LateCopies
from gateway.store.receipthints import ReceiptHints, digit_args
from gateway.store.receiptkeys import EACH_STATE, NAMED_PHONE, TAIL_MIN, receipt_order, stamped_key
from gateway.store.receiptspread import ReceiptSpread
from gateway.store.records import Finished
from gateway.store.sharedkeys import SharedKeys
from smsc.logthrottle import LogThrottle

log = structlog.get_logger(__name__)

# The note of a submitted part whose earlier copy the SMSC accepted late: that copy's link and id.
SECOND_ID_NOTE = "a copy sent earlier was accepted late too (link {}, SMSC id {}): a receipt of either counts"
_SECOND_ID = re.compile(
    re.escape(SECOND_ID_NOTE).replace(r"\{\}", "(.*?)", 1).replace(r"\{\}", "(.*)", 1), re.DOTALL
)
# `dlr.unmatched` lines said per link and second before the rest are counted: an SMSC sends as many
# receipts naming nothing as it likes (20,000 in one write were 20,000 lines), while in normal
# running each of the few is worth its line.
UNMATCHED_LINES = 5
# Characters of a receipt's own words kept in dlrs.raw, for diagnosis (id, stat, err and the dates
# take under 150): the SMSC decides its length, and 60 KB of padding each, a flood of them unmatched,
# grew the database as fast as the over-long ids did.
RAW_KEPT = 1000


class ReportsRepo(ReceiptHints, ReceiptSpread, SharedKeys, LateCopies):
    # Seconds an unmatched receipt may wait for the submit answer that names its id; the daemon
    # sets it from `[gateway] early_dlr_max_age_minutes`.
    early_dlr_max_age: float = 600.0

    # Newest `received_at` of a receipt stored without a part, as far as this process knows: None
    # until read from the table once. Unmatched receipts come only from this process's links.
    _unmatched_at: float | None = None
    # The store's `dlr.unmatched` lines, throttled per link (`UNMATCHED_LINES`); made at the first.
    _unmatched_log: LogThrottle | None = None

    def _may_have_early_reports(self, now: float) -> bool:
        """Whether an unmatched receipt young enough to be matched may exist (else skip the search)."""
        if self._unmatched_at is None:
            row = self.conn.execute("SELECT MAX(received_at) FROM dlrs WHERE part_id IS NULL").fetchone()
            self._unmatched_at = row[0] if row[0] is not None else float("-inf")
        return self._unmatched_at >= now - self.early_dlr_max_age

    def _early_reports(
        self, part_id: int, link: str, smsc_id: str, now: float
    ) -> list[tuple[int, str, str | None]]:
        """The receipts for this id that overtook the submit answer, if any plausibly did, oldest first.

        SMSC ids repeat (counters reset on restart, wrap, CIMD2 keys are per second), so an
        unmatched receipt may belong to an earlier message that was given the same id. Only those
        that arrived after this message was accepted and within `early_dlr_max_age`, naming its phone
        if any (`NAMED_PHONE`), are taken; the rest stay unmatched.
        """
        links = (link, *self.siblings.get(link, ()))  # it may have come by another bind to the SMSC
        same_id, id_args = "d.smsc_id = ?", (smsc_id,)
        if (key := stamped_key(smsc_id)) is not None:
            # A CIMD2 report kept under the number as it wrote it, which the gateway could not read
            # ("0601569013"): one of that 060 second whose number, without leading zeros, ends the
            # recipient's (`stamped_key`).
            stamp = key[0]
            tail = f"ltrim(substr(d.smsc_id, {len(stamp) + 2}), '0')"
            same_id = (
                f"d.smsc_id >= ? AND d.smsc_id < ? AND (d.smsc_id = ? OR (length({tail}) >= {TAIL_MIN}"
                f" AND substr(m.recipient, -length({tail})) = {tail}))"
            )
            id_args = (f"{stamp}:", f"{stamp};", smsc_id)
        rows = self.conn.execute(
            "SELECT d.id, d.status, d.error FROM dlrs d, parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE p.id = ? AND d.link IN ({','.join('?' * len(links))}) AND {same_id}"
            " AND d.part_id IS NULL AND d.received_at >= m.created_at AND d.received_at >= ?"
            f" AND {NAMED_PHONE} ORDER BY d.received_at, d.id",
            (part_id, *links, *id_args, now - self.early_dlr_max_age),
        ).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]

    def _take_early(self, part_id: int, link: str, smsc_id: str, now: float) -> tuple[str, str | None] | None:
        """Match to the part every receipt that overtook its submit answer (`_early_reports`), and
        say which settles it: the newest final one, else ("pending", None); None when none came.

        Only the newest was taken: DELIVRD then ENROUTE (or UNDELIV then ACCEPTD) both before the
        answer, and the final one was lost (left unmatched), the SMS waiting `submitted` to end
        `unreported`, an UNDELIV never bounced. As if they had come after the answer, an
        intermediate receipt after a final one changes nothing."""
        if not self._may_have_early_reports(now):
            return None
        rows = self._early_reports(part_id, link, smsc_id, now)
        if not rows:
            return None
        ids = [row[0] for row in rows]
        self.conn.execute(
            f"UPDATE dlrs SET part_id = ? WHERE id IN ({','.join('?' * len(ids))})", (part_id, *ids)
        )
        finals = [row for row in rows if row[1] != "pending"]
        return (finals[-1][1], finals[-1][2]) if finals else ("pending", None)

    # Links no longer configured whose SMS still wait for reports (`gone_links_waiting`).
    gone_links: tuple[str, ...] = ()

    def gone_links_waiting(self, configured: set[str]) -> dict[str, int]:
        """SMS waiting for their report, by link, of links not in `configured`: a link renamed in
        the configuration. Their reports arrive under the new name and matched nothing."""
        rows = self.conn.execute(
            "SELECT link, COUNT(*) FROM parts INDEXED BY parts_receipt_wait WHERE state = 'submitted'"
            " GROUP BY link"
        ).fetchall()
        return {name: count for name, count in rows if name is not None and name not in configured}

    def record_report(
        self, link: str, smsc_id: str, status: str, error: str | None, raw: str, phone: str | None = None
    ) -> list[Finished]:
        """Store a DLR and apply it to the oldest unresolved part with that id (a CIMD2 key given two
        SMS names neither: `sharedkeys`), of those to `phone` first when the report names it (E.164):
        an SMSC's ids repeat (a restart, a counter wrapping), and an SMS whose report never came waits
        `submitted` for a day past its validity; the report of a newer SMS given the same id failed
        that older one, whose sender was told of a failure that was not theirs, while the failed one
        was never told.

        Nor is a part to another phone taken at all: the report may have overtaken the submit
        answer of its own SMS, which then takes it (`_take_early`), as it does with no part
        waiting. A phone in E.164 is compared by its digits as the end of the recipient's or of
        the sender's: an SMSC that labels a national number international ("+601123456"), or that
        names our number rather than the phone, still has its reports matched. Any other form
        ("601123456" the numbering plan did not read) only orders the parts, as before.

        A receipt after its part ended `unreported` (a day past the validity) stays unmatched: the
        SMSC's ids repeat, so by then it more likely belongs to a later SMS given the same id (and
        waits for that one's submit answer) than to one whose message was settled and told."""
        now = self.clock()
        # Also the SMS of the other binds to the same SMSC account, and of links gone from the
        # configuration since they were sent (a link renamed): their reports come by this one. Those
        # last (`receipt_order`): another operator's link removed may have SMS under the same ids.
        gone = tuple(name for name in self.gone_links if name != link)
        links, marks = (link, *self.siblings.get(link, ()), *gone), ",".join("?" * len(gone))
        digits = phone[1:] if phone and phone[:1] == "+" and phone[1:].isdigit() else None
        same_id, id_args = "p.smsc_id = ?", (smsc_id,)
        if (key := stamped_key(smsc_id)) is not None:
            stamp, tail = key
            if tail is not None:
                # A CIMD2 report: the part of that 060 second whose key is the report's, or whose
                # phone ends in the number the report wrote in a form of its own (`stamped_key`).
                same_id = (
                    "p.smsc_id >= ? AND p.smsc_id < ? AND (p.smsc_id = ? OR substr(m.recipient, -?) = ?)"
                )
                id_args = (f"{stamp}:", f"{stamp};", smsc_id, len(tail), tail)
            if digits is not None:
                # Kept, while unmatched, under the key its submit answer gives: the phone in E.164.
                smsc_id = f"{stamp}:{digits}"
        oldest = (
            "SELECT p.id FROM parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE p.link IN ({','.join('?' * len(links))}) AND {same_id} AND p.state = 'submitted'"
            " AND (? IS NULL OR substr(m.recipient, -?) = ? OR substr(m.source, -?) = ?)"
        )
        args = (*links, *id_args, *digit_args(digits))
        with self.transaction():
            if status != "pending":  # the part is found, then changed by its id
                state = "delivered" if status == "delivered" else "failed"
                # Every candidate (one, but for an id the SMSC gave again) and the oldest taken here:
                # an ORDER BY … LIMIT 1 and an UPDATE … RETURNING each had SQLite build a temporary
                # b-tree, for every receipt. The message's columns let a single SMS settle without
                # a RETURNING either (`_settle_single`).
                taken = "SELECT p.id, p.message_id, p.submitted_at, m.recipient IS ?, m.account_id, m.notify,"
                candidates = oldest.replace("SELECT p.id", f"{taken} p.link IN ({marks})", 1)
                rows = self.conn.execute(candidates, (phone, *gone, *args)).fetchall()
                if not rows and (routed := self._unprefixed(link, links, smsc_id, digits, now)) != digits:
                    digits, args = routed, (*links, *id_args, *digit_args(routed))  # a routing prefix
                    rows = self.conn.execute(candidates, (phone, *gone, *args)).fetchall()
                part = min(rows, key=receipt_order) if rows else None
                if part is None and (copy := self._by_second_id(links, smsc_id)) is not None:
                    self._copy_report(copy, state, error, now)  # the receipt of its copy taken late
                    self._store_report(link, smsc_id, status, error, raw, copy, now, digits)
                    return self._settle_message_of(copy, now)
                if part is None and (ended := self._ended_copy_of(links, smsc_id)) is not None:
                    self._store_report(link, smsc_id, status, error, raw, ended, now, digits)
                    return self._ended_copy_report(ended, state, error, now)  # of a part ended meanwhile
                if part is not None and state == "failed" and self._other_copy_waits(part[0], error):
                    self._store_report(link, smsc_id, status, error, raw, part[0], now, digits)
                    return []
                if part is not None:
                    self.conn.execute(
                        "UPDATE parts SET state = ?, error = ?, done_at = ? WHERE id = ?",
                        (state, error, now, part[0]),
                    )
                    if others := [row[0] for row in rows if row[1] == part[1] and row[0] != part[0]]:
                        # Its SMS's other parts the SMSC gave the same id on that link: one that numbers
                        # a long SMS once sends one receipt for it (they waited to end `unreported`).
                        self.conn.execute(
                            "UPDATE parts SET state = ?, error = ?, done_at = ? WHERE link = (SELECT link"
                            f" FROM parts WHERE id = ?) AND id IN ({','.join('?' * len(others))})",
                            (state, error, now, part[0], *others),
                        )
                elif (spread := self._spread_part(links, smsc_id, now, digits)) is not None:
                    self._store_report(link, smsc_id, status, error, raw, spread, now, digits)
                    return self._take_spread(spread, state, error, now)  # a part's own receipt after all
                elif (again := self._repeated(links, smsc_id, status, now, digits)) is not None:
                    self._store_report(link, smsc_id, status, error, raw, again, now, digits)
                    log.info("dlr.repeated", link=link, smsc_id=smsc_id, status=status, part=again)
                    return []
                elif (known := self._repeated(links, smsc_id, status, now, digits, same=False)) is not None:
                    log.info("dlr.later_receipt", link=link, smsc_id=smsc_id, status=status, part=known,
                             reason="another final receipt ended the part: the first stands")  # fmt: skip
                    self._store_report(link, smsc_id, status, error, raw, None, now, digits, said=False)
                    return []
                self._store_report(link, smsc_id, status, error, raw, part[0] if part else None, now, digits)
                if part is None:
                    return []
                if state == "delivered":
                    fast = self._settle_single(part[1], "delivered", now, told=(part[4], part[5]))
                    if fast is not None:
                        return fast
                return self._settle_message_of(part[0], now)
            part = self.conn.execute(
                oldest + f" ORDER BY {f'p.link IN ({marks}), ' if gone else ''}m.recipient IS ? DESC,"
                " p.submitted_at, p.id LIMIT 1",
                (*args, *gone, phone),
            ).fetchone()  # a pending report settles nothing: one behind a routing prefix stays unmatched
            if part is None and (copy := self._by_second_id(links, smsc_id)) is not None:
                part = (copy,)
            if part is None:
                part = self.conn.execute(
                    f"{EACH_STATE} SELECT MAX(p.id) FROM s CROSS JOIN parts p JOIN messages m"
                    f" ON m.id = p.message_id WHERE p.link = ? AND p.state = s.state AND {same_id}",
                    (link, link, link, *id_args),
                ).fetchone()
            part_id = part[0] if part else None
            self._store_report(link, smsc_id, status, error, raw, part_id, now, digits)
            if part_id is None:
                return []
            return self._settle_message_of(part_id, now)  # a pending report changes no part

    # (link, SMSC id) -> the submitted part whose `SECOND_ID_NOTE` names them: None until read from
    # the table once. An entry may be stale (the part settled since): each is checked as it is used.
    _second_ids: dict[tuple[str, str], int] | None = None

    def second_id(self, part_id: int, link: str, smsc_id: str) -> list[Finished] | None:
        """Keep the id the SMSC gave in a late answer to an earlier copy of a part it had since taken
        again: its receipts then count (module docstring); one that overtook this answer, kept
        unmatched, is applied now. None when the part waits for no receipt (ended, or not yet sent)."""
        now = self.clock()
        with self.transaction():
            row = self.conn.execute(
                "SELECT smsc_id, link FROM parts WHERE id = ? AND state = 'submitted'", (part_id,)
            ).fetchone()
            if row is None:
                return None
            if (row[0], row[1]) == (smsc_id, link):
                return []
            if row[0] is None:  # the copy answered in time gave no id (unconfirmed): this one is its id
                self.conn.execute(
                    "UPDATE parts SET smsc_id = ?, link = ?, error = NULL WHERE id = ?",
                    (smsc_id, link, part_id),
                )
            else:
                note = SECOND_ID_NOTE.format(link, smsc_id)
                self.conn.execute("UPDATE parts SET error = ? WHERE id = ?", (note, part_id))
                self._known_second_ids()[(link, smsc_id)] = part_id
            early = self._take_early(part_id, link, smsc_id, now)
            if early is None or early[0] == "pending":  # none, or reports that settle nothing
                return []
            if row[0] is None:
                self._apply_part_report(part_id, early[0], early[1], now)
            else:
                self._copy_report(
                    part_id, "delivered" if early[0] == "delivered" else "failed", early[1], now
                )
            return self._settle_message_of(part_id, now)

    def _by_second_id(self, links: tuple[str, ...], smsc_id: str) -> int | None:
        """The submitted part whose copy taken late got `smsc_id` on one of `links` (`second_id`):
        for a receipt no part's own id matched. No index has the notes: they are read once, at the
        first such receipt (rare: an SMSC's late answer after the re-send was taken)."""
        known = self._known_second_ids()
        for name in links:
            part_id = known.get((name, smsc_id))
            if part_id is None:
                continue
            note = SECOND_ID_NOTE.format(name, smsc_id)
            sql = "SELECT 1 FROM parts WHERE id = ? AND state = 'submitted' AND error = ?"
            if self.conn.execute(sql, (part_id, note)).fetchone() is not None:
                return part_id
            del known[(name, smsc_id)]  # settled, or its copy's receipt came
        return None

    def _known_second_ids(self) -> dict[tuple[str, str], int]:
        if self._second_ids is None:
            rows = self.conn.execute(
                "SELECT id, error FROM parts INDEXED BY parts_receipt_wait WHERE state = 'submitted'"
                " AND error LIKE ?",
                (SECOND_ID_NOTE.split("(", 1)[0] + "%",),
            ).fetchall()
            self._second_ids = {
                (found.group(1), found.group(2)): part_id
                for part_id, error in rows
                if (found := _SECOND_ID.fullmatch(error)) is not None
            }
        return self._second_ids

    def _other_copy_waits(self, part_id: int, error: str | None) -> bool:
        """A failure receipt for the part's own id while its copy taken late has no receipt yet: the
        part waits for that one's, now under the copy's link and id (then matched as any part's)."""
        known = self._known_second_ids()
        if part_id not in known.values():  # as a rule: no part has two ids
            return False
        row = self.conn.execute("SELECT error FROM parts WHERE id = ?", (part_id,)).fetchone()
        found = _SECOND_ID.fullmatch(row[0]) if row is not None and row[0] else None
        if found is None:
            return False
        known.pop((found.group(1), found.group(2)), None)
        self.conn.execute(
            "UPDATE parts SET link = ?, smsc_id = ?, error = ? WHERE id = ?",
            (found.group(1), found.group(2), COPY_FAILED_NOTE.format(error or "failed"), part_id),
        )
        return True

    def _store_report(
        self,
        link: str,
        smsc_id: str,
        status: str,
        error: str | None,
        raw: str,
        part_id: int | None,
        now: float,
        digits: str | None = None,
        said: bool = True,
    ) -> None:
        """`raw` as the link read it: without the SMSC's quote of the SMS (the links drop it,
        `smsc.receipts.without_text` and CIMD2's text parameters), which one arriving after `smsgw
        phone forget` wrote back (one not matched yet is not found by the erasure at all). A report
        matched to no part keeps the phone it named (`digits` of its E.164 form): `smsgw phone
        forget` then leaves another phone's report alone that carries an SMSC id once given to its."""
        phone = f"+{digits}" if digits and part_id is None else None
        if len(raw) > RAW_KEPT:
            raw = raw[:RAW_KEPT] + "…"
        stored = self.conn.execute(
            "INSERT INTO dlrs (link, smsc_id, status, error, raw, part_id, received_at, phone)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (link, smsc_id, status, error, raw, part_id, now, phone),
        )
        if part_id is None:
            self._unmatched_at = max(self._unmatched_at or now, now)
            if not said:  # (its caller said what it is)
                return
            if self._unmatched_log is None:
                self._unmatched_log = LogThrottle(log, when_quiet=True, burst=UNMATCHED_LINES)
            self._unmatched_log.info(
                "dlr.unmatched", kind=f"dlr.unmatched {link}", link=link, smsc_id=smsc_id, status=status
            )
            self._hint_id_form(link, smsc_id, now, stored.lastrowid)
            self._hint_other_link(link, smsc_id, now, digits)

    def _apply_part_report(self, part_id: int, status: str, error: str | None, now: float) -> None:
        if status == "pending":
            return
        state = "delivered" if status == "delivered" else "failed"
        self.conn.execute(
            "UPDATE parts SET state = ?, error = ?, done_at = ? WHERE id = ? AND state = 'submitted'",
            (state, error, now, part_id),
        )
