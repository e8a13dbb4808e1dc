"""R-5.1 keeps the billing files on disk: a month written again after it was mailed, with other rows
(a late report, a user removed), keeps the file and the summary that were mailed beside the new
ones, and says so for both. `smsgw billing run` as the administrator runs it, another process."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from billing_reports import job
from billing_reports.mailedrecord import LOCK, RECORD
from billing_reports.monthly import Month
from billing_reports.writer import write_month
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
    # No copy of a file unchanged; beside the files, the record that their mails were queued (and its lock).
    assert sorted(p.name for p in month.iterdir()) == sorted([*mailed, RECORD, LOCK])

    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 5))
    try:
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 10, 9)])  # settled late
    finally:
        store.close()
    rerun = cli(path, "billing", "run", "--month", "2026-03")
    assert rerun.returncode == 0
    [copies] = [p for p in month.iterdir() if p.is_dir()]
    assert re.fullmatch(r"mailed-\d{4}-\d\d-\d\d-\d{6}", copies.name), copies.name
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

    # Mailed again: the account reads that this file corrects the one it has, not a second bill.
    resent = cli(path, "billing", "run", "--month", "2026-03", "--account", "acme", "--send", "--again")
    assert resent.returncode == 0, resent.stderr
    store = Store.open(cfg.db_path)
    try:
        rows = store.db.conn.execute(
            "SELECT content FROM outbox WHERE kind = 'billing' AND rcpt = 'billing@acme.pl' ORDER BY id"
        ).fetchall()
    finally:
        store.close()
    mails = [message_from_bytes(r[0], policy=policy.default) for r in rows]
    assert [str(m["Subject"]) for m in mails] == [
        "SMS billing 2026-03: acme",
        "SMS billing 2026-03: acme (corrected)",
    ]
    body = mails[1].get_body(("plain",))
    assert body is not None and body.get_content().startswith(
        "This corrected file replaces the one mailed before (2026-"
    ), body.get_content()


def kept_as(err: str, path: Path, what: str) -> Path:
    """The copy the warning about `path` names as the one mailed."""
    found = re.search(rf"{re.escape(str(path))}: not the {what} mailed on .*, kept here as (\S+) \(", err)
    assert found is not None, err
    return Path(found[1])


@pytest.mark.parametrize("apart", [30, 0], ids=["same minute", "same second"])
def test_every_mailing_of_a_month_keeps_its_file_also_two_in_one_minute(tmp_path: Path, apart: int) -> None:
    """Mailed, a late report, mailed again (`--send --again`) in the same minute, then another late
    report and a plain run: the copy of the first mailing was taken for the second one's, the file
    the account was sent last was overwritten and the warning named the first one as "the mailed one"."""
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 9)]}
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic)
    month = cfg.state_dir / "billing" / "2026-03"
    tz = ZoneInfo(cfg.gateway.timezone)

    def send(when: float, *, again: bool, late: float | None) -> None:
        """`billing run --month 2026-03 --send [--again]` at `when`, after a report of an SMS at `late`."""
        store = Store.open(cfg.db_path, clock=lambda: when)
        try:
            if late is not None:
                fill(store, store.accounts.get_account("acme").id, [late])
            files = write_month(
                cfg.db_path, cfg.state_dir, Month.parse("2026-03"), tz, billing_dir=cfg.billing_dir
            )
            assert job.queue_mails(store, cfg, files, again=again).mails > 0
        finally:
            store.close()

    first = at(2026, 4, 2, 7, 4, 10)
    send(first, again=False, late=None)
    send(first + apart, again=True, late=at(2026, 3, 10, 9))
    store = Store.open(cfg.db_path)
    try:
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 11, 9)])
        acme = queued_attachments(store, "billing@acme.pl")
        summaries = [
            a
            for a in queued_attachments(store, cfg.mail.admin_address)
            if a.startswith(b"# smsgw billing summary")
        ]
    finally:
        store.close()
    assert len(acme) == 2 and acme[0] != acme[1]  # what each mailing carried
    assert len(summaries) == 2 and summaries[0] != summaries[1]

    for _ in range(2):  # a run over the same rows again keeps nothing more
        rerun = cli(path, "billing", "run", "--month", "2026-03")
        assert rerun.returncode == 0, rerun.stderr
        assert len(read((month / "acme.txt").read_bytes()).sms) == 3
        for name, mailed, what in (("acme.txt", acme, "file"), ("_summary.txt", summaries, "summary")):
            copies = sorted(month.glob(f"mailed-*/{name}"))
            assert sorted(c.read_bytes() for c in copies) == sorted(mailed), name  # each mailing's
            assert (month / name).read_bytes() not in mailed
            # The one the account (or the operator) was sent last is the one the warning names.
            assert kept_as(rerun.stderr, month / name, what).read_bytes() == mailed[-1], rerun.stderr


def test_a_run_crossing_a_second_keeps_its_mailed_files_in_one_directory(tmp_path: Path) -> None:
    """A `--send` whose account file was queued at 07:04:10.9 and its summary at 07:04:11.0 kept
    the two mailed copies in two directories when the month was written again: each file was named
    by its own second, not by the run's."""
    traffic = {"acme": [at(2026, 3, 2, 8)], "beta": [at(2026, 3, 3, 9)]}
    path, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic)
    month = cfg.state_dir / "billing" / "2026-03"
    tz = ZoneInfo(cfg.gateway.timezone)
    ticks = iter(at(2026, 4, 2, 7, 4, 10) + 0.9 * n for n in range(10_000))
    store = Store.open(cfg.db_path, clock=lambda: next(ticks))  # each look at the clock 0.9 s later
    try:
        files = write_month(
            cfg.db_path, cfg.state_dir, Month.parse("2026-03"), tz, billing_dir=cfg.billing_dir
        )
        assert job.queue_mails(store, cfg, files, again=False).mails > 0
        fill(store, store.accounts.get_account("acme").id, [at(2026, 3, 10, 9)])
        fill(store, store.accounts.get_account("beta").id, [at(2026, 3, 11, 9)])
    finally:
        store.close()
    rerun = cli(path, "billing", "run", "--month", "2026-03")
    assert rerun.returncode == 0, rerun.stderr
    [copies] = [p for p in month.iterdir() if p.is_dir()]
    assert sorted(p.name for p in copies.iterdir()) == ["_summary.txt", "acme.txt", "beta.txt"]
