"""The parts of a long answer that came after its first ones were mailed without them (R-3.4).

They are the rest of the same SMS: they go on in the first parts' thread, quoting what those
answered, on the account those were billed to, whoever texted the phone since. Found by the
conversation row as it is now, the rest followed the user's newer SMS: threaded under it and quoting
it, billed to the account the user had moved to, mailed to the address's new holder. When the first
parts' user is gone since, the rest goes where an answer to their SMS goes then (`Orphan`), unless
they are kept (the hourly limit): the rest is then kept with them, and their mail takes both. When
no user got the first parts (the fallback address, an account's inbound address, kept or recorded
with no conversation), the rest is matched as they were, as of when they came (`Unfollowed`):
matched as of its own time, it went to whoever texted the phone since, such as the address's new
holder after the first parts went to the fallback because their user was gone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import structlog

from gateway.config import Config
from gateway.conversations import reached
from gateway.conversations.keptrepo import kept_note
from gateway.conversations.replymail import mail_user
from gateway.conversations.repo import ConversationsRepo
from gateway.conversations.rows import C_COLUMNS, C_SINCE, Conversation, Mo
from gateway.reassembly import TIMEOUT_SECONDS, late_note
from gateway.store.db import Store
from gateway.store.moparts import Earlier

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Limited:
    """How the hourly limit holds a late rest that goes on as an answer (`Orphan`, `Unfollowed`), as
    it holds one that follows its first parts (`follow`): kept while they are kept (`kept_with`, their
    MO), else the first rest counted with them and mailed past the limit (`counted` False)."""

    kept_with: int | None
    counted: bool


@dataclass(frozen=True, slots=True)
class Orphan:
    """A late rest whose first parts' user may no longer have their answers (`ConversationsRepo.gone`):
    it goes where an answer to the SMS they answered goes then, billed to that SMS's account."""

    answered: Conversation
    why: str
    note: str  # what its mail says above it: which SMS it completes
    limited: Limited


@dataclass(frozen=True, slots=True)
class Unfollowed:
    """A late rest whose first parts no user got, or whose conversation is no longer kept: matched
    as an answer as of when the first parts came (`at`), as they were."""

    at: float
    note: str  # what its mail says above it: which SMS it completes
    limited: Limited


def answer_at(mo: Mo) -> float:
    """When the phone sent the answer `mo`, as its match judges it: when its first part came. A long
    answer is stored when joined (by the timeout, or after a restart); one stored before its parts'
    time was kept is taken as of the timeout before its join."""
    if mo.parts_at is not None:
        return mo.parts_at
    return mo.received_at - (TIMEOUT_SECONDS if (mo.concat_total or 0) > 1 else 0.0)


