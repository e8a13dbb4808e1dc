"""`smsgw restore` and the mail accepted after the backup whose SMS had all gone by the restore.

Such mail was dropped: its SMS were gone from `queue list` and the bills, from the count of identical
SMS to a phone in a day (a fourth went after a restore) and from the Message-IDs a client's retry is
known by (the retry went again). The real daemon with its simulator, the real CLI, a real backup.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.conftest import config_text, free_port, mail, send_blocking
from tests.test_policy import code, error_text, to
from tests.test_process import smsgw, start_daemon
from tests.test_restore_carry import part_states, rows, simulated, stop, waiting
from tests.test_simulator_pending_reports import until, with_simulator


def _setup(tmp_path: Path) -> tuple[Path, int, Path, Path]:
    """A config with the simulator on: (config, SMTP port, database, backup path)."""
    smpp, smtp_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        with_simulator(config_text(tmp_path, smsc_port=smpp, smtp_port=smtp_port), tmp_path, smpp)
    )
    return config, smtp_port, tmp_path / "state" / "smsgw.db", tmp_path / "backup.db"


async def _sent_since_the_backup(
    config: Path, smtp_port: int, db: Path, backup: Path, mails: list[object]
) -> None:
    """The backup taken, then `mails` accepted and their SMS all gone to the SMSC, the daemon stopped,
    and the backup restored over the database."""
    proc = await start_daemon(config, smtp_port)
    try:
        assert (await asyncio.to_thread(smsgw, config, "backup", str(backup))).returncode == 0
        for msg in mails:
            result = await asyncio.to_thread(send_blocking, smtp_port, msg, [str(msg["To"])])  # type: ignore[index]
            assert result.error is None and not result.refused, result
        await until(lambda: len(part_states(db)) == len(mails) and waiting(db) == 0, 30, f"{part_states(db)}")
    finally:
        await stop(proc)
    res = await asyncio.to_thread(smsgw, config, "restore", str(backup))
    assert res.returncode == 0, res.stderr
    assert f"{len(mails)} mails accepted after the backup" in res.stdout, res.stdout


async def test_a_fourth_identical_sms_the_day_of_a_restore_is_refused(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    same = [mail(to("601999111"), "Identical text", Message_ID=f"<same-{i}@acme.example>") for i in range(4)]
    await _sent_since_the_backup(config, smtp_port, db, backup, same[:3])
    proc = await start_daemon(config, smtp_port)
    try:
        fourth = await asyncio.to_thread(send_blocking, smtp_port, same[3], [to("601999111")])
    finally:
        await stop(proc)
    assert code(fourth) == 550 and "identical" in error_text(fourth), fourth
    assert simulated(tmp_path) == ["+48601999111"] * 3


async def test_a_retry_of_a_mail_sent_before_a_restore_is_not_sent_again(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    msg = mail(to("601777333"), "Retry of one mail", Message_ID="<retry-1@client.example>")
    await _sent_since_the_backup(config, smtp_port, db, backup, [msg])
    proc = await start_daemon(config, smtp_port)
    try:
        again = await asyncio.to_thread(send_blocking, smtp_port, msg, [to("601777333")])
        assert again.error is None and not again.refused, again  # the client is told it went
        await asyncio.sleep(1)  # a retry sent again would be with the simulator by now
    finally:
        await stop(proc)
    assert simulated(tmp_path) == ["+48601777333"]
    assert rows(db, "SELECT COUNT(*) FROM messages") == [(1,)]


async def test_the_billing_run_after_a_restore_counts_the_sms_sent_since_the_backup(tmp_path: Path) -> None:
    config, smtp_port, db, backup = _setup(tmp_path)
    mails = [mail(to(f"60155500{i}"), f"Billed {i}") for i in range(2)]
    await _sent_since_the_backup(config, smtp_port, db, backup, mails)
    assert simulated(tmp_path) == ["+48601555000", "+48601555001"]
    month = time.strftime("%Y-%m", time.gmtime())
    billed = await asyncio.to_thread(smsgw, config, "billing", "run", "--month", month)
    assert billed.returncode == 0, billed.stderr
    assert ": 2 SMS, 2 part(s)" in billed.stdout, billed.stdout
    listed = await asyncio.to_thread(smsgw, config, "queue", "list")
    assert "+48601555001" in listed.stdout, listed.stdout
