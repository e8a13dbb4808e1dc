"""Billing files: the month files billing_reports wrote, listed and downloaded.

No path is ever built from what the browser sends: the month must parse as YYYY-MM, and the file
name must be one the server itself derives (the admin's own account's `file_name`) or, for the
operator, one found by listing that month's directory. Anything else is a plain 404, so `..`,
encoded slashes or another account's name all look like a file that does not exist.

A month written again after it was mailed, with other rows (a late report), keeps the file mailed in
`mailed-*/` (`billing_reports.mailed`): the listing says the file changed since it was mailed and
offers the mailed one too, or a company admin downloads a file that differs from the one mailed to
them. That copy is found by the server the same way, from the name allowed above and the month's
mark of the mail (its checksum), never from a path the browser sends.
"""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from billing_reports import repo, takenunrecorded
from billing_reports.failedjobs import failures, words
from billing_reports.files import is_incomplete
from billing_reports.mailed import ends_with, file_sha256, kept_copy
from billing_reports.monthly import Month
from billing_reports.writer import SUMMARY, file_name, month_dir, months
from gateway.adminrules import SUMMARY_FILE_NAMES
from gateway.store.keyvalue import keys_under
from gateway.web import billingfiles
from gateway.web.billingnotice import told
from gateway.web.security import NotYours, Who, guarded


def _files(request: Request, who: Who, month: Month) -> list[str]:
    """The names this login may download in `month`: the own account's file, or every file (operator)."""
    web = request.app.state.web
    directory = month_dir(web.config.state_dir, month, web.config.billing_dir)
    if not directory.is_dir():
        return []
    # Regular files only: a directory (or a link) named like a bill was offered, and its link gave 404.
    with os.scandir(directory) as entries:
        present = sorted(
            e.name
            for e in entries
            if e.name.endswith(".txt") and not e.name.startswith(".") and e.is_file(follow_symlinks=False)
        )
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


def _stem(name: str, request: Request) -> str:
    """What a file downloads as, after its month: the summary as its mail attaches it (`summary`),
    an account's as its name is spelt, but one named like the summary (made before such names were
    refused) with its id too, as its mail's attachment has it (`billing_reports.attachments`): it
    downloaded under the summary's very name."""
    if name == SUMMARY:
        return "summary"
    shown = _shown(name, _account_names(request))
    if shown.casefold() not in SUMMARY_FILE_NAMES:
        return shown
    accounts = request.app.state.web.store.accounts.list_accounts()
    return f"{shown}~{next((a.id for a in accounts if file_name(a.name) == name), 0)}"


def _account_names(request: Request) -> dict[str, str]:
    """The file name of every account's billing file, and its account's name."""
    return {file_name(a.name): a.name for a in request.app.state.web.store.accounts.list_accounts()}


def _mark_keys(request: Request, who: Who) -> dict[str, str]:
    """The key of each file's mark of mail (`billing_reports.repo.mailed_key`), by file name: the
    summary's, and the accounts' by their ids (only the own account's for a company admin)."""
    if not who.operator:
        return {file_name(who.user.account): str(who.user.account_id)}
    accounts = request.app.state.web.store.accounts.list_accounts()
    return {SUMMARY: "summary", **{file_name(a.name): str(a.id) for a in accounts}}


@dataclass(frozen=True)
class Mailed:
    """A file that is not the one mailed: when that one was mailed, and where it is kept (None: a mark
    written before mailed files were kept, or a copy moved away)."""

    at: float | None
    copy: Path | None


