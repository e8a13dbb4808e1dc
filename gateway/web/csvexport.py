"""The CSV export's text, made on the reader's thread, and how many exports the panel makes at once.

Turning a batch of 1,000 rows into CSV (the reasons in words, the dates in the installation's zone)
takes about 5 ms; done on the event loop it stopped SMTP, the links and every other panel page for as
long, batch after batch. It is done instead in the same call to the reader's thread that reads the
batch (`gateway.web.counts`), from the rows that thread's own connection has just read: nothing there
touches the loop's connection or the loop.

Every read of the panel goes through that one thread, so exports side by side still queue each
other's batches and every search and dashboard behind them: four at once took the operator's
dashboard from 40 ms to 200 ms. At most `EXPORTS_AT_ONCE` run; the next is answered 503 with
Retry-After, and a page saying why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.reasons import human_reason

BOM = "\ufeff"  # Excel reads a CSV without it as the system's code page: "Łódź" came out garbled
HEADER = ["id", "created", "account", "from", "recipient", "state", "parts", "reason"]
# Two: an operator's export and a company admin's can run together; a third would only queue its
# batches behind theirs on the one reader thread, and everyone's pages with them.
EXPORTS_AT_ONCE = 2
RETRY_AFTER_SECONDS = 30  # a 100,000-row export takes seconds; its client may read it slower
# The wait the page names is Retry-After's: "a minute" said twice what the header did.
BUSY = (
    "{n} CSV exports are being made right now, the most the panel makes at once (each slows every"
    f" page while it runs): try again in {RETRY_AFTER_SECONDS} seconds"
)


def inert(text: str | None) -> str:
    """A cell Excel or LibreOffice will not run as a formula (OWASP's CSV injection advice): text
    from outside (a sender `=cmd|'/C calc'!A0@rival.example`, an SMSC's error) that starts like one
    gets a leading apostrophe, which the spreadsheet shows as text and hides."""
    value = text or ""
    return f"'{value}" if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def csv_separator(language: str) -> str:
    """The separator Excel splits a double-clicked CSV by in the office's locale: Polish Windows has
    `;` as its list separator (the decimal one is `,`), and a comma-separated file opened there as one
    column of whole lines."""
    return ";" if language == "pl" else ","


class Batch(NamedTuple):
    text: str  # the rows as CSV
    rows: int  # how many were read
    last_id: int | None  # the last one's id: the next batch starts below it


def as_csv(rows: list[dict[str, Any]], tz: ZoneInfo, separator: str, head: str = "") -> Batch:
    """`rows` as CSV text after `head`; on the reader's thread, from rows it read."""
    out = io.StringIO()
    out.write(head)
    writer = csv.writer(out, delimiter=separator)
    for r in rows:
        writer.writerow(
            [
                r["id"],
                datetime.fromtimestamp(r["created_at"], tz).isoformat(timespec="seconds"),
                inert(r["account"]),
                inert(r["mail_from"]),
                r["recipient"],  # E.164 as the gateway wrote it: digits after a "+"
                r["state"],
                r["parts_total"],
                # In words, as the pages say it ("the operator refused the number as invalid
                # (ESME_RINVDSTADR)"): a bare code told an admin nothing.
                inert(human_reason(r["reason"]) if r["reason"] else ""),
            ]
        )
    return Batch(out.getvalue(), len(rows), rows[-1]["id"] if rows else None)


def header(separator: str) -> str:
    out = io.StringIO()
    out.write(BOM)
    csv.writer(out, delimiter=separator).writerow(HEADER)
    return out.getvalue()


def cut_line(most: int, separator: str) -> str:
    """Said in the file itself: a cut file must not pass for the whole search."""
    out = io.StringIO()
    line = f"# cut at {most} rows: narrow the search (dates or state or number) for the rest"
    csv.writer(out, delimiter=separator).writerow([line])
    return out.getvalue()


class ExportSlots:
    """The exports running now, panel-wide; each holds its slot until its answer has been sent or
    its client has gone."""

    def __init__(self, most: int = EXPORTS_AT_ONCE) -> None:
        self.most = most
        self.running = 0

    def take(self) -> bool:
        if self.running >= self.most:
            return False
        self.running += 1
        return True

    def give_back(self) -> None:
        self.running -= 1


class ExportResponse(StreamingResponse):
    """The export's answer, giving its slot back however it ends (sent, the client gone, an error):
    taken by the handler with nothing awaited in between, so that nothing else can take it first."""

    def __init__(self, content: AsyncIterator[str], slots: ExportSlots, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slots: ExportSlots | None = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self._slots is not None:
                self._slots.give_back()
                self._slots = None
            if hasattr(self.body_iterator, "aclose"):  # a generator cut short ends now, not at GC
                await self.body_iterator.aclose()
