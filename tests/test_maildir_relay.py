"""`[mail] relay = "maildir:DIR"` where DIR cannot be made or written: said by check-config and the
start, naming the key, the path and why; and a maildir that fails later says its path in the outbox.

`relay = "maildir:/proc/nope/mail"` passed both, and every bounce and answer then waited in the
outbox for days with `FileNotFoundError(2, 'No such file or directory')`, naming neither.
"""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, config_text, free_port, unwritable
from tests.test_process import start_daemon

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
EXIT_CONFIG = 3


def smsgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SMSGW_CONFIG", "CREDENTIALS_DIRECTORY")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [*CLI, "--config", str(config), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )


def maildir_config(tmp_path: Path, directory: Path | str, smtp_port: int = 0) -> Path:
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port)
    text = text.replace("[mail]\n", f'[mail]\nrelay = "maildir:{directory}"\n#', 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o640)
    (tmp_path / "state").mkdir(exist_ok=True)
    return path


def refused_by_both(config: Path, *said: str) -> None:
    """check-config and run both exit 3 with one line naming the key, the path and the reason."""
    for command in ("check-config", "run"):
        res = smsgw(config, command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        for words in said:
            assert words in res.stderr, (command, res.stderr)


def test_a_maildir_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    config = maildir_config(tmp_path, "/proc/nope/mail")
    refused_by_both(
        config,
        "[mail] relay: the maildir /proc/nope/mail cannot be created: /proc/nope: No such file or directory",
    )
    # A file in the way: the start is refused too, not only check-config.
    (tmp_path / "afile").write_text("")
    config = maildir_config(tmp_path, tmp_path / "afile" / "mail")
    refused_by_both(
        config, f"[mail] relay: the maildir {tmp_path}/afile/mail cannot be created: {tmp_path}/afile"
    )


def test_a_maildir_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    config = maildir_config(tmp_path, "/proc")
    refused_by_both(config, "[mail] relay: the maildir /proc cannot be written in: /proc:")
    # Not writable for this user (root included: the immutable attribute): existing, and missing below it.
    mail = tmp_path / "mail"
    mail.mkdir()
    with unwritable(mail):
        refused_by_both(maildir_config(tmp_path, mail), f"the maildir {mail} cannot be written in: {mail}")
        below = mail / "sub"
        refused_by_both(maildir_config(tmp_path, below), f"the maildir {below} cannot be created: {below}")
    assert list(mail.iterdir()) == []  # the checks left nothing behind


def test_a_maildir_that_can_be_made_passes_and_is_left_as_it_was(tmp_path: Path) -> None:
    config = maildir_config(tmp_path, tmp_path / "var" / "mail")
    res = smsgw(config, "check-config")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "var").exists()  # made to try, and removed
    (tmp_path / "var" / "mail").mkdir(parents=True)
    assert smsgw(config, "check-config").returncode == 0
    assert list((tmp_path / "var" / "mail").iterdir()) == []


async def test_a_maildir_that_fails_later_names_itself_in_the_outbox(tmp_path: Path) -> None:
    smtp_port = free_port()
    mail_dir = tmp_path / "mail"
    config = maildir_config(tmp_path, mail_dir, smtp_port)
    proc = await start_daemon(config, smtp_port)
    try:
        mail_dir.write_text("")  # a file where the directory should be, after the start's check
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as smtp:  # info@ is answered by mail
            smtp.sendmail(STAFF, [f"info@{DOMAIN}"], f"From: {STAFF}\r\nSubject: hi\r\n\r\nhello\r\n")
        listed = ""
        for _ in range(200):
            listed = smsgw(config, "outbox", "list").stdout
            if "last error" in listed:
                break
            await asyncio.sleep(0.1)
        assert f"last error: [mail] relay maildir {mail_dir}: cannot write {mail_dir}/" in listed, listed
        assert "Not a directory" in listed, listed
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
