"""check-config refuses one `smsc_account` named by links that cannot be binds of one SMSC account.

Links naming one account share receipts, and a long SMS's later parts leave by any of them under the
first parts' reference. An SMPP link and a CIMD2 link to two SMSCs named "orange" both were taken
without a word: a 9-part SMS then left partly by one SMSC and partly by the other, under one
reference no phone joins. Binds to several hosts or ports stay allowed (the key's reason), and so do
binds logging in as several system_ids (an operator's login per bind, receipts on any of them: the
`dlr.other_link` hint advises it), warned of: refused, such a config stopped starting at an upgrade.
The CLI as the admin runs it, on config files.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from gateway.cli.common import EXIT_CONFIG
from tests.conftest import config_text, free_port, smsc_link
from tests.test_cli_errors import run, write_config
from tests.test_process import start_daemon

WHY = (
    "links sharing an SMSC account are binds of one SMSC (one type; host, port and login may differ),"
    " whose receipts and long SMS they share; give each SMSC its own smsc_account"
)


def check(tmp_path: Path, *changes: tuple[str, str]) -> tuple[int, str]:
    """check-config on links "main" and "other" both naming "orange", "other" with `changes` made."""
    account = 'smsc_account = "orange"'
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=account)
    link = smsc_link("other", free_port(), account)
    for old, new in changes:
        assert old in link, old
        link = link.replace(old, new, 1)
    res = run(write_config(tmp_path, text + link), "check-config")
    return res.returncode, " ".join((res.stdout + res.stderr).split())


def test_an_smpp_and_a_cimd2_link_cannot_share_an_account(tmp_path: Path) -> None:
    code, said = check(tmp_path, ('type = "smpp"', 'type = "cimd2"'))
    assert code == EXIT_CONFIG, said
    assert (
        '[[smsc]] smsc_account: links "main" and "other" both name "orange", but "main" is smpp and'
        f' "other" is cimd2: {WHY}'
    ) in said, said


def test_two_logins_may_share_an_account_and_are_warned_of(tmp_path: Path) -> None:
    code, said = check(tmp_path, ('system_id = "smsgw"', 'system_id = "second"'))
    assert code == 0, said
    assert (
        'warning: [[smsc]] smsc_account: links "main" and "other" both name "orange" but log in as system_id'
        ' "smsgw" and "second": each one\'s receipts are matched to the other\'s SMS, and a long SMS\'s later'
        " parts may leave by either login under its first parts' reference; right if the SMSC takes both"
        " logins as one account (sends their receipts on either bind), else give each its own smsc_account"
    ) in said, said


def test_binds_to_other_hosts_and_ports_may_share_it(tmp_path: Path) -> None:
    code, said = check(tmp_path, ('host = "127.0.0.1"', 'host = "localhost"'))
    assert code == 0 and "smsc_account" not in said, said


async def test_the_start_logs_two_logins_sharing_an_account(tmp_path: Path) -> None:
    # The running daemon says it too: an admin who never runs check-config finds it in the log.
    account = 'smsc_account = "orange"'
    smtp_port = free_port()
    text = config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, smsc_extra=account)
    text += smsc_link("other", free_port(), account).replace('system_id = "smsgw"', 'system_id = "b"')
    proc = await start_daemon(write_config(tmp_path, text), smtp_port)
    try:
        log = (tmp_path / "daemon.log").read_text()
        said = [line for line in log.splitlines() if "config.smsc_account_logins" in line]
        assert len(said) == 1 and 'system_id "smsgw" and "b"' in said[0].replace('\\"', '"'), log[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
