"""`smsgw send` names the message ids `smsgw queue show/retry/cancel` take, not only the mail's.

Its `250 … queued as N` is the mail's id. After the first mail to two numbers mail and message ids
count apart, and `queue show N` showed another account's message; only `--wait` said the message.
"""

from __future__ import annotations

import asyncio
import signal
import smtplib
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, config_text, free_port
from tests.test_process import smsgw, start_daemon


async def test_send_prints_the_message_id_that_queue_show_takes(tmp_path: Path) -> None:
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))  # no SMSC: SMS wait
    config.chmod(0o640)
    proc = await start_daemon(config, smtp_port)
    try:
        # Mail 1 becomes messages 1 and 2: from here on the two ids differ.
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as smtp:
            to = [f"48601123456@{DOMAIN}", f"48601123457@{DOMAIN}"]
            smtp.sendmail(STAFF, to, f"From: {STAFF}\r\n\r\nto two\r\n")
        res = await asyncio.to_thread(smsgw, config, "send", "+48601123458", "Hello admin")  # no --wait
        assert res.returncode == 0, res.stderr
        assert "queued as 2" in res.stdout, res.stdout
        assert "message 3 (`smsgw queue show 3`; the 2 above is the mail's id)" in res.stdout, res.stdout
        shown = await asyncio.to_thread(smsgw, config, "queue", "show", "3")
        assert shown.returncode == 0 and "+48601123458" in shown.stdout, shown.stdout + shown.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


async def test_send_reaches_the_daemon_where_it_listens_after_the_address_was_edited(tmp_path: Path) -> None:
    # An admin edits [smtp] listen for the next restart: `smsgw send` took the file's address, was
    # refused ("is it running?") while the daemon ran and took mail where it always had.
    smtp_port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port))
    config.chmod(0o640)
    proc = await start_daemon(config, smtp_port)
    try:
        status = tmp_path / "state" / "status.json"
        for _ in range(200):
            if status.exists() and "smtp_listen" in status.read_text():
                break
            await asyncio.sleep(0.05)
        edited = free_port()
        config.write_text(config.read_text().replace(f":{smtp_port}", f":{edited}"))
        res = await asyncio.to_thread(smsgw, config, "send", "+48601123458", "Hello admin")
        assert res.returncode == 0, res.stderr
        assert f"the daemon listens on 127.0.0.1:{smtp_port} as it started" in res.stdout, res.stdout
        assert f"127.0.0.1:{edited} of the edited file applies at its restart" in res.stdout, res.stdout
        assert "queued as 1" in res.stdout, res.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
