"""A user's limits form on the users page, saved only where it changed (the account form's rule).

The form wrote both limits back whatever had happened since the page was loaded: another admin's
monthly limit of 500, set while this page stood open, was taken away again by a save of the daily
limit alone, answered "user updated". Each limits form now carries the stamp of the values it
showed (gateway/web/staleform.py); a field submitted as shown is not written, and one this form
changed that someone else changed meanwhile refuses the save (409), naming it with its value now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from starlette.datastructures import FormData

from gateway.adminrules import limits_note
from gateway.store.accounts import NotFound, User
from gateway.web.formtext import text
from gateway.web.pages import Invalid, parse_limit
from gateway.web.security import Who
from gateway.web.staleform import STAMP, Edit, compare, conflict_message, merged, read_stamp, stamp

NAMES = ("monthly_limit", "daily_limit")
log = structlog.get_logger(__name__)

AUDIT = {"monthly_limit": "monthly", "daily_limit": "daily"}  # the trail's words, as it had them


class StaleLimits(Exception):
    """A limit this form changed was changed by someone else since it was loaded: nothing saved.
    `form` is the row to show again: the user's input where they typed, the limits now elsewhere,
    with the stamp of the limits now, so that saving it again is a choice made seeing both. `fields`:
    the limits changed on both sides, which the page marks as at fault (the account form's rule)."""

    def __init__(self, message: str, form: dict[str, str], fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.form = form
        self.fields = fields


def shown(user: User) -> dict[str, str]:
    """The limits as the form's fields hold them: empty for none."""
    return {n: "" if getattr(user, n) is None else str(getattr(user, n)) for n in NAMES}


def limits_stamp(user: User) -> str:
    return stamp(shown(user), NAMES)


def _said(values: Mapping[str, str]) -> dict[str, str]:
    """An empty limit is "none" in the message, as the form's placeholder says it."""
    return {n: v or "none" for n, v in values.items()}


async def save_limits(web: Any, who: Who, user: User, form: FormData) -> str:
    """Write the limits this form changed; what to tell the admin, or StaleLimits."""
    email = user.email
    try:  # the message names the row: the page has limits fields for every user
        new = {
            "monthly_limit": parse_limit(text(form, "monthly_limit"), "monthly limit", "monthly_limit"),
            "daily_limit": parse_limit(text(form, "daily_limit"), "daily limit", "daily_limit"),
        }
    except Invalid as exc:
        raise Invalid(f"limits of {email}: {exc}", exc.field) from exc
    loaded = read_stamp(text(form, STAMP))
    # As typed, but in the form's own spelling ("007" and "none" are 7 and empty): compared as such.
    typed = {n: "" if v is None else str(v) for n, v in new.items()}
    accounts = web.store.accounts

    def save() -> tuple[Edit, dict[str, str], User, bool]:
        """Compared with the limits inside the write, so that no save lands between the look and it."""
        now = accounts.find_user(email)
        if now is None:
            raise NotFound(f"no user {email!r}")
        current = shown(now)
        edit = compare(loaded, typed, current, NAMES)
        if edit.meanwhile:
            return edit, current, now, False
        mine = {n: new[n] for n in NAMES if n in edit.touched}
        changed = [f"{AUDIT[n]}={v}" for n, v in mine.items() if getattr(now, n) != v]
        if not changed:  # as `user set`: limits saved as they were are no change to record
            return edit, current, now, False
        after = accounts.set_user(email, **mine)
        web.repo.audit(who.user.email, user.account_id, "user.limits", f"{email} {' '.join(changed)}")
        return edit, current, after, True

    edit, current, after, changed = await web.store.write(save, interactive=True)
    if edit.meanwhile:
        again = {**merged(typed, current, edit.touched), "action": "limits", "email": email}
        again[STAMP] = stamp(current, NAMES)
        said = conflict_message(edit.meanwhile, _said(current))
        raise StaleLimits(f"limits of {email}: {said}", again, tuple(edit.meanwhile))
    if changed:
        log.info("web.changed", actor=who.user.email, action="user.limits")
    done = f"user {email} {'updated' if changed else 'unchanged: it had these limits already'}"
    if note := limits_note(after.monthly_limit, after.daily_limit):  # as saved, this form's or not
        done += f" (note: {note})"
    return done
