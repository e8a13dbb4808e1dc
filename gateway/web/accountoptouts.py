"""The account page's opt-out list and its form: the shared list, and the account's own entries.

The shared list (the phone's STOP, the operator's entries, and company admins' entries made before
migration 59, which were added as shared ones) stops every account's SMS to a number. What a company
admin adds is their account's own: it stops only that account's SMS. On the shared list, acme's admin
who had sent beta's customer one SMS could stop beta's SMS to it for good (the phone's START leaves
an admin's entry, and only the operator could remove it). The company admin removes their own
entries; the shared list's are the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from gateway.adminrules import SQLITE_INT_MAX
from gateway.store.adminstops import tell_dispatcher
from gateway.store.policy import LISTED, MADE_ADMINS
from gateway.web.formtext import text
from gateway.web.pages import Invalid, account_for, confirmed
from gateway.web.repo import OPTOUT_PAGE, optouts_page
from gateway.web.security import Forbidden, Who, after_post, guarded

OWN = "this account's admin"  # the "by" of an account's own entry on its page


@dataclass(frozen=True, slots=True)
class OptoutView:
    """One page of the opt-out list as the account page shows it."""

    rows: list[dict[str, Any]]
    older: int | None  # `optouts_before` of the next page, None on the last
    find: str  # the number looked up, as typed
    paged: bool  # not the first page: offer the way back


def parse_before(value: str) -> int | None:
    """A page's position: the account's own entries come first, by their id negated (-12: those
    older than own entry 12, then the whole shared list), then the shared list's by its rowid."""
    if not value:
        return None
    digits = value[1:] if value.startswith("-") else value
    # Bounded before int(), which raises past 4,300 digits (19 digits hold any id), as messages.py does.
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 19) or int(digits) > SQLITE_INT_MAX:
        raise Invalid(f"optouts_before: {value[:40]!r} is not a position in the opt-out list")
    return int(value)


def own_entries(
    conn: Any, account_id: int, *, before: int | None, number: str | None, limit: int
) -> list[dict[str, Any]]:
    """The account's own opt-outs, newest first, by index account_optouts_page (one range)."""
    sql = (
        "SELECT -id AS id, number, NULL AS word, ? AS source, created_at, 1 AS own"
        " FROM account_optouts WHERE account_id = ?"
    )
    args: list[Any] = [OWN, account_id]
    if before is not None:
        sql += " AND id < ?"
        args.append(before)
    if number is not None:
        sql += " AND number = ?"
        args.append(number)
    cur = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


def optouts_list(
    conn: Any, scope: int | None, account_id: int, *, before: int | None, number: str | None, limit: int
) -> list[dict[str, Any]]:
    """The account's own entries, then the shared list's (all of it for the operator, `scope`
    None; for a company admin the numbers its account writes to), from position `before`."""
    rows: list[dict[str, Any]] = []
    if before is None or before < 0:
        own = None if before is None else -before
        rows = own_entries(conn, account_id, before=own, number=number, limit=limit)
    if len(rows) < limit:
        shared = before if before is not None and before > 0 else None
        rows += optouts_page(conn, scope, before=shared, number=number, limit=limit - len(rows))
    return rows


async def optouts_view(request: Request, who: Who, account: Any, before: int | None) -> OptoutView:
    """The operator's page lists every shared opt-out, an admin's those of their account; both with
    the account's own. A page at a time (3,000 opt-outs were 1.5 MB of HTML) and on the reader's
    thread, as the message search."""
    from gateway.smtp.addressing import BadNumber, to_e164

    web = request.app.state.web
    find = (request.query_params.get("optout") or "").strip()
    number: str | None = None
    if find:
        try:
            number = to_e164(find, web.config.gateway.default_region)
        except BadNumber:
            number = find  # looked up as typed: it finds nothing rather than failing
    scope, account_id = who.scope, account.id

    def page(conn: Any) -> list[dict[str, Any]]:
        return optouts_list(conn, scope, account_id, before=before, number=number, limit=OPTOUT_PAGE + 1)

    rows = await web.counts.run(page)
    older = rows[OPTOUT_PAGE - 1]["id"] if len(rows) > OPTOUT_PAGE else None
    return OptoutView(rows[:OPTOUT_PAGE], older, find, before is not None)


