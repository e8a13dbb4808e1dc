"""A second link to the built-in simulator with a login of its own: check-config said OK, and the
link's every bind was refused ("check [[smsc]] system_id and password", which were the link's own).
The simulator takes [simulator] system_id and password alone; check-config and the start say so.
The shipped config, edited as an admin would, checked by the real CLI in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_first_day_cli import ROOT, run

SECOND = """
[[smsc]]
name = "sim-cimd2"
type = "cimd2"
host = "127.0.0.1"
port = 9971
system_id = {system_id}
password = {password}
window = 1

[simulator]"""


def checked(tmp_path: Path, system_id: str, password: str) -> str:
    text = (ROOT / "config.toml").read_text()
    second = SECOND.format(system_id=f'"{system_id}"', password=f'"{password}"')
    text = text.replace("\n[simulator]", second, 1)
    config = tmp_path / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    (tmp_path / "var").mkdir()
    res = run("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    return res.stderr


@pytest.mark.parametrize(("system_id", "password"), [("cimd", "secret"), ("smsgw", "other-pass")])
def test_a_link_to_the_simulator_with_its_own_login_is_said(
    tmp_path: Path, system_id: str, password: str
) -> None:
    said = checked(tmp_path, system_id, password)
    assert (
        '[[smsc]] "sim-cimd2" goes to the built-in simulator (port 9971), which takes only [simulator]'
        ' system_id ("smsgw") and password' in said
    ), said
    assert "give the link those of [simulator]" in said
    assert "other-pass" not in said  # no password is said
    assert '[[smsc]] "simulator" goes to the built-in simulator' not in said  # the shipped link's is its


def test_a_second_link_with_the_simulators_login_is_not_said(tmp_path: Path) -> None:
    assert "goes to the built-in simulator" not in checked(tmp_path, "smsgw", "secret")
