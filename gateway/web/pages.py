"""The dashboard: what a company admin (their account's day) and the operator (every account's) open
first. The users page is `gateway.web.users`; the form rules the panel's pages share (`Invalid`,
`parse_limit`, `confirmed`, `account_for`) are defined there and imported from here as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acl.limits import period_keys
from gateway import tlsrenewal
from gateway.configlinks import receipt_siblings
from gateway.linkstatus import down_words, links_down
from gateway.premium import confirmation
from gateway.statusfile import read_status
from gateway.store.admin import pinned_waiting
from gateway.store.outboxhealth import STUCK_SECONDS, outbox_health
from gateway.store.queueage import queue_oldest
from gateway.web import premiumgone, users
from gateway.web.attention import Trouble, daemon_troubles, quiet_held_parts
from gateway.web.messages import held_note
from gateway.web.repo import needing_attention, states_since
from gateway.web.security import Who, guarded
from gateway.web.users import Invalid as Invalid
from gateway.web.users import account_for
from gateway.web.users import confirmed as confirmed
from gateway.web.users import parse_limit as parse_limit


def _bar(used: int, limit: int | None) -> dict[str, Any]:
    """A use against its limit; a limit of 0 is a limit (nothing may be sent), not "no limit"."""
    if limit is None:
        return {"used": used, "limit": None, "max": 1, "value": 0, "over": False}
    # A meter cannot have max 0: a zero limit shows as a full bar.
    return {
        "used": used,
        "limit": limit,
        "max": max(limit, 1),
        "value": min(used, limit) if limit else 1,
        "over": used >= limit,
    }


@dataclass(frozen=True, slots=True)
class AccountUse:
    """One account's line on the operator's dashboard: its use of the month against its limit."""

    name: str
    users: int
    bar: dict[str, Any]
    suspended_at: float | None
    suspended_reason: str | None


def account_totals(conn: sqlite3.Connection, month: str) -> list[AccountUse]:
    """Every account's use of `month`, for the operator: one read, on the panel's reader thread.

    The operator's dashboard listed every user of every account, each with a usage query of its own
    on the loop: at 6,000 users 671 KB of HTML and half a second of the loop per load. An account's
    users are on its own page (`/?account=NAME`)."""
    rows = conn.execute(
        "SELECT a.name, COALESCE(n.users, 0), COALESCE(g.parts, 0), a.monthly_limit, a.suspended_at,"
        " a.suspended_reason FROM accounts a"
        " LEFT JOIN (SELECT account_id, COUNT(*) AS users FROM users GROUP BY account_id) n"
        " ON n.account_id = a.id"
        " LEFT JOIN usage g ON g.scope = 'account:' || a.id AND g.period = ?"
        " ORDER BY a.name",
        (month,),
    ).fetchall()
    return [AccountUse(name, users, _bar(used, limit), at, why) for name, users, used, limit, at, why in rows]


SHOWN = 50  # users an account's dashboard lists; every one is on the users page, which pages


@dataclass(frozen=True, slots=True)
class AccountUsers:
    """An account's use of the month and its users with the most, for its own dashboard."""

    bar: dict[str, Any]
    users: list[tuple[str, dict[str, Any]]]  # at most SHOWN: those at their limit, then by use
    total: int  # the account's users
    reached: int  # of them, those at their limit (their mail refused until the month ends)


def users_use(
    conn: sqlite3.Connection, account_id: int, limit: int | None, month: str, shown: int = SHOWN
) -> AccountUsers:
    """An account's use of `month` and its users' (a user's limit, or else the account's): those
    whose mail the limit stops first, then the most used, `shown` of them.

    The page listed every user by address: an account of 3,000 users made a page of 554 KB (11 KB now),
    rendered on the loop, whose users near their limits were somewhere in the middle. The users
    page has all of them, a page at a time, with a filter."""
    row = conn.execute(
        "SELECT parts FROM usage WHERE scope = ? AND period = ?", (f"account:{account_id}", month)
    ).fetchone()
    # Each user's use and whether it reached the limit that applies (0 without one), read once.
    used = (
        "SELECT u.email, u.monthly_limit AS own, COALESCE(g.parts, 0) AS parts,"
        " IFNULL(COALESCE(g.parts, 0) >= COALESCE(u.monthly_limit, ?), 0) AS reached FROM users u"
        " LEFT JOIN usage g ON g.scope = 'user:' || u.id AND g.period = ? WHERE u.account_id = ?"
    )
    args = (limit, month, account_id)
    users = conn.execute(
        f"SELECT email, own, parts FROM ({used}) ORDER BY reached DESC, parts DESC, email LIMIT ?",
        (*args, shown),
    ).fetchall()
    counts = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(reached), 0) FROM ({used})", args)
    total, reached = counts.fetchone()
    return AccountUsers(
        _bar(row[0] if row else 0, limit),
        [(email, _bar(parts, own if own is not None else limit)) for email, own, parts in users],
        total,
        reached,
    )