def follow(
    store: Store, cfg: Config, mo: Mo, phone: str | None, number: str, own: str | None = None
) -> str | Orphan | Unfollowed | None:
    """The state of a late rest settled here (mailed or kept, as its first parts were); an `Orphan`
    when their user is gone; `Unfollowed` when no user got them; None when `mo` is no late rest
    (then the usual rules apply, as to any answer). `number`: ours the phone wrote to, as stored.
    `own`: the caller's note of the rest itself (an alphabet not supported, a START), said after
    which SMS it completes: left out, the user's mail lost what the README promises on every one.

    The first late rest is no further answer: the hourly limit counted the SMS once, with its first
    parts (`ConversationsRepo.mailed_from`). Kept (`throttled`) when those were kept too, so that
    the user never gets the end without the start. A further late rest of the same SMS is a mail of
    its own, counted and kept like an answer when the phone is at the limit: parts that each came a
    timeout after the last were each mailed, past any limit. A rest that goes on as an answer
    (`Orphan`, `Unfollowed`) is held alike (`Limited`): counted again as an answer of its own, it
    was kept for an hour and mailed apart when its first parts were the phone's last answer allowed
    that hour, and went before its first parts when those were kept.
    """
    earlier = store.mo.followed(mo.id)
    if earlier is None:
        return None
    said = late_note(earlier.parts_at or earlier.received_at, ZoneInfo(cfg.gateway.timezone))
    # What the rest's mail or kept row says: an `Orphan` or `Unfollowed` has the caller add `own`.
    note = ". ".join(n for n in (said, own) if n)
    # Its first whole text is a long SMS's: stored before its parts' time was kept, as of the timeout.
    at = earlier.parts_at if earlier.parts_at is not None else earlier.received_at - TIMEOUT_SECONDS
    r = ConversationsRepo(store.db, store.clock)
    limit = cfg.replies.mails_per_phone_per_hour
    further = bool(limit) and r.rests_mailed(mo.source, earlier.id, earlier.received_at) > 0
    limited = Limited(earlier.id if earlier.state == "throttled" else None, further)
    if phone is None:  # mailed to no user
        return Unfollowed(at, said, limited)
    conv = as_answered(r, cfg, earlier.id, at, phone, number)
    if conv is None:  # its conversation gone
        return Unfollowed(at, said, limited)
    if limited.kept_with is not None:
        # Kept in its first parts' conversation, even with its user gone since: the kept answers'
        # mail takes both halves where a gone user's go (kept as an orphan, with no conversation, the
        # rest went in a mail of its own saying no conversation took it).
        r.settle_mo(
            mo.id, "throttled", conv, kept_note(f"the late part of MO {earlier.id}, kept with it", note)
        )
        log.warning("mo.throttled", mo=mo.id, follows=earlier.id)  # the phone: `smsgw mo list`
        return "throttled"
    if (why := r.gone(conv)) is not None:
        return Orphan(conv, why, said, limited)
    if further and r.mailed_from(phone, store.clock() - 3600)[0] >= limit:
        reason = f"the late part of MO {earlier.id}; more than {limit} answers from {phone} within an hour:"
        r.settle_mo(mo.id, "throttled", conv, kept_note(f"{reason} kept here, not mailed", note))
        log.warning("mo.throttled", mo=mo.id, limit=limit, follows=earlier.id)
        return "throttled"
    mail_user(store, cfg, conv, mo.text, note, mo.id)
    r.settle_mo(mo.id, "mailed", conv, ". ".join(n for n in (f"the late part of MO {earlier.id}", own) if n))
    log.info("mo.mailed", mo=mo.id, conversation=conv.id, to=conv.user_email, follows=earlier.id)
    return "mailed"


def as_answered(
    r: ConversationsRepo, cfg: Config, mo_id: int, at: float, phone: str, number: str
) -> Conversation | None:
    """The conversation as the mail of the answer `mo_id`, sent by the phone at `at`, showed it
    (`ConversationsRepo.match` as it came): the user's latest SMS from `number` to reach the phone
    before then, quoted, on its mail's account and of its user (`reached.quoting`). When those SMS
    are not known any more (purged), the row on the account the answer was billed to. None when the
    conversation is no longer kept, or its id has been given to another's since (another phone's,
    or an SMS found of another account than the one the answer was billed to)."""
    # The conversation, the account the answer was billed to and the window's start, in one read.
    found = r.conn.execute(
        f"SELECT {C_COLUMNS}, m.account_id, {C_SINCE} FROM mo m JOIN conversations c"
        " ON c.id = m.conversation_id WHERE m.id = ?",
        (at, cfg.replies.window_seconds, mo_id),
    ).fetchone()
    if found is None or found[1] != phone:
        return None
    *columns, billed, since = found
    row = Conversation(*columns)
    conv = replace(row, number=number, account_id=billed)
    scan = reached.messages_to(r.conn, phone, since - reached.HOLD_SECONDS, at, [row.user_email])
    last = reached.last_reached(conv, since, scan, cfg.gateway.default_region)
    if not isinstance(last, reached.Sent):
        return conv
    if billed is not None and last.account_id != billed:
        return None
    return reached.quoting(conv, last)


def mailed_before(store: Store, mo_id: int, source: str, earlier: Earlier) -> set[int]:
    """The parts of its SMS the texts before the late rest `mo_id` held: its first whole text's (`earlier`)
    and those of its late rests before this one. The rest's gap markers stand for those too, which its
    note says (`late_note`); a part in none of them never came, and its mail says so. Found by the
    phone's MOs by time (`mo_phone_times`, `id > 0`), as `ConversationsRepo.rests_mailed` finds them."""
    rests = store.db.conn.execute(
        "SELECT id FROM mo WHERE source = ? AND received_at >= ? AND follows = ? AND id < ? AND id > 0",
        (source, earlier.received_at, earlier.id, mo_id),
    )
    held: set[int] = set()
    for i in [earlier.id, *(r[0] for r in rests)]:
        if (found := store.mo.held(i)) is not None:
            held |= found[1]
    return held