def _mailed(
    request: Request, month: Month, marks: dict[str, str], keys: dict[str, str], name: str
) -> Mailed | None:
    """`Mailed` when the file `name` of `month` was mailed and differs from it now, else None.

    `marks`: the month's marks by key (`_month_marks`). An account file is compared by the checksum
    of its `end` line, the summary by its bytes, as `billing run` does."""
    mark = marks.get(keys.get(name, ""))
    if mark is None:
        return None
    web = request.app.state.web
    path = month_dir(web.config.state_dir, month, web.config.billing_dir) / name
    # Remembered while the file is the same one: every summary was hashed and every file's end read
    # again at each load of the page.
    is_it = partial(billingfiles.same, file_sha256 if name == SUMMARY else ends_with)
    sha, at = repo.mark_parts(mark)
    if is_it(path, sha):
        return None
    dirs = [d for d in path.parent.glob("mailed*") if d.is_dir() and not d.is_symlink()]
    copy = kept_copy(path, mark, ZoneInfo(web.config.gateway.timezone), is_it, dirs)
    return Mailed(at, copy if copy is not None and _regular(copy) else None)


def _month_marks(request: Request, month: Month) -> dict[str, str]:
    """The month's marks of mail, by what they are of (an account's id, "summary"): one read."""
    prefix = repo.mailed_key(month, "")
    rows = keys_under(request.app.state.web.store.db.conn, prefix)
    return {str(rest): str(value) for rest, value in rows}


def _regular(path: Path) -> bool:
    """A regular file, not a link (put there by another user, `billing_reports.files.safe_dir`)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _disposition(filename: str) -> str:
    """An attachment's name for every browser: RFC 6266's UTF-8 form, and an ASCII one for the rest.
    A slash or backslash of the account's name is no folder of the file saved (`Łódź/A B` was
    offered as `2026-12-__d_/A B.txt`): the browsers that read only the ASCII form take it as given."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%/' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@guarded()
async def billing(request: Request, who: Who) -> Response:
    """`SHOWN_MONTHS` months a page, the newest first; `?before=YYYY-MM` those older than it."""
    web = request.app.state.web
    text = request.query_params.get("before", "")
    try:
        before = Month.parse(text[:40], option="before") if text else None
    except ValueError as exc:
        ctx = {"who": who, "files": [], "error": str(exc), "paged": True}
        return web.render(request, "billing.html", ctx, 400)
    names = _account_names(request)
    tz, now = ZoneInfo(web.config.gateway.timezone), web.store.clock()
    keys = _mark_keys(request, who)
    # The directories and files in a thread, the marks of mail (the database) on the loop's connection.
    every = await asyncio.to_thread(months, web.config.billing_dir)
    shown, older = billingfiles.page(every, before)
    marks = {month: _month_marks(request, month) for month in shown}
    listing = await asyncio.to_thread(_listing, request, who, shown, marks, names, keys, tz, now)
    # A failing run said here too (the page said "No billing files yet"): to the operator with its
    # error, to a company admin only the bills of theirs it holds up (`billingnotice`).
    failed, said = failures(web.store.db.conn).get("billing"), None
    if failed is not None and who.operator:
        said = f"The {words('billing', failed, tz)}."
    elif failed is not None and (notice := await told(web, who.user.account, failed, tz, now)) is not None:
        said = notice.text()
    ctx = {
        "failed": said,
        # Months a restore took as done from files with no record (the operator's to settle, as status).
        "taken": [takenunrecorded.words(m) for m in takenunrecorded.holding(web.store.db.conn)]
        if who.operator
        else [],
        "who": who,
        "files": listing,
        "older": str(older) if older is not None else None,
        "paged": before is not None,
        "before": str(before) if before is not None else "",
    }
    # Rendered in the thread too: a year of the operator's files is 3,600 rows, 250 ms of the loop.
    return await web.render_off_loop(request, "billing.html", ctx)


