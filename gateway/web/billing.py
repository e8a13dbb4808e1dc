"""Billing files: the month files billing_reports wrote, listed and downloaded.

No path is ever built from what the browser sends: the month must parse as YYYY-MM, and the file
name must be one the server itself derives (the admin's own account's `file_name`) or, for the
operator, one found by listing that month's directory. Anything else is a plain 404, so `..`,
encoded slashes or another account's name all look like a file that does not exist.
"""

from __future__ import annotations

import os
import stat
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from billing_reports.monthly import Month
from billing_reports.writer import SUMMARY, file_name, month_dir, months
from gateway.web.security import NotYours, Who, guarded


def _files(request: Request, who: Who, month: Month) -> list[str]:
    """The names this login may download in `month`: the own account's file, or every file (operator)."""
    web = request.app.state.web
    directory = month_dir(web.config.state_dir, month, web.config.billing_dir)
    if not directory.is_dir():
        return []
    present = sorted(n for n in os.listdir(directory) if n.endswith(".txt") and not n.startswith("."))
    if who.operator:
        return [n for n in present if n != SUMMARY] + ([SUMMARY] if SUMMARY in present else [])
    own = file_name(who.user.account)
    return [own] if own in present else []


def _shown(name: str, names: dict[str, str]) -> str:
    """The account a file is for, as its name is spelt: the file name escapes "Ł" as %C5%81, and a
    long one is cut and ends in a hash, so a file of an account that still exists is named by it."""
    if name == SUMMARY:
        return "summary of all accounts"
    return names.get(name) or unquote(name.removesuffix(".txt"))


def _account_names(request: Request) -> dict[str, str]:
    """The file name of every account's billing file, and its account's name."""
    return {file_name(a.name): a.name for a in request.app.state.web.store.accounts.list_accounts()}


def _disposition(filename: str) -> str:
    """An attachment's name for every browser: RFC 6266's UTF-8 form, and an ASCII one for the rest."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@guarded()
async def billing(request: Request, who: Who) -> Response:
    web = request.app.state.web
    listing: list[dict[str, Any]] = []
    names = _account_names(request)
    tz, now = ZoneInfo(web.config.gateway.timezone), web.store.clock()
    for month in reversed(months(web.config.billing_dir)):  # the newest first
        # Written by hand (`billing run`) before the month ended: the month so far, not its bill.
        so_far = month.bounds(tz)[1] > now
        for name in _files(request, who, month):
            size = (month_dir(web.config.state_dir, month, web.config.billing_dir) / name).stat().st_size
            shown = _shown(name, names)
            listing.append(
                {"month": str(month), "name": name, "shown": shown, "size": size, "so_far": so_far}
            )
    return web.render(request, "billing.html", {"who": who, "files": listing})


@guarded()
async def download(request: Request, who: Who) -> Response:
    web = request.app.state.web
    try:
        month = Month.parse(request.path_params["month"])
    except ValueError as exc:
        raise NotYours from exc
    name = request.path_params["name"]
    allowed = _files(request, who, month)
    if str(month) != request.path_params["month"] or name not in allowed:
        raise NotYours
    path = month_dir(web.config.state_dir, month, web.config.billing_dir) / allowed[allowed.index(name)]
    try:
        regular = stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        regular = False
    if not regular:  # a link (put there by another user, `billing_reports.files.safe_dir`) is not a bill
        raise NotYours
    shown = name if name == SUMMARY else f"{_shown(name, _account_names(request))}.txt"
    return FileResponse(
        path,
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": _disposition(f"{month}-{shown}")},
    )


ROUTES = [
    Route("/billing", billing, methods=["GET"]),
    Route("/billing/{month}/{name}", download, methods=["GET"]),
]
