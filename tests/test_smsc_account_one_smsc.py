"""check-config refuses one `smsc_account` named by links that cannot be binds of one SMSC account.

Links naming one account share receipts, and a long SMS's later parts leave by any of them under the
first parts' reference. An SMPP link and a CIMD2 link to two SMSCs named "orange" both were taken
without a word: a 9-part SMS then left partly by one SMSC and partly by the other, under one
reference no phone joins. Binds to several hosts or ports stay allowed (the key's reason). The CLI as
the admin runs it, on config files.
"""

from __future__ import annotations

from pathlib import Path

from gateway.cli.common import EXIT_CONFIG
from tests.conftest import config_text, free_port, smsc_link
from tests.test_cli_errors import run, write_config

WHY = (
    "links sharing an SMSC account are binds of one SMSC (one type and one system_id; host and port may"
    " differ), whose receipts and long SMS they share; give each SMSC its own smsc_account"
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


def test_two_logins_cannot_share_an_account(tmp_path: Path) -> None:
    code, said = check(tmp_path, ('system_id = "smsgw"', 'system_id = "second"'))
    assert code == EXIT_CONFIG, said
    assert ('"main" logs in as system_id "smsgw" and "other" as "second": ' + WHY) in said, said


def test_binds_to_other_hosts_and_ports_may_share_it(tmp_path: Path) -> None:
    code, said = check(tmp_path, ('host = "127.0.0.1"', 'host = "localhost"'))
    assert code == 0 and "smsc_account" not in said, said
