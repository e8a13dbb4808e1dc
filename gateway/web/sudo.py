"""The admin's own password before any action that makes or hands over a credential ("sudo mode").

A panel left open on a shared PC gave whoever sat down more than the owner's session: three POSTs
to /users added a login of their own, set its password and made it an admin, and that login
outlived the owner's logout and new password. So adding or changing a password of someone else,
granting the admin or operator role and trusting relay networks for a new account each need the
acting admin's password, checked as a login is and against the same lockout. Once given, the
session (server-side, `Session.confirmed_at`) does not ask again for `SUDO_MINUTES`, as GitHub's
sudo mode: an admin setting up several users types it once.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import FormData
from starlette.requests import Request

from acl.lockout import Attempt
from acl.passwords import off_loop, verify_password
from gateway.store.accounts import User
from gateway.web.formtext import text
from gateway.web.security import SUDO_MINUTES, Who

__all__ = [
    "FIELD",
    "SUDO_MINUTES",
    "NeedsPassword",
    "check_current_password",
    "confirm_admin",
    "needs_password",
]

# The field every such form carries when the session is outside its window (the own-password form
# has always carried it under this name).
FIELD = "current_password"


class NeedsPassword(ValueError):
    """The action needs the admin's own password and the form did not give a right one: the form is
    shown again, as typed, with the field and this message, and nothing is changed."""

    field = FIELD  # the field at fault, marked on the form shown again


async def check_current_password(request: Request, user: User, given: str, wrong: str) -> None:
    """`user`'s own password, checked as a login is and counted against the same lockout: the panel
    left open on a shared PC otherwise gave whoever sat down the owner's panel and submission login
    for good. `wrong` is what a wrong one is answered with. An empty field is no guess (a password
    manager that left it blank): refused without counting, or three such posts locked the login out
    of the panel and of the mail program's submission at that address."""
    if not given:
        raise NeedsPassword("give your current password: the field was empty")
    web = request.app.state.web
    ip = request.client.host if request.client else None
    attempt = await web.guard.begin_waiting(ip, user.email)
    if not isinstance(attempt, Attempt):
        raise NeedsPassword("too many failed attempts: wait a few minutes, then give your current password")
    try:
        if attempt.delay > 0:
            await asyncio.sleep(attempt.delay)
        ok = await off_loop(verify_password, given, user.password_hash)
    except BaseException:
        web.guard.cancel(attempt)  # as the login: the slot goes back
        raise
    web.guard.settle(attempt, ok, known=True)
    if not ok:
        raise NeedsPassword(wrong)


def needs_password(request: Request, who: Who) -> bool:
    """Whether a credential-making form must carry the admin's password: decided when the page is
    made, so that the field is there only while the session is outside its window."""
    return not request.app.state.web.sessions.confirmed(who.session)


async def confirm_admin(request: Request, who: Who, form: FormData, what: str) -> None:
    """Let `what` go ahead: in the session's window, or with the admin's own password in the form,
    which then opens the window. A form made inside the window and posted after it (no field) is
    refused like a wrong password, with the field shown this time."""
    web = request.app.state.web
    if web.sessions.confirmed(who.session):
        return
    given = text(form, FIELD)
    if not given:
        raise NeedsPassword(
            f"{what} needs your own password (asked again after {SUDO_MINUTES} minutes): give it, try again"
        )
    await check_current_password(request, who.user, given, f"your password is not right: {what} needs it")
    if who.session is not None:
        web.sessions.confirm(who.session)
