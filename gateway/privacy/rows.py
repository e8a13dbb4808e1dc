"""One phone's rows by its number: the SQL fragments both the reads (`held`) and the erasure
(`erasure`) are built on, so that what `phone show` counts is what `phone forget` changes.

Every column about a phone keeps it in its E.164 form: the numbers the gateway sends to, its
conversations and opt-outs, and the source of an SMS (`mo`, `premium_mo`, `kept_phones`) that any
plan reads as a number. A source the SMSC wrote without "+" that no plan reads as a number is a
sender ID, kept as written, and no phone's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from gateway.privacy.naming import Forms


def marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def dict_rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class PhoneRows:
    """One phone's rows, by its E.164 form `number`."""

    def __init__(self, conn: sqlite3.Connection, number: str) -> None:
        self.conn = conn
        self.number = number
        self.forms = Forms(number)

    def _one(self, sql: str, *args: object) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

    def count(self, sql: str, args: Sequence[object]) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM ({sql})", tuple(args)).fetchone()[0])

    def mails_shared(self) -> int:
        """The mails the phone's SMS came in that went to other numbers too: their text stays."""
        return self.count(*self._mails_of(shared=True))

    def mails_own(self) -> int:
        """The mails the phone's SMS came in that went to it alone: their text and subject go."""
        return self.count(*self._mails_of(shared=False))

    def _mails_of(self, *, shared: bool) -> tuple[str, tuple[object, ...]]:
        test = "EXISTS" if shared else "NOT EXISTS"
        return (
            "SELECT DISTINCT m.email_id FROM messages m WHERE m.recipient = ?"
            f" AND {test} (SELECT 1 FROM messages o WHERE o.email_id = m.email_id AND o.recipient <> ?)",
            (self.number, self.number),
        )

    def _unmatched_sql(self) -> tuple[str, tuple[object, ...]]:
        """The delivery reports never matched to an SMS that are the phone's: the report of one of its
        SMS that came after the SMS ended (its SMSC id, off the unmatched reports' index) unless it
        named another phone (`dlrs.phone`, migration 54: the SMSC gave the id again), a report that
        named the phone, and a CIMD2 report whose key ends in the phone's number
        (`smsc.cimd2.messages.key_digits`)."""
        return (
            # From the phone's SMS (CROSS JOIN keeps the order): not every unmatched report read.
            "SELECT d.id FROM messages m CROSS JOIN parts p CROSS JOIN dlrs d"
            " WHERE m.recipient = ? AND p.message_id = m.id AND p.smsc_id IS NOT NULL"
            " AND d.link = p.link AND d.smsc_id = p.smsc_id AND d.part_id IS NULL"
            " AND d.received_at >= p.submitted_at AND (d.phone IS NULL"
            " OR substr(m.recipient, 1 - length(d.phone)) = substr(d.phone, 2)"
            " OR substr(m.source, 1 - length(d.phone)) = substr(d.phone, 2))"
            " UNION SELECT id FROM dlrs INDEXED BY dlrs_unmatched WHERE part_id IS NULL"
            " AND (smsc_id LIKE ? OR phone = ?)",
            (self.number, f"%:{self.number[1:]}", self.number),
        )
