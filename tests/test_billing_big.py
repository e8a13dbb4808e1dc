"""Big billing files (issue 12 at scale): an account's file for some 22,000 SMS a month is ~1.8 MB
(some 80 bytes a line). The outbox and the relay mailer carry such a mail whole, and building the
mails of many accounts holds one account's file at a time, not all of them. (A file too big for a
mail, 10 MB, is named by where it lies instead: test_mail_size.py.)"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from billing_reports import job
from billing_reports.monthly import Month
from gateway.store.db import Store
from tests.billing_reader import read
from tests.billing_world import at, billing_mails, last_billed, prepare
from tests.conftest import free_port, running_gateway, smtp_sink


def month_of(n: int) -> list[float]:
    """`n` SMS times spread over March 2026."""
    step = 28 * 86400 / n
    return [at(2026, 3, 2) + k * step for k in range(n)]


async def test_a_two_megabyte_billing_mail_goes_through_the_outbox_and_the_relay(tmp_path: Path) -> None:
    relay = free_port()
    _, cfg = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": month_of(22_000)})
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: at(2026, 4, 2, 9)) as gw:
            await gw.until(lambda: len(billing_mails(sink)) == 3, timeout=60)
            sent = "SELECT COUNT(*), MAX(length(content)) FROM outbox WHERE state = 'sent'"
            await gw.until(lambda: gw.store.db.conn.execute(sent).fetchone()[0] == 3)
            biggest = gw.store.db.conn.execute(sent).fetchone()[1]
            assert last_billed(gw.store) == "2026-03"
    data = (cfg.state_dir / "billing" / "2026-03" / "acme.txt").read_bytes()
    assert len(data) > 1_800_000 and biggest > 2_000_000  # base64 makes the mail a third bigger
    assert max(len(raw) for _, _, raw in sink.messages) > 2_000_000
    for m in billing_mails(sink):
        if m.filename == "2026-03-acme.txt":  # to the account and to the operator, byte for byte
            assert m.attachment == data
    assert len(read(data).sms) == 22_000  # its end line (count and checksum) still matches


async def test_mails_of_many_accounts_are_built_one_account_at_a_time(tmp_path: Path) -> None:
    # 20 accounts with a ~170 kB file each (long failure reasons make big files from few rows).
    reason = "the SMSC refused the number; " * 36
    traffic = {f"a{i:02d}": month_of(150) for i in range(20)}
    _, cfg = prepare(tmp_path, free_port(), last_billed="2026-02", traffic=traffic, reason=reason)
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 4, 2, 9))
    try:
        tracemalloc.start()
        try:
            files = await job.bill_month(store, cfg, Month(2026, 3))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        queued = store.db.conn.execute("SELECT SUM(length(content)) FROM outbox").fetchone()[0]
    finally:
        store.close()
    one = max(f.path.stat().st_size for f in files.accounts)
    assert len(files.accounts) == 20 and one > 150_000
    # All the mails at once would need their whole size (two per account, base64): ~7 MB here.
    # One account at a time needs ~15 copies of one file (its mails, base64), however many accounts.
    assert queued > 40 * one
    assert peak < 25 * one, f"peak {peak} bytes for files of {one} bytes"
