"""An answer that came while an SMS to its phone from the same number waits for the SMSC's answer to
its submit: matched once that submit is answered or ends.

SMSCs answer a submit seconds late now and then, and the phone's answer to the SMS may overtake that
answer (as a delivery receipt may). Matched at once, the SMS did not count as sent, and the answer
went to whoever texted the phone before, of whatever company, quoting their SMS and on their bill.
Counted as sent at once, an SMS the SMSC then refused (or a throttle handed back) would take it.

So the MO is kept `waiting` (the SMS it waits for in `answered_message_id`, the handling's note in
`note`), in the write that stored it: a crash loses nothing, and the first look after the start
handles it, once. The housekeeping looks each turn (`resume_due`) and matches it once that SMS's
submit was answered or ended, or once it waited as long as that submit can stay unanswered
(`wait_seconds`, from when the answer came, or from the last submit of a part that waits to go again):
taken by the SMSC, the SMS counts as sent when the answer came (it was handed to the link before);
refused, expired or still unanswered, as not sent. Only while one may wait is the table read: the
common answer costs no statement for this.
"""

from __future__ import annotations

from functools import partial

import structlog

from gateway import handoffs, optoutwords
from gateway.config import Config
from gateway.conversations import inflight
from gateway.conversations.numbers import stored_phone
from gateway.store.commit import store_trouble
from gateway.store.db import Store
from gateway.store.trouble import store_locked

log = structlog.get_logger(__name__)

WAITING = "waiting"
# Whether an MO may be waiting in a database (by its path) in this process: at the start (one a crash
# left), and after one was kept. The housekeeping reads the table only then, not every turn.
_settled: set[str] = set()


def wait_seconds(cfg: Config) -> float:
    """How long an answer waits at most: a submit's time-out, its wait for a late answer, and the time-out
    of the re-send that follows that wait, the longest of the links'. Past that the SMS is not known to
    have gone (nor may it ever): the answer is matched as if it never went."""
    return max(
        (2 * link.response_timeout_seconds + link.late_answer_grace_seconds for link in cfg.smsc),
        default=0.0,
    )


def keep(store: Store, mo_id: int, message_id: int, note: str | None) -> str:
    """Inside the MO's write: the MO waits for the submit of SMS `message_id`, with its note."""
    store.db.conn.execute(
        "UPDATE mo SET state = ?, note = ?, answered_message_id = ? WHERE id = ?",
        (WAITING, note, message_id, mo_id),
    )
    look_again(store)
    # Once committed: said before, a write whose COMMIT failed (a full disk) and was tried again logged it
    # at each try, for an MO the database never held as waiting.
    store.db.after_commit(partial(log.info, "mo.waiting", mo=mo_id, message=message_id))
    return WAITING


def resume_due(store: Store, cfg: Config) -> int:
    """Inside a write: each waiting MO whose SMS's submit was answered or ended, or that waited its
    longest, handled as it would have been when it came; how many. Each alone: one whose handling
    fails is kept `failed` with the error, as `GatewayEvents.whole_mo` keeps one."""
    if not may_wait(store):
        return 0
    from gateway.conversations.handlers import on_whole_mo

    conn = store.db.conn
    rows = conn.execute(
        "SELECT id, received_at, answered_message_id, note, source, text FROM mo WHERE state = ?", (WAITING,)
    ).fetchall()
    now, wait = store.clock(), wait_seconds(cfg)
    handed = handoffs.of(str(store.db.path))
    words = {optoutwords.plain(w) for w in cfg.gateway.optout_words}
    done = 0
    for mo_id, received_at, message_id, note, source, text in rows:
        # Whether the SMS waited for still has a part whose submit is unanswered: one claimed, or one
        # that waits to go again within the wait of its last submit (claimed before migration 69: of
        # when the answer came). Past that it waits behind its link down, and nothing the wait could
        # learn says whether the phone got it: the answer goes to the SMS the phone is known to have
        # got, as `reached.unanswered` takes an answer that comes then.
        if received_at > now - wait and (
            inflight.may_have_since(
                conn, message_id, now, wait, handed, claimed_unknown=received_at, claimed_ahead=True
            )
            is not None
        ):
            continue
        # An opt-out word was acted on when it came; its mail says so now (a copy delivered again
        # never waits: it is settled `duplicate` before).
        phone = stored_phone(source, cfg.gateway.default_region) is not None
        optout = phone and optoutwords.form(text) in words
        try:
            with store.db.savepoint():
                on_whole_mo(store, cfg, mo_id, optout=optout, note=note, earlier=None, awaited=message_id)
        except Exception as exc:
            if not conn.in_transaction or store_trouble(exc):
                raise
            log.exception("mo.handling_failed", mo=mo_id)
            store.mo.mark_failed(mo_id, f"internal error: {exc!r}"[:500])
        done += 1
    if len(rows) == done:
        _settled.add(str(store.db.path))
    return done


async def resume(store: Store, cfg: Config) -> int:
    """`resume_due` in a write of its own; none while no MO may wait. A failure is logged and looked
    at again the next time: it must not stop the housekeeping (another process locking the database
    is the housekeeping's to say)."""
    if not may_wait(store):
        return 0
    try:
        return await store.write(lambda: resume_due(store, cfg))
    except Exception as exc:
        look_again(store)
        if store_locked(exc):  # the housekeeping says so, once a minute
            raise
        log.exception("mo.resume_failed")
        return 0


def may_wait(store: Store) -> bool:
    """Whether an MO may be waiting: not once a look found none, until one is kept again."""
    return str(store.db.path) not in _settled


def look_again(store: Store) -> None:
    """The next `resume_due` reads the table: an MO was kept, or the write that resumed some failed."""
    _settled.discard(str(store.db.path))