@guarded()
async def change_optout(request: Request, who: Who, form: FormData) -> Response:
    from gateway.smtp.addressing import BadNumber, to_e164
    from gateway.web.account import _page  # it imports this module

    web = request.app.state.web
    raw = text(form, "number")
    try:
        number = to_e164(raw, web.config.gateway.default_region)
    except BadNumber as exc:
        error = f"{raw!r} is not a phone number: {exc}"
        if text(form, "action") == "remove":  # a row's hidden number, altered: the whole form's fault
            return await _page(request, who, error=error, status=400)
        return await _page(request, who, error=error, status=400, number=raw, bad=("optout_number",))
    policy = web.store.policy
    # The account whose page it was (the operator's too): its own entries are filed under it.
    acc = account_for(request, who, request.query_params.get("account"))
    if text(form, "action") == "remove":
        # The account's own entry by its unique index: `optout_by` also read the shared list, whole
        # into the settings cache after each settings change (100,000 numbers on the loop, 50-90 ms).
        mine = own_entries(web.store.db.conn, acc.id, before=None, number=number, limit=1)
        if not who.operator and not mine:
            raise Forbidden(
                "only the operator takes a number off the shared opt-out list; this account's admin"
                " removes this account's own entries"
            )
        try:
            confirmed(form, f"take {number} off the opt-out list")
        except Invalid as exc:
            return await _page(
                request, who, error=str(exc), status=400, removing=number, bad=("optout_confirm",)
            )
        if not who.operator:
            await web.change(
                who,
                acc.id,
                "optout.remove",
                number,
                lambda: policy.remove_account_optout(acc.id, number),
                changed=bool,
            )
            return after_post(request, who, f"{number} removed from this account's opt-out list", "/account")

        def both() -> tuple[bool, bool]:
            return policy.remove_optout(number), policy.remove_account_optout(acc.id, number)

        shared, own = await web.change(who, acc.id, "optout.remove", number, both, changed=any)
        done = (
            f"{number} removed from the opt-out list"
            if shared or own
            else f"{number} is not on the opt-out list"
        )
        return after_post(request, who, done, "/account")
    if who.operator:  # the operator's entry is the shared list's: every account's SMS stop
        added = await web.change(
            who,
            acc.id,
            "optout.add",
            number,
            lambda: policy.add_optout(number, word=None, source="admin"),
            # A number listed already is no change of this account's: with an audit row it would
            # show in this account's list (word and time of another account's customer's STOP).
            # One the phone's STOP listed becomes the admin's, so that its START leaves it: a change.
            changed=lambda done: done != LISTED,
        )
        done = f"{number} is on the opt-out list"
        if added == MADE_ADMINS:
            done = (
                f"{number} was on the opt-out list by the phone's STOP; now kept as the admin's:"
                " START will not remove it"
            )
        return after_post(request, who, done, "/account")
    if not web.repo.wrote_to(acc.id, number):
        # The account's list holds its own customers: what a company admin adds says nothing of
        # any other account's, nor whether a number said STOP.
        error = (
            f"{number} has had no SMS from this account: only the operator adds other numbers"
            " (to the opt-out list shared by every account)"
        )
        return await _page(request, who, error=error, status=403, number=raw, bad=("optout_number",))

    # Only this account's SMS stop (the phone's START leaves it, as it leaves any admin's entry).
    def add_own() -> bool:
        added = policy.add_account_optout(acc.id, number)
        if added:  # its SMS the dispatcher has claimed stop too, as the shared list's (no trigger here)
            tell_dispatcher(web.store.db.conn)
        return added

    await web.change(who, acc.id, "optout.add", number, add_own, changed=bool)
    # One answer whether or not it was listed (on the shared list or this account's).
    return after_post(request, who, f"{number} is on the opt-out list", "/account")
