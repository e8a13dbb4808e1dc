"""R-5.1 keeps the billing files on disk: a month written again after it was mailed, with other rows
(a late report, a user removed), keeps the file and the summary that were mailed beside the new
ones, and says so for both. `smsgw billing run` as the administrator runs it, another process."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from gateway.store.db import Store
from tests.billing_reader import read
from tests.billing_world import at, cli, fill, prepare
from tests.conftest import free_port


def queued_attachments(store: Store, rcpt: str) -> list[bytes]:
    """The files attached to the billing mails queued for `rcpt`, oldest first."""
    found = []
    for (content,) in store.db.conn.execute(
        "SELECT content FROM outbox WHERE kind = 'billing' AND rcpt = ? ORDER BY id", (rcpt,)
    ):
        msg = message_from_bytes(content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        data = next(msg.iter_attachments()).get_payload(decode=True)
        assert isinstance(data, bytes)
        found.append(data)
    return found


def test_a_mailed_month_written_again_keeps_the_mailed_files_and_says_so(tmp_path: Path) -> None:
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 9)]}
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic)
    month = cfg.state_dir / "billing" / "2026-03"
    sent = cli(path, "billing", "run", "--month", "2026-03", "--send")
    assert sent.returncode == 0, sent.stderr
    mailed = {name: (month / name).read_bytes() for name in ("acme.txt", "beta.txt", "_summary.txt")}

    again = cli(path, "billing", "run", "--month", "2026-03")  # the same rows: the same bytes
    assert again.returncode == 0 and again.stderr == ""
    assert sorted(p.name for p in month.iterdir()) == sorted(mailed)  # no copy of a file unchanged

    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 5))
    try:
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 10, 9)])  # settled late
    finally:
        store.close()
    rerun = cli(path, "billing", "run", "--month", "2026-03")
    assert rerun.returncode == 0
    [copies] = [p for p in month.iterdir() if p.is_dir()]
    assert re.fullmatch(r"mailed-\d{4}-\d\d-\d\d-\d{4}", copies.name), copies.name
    assert sorted(p.name for p in copies.iterdir()) == ["_summary.txt", "acme.txt"]  # beta's is as mailed
    for name in ("acme.txt", "_summary.txt"):
        assert (copies / name).read_bytes() == mailed[name]
    assert (month / "beta.txt").read_bytes() == mailed["beta.txt"]
    assert len(read((month / "acme.txt").read_bytes()).sms) == 2  # the new one where it always was
    err = rerun.stderr
    assert f"{month / 'acme.txt'}: not the file mailed on " in err
    assert f"kept here as {copies / 'acme.txt'} (`--send --again` mails this one)" in err
    assert f"{month / '_summary.txt'}: not the summary mailed on " in err
    assert (
        f"the operator holds the mailed one, kept here as {copies / '_summary.txt'} (`--send --again`"
        " without --account mails this one)"
    ) in err

    store = Store.open(cfg.db_path)
    try:  # the copies are what the account and the operator were sent
        assert queued_attachments(store, "billing@acme.pl") == [mailed["acme.txt"]]
        assert queued_attachments(store, cfg.mail.admin_address)[-1] == mailed["_summary.txt"]
    finally:
        store.close()

    # Written again (one account, with the summary): the mailed copies stay as they were.
    once_more = cli(path, "billing", "run", "--month", "2026-03", "--account", "acme")
    assert once_more.returncode == 0
    assert f"kept here as {copies / '_summary.txt'}" in once_more.stderr
    assert [p for p in month.iterdir() if p.is_dir()] == [copies]
    assert (copies / "acme.txt").read_bytes() == mailed["acme.txt"]
    listing = cli(path, "billing", "list").stdout
    assert f"  {copies}/: 2 file(s) as mailed, written again since" in listing
    assert "2026-03: 2 account file(s) + summary" in listing
