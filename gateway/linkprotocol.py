"""A link whose `type` changed (smpp <-> cimd2) under the same name: another SMSC bind
(`configlinks.bind_key` starts with the protocol), though nothing else tells it from the link it was.

What the old bind had out stays the old bind's. The rest of a long SMS it took a part of went on by
the new protocol's session under the first part's reference: to another SMSC (or another interface of
one), whose originator the phone may not join with the first part's. It goes again whole, under a new
reference, at the start (`gateway.longsms`): the old bind is gone for good, so it does not wait
LONG_SMS_WAIT_SECONDS as for a link down. The reports awaited of what the old bind sent come only by a
session of the old protocol: over the new one they never come, and those SMS end `unreported` when
they expire, unless the block gets its old type back. Both are said at the start
(`config.link_protocol_changed`) and by `check-config`, which names the block and what to do instead:
the new protocol under a block of its own, the old one kept until its reports are in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import structlog

from gateway.longsms import send_whole_again

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

NOTE = "sent again whole under a new reference: link {} took part of it over {}, then became {}"
# Long SMS a part of which left by the link (`?`) and parts of which are still to send.
_HALF_SENT = (
    "SELECT DISTINCT p.message_id FROM parts p JOIN messages m ON m.id = p.message_id"
    " WHERE p.link = ? AND p.state IN ('submitted', 'delivered', 'unreported') AND m.concat_ref IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id"
    " AND q.state IN ('queued', 'deferred', 'active'))"
)
# Parts of the link waiting for their reports, but those of a long SMS that goes again whole.
_WAITING = (
    f"SELECT COUNT(*) FROM parts WHERE link = ? AND state = 'submitted' AND message_id NOT IN ({_HALF_SENT})"
)
NAMES = {"smpp": "SMPP", "cimd2": "CIMD2"}


def protocol_of(bind: str) -> str:
    """The protocol of a bind as `gateway.linkbinds` notes it ("smpp|loopback|2775|smsgw")."""
    return bind.split("|", 1)[0]


def changed_protocols(
    stored: Iterable[tuple[str, str]], configured: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Configured link -> (its protocol when last started, its protocol now), for those that changed.
    `stored`: (name, bind) as noted; `configured`: name -> protocol."""
    return {
        name: (was, configured[name])
        for name, bind in stored
        if name in configured
        and (was := protocol_of(bind)) != configured[name]
        and was in NAMES
        and configured[name] in NAMES  # a driver of no protocol (a test's) is none
    }


def send_again_at_start(store: Store, changed: Mapping[str, tuple[str, str]]) -> None:
    """Inside a store write, at the start, before any claim: the long SMS each changed link's old bind
    took part of go again whole, and what is left waiting for the old bind is logged."""
    conn = store.db.conn
    for name, (was, now) in changed.items():
        moved = 0
        for (message_id,) in conn.execute(_HALF_SENT, (name,)).fetchall():
            if send_whole_again(store, message_id, name, 0.0):
                # Not `longsms.MOVED_NOTE`: the next start would pass the new bind over for it.
                note = NOTE.format(name, was, now)
                conn.execute("UPDATE parts SET error = ? WHERE message_id = ?", (note, message_id))
                moved += 1
        (waiting,) = conn.execute(_WAITING, (name, name)).fetchone()
        log.warning(
            "config.link_protocol_changed",
            link=name,
            was=was,
            now=now,
            waiting=waiting,
            long_sms_sent_again=moved,
            note=consequences(name, was, now, waiting, moved),
        )


def consequences(name: str, was: str, now: str, waiting: int, long_sms: int) -> str:
    """What the change does to the work the old bind had out, and what keeps it."""
    old, new = NAMES.get(was, was), NAMES.get(now, now)
    return (
        f"link {name} was {old} and is {new} now, another SMSC bind under the same name:"
        f" {waiting} SMS it sent over {old} await reports that only a session of {old} brings (they"
        f" end 'unreported' when they expire, unless the block is {old} again);"
        f" {long_sms} long SMS it sent part of over {old} go again whole under a new reference"
        f" (their parts sent over {old} no longer count). A {new} link in an [[smsc]] block of its own,"
        f" with this one kept as it was until its reports are in, loses neither"
    )


def stored_changes(cfg: Config) -> list[str]:
    """`check-config`'s lines for the links whose type is not the one the last start noted (read-only,
    as `gateway.cli.stored` reads the database)."""
    from gateway.cli.stored import _rows as read_rows
    from gateway.configbase import link_place
    from gateway.linkbinds import AFTER, PREFIX

    stored = read_rows(
        cfg.db_path,
        f"SELECT substr(key, {len(PREFIX) + 1}), value FROM billing_state"
        f" WHERE key >= '{PREFIX}' AND key < '{AFTER}'",
    )
    changed = changed_protocols(stored, {link.name: link.type for link in cfg.smsc})
    lines = []
    for name, (was, now) in changed.items():
        quoted = name.replace("'", "''")  # the name's pattern allows none; kept safe all the same
        ((waiting,),) = read_rows(cfg.db_path, _WAITING.replace("?", f"'{quoted}'")) or [(0,)]
        long_sms = len(read_rows(cfg.db_path, _HALF_SENT.replace("?", f"'{quoted}'", 1)))
        said = consequences(name, was, now, waiting, long_sms)
        lines.append(f"{link_place(name)}: at the next start, {said}")
    return lines
