"""What an earlier run left unfinished goes back to work, so that nothing waits for a human or a restart.

At the daemon's start, before any link or listener exists: a restore cut off is cleaned up, and the
parts and mails caught `active` by a crash or a stop go back to the queue (each sent again as a
possible duplicate), so that the queue is consistent when the first SMS goes out. Before a crashed
dispatcher restarts: the parts its run claimed and never handed to a link (`requeue_orphans`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import structlog

from gateway import answerjournal
from gateway.config import Config
from gateway.linkendpoint import is_retired
from gateway.logsink import written_at_once
from gateway.longsms import MOVABLE  # the part states a long SMS goes again whole from
from gateway.notifier import Notifier
from gateway.startprogress import StartProgress
from gateway.store import restoretmp
from gateway.store.db import Store
from gateway.store.queue import RECOVERED_LOGGED

if TYPE_CHECKING:
    from gateway.dispatcher import Dispatcher

log = structlog.get_logger(__name__)


def open_recovered(cfg: Config, clock: Callable[[], float], zone: ZoneInfo) -> Store:
    """The daemon's store, opened (checked, migrated) with what the last run left `active` queued again."""
    for left, pid, size in restoretmp.remove_unfinished(cfg.db_path):  # each as large as a backup
        log.warning("restore.leftover_removed", path=str(left), pid=pid, bytes=size)
    # Its check reads the whole file, and an upgrade migrates it: systemd is told and keeps
    # extending the start while they go on, the commands read what it does (StartProgress), and
    # each line is in the log when logged, not when the loop first turns.
    start = StartProgress(cfg.db_path, cfg.state_dir)
    try:
        with written_at_once():
            store = Store.open(cfg.db_path, clock=clock, group_fsync=True, zone=zone, progress=start)
    except BaseException:
        start.done()
        raise
    start.opened()
    # Before the requeue: an SMS the SMSC took, whose acceptance the last stop could not write, is not
    # sent again (`gateway.answerjournal`); its sender told in the same transaction, if it ends it.
    answerjournal.apply(store, Notifier(store, cfg))
    recovered = store.queue.recover_active()
    if recovered:
        log.warning(
            "queue.recovered",
            parts=len(recovered),
            ids=recovered[:RECOVERED_LOGGED],
            note="claimed by a link when the daemon stopped (up to two windows ahead of what was on"
            f" the wire): each goes again as a possible duplicate; ids: the first {RECOVERED_LOGGED}",
        )
    if mails := store.outbox.recover_mail():
        # Cut off during their send: each is logged as a possible duplicate when it goes again.
        log.warning("outbox.recovered", mails=mails, note="possible duplicates: the relay may have them")
    gone = store.queue.gone_links_waiting({s.name for s in cfg.smsc})
    if old := {name: n for name, n in gone.items() if is_retired(name)}:
        # Not a renamed link's: matched on no link until a block has their bind again (`gateway.linkbinds`).
        log.warning(
            "dlr.old_endpoints_waiting",
            waiting=old,
            note="SMS an SMSC took before its block was pointed at another one await that SMSC's receipts"
            " under NAME@LOGIN@HOST:PORT: matched once a block has that bind again (the same type, host, port"
            " and login), else they end 'unreported' a day after their validity",
        )
    if gone := {name: n for name, n in gone.items() if name not in old}:
        # A link renamed: the reports of what it sent come by another name now. A link removed for
        # good: no link reaches its SMSC, and its SMS wait for reports that cannot come.
        moving = moving_long_sms(store, set(gone))
        waiting = {link: n - moving.get(link, 0) for link, n in gone.items() if n > moving.get(link, 0)}
        log.warning(
            "dlr.links_gone",
            waiting=waiting,
            **({"long_sms_sent_again": moving} if moving else {}),
            note=(
                "SMS sent by links no longer configured await their reports: a renamed link's come by"
                " its new name and are matched on any link now; a link removed for good leaves them"
                " 'submitted' until they expire as sent with no report (keep it configured until they"
                " are in)"
                if waiting
                else "no SMS sent by links no longer configured awaits its report"
            )
            + (
                "; long_sms_sent_again: parts of long SMS whose other parts are still to send: the rest of"
                " each goes on by the link's new name where it was renamed (the same SMSC bind); else,"
                " after 2 minutes, the whole SMS goes again by another link for its number"
                " (mt.long_sms_moved), and these parts' reports no longer count"
                if moving
                else ""
            ),
        )
    store.queue.gone_links = (*gone, *old)  # old endpoints too: `linkbinds` keeps those a block has again
    return store


async def requeue_orphans(store: Store, dispatcher: Dispatcher) -> None:
    """Before the dispatcher restarts: parts its crashed run claimed but never handed to a link.

    Once every submit still in flight has been answered and every answer is on disk, a part
    left `active` belongs to no one and would wait for the next daemon start; it goes back to
    the queue now instead. An answer whose write the store refused is retried after a pause
    (the same trouble may be what crashed the dispatcher): requeued before that, an SMS the
    SMSC had taken went out again.

    Such a part was claimed ahead, or taken back by a write that failed (an admin's stop, a
    long SMS moved): no SMSC had it in this run. It goes back as the dispatcher's stop puts
    such parts back, its attempt undone and its note kept. Noted as recovered (possibly sent),
    a suspension no longer held it, and its send was a false possible duplicate. Only a part
    handed to its link whose answer and hold were both refused (`mt.hold_failed`) may be at
    the SMSC: that one is noted as recovered, its attempt counted.
    """
    while dispatcher.answers_unwritten or any(p.in_flight for p in dispatcher.pacers.values()):
        await asyncio.sleep(0.05)
    handed = dispatcher.handed_unwritten()
    requeued, recovered = await store.write(lambda: store.queue.requeue_crashed(handed))
    handed.clear()  # none is `active` any more
    if requeued:
        log.warning("dispatcher.requeued", parts=len(requeued), ids=requeued[:RECOVERED_LOGGED])
    if recovered:
        log.warning(
            "dispatcher.recovered",
            parts=len(recovered),
            ids=recovered[:RECOVERED_LOGGED],
            note="handed to a link, neither the answer nor a hold could be written: each goes again as a"
            " possible duplicate",
        )


def moving_long_sms(store: Store, gone: set[str]) -> dict[str, int]:
    """Parts, by link, that a gone link took of long SMS with parts still to send: no report of them
    is waited for, as the whole SMS goes again by another link (`gateway.longsms`, after 2 minutes
    for a link no longer configured, unless it was renamed: then its rest goes on by the new name).
    `dlr.links_gone` said that they stayed 'submitted' until they expired."""
    rows = store.db.conn.execute(
        "SELECT p.link, COUNT(*) FROM parts p JOIN messages m ON m.id = p.message_id"
        " WHERE p.state = 'submitted' AND p.udh IS NOT NULL AND m.concat_ref IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id"
        " AND q.state IN ('queued', 'deferred', 'active'))"
        " AND NOT EXISTS (SELECT 1 FROM parts q WHERE q.message_id = p.message_id"
        f" AND q.state NOT IN ({', '.join('?' for _ in MOVABLE)}))"
        " GROUP BY p.link",
        tuple(MOVABLE),
    ).fetchall()
    return {link: n for link, n in rows if link in gone}
