"""`smsgw install-service` run again: the unit keeps what the config on disk gave it, and files
that stay as they were are not said as written.

A re-run while the kept config did not load rewrote the unit without its ReadWritePaths= (no
config, no directories), so after the admin fixed the config the daemon could not write its
billing directory until install-service ran once more. Real files under `--root`, the command in a
subprocess as an admin runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]
HIGH = ("--listen", "0.0.0.0:2525", "--submission", "0.0.0.0:2587")
BILLING = "ReadWritePaths=/srv/smsgw/billing"


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    return subprocess.run(
        [*CLI, "install-service", "--root", str(root), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def install(root: Path, *args: str) -> str:
    res = run(root, "--hostname", "gw.example.com", *args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def config(root: Path) -> Path:
    return root / "etc/smsgw/config.toml"


def unit(root: Path) -> Path:
    return root / "etc/systemd/system/smsgw.service"


def dropin(root: Path) -> Path:
    return root / "etc/systemd/system/smsgw.service.d/low-port.conf"


def with_billing_dir(root: Path) -> None:
    text = config(root).read_text()
    assert '# billing_dir = "/srv/smsgw/billing"' in text
    config(root).write_text(text.replace('# billing_dir = "', 'billing_dir = "'))


def test_a_config_that_cannot_be_read_leaves_the_unit_and_its_writable_paths(tmp_path: Path) -> None:
    install(tmp_path, *HIGH)
    with_billing_dir(tmp_path)
    install(tmp_path, *HIGH)
    before = unit(tmp_path).read_text()
    assert BILLING in before
    config(tmp_path).write_text(config(tmp_path).read_text() + "garbage = [\n")
    out = install(tmp_path, *HIGH)
    assert unit(tmp_path).read_text() == before
    assert f"left {unit(tmp_path)} as it is" in out
    assert f"wrote {unit(tmp_path)}" not in out


def test_a_first_unit_under_a_config_that_cannot_be_read_says_what_it_lacks(tmp_path: Path) -> None:
    config(tmp_path).parent.mkdir(parents=True)
    config(tmp_path).write_text("[gateway\n")
    out = install(tmp_path, *HIGH)
    assert f"wrote {unit(tmp_path)}" in out
    assert "ReadWritePaths=" not in unit(tmp_path).read_text()
    assert "opens no directory outside /var/lib/smsgw" in out


def test_a_re_run_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    first = install(tmp_path)  # port 25: the drop-in too
    assert f"wrote {unit(tmp_path)}" in first and f"wrote {dropin(tmp_path)}" in first
    files = {path: path.read_text() for path in (config(tmp_path), unit(tmp_path), dropin(tmp_path))}
    for again in (install(tmp_path), install(tmp_path, "--force")):  # --force: the same config's text
        assert "wrote" not in again
        assert {path: path.read_text() for path in files} == files
    changed = install(tmp_path, "--exec", "/usr/local/bin/smsgw")
    assert f"wrote {unit(tmp_path)}" in changed and f"wrote {dropin(tmp_path)}" not in changed
    assert "ExecStart=/usr/local/bin/smsgw " in unit(tmp_path).read_text()


def test_a_re_run_keeps_the_user_and_command_of_the_installed_unit(tmp_path: Path) -> None:
    # The upgrade notes' re-run, without the first install's options: it rebuilt the unit with
    # User=smsgw, whose service could not open the database smsgate had written.
    command = "'/srv/my venv%/bin/smsgw'"
    install(tmp_path, *HIGH, "--user", "smsgate", "--exec", command)
    first = unit(tmp_path).read_text()
    assert "User=smsgate\nGroup=smsgate\n" in first
    assert 'ExecStart="/srv/my venv%%/bin/smsgw" --config' in first
    with_billing_dir(tmp_path)
    again = install(tmp_path, *HIGH)
    written = unit(tmp_path).read_text()
    assert "User=smsgate\nGroup=smsgate\n" in written and BILLING in written
    assert 'ExecStart="/srv/my venv%%/bin/smsgw" --config' in written
    assert "kept User=smsgate of the installed unit (another --user is refused)" in again
    assert "sudo -u smsgate '/srv/my venv%/bin/smsgw' --config" in again
    # Another user named outright is refused by name, and nothing is written.
    refused = run(tmp_path, "--hostname", "gw.example.com", *HIGH, "--user", "smsgw")
    assert refused.returncode == 2
    assert "runs the service as smsgate; --user smsgw would change it" in refused.stderr
    assert unit(tmp_path).read_text() == written
    assert "wrote" not in install(tmp_path, *HIGH, "--user", "smsgate")


def test_a_re_run_over_a_finished_config_says_what_that_config_still_needs(tmp_path: Path) -> None:
    install(tmp_path, *HIGH)
    text = config(tmp_path).read_text()
    for old, new in (
        ('host = "smsc.operator.example"', 'host = "192.0.2.10"'),
        ('default_sender = "+48100200300"', 'default_sender = "+48601000111"'),
        ('state_dir = "/var/lib/smsgw"', 'state_dir = "/srv/smsgw"'),
        ('domains = ["sms.example.com"]', 'domains = ["sms.acme.pl"]'),
    ):
        assert old in text
        text = text.replace(old, new)
    config(tmp_path).write_text(text)
    (tmp_path / "etc/smsgw/private/smsc-password").write_text("secret\n")
    (tmp_path / "srv/smsgw").mkdir(parents=True)
    (tmp_path / "srv/smsgw/web-initial-password").write_text("x\n")
    res = run(tmp_path, *HIGH)  # no --hostname: the kept config's is the one that counts
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for first_install_only in (
        "uncomment [[account]]",
        "--force",
        "enable --now",
        "/var/lib/smsgw/web-",
        "edit",
    ):
        assert first_install_only not in out.replace("(exists; --force replaces it)", "")
    assert "still to set" not in out
    assert "the panel's first password is in /srv/smsgw/web-initial-password" in out
    assert "systemctl daemon-reload && systemctl enable smsgw && systemctl restart smsgw" in out
    # What it still has of the template is named, each thing alone.
    config(tmp_path).write_text(text.replace('"+48601000111"', '"+48100200300"'))
    (tmp_path / "etc/smsgw/private/smsc-password").unlink()
    out = install(tmp_path, *HIGH)
    assert "still to set in /etc/smsgw/config.toml: default_sender (+48100200300 is made up); the SMSC" in out
    assert "[[smsc]]" not in out and "domains" not in out
    # Beside the config, where the daemon reads a bare name with no credential, it is set too.
    (tmp_path / "etc/smsgw/smsc-password").write_text("secret\n")
    out = install(tmp_path, *HIGH)
    assert "still to set in /etc/smsgw/config.toml: default_sender (+48100200300 is made up)\n" in out, out


def test_a_re_run_while_the_config_is_being_fixed_leads_to_an_enabled_service(tmp_path: Path) -> None:
    # An admin who re-ran install-service before ever enabling the service was told a restart only:
    # started once, it stayed stopped after the next boot. A config that did not load got the
    # restart too, below the words asking to fix it first.
    first = install(tmp_path, *HIGH)
    assert "systemctl daemon-reload && systemctl enable --now smsgw" in first
    good = config(tmp_path).read_text()
    config(tmp_path).write_text(good + "bogus_key = 1\n")
    broken = install(tmp_path, *HIGH)
    assert "fix /etc/smsgw/config.toml until check-config passes, then run install-service again" in broken
    assert "systemctl" not in broken
    config(tmp_path).write_text(good)
    fixed = install(tmp_path, *HIGH)
    assert "systemctl daemon-reload && systemctl enable smsgw && systemctl restart smsgw" in fixed
