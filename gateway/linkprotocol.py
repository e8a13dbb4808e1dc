"""A link whose `type` changed (smpp <-> cimd2) under the same name: another SMSC bind
(`configlinks.bind_key` starts with the protocol), though nothing else tells it from the link it was.

What the old bind had out stays the old bind's. When another configured block has that bind (the
same protocol, host, port and login: the old block kept under a new name, the name given to the new
protocol), it follows the bind there at the start: the SMS awaiting its reports and the long SMS it
took part of are that block's, whose session brings the reports and sends the rest under the first
part's reference, as for a link renamed (`gateway.linkbinds`). Left under the name, the reports came
by the renamed block and matched nothing, and the long SMS went again whole. So do the premium answers
pinned to the name and those to the premium SMS the old bind brought (`gateway.linkmoves`): pinned to
the name, they left by the new protocol's bind, maybe another operator's, whose short code is not theirs.

When no block has the old bind, the rest of a long SMS it took a part of went on by the new
protocol's session under the first part's reference: to another SMSC (or another interface of one),
whose originator the phone may not join with the first part's. It goes again whole, under a new
reference, at the start (`gateway.longsms`): the old bind is gone, so it does not wait
LONG_SMS_WAIT_SECONDS as for a link down. The reports awaited of what the old bind sent come only by a
session of the old protocol: over the new one they never come, and those SMS end `unreported` a day
after their validity (`QueueRepo.expire_batch`), unless the block gets its old bind back. The premium
answers pinned to the name, and those still to come to the votes the old bind brought, leave by the new
protocol's bind: right when it is the same operator's SMSC, else from a short code that is not its
own. All of it is said at the start (`config.link_protocol_changed`) and by `check-config`, which
names the block, how many SMS, long SMS and answers, and what to do instead: the new protocol under a
block of its own, or the old block kept under a new name. What the switch moves stays counted once in
`/metrics`, under the link that finished it (`gateway.linkcounted`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import structlog

from gateway.linkcounted import moving_to
from gateway.linkendpoint import ENDPOINT_EVENT, NAMES, endpoint, endpoint_consequences, retire, retired_under
from gateway.linkmoves import note_move
from gateway.longsms import MOVABLE, send_whole_again

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.db import Store

log = structlog.get_logger(__name__)

NOTE = "sent again whole under a new reference: link {} took part of it over {}, then became {}"
# Long SMS a part of which left by the link (`?`) and parts of which are still to send. A part failed,
# held or cancelled keeps it as it is (`longsms.send_whole_again`).
_HALF_SENT_ANY = (
    "SELECT DISTINCT p.message_id FROM parts p JOIN messages m ON m.id = p.message_id"
    " WHERE p.link = ? AND p.state IN ('submitted', 'delivered', 'unreported') AND m.concat_ref IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id"
    " AND q.state IN ('queued', 'deferred', 'active'))"
)
# Those that go again whole: none of their parts is outside `longsms.MOVABLE`.
_HALF_SENT = (
    _HALF_SENT_ANY + " AND NOT EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id"
    f" AND q.state NOT IN ({', '.join(map(repr, sorted(MOVABLE)))}))"
)
# SMS a part of which the link sent waits for its report, but a long SMS that goes again whole. The
# SMS, not their parts: a long SMS sent whole, its three parts awaiting reports, was said as 3 SMS.
_WAITING_ALL = "SELECT COUNT(DISTINCT message_id) FROM parts WHERE link = ? AND state = 'submitted'"
_WAITING = f"{_WAITING_ALL} AND message_id NOT IN ({_HALF_SENT})"
# The parts that follow the old bind to the block that has it now: those awaiting reports, and the
# sent parts of a long SMS with parts still to send (the link its rest waits for, `Queue.link_taken`).
_FOLLOWING = (
    "SELECT id, state FROM parts WHERE link = ? AND state IN ('submitted', 'delivered', 'unreported')"
    f" AND (state = 'submitted' OR message_id IN ({_HALF_SENT_ANY}))"
)
# Parts pinned to the link (`parts.via`: premium answers, which leave from the short code by the bind
# their vote came by) that may still leave: those waiting or held, out or awaiting a report (a
# session lost sends them again), and those a `queue retry` sends again. Not those delivered.
_PINNED = "SELECT id FROM parts WHERE via = ? AND state NOT IN ('delivered', 'unreported')"
EVENT = "config.link_protocol_changed"


def protocol_of(bind: str) -> str:
    """The protocol of a bind as `gateway.linkbinds` notes it ("smpp|loopback|2775|smsgw")."""
    return bind.split("|", 1)[0]


def changed_protocols(
    stored: Iterable[tuple[str, str]], configured: Mapping[str, str]
) -> dict[str, tuple[str, str]]:
    """Configured link -> (its bind when last started, its bind now), for those whose bind changed:
    another protocol, or another endpoint of the same one (`gateway.linkendpoint`). `stored`: (name,
    bind) as noted; `configured`: name -> bind."""
    return {
        name: (bind, configured[name])
        for name, bind in stored
        if name in configured
        and bind != configured[name]
        and protocol_of(bind) in NAMES
        and protocol_of(configured[name]) in NAMES  # a driver of no protocol (a test's) is none
    }


def _said(was: str, now: str) -> tuple[str, str]:
    """How the change is named: the protocols when they differ, else the endpoints."""
    if protocol_of(was) != protocol_of(now):
        return protocol_of(was), protocol_of(now)
    return endpoint(was), endpoint(now)


def followers(stored: Mapping[str, str], binds: Mapping[str, str], changed: Iterable[str]) -> dict[str, str]:
    """Changed link -> the configured link that has its old bind now (the first such), for those one
    has. `stored`: name -> bind as last noted; `binds`: name -> bind as configured."""
    by_bind: dict[str, str] = {}
    for name, bind in binds.items():
        by_bind.setdefault(bind, name)
    return {name: by_bind[stored[name]] for name in changed if stored.get(name) in by_bind}


def send_again_at_start(
    store: Store, changed: Mapping[str, tuple[str, str]], followed: Mapping[str, str]
) -> None:
    """Inside a store write, at the start, before any claim: what each changed link's old bind had out
    follows that bind to the link of `followed` that has it; else the long SMS it took part of go
    again whole, and what is left waiting for it is logged."""
    conn = store.db.conn
    # Read before anything moves: a link's old bind may be another changed link's new one.
    following = {
        name: (
            conn.execute(_FOLLOWING, (name, name)).fetchall(),
            conn.execute(_WAITING_ALL, (name,)).fetchone()[0],
            _count(conn, _HALF_SENT_ANY, name),
        )
        for name in changed
        if name in followed
    }
    pinned = {name: [pid for (pid,) in conn.execute(_PINNED, (name,))] for name in following}
    for name, (was_bind, now_bind) in changed.items():
        if name in following:
            continue
        was, now = _said(was_bind, now_bind)
        moved, pinned_here = 0, _count(conn, _PINNED, name)
        for (message_id,) in conn.execute(_HALF_SENT_ANY, (name,)).fetchall():
            # False: a part failed or held. Moved, its parts finished before stay counted under the name.
            if send_whole_again(store, message_id, name, 0.0):
                # Not `longsms.MOVED_NOTE`: the next start would pass the new bind over for it.
                note = NOTE.format(name, was, now)
                conn.execute("UPDATE parts SET error = ? WHERE message_id = ?", (note, message_id))
                moved += 1
        (waiting,) = conn.execute(_WAITING, (name, name)).fetchone()
        if protocol_of(was_bind) == protocol_of(now_bind):
            # Another SMSC under the same protocol: its ids may be the old one's (`gateway.linkendpoint`).
            kept = retire(conn, name, was_bind)
            said = endpoint_consequences(name, was, now, waiting, moved, pinned=pinned_here, kept=kept)
            event = ENDPOINT_EVENT
        else:
            said, event = consequences(name, was, now, waiting, moved, pinned=pinned_here), EVENT
        log.warning(
            event, link=name, was=was, now=now, waiting=waiting, long_sms_sent_again=moved,
            pinned_answers=pinned_here, note=said,
        )  # fmt: skip
    for name, (rows, waiting, long_sms) in following.items():
        _follow(conn, name, followed[name], rows)
        _repin(conn, followed[name], pinned[name])
        note_move(conn, name, followed[name], store.clock())
        was, now = _said(*changed[name])
        endpoint_only = protocol_of(changed[name][0]) == protocol_of(changed[name][1])
        log.warning(
            ENDPOINT_EVENT if endpoint_only else EVENT,
            link=name, was=was, now=now, followed_by=followed[name], waiting=waiting,
            long_sms_following=long_sms, long_sms_sent_again=0, pinned_following=len(pinned[name]),
            note=consequences(name, was, now, waiting, long_sms, followed[name]),
        )  # fmt: skip


def _count(conn: sqlite3.Connection, sql: str, name: str) -> int:
    return len(conn.execute(sql, (name,)).fetchall())


def _follow(conn: sqlite3.Connection, name: str, by: str, rows: list[tuple[int, str]]) -> None:
    """The parts go under the name of the link that has their bind now: its receipts match them
    (`QueueRepo.record_report` looks by link), and the rest of their long SMS waits for it."""
    ids = [pid for pid, _state in rows]
    for at in range(0, len(ids), 500):  # under SQLite's limit of parameters
        chunk = ids[at : at + 500]
        marks = ",".join("?" * len(chunk))
        moving_to(conn, name, by, chunk)  # a part final already stays counted under `name` alone
        conn.execute(f"UPDATE parts SET link = ? WHERE id IN ({marks})", (by, *chunk))


def _repin(conn: sqlite3.Connection, by: str, ids: list[int]) -> None:
    """Pinned to the name, a premium answer left by the new protocol's bind (maybe another operator,
    whose short code is not the premium number): it goes by the bind its vote came by."""
    for at in range(0, len(ids), 500):  # under SQLite's limit of parameters
        chunk = ids[at : at + 500]
        conn.execute(f"UPDATE parts SET via = ? WHERE id IN ({','.join('?' * len(chunk))})", (by, *chunk))


def consequences(
    name: str, was: str, now: str, waiting: int, long_sms: int, by: str | None = None, *, pinned: int = 0
) -> str:
    """What the change does to the work the old bind had out, and what keeps it. `pinned`: the premium
    answers pinned to the name, said when no block keeps the old bind (else they follow it)."""
    old, new = NAMES.get(was, was), NAMES.get(now, now)
    changed = f"link {name} was {old} and is {new} now, another SMSC bind under the same name"
    if not (waiting or long_sms or (pinned and by is None)):
        # Said whole with every count 0, some 900 characters told an admin what nothing would do.
        kept = f"; its {old} bind is link {by}'s now" if by is not None else ""
        return (
            f"{changed}{kept}; its {old} bind had nothing out (no SMS awaiting reports, no long SMS half"
            " sent, no premium answers pinned to it): nothing is lost"
        )
    if by is not None:
        return (
            f"{changed}; its {old} bind is link {by}'s now, and what it had out follows it there:"
            f" the {waiting} SMS it sent over {old} await their reports by {by}, and the {long_sms} long"
            f" SMS it sent part of go on by {by} under their reference (nothing goes again); the premium"
            f" answers to what it received leave by {by} too"
        )
    answers = "answer" if pinned == 1 else "answers"
    return (
        f"{changed}, and no block has its {old} bind: {waiting} SMS it sent over {old} await reports that"
        f" only a session of {old} brings (they end 'unreported' a day after their validity, unless this"
        f" block gets its {old} bind back: the same host, port and login); {long_sms} long SMS it sent"
        f" part of over {old} go again whole under a new reference (their parts sent over {old} too; the"
        f" reports of those no longer count); {pinned} premium {answers} pinned to it that may still"
        f" leave, and those still to come to the votes its {old} bind brought, leave by its {new} bind"
        f" from the premium number, right only if that is the same operator's SMSC. A {new} link in an"
        f" [[smsc]] block of its own, or this block kept as it is under a new name in the same change"
        f" (what its {old} bind has out follows it there), loses none of these"
    )


def stored_changes(cfg: Config) -> list[str]:
    """`check-config`'s lines for the links whose bind is not the one the last start noted (read-only,
    as `gateway.cli.stored` reads the database)."""
    from gateway.cli.stored import read_rows
    from gateway.configbase import link_place
    from gateway.configlinks import bind_key
    from gateway.linkbinds import PREFIX
    from gateway.store.keyvalue import under

    stored = read_rows(cfg.db_path, *under(PREFIX))
    binds = {s.name: "|".join(bind_key(s.type, s.host, s.port, s.system_id)) for s in cfg.smsc}
    changed = changed_protocols(stored, binds)
    followed = followers(dict(stored), binds, changed)
    lines = []
    for name, (was_bind, now_bind) in changed.items():
        if (by := followed.get(name)) is not None:
            ((waiting,),) = read_rows(cfg.db_path, _WAITING_ALL, (name,)) or [(0,)]
            long_sms = len(read_rows(cfg.db_path, _HALF_SENT_ANY, (name,)))
        else:
            ((waiting,),) = read_rows(cfg.db_path, _WAITING, (name, name)) or [(0,)]
            long_sms = len(read_rows(cfg.db_path, _HALF_SENT, (name,)))
        pinned = len(read_rows(cfg.db_path, _PINNED, (name,)))
        was, now = _said(was_bind, now_bind)
        if by is None and protocol_of(was_bind) == protocol_of(now_bind):
            kept = retired_under(name, was_bind, dict(stored).get)
            said = endpoint_consequences(name, was, now, waiting, long_sms, pinned=pinned, kept=kept)
        else:
            said = consequences(name, was, now, waiting, long_sms, by, pinned=pinned)
        lines.append(f"{link_place(name)}: at the next start, {said}")
    return lines