@guarded()
async def dashboard(request: Request, who: Who) -> Response:
    """The operator's overview: the installation's day, every account's total and the links. An
    account's own page (a company admin's, or `?account=NAME` for the operator) has its users."""
    web = request.app.state.web
    # The month the limits count in: the same period key, in the installation's zone.
    now = datetime.fromtimestamp(web.store.clock(), web.tz)
    month = period_keys(now)["monthly"]
    name = request.query_params.get("account")
    overview = who.operator and not name
    totals: list[AccountUse] = []
    usage = []
    scope: int | None
    if overview:
        scope = None
        totals = await web.counts.run(lambda conn: account_totals(conn, month))
    else:
        acc = account_for(request, who, name)
        scope = acc.id
        own = await web.counts.run(lambda conn: users_use(conn, acc.id, acc.monthly_limit, month))
        usage.append((acc, own))
    # Local midnight, made from the date so that a day of 23 or 25 hours starts where it should.
    midnight = datetime(now.year, now.month, now.day, tzinfo=web.tz).timestamp()
    at = now.timestamp()
    links = web.links() if overview else {}
    when = web.env.filters["when"]
    troubles: list[Trouble] = []
    if overview:
        # The file is small, but a read is a disk's wait: off the loop, like the counts.
        status = await asyncio.to_thread(read_status, web.config.state_dir)
        oldest_due = await web.counts.run(lambda conn: queue_oldest(conn, at))
        troubles = daemon_troubles(web, status, at, oldest_due)
    pinned, held = None, 0
    configured = list(web.config.premium.tariffs)
    if any(link.get("state") != "active" for link in links.values()):
        # Only with a link down, as /healthz: the count reads every waiting part, on the reader thread.
        pinned, held = await web.counts.run(lambda conn: (pinned_waiting(conn), quiet_held_parts(conn, at)))
    ctx = {
        "who": who,
        "month": month,
        "overview": overview,
        "totals": totals,
        "usage": usage,
        "today": await web.counts.run(lambda conn: states_since(conn, scope, midnight)),
        # Off the loop too: with held messages of other accounts about, a company admin's list
        # still walks some of them.
        "attention": await web.counts.run(lambda conn: needing_attention(conn, scope, now=at)),
        # Premium services keeping paid SMS for over a day for want of a confirmation.
        "unconfirmed": await web.counts.run(
            lambda conn: confirmation.attention(conn, scope, at, web.env.filters["when"], who.operator)
        ),
        # Services bound to numbers [premium] no longer has: their votes go to the fallback address.
        "premium_gone": await web.counts.run(
            lambda conn: premiumgone.attention(conn, scope, configured, who.operator)
        ),
        "held": held_note(web.tz, web.store.clock),
        "links": links,
        # Since when each link not up is down: the last error's time moves with each retry.
        "down": {
            name: down_words(link["down_since"], at, when)
            for name, link in links.items()
            if link.get("down_since") is not None and link.get("state") != "active"
        },
        # Links down over a minute, and what waits for them: only /healthz and `status` said so.
        "links_down": links_down(
            links, web.config.routes(), at, when, pinned, receipt_siblings(web.config.smsc), held
        ),
        # The relay is the operator's: the answers and bounces of every account wait for it.
        "outbox": await web.counts.run(lambda conn: outbox_health(conn, at)) if overview else None,
        "outbox_stuck": STUCK_SECONDS,
        # A certificate past or near its end, or one a verifying mail server refuses (gateway.tlsdoubts).
        "certificates": [d for c in tlsrenewal.report().values() for d in c["doubts"]] if overview else [],
        # The store, the disk, the workers and the queue: what `smsgw status` exits 1 for.
        "troubles": troubles,
        "now": at,
    }
    return web.render(request, "dashboard.html", ctx)


ROUTES = [
    Route("/", dashboard, methods=["GET"]),
    *users.ROUTES,
]