def _listing(
    request: Request,
    who: Who,
    shown: list[Month],
    marks: dict[Month, dict[str, str]],
    names: dict[str, str],
    keys: dict[str, str],
    tz: ZoneInfo,
    now: float,
) -> list[dict[str, Any]]:  # in a thread: files only, no database
    web = request.app.state.web
    listing: list[dict[str, Any]] = []
    own = None if who.operator else file_name(who.user.account)
    whose = tuple(sorted(keys.items()))  # the files' marks by account: an account renamed is another file
    for month in shown:
        # Written by hand (`billing run`) before the month ended: the month so far, not its bill.
        so_far = month.bounds(tz)[1] > now
        directory = month_dir(web.config.state_dir, month, web.config.billing_dir)
        given = (own, so_far, tuple(sorted(marks[month].items())), whose)

        def build(
            month: Month = month, directory: Path = directory, so_far: bool = so_far
        ) -> list[dict[str, Any]]:
            # A run stopped partway (Ctrl-C, the daemon killed, another account's file not written):
            # some accounts' files, no summary yet. A company admin's own file that run wrote whole is
            # their bill, not "incomplete" (the summary is the operator's).
            incomplete = is_incomplete(directory)
            rows = []
            for name in _files(request, who, month):
                if incomplete and own is not None and billingfiles.written_whole(directory, name):
                    incomplete = False
                try:
                    size = (directory / name).stat().st_size
                except FileNotFoundError:
                    continue  # removed since the listing (a run writing the month again)
                mailed = _mailed(request, month, marks[month], keys, name) if marks[month] else None
                rows.append(
                    {
                        "month": str(month),
                        "name": name,
                        "size": size,
                        "so_far": so_far,
                        "incomplete": incomplete,
                        "changed": mailed is not None,
                        "mailed_on": _when(mailed.at, tz) if mailed is not None else None,
                        "mailed_copy": mailed is not None and mailed.copy is not None,
                    }
                )
            return rows

        # The account a file is for by its name now: an account renamed since is named anew.
        listing += [
            {**row, "shown": _shown(row["name"], names)}
            for row in billingfiles.month_rows(directory, given, build)
        ]
    return listing


def _when(at: float | None, tz: ZoneInfo, form: str = "%Y-%m-%d %H:%M") -> str | None:
    """When a mail was queued, on the billing files' clock (marks written before that say nothing)."""
    return None if at is None else datetime.fromtimestamp(at, tz).strftime(form)


def _allowed(request: Request, who: Who) -> tuple[Month, str]:
    """The month and the name of a file this login may download, both checked, or NotYours (404)."""
    try:
        month = Month.parse(request.path_params["month"])
    except ValueError as exc:
        raise NotYours from exc
    name = request.path_params["name"]
    allowed = _files(request, who, month)
    if str(month) != request.path_params["month"] or name not in allowed:
        raise NotYours
    return month, allowed[allowed.index(name)]


def _file(path: Path, month: Month, shown: str) -> FileResponse:
    return FileResponse(
        path,
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": _disposition(f"{month}-{shown}")},
    )


@guarded()
async def download(request: Request, who: Who) -> Response:
    """The file, or with `?as=mailed` the file as it was mailed where the one on disk changed since
    (found by the mail's mark; a flag, so the route stays the file's own and no other name is taken)."""
    web = request.app.state.web
    month, name = _allowed(request, who)
    stem = _stem(name, request)
    if request.query_params.get("as") == "mailed":
        mailed = _mailed(request, month, _month_marks(request, month), _mark_keys(request, who), name)
        if mailed is None or mailed.copy is None:
            raise NotYours
        # No ":" in a file name (Windows refuses it): the time as `mailed-*/` names it.
        when = _when(mailed.at, ZoneInfo(web.config.gateway.timezone), "%Y-%m-%d-%H%M%S")
        return _file(mailed.copy, month, f"{stem} (as mailed{'' if when is None else f' {when}'}).txt")
    path = month_dir(web.config.state_dir, month, web.config.billing_dir) / name
    if not _regular(path):  # a link is not a bill
        raise NotYours
    return _file(path, month, f"{stem}.txt")


ROUTES = [
    Route("/billing", billing, methods=["GET"]),
    Route("/billing/{month}/{name}", download, methods=["GET"]),
]
