"""What the CLI tells an admin to type as the service's user names smsgw by its full path.

`sudo -u smsgw smsgw ...` (in `status --help`, the refusals to run as root in the service's state
directory, restore's, and the config install-service writes) failed with "command not found": sudo
runs with its `secure_path`, which has no virtualenv's bin directory in it.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import sudoline
from gateway.cli import commandpath
from tests.conftest import config_text, free_port

ROOT = Path(__file__).resolve().parents[1]


def launcher(tmp_path: Path, venv: str = "venv") -> Path:
    """An `smsgw` script as pip installs one in a venv's bin directory, outside every PATH."""
    script = tmp_path / venv / "bin" / "smsgw"
    script.parent.mkdir(parents=True)
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom gateway.cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return script


def smsgw(program: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`program` as sudo runs it: sudo's secure_path, in which no smsgw is found."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)}
    env["COLUMNS"] = "100000"  # no wrapping (argparse breaks a line at a path's hyphen)
    return subprocess.run([str(program), *args], capture_output=True, text=True, env=env, timeout=60)


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_status_help_names_the_smsgw_run_by_its_full_path(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    said = words(smsgw(program, "status", "--help").stdout)
    assert f"run it as the smsgw user: sudo -u smsgw {program} status" in said, said
    assert "sudo -u smsgw smsgw" not in said


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is of root")
def test_root_in_the_service_users_state_dir_is_told_the_full_path(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    state.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    for command in (["status"], ["tls", "selfsigned", "--force"], ["restore", str(config)]):
        res = smsgw(program, "--config", str(config), *command)
        assert res.returncode == 2, (command, res.stderr)
        said = words(res.stderr)
        line = shlex.join(["sudo", "-u", "nobody", str(program), "--config", str(config), *command])
        assert f"belongs to user nobody: run this as that user (`{line}`)" in said, said


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is of root")
def test_a_state_dir_of_a_uid_with_no_name_is_to_be_given_to_the_service_user(tmp_path: Path) -> None:
    """sudo reads `-u 54321` as a user's name, and refuses `-u '#54321'` for a uid with no name while
    `runas_allow_unknown_id` is off (its default): the line said could not work. The directory is to
    be given to the service's user, then the command run as that user."""
    program = launcher(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    state.mkdir()
    uid = next(n for n in range(54321, 60000) if not any(u.pw_uid == n for u in pwd.getpwall()))
    os.chown(state, uid, uid)
    res = smsgw(program, "--config", str(config), "status")
    assert res.returncode == 2, res.stderr
    said = words(res.stderr)
    assert (
        f"state_dir {state} belongs to uid {uid}, which has no user on this machine (restored from another"
        f" machine's backup?): give it to the user that runs the service (`chown -R smsgw: {state}`), then"
        " run this as that user; files root makes there would lock the daemon out"
    ) in said, said
    assert "sudo" not in said, said


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is of root")
def test_the_line_to_type_is_shell_words_on_one_line_with_the_config_however_abbreviated(
    tmp_path: Path,
) -> None:
    # shlex.join quoted a line break raw (the message broke in two), and `--conf` (argparse takes any
    # prefix naming one option) stayed in the line beside the config's full path.
    program = launcher(tmp_path)
    (tmp_path / "config.toml").write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 65534, 65534)
    backup = "my\nbackup.db"
    res = subprocess.run(
        [str(program), "--log", "INFO", "--conf", "config.toml", "restore", "--", backup],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "100000"},
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    (said,) = res.stderr.splitlines()  # one line
    typed = said.split("`")[1]
    assert typed.startswith("sudo -u nobody "), said
    back = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {typed.removeprefix('sudo -u nobody ')}"], capture_output=True
    )
    config = str(tmp_path / "config.toml")
    assert back.stdout.decode().split("\0")[:-1] == [
        str(program),
        "--config",
        config,
        "--log",
        "INFO",
        "restore",
        "--",
        backup,
    ]


def test_words_after_a_double_dash_are_the_commands() -> None:
    # After `--` argparse reads every word as the command's: a text "--config" is no option there.
    program = "/opt/smsgw/venv/bin/smsgw"
    line = sudoline.again_as(
        "smsgw", [program, "-c", "/etc/smsgw/config.toml", "send", "--", "--config", "x"]
    )
    assert line.endswith(" --config /etc/smsgw/config.toml send -- --config x"), line
    line = sudoline.again_as("smsgw", [program, "--con=/etc/a.toml", "status", "--confi", "/etc/b.toml"])
    assert line.endswith(" --config /etc/b.toml status"), line


def test_install_service_writes_the_command_to_check_the_config_as_its_user(tmp_path: Path) -> None:
    program = launcher(tmp_path)
    root = tmp_path / "root"
    options = ["--root", str(root), "--user", "gw", "--exec", str(program), "--domain", "sms.acme.example"]
    res = smsgw(program, "install-service", *options)
    assert res.returncode == 0, res.stderr
    text = (root / "etc/smsgw/config.toml").read_text()
    assert "as the gw user" in text and "sudo -u gw smsgw" not in text, text[:400]
    assert f"#   sudo -u gw {program} --config /etc/smsgw/config.toml check-config\n" in text, text[:400]
    assert f"sudo -u gw {program} --config /etc/smsgw/config.toml check-config" in res.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="a directory of another user is made by root")
def test_a_database_this_user_may_not_write_names_the_full_path(tmp_path: Path) -> None:
    from gateway.cli.common import not_writable

    os.chown(tmp_path, 65534, 65534)
    said = not_writable(tmp_path / "smsgw.db")
    assert f"`sudo -u nobody {commandpath.installed_command()} ...`" in said, said
    assert "sudo -u nobody smsgw" not in said


def test_the_documented_path_when_no_smsgw_of_its_own_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m gateway.cli` from an interpreter with no smsgw script beside it, and none on PATH.
    monkeypatch.setattr(sys, "argv", [str(ROOT / "gateway" / "cli" / "__main__.py")])
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert commandpath.installed_command() == "/opt/smsgw/venv/bin/smsgw"
    (tmp_path / "smsgw").write_text("#!/bin/sh\n")
    assert commandpath.installed_command() == str(tmp_path / "smsgw")  # the script beside the interpreter


def test_a_path_with_a_space_is_quoted_so_that_the_line_runs(tmp_path: Path) -> None:
    # Unquoted, "sudo -u smsgw /srv/my venv/bin/smsgw status" ran "/srv/my".
    program = launcher(tmp_path, "my venv")
    said = words(smsgw(program, "status", "--help").stdout)
    assert f"sudo -u smsgw '{program}' status" in said, said
    root = tmp_path / "root"
    exec_words = shlex.quote(str(program))  # --exec is a command line, as the unit's ExecStart
    options = ["--root", str(root), "--user", "gw", "--exec", exec_words, "--domain", "sms.acme.example"]
    res = smsgw(program, "install-service", *options)
    assert res.returncode == 0, res.stderr
    text = (root / "etc/smsgw/config.toml").read_text()
    assert f"#   sudo -u gw '{program}' --config /etc/smsgw/config.toml check-config\n" in text, text[:400]
    assert f"sudo -u gw '{program}' --config /etc/smsgw/config.toml check-config" in res.stdout
    # The unit runs it too: unquoted, systemd ran "…/my" and the service never started.
    unit = (root / "etc/systemd/system/smsgw.service").read_text()
    assert f'ExecStart="{program}" --config /etc/smsgw/config.toml run' in unit, unit


def test_a_command_of_several_words_stays_several_words(tmp_path: Path) -> None:
    # `python -m gateway.cli` (no smsgw script beside a system python): quoted whole, systemd looked
    # for a program of that whole name (203/EXEC) and sudo for a command of it.
    program = launcher(tmp_path)
    root = tmp_path / "root"
    command = f"{sys.executable} -m gateway.cli.main"
    options = ["--root", str(root), "--user", "gw", "--exec", command, "--domain", "sms.acme.example"]
    res = smsgw(program, "install-service", *options)
    assert res.returncode == 0, res.stderr
    unit = (root / "etc/systemd/system/smsgw.service").read_text()
    assert f"ExecStart={command} --config /etc/smsgw/config.toml run" in unit, unit
    text = (root / "etc/smsgw/config.toml").read_text()
    assert f"#   sudo -u gw {command} --config /etc/smsgw/config.toml check-config\n" in text, text[:400]
    assert f"sudo -u gw {command} --config /etc/smsgw/config.toml check-config" in res.stdout


def test_an_exec_path_quoted_once_for_the_shell_is_refused_saying_how_to_quote_it(tmp_path: Path) -> None:
    # `--exec "/srv/my venv/bin/smsgw"` is split at its blank: the unit ran "/srv/my" (203/EXEC).
    program = launcher(tmp_path, "my venv")
    options = ["--user", "gw", "--exec", str(program), "--domain", "sms.acme.example"]
    res = smsgw(program, "install-service", *options)
    assert res.returncode == 2, (res.stdout, res.stderr)
    said = words(res.stderr)
    assert f"{tmp_path}/my is no program this machine can run" in said, said
    assert "quote a path with a blank in it" in said, said
    # With --root (packaging: the files may lie elsewhere) it is a warning, and the unit is written.
    res = smsgw(program, "install-service", "--root", str(tmp_path / "root"), *options)
    assert res.returncode == 0 and "warning: --exec" in res.stdout, (res.stdout, res.stderr)
