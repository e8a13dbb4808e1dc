"""An `[[smsc]]` block pointed at another SMSC under the same name (another host or port, another
login): another bind, as another protocol is (`gateway.linkprotocol`), though the name is the same.

The name alone tied a long SMS to the SMSC that took its first part (`LinkChoice.own`): the rest went
to the new SMSC under the first part's reference, and the phone got parts 2 and 3 from one SMSC and
part 1 from another, never joined, with nothing logged. So at the start such a long SMS goes again
whole, under a new reference, by the new bind (`gateway.longsms`), and the start says so
(`config.link_endpoint_changed`), as `check-config` does before it.

The SMS the old SMSC took still await its receipts, which only it sends. Left under the name, they
were matched against the new SMSC's receipts, whose ids are its own and may well be the same (two
SMSCs counting from 1): one SMS was reported delivered or failed by the receipt of another. They move
to a name of their own (`retired_name`, "main@smsgw@10.0.0.1:2775", which no block can have), noted
with the old bind (a name noted with another bind is never taken: a suffix then): a block that gets
that bind again, under any name, has their receipts matched as a renamed link's are
(`gateway.linkbinds`); none does, they end `unreported` a day past their validity. So do the
receipts that came unmatched by the old bind, kept for a submit answer that would name their id
(`ReportsRepo._take_early`): the new SMSC's answers do not take them.

A block kept under a new name with the old bind in the same change keeps what it had out
(`linkprotocol.followers`): nothing goes again, nothing moves aside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

NAMES = {"smpp": "SMPP", "cimd2": "CIMD2"}
ENDPOINT_EVENT = "config.link_endpoint_changed"
RETIRED_MARK = "@"  # never in a block's name (`SmscSection.name`)


def endpoint(bind: str) -> str:
    """A bind as `gateway.linkbinds` notes it ("smpp|10.0.0.1|2775|smsgw") as an admin reads it."""
    protocol, host, port, login = [*bind.split("|", 3), "", "", ""][:4]
    said = f"{NAMES.get(protocol, protocol)} {_host(host)}:{port}"
    return f"{said} (login {login})" if login else said


def retired_name(name: str, bind: str) -> str:
    """The name the old bind's work waits under: the block's, and the endpoint and login it had.

    Without the login, a block whose login alone changed and changed back put the second login's SMS
    under the first one's name and noted the second bind for it: the first login's never matched
    again, though a block had its bind back."""
    _protocol, host, port, login = [*bind.split("|", 3), "", "", ""][:4]
    where = f"{_host(host)}:{port}"
    return f"{name}{RETIRED_MARK}{login}{RETIRED_MARK}{where}" if login else f"{name}{RETIRED_MARK}{where}"


def retired_under(name: str, bind: str, noted: Callable[[str], str | None]) -> str:
    """`retired_name`, or "~2", "~3"... after it when another bind (another type) is noted under that
    name (`noted`: the bind noted under a name, without the prefix): never merged with it. One lookup
    for `retire` and for `check-config`, which named the first while the SMS waited under "~2"."""
    kept, tried = retired_name(name, bind), 1
    while (was := noted(kept)) is not None and was != bind:
        tried += 1
        kept = f"{retired_name(name, bind)}~{tried}"
    return kept


def _host(key: str) -> str:
    """`configlinks.bind_key` notes 127.0.0.1, ::1 and localhost alike, as "loopback"."""
    return "localhost" if key == "loopback" else key


def is_retired(name: str) -> bool:
    return RETIRED_MARK in name


def retire(conn: sqlite3.Connection, name: str, bind: str) -> str:
    """Inside a store write, at the start, after the long SMS went again: the SMS the old bind took
    and its unmatched receipts go under `retired_name`, noted with the old bind. Returns that name."""
    from gateway.linkbinds import PREFIX

    def noted(kept: str) -> str | None:
        row = conn.execute("SELECT value FROM billing_state WHERE key = ?", (PREFIX + kept,)).fetchone()
        return None if row is None else str(row[0])

    kept = retired_under(name, bind, noted)
    conn.execute("UPDATE parts SET link = ? WHERE link = ? AND state = 'submitted'", (kept, name))
    conn.execute("UPDATE dlrs SET link = ? WHERE link = ? AND part_id IS NULL", (kept, name))
    conn.execute(
        "INSERT INTO billing_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (PREFIX + kept, bind),
    )
    return kept


def endpoint_consequences(
    name: str, was: str, now: str, waiting: int, long_sms: int, *, pinned: int, kept: str
) -> str:
    """What pointing the block elsewhere does to what its old bind had out, no block keeping that bind."""
    changed = f"link {name} was {was} and is {now} now, another SMSC bind under the same name"
    if not (waiting or long_sms or pinned):
        return (
            f"{changed}; its old bind had nothing out (no SMS awaiting reports, no long SMS half sent,"
            " no premium answers pinned to it): nothing is lost"
        )
    answers = "answer" if pinned == 1 else "answers"
    return (
        f"{changed}, and no block has its old bind: {long_sms} long SMS the old SMSC took part of go"
        " again whole by the new one under a new reference (a phone cannot join parts from two SMSCs;"
        f" the parts it got from the old one stay apart); {waiting} SMS the old SMSC took await reports"
        f" that only it sends: they wait under link {kept}, apart from the new SMSC's receipts (whose"
        " ids may be the same), matched again if a block gets the old bind back (the same type, host,"
        f" port and login), else they end 'unreported' a day after their validity; {pinned} premium"
        f" {answers} pinned to it leave by the new SMSC, right only if it is the same operator's. The"
        " old block kept as it is under a new name in the same change (what its bind has out follows it"
        " there), or the new SMSC in a block of its own, loses none of these. If it is the same SMSC"
        " reached another way (its host name for its IP, a second login of the same account), keep the"
        " old host, port and login in the block: any change of them is taken for another SMSC, and all"
        " of this would happen to SMS it already has"
    )
