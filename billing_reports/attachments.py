"""The name an account's billing file goes by when it is attached to its mail (apart from the run
that mails it, `billing_reports.job`, which only calls it)."""

from __future__ import annotations

from billing_reports.monthly import Month
from billing_reports.writer import AccountFile
from gateway import notify


def attachment_name(month: Month, f: AccountFile, *, clash: bool = False) -> str:
    """The name an account's file goes by in its mail, which its text names too: readable, where
    the file on disk is %XX-escaped and without the month its directory names, and one no other
    account's file goes by, so that mails saved in one folder keep every file.

    Plain ASCII, as `notify.attachment_name` makes every attachment's name (mail clients disagree
    on encoded ones). The account's own name where that is its ASCII form (`2026-12-ACME.txt`);
    else that form and `~<account id>` (`Łódź` is `2026-12-Lodz~4.txt` beside `Lodz`'s
    `2026-12-Lodz.txt`, `日本` is `2026-12-billing~9.txt`), as also when another account's name
    differs from it in case only (`clash`: one folder on Windows or macOS takes both as one) or it
    is `summary`, the operator's summary's name. No own name holds `~`, and two ids differ, so no
    two accounts share a name; the text said the account's own name while the attachment went by
    its ASCII form (`Łódź`, `Lodz` and `A/B`, `AB` attached under one name; `日本` as `2026-12.txt`).
    """
    own = f"{month}-{f.account}.txt"
    if (
        not clash
        and notify.attachment_name(own) == own
        and _TAG not in own
        and f.account.casefold() != "summary"
    ):
        return own
    tag = f"{_TAG}{f.account_id if f.account_id is not None else 0}"
    plain = notify.attachment_name(f"{f.account}.txt").removesuffix(".txt")
    room = notify.ATTACHMENT_STEM_MAX - len(f"{month}-{tag}")
    return f"{month}-{plain[:room].rstrip(' .-')}{tag}.txt"


_TAG = "~"  # before the account id in an attachment's name
