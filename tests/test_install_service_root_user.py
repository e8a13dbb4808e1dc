"""`install-service --user root` is refused: it wrote `User=root` without a word.

The unit takes every capability away, but uid 0 still owns most of the machine's files: a flaw in
parsing mail or SMSC traffic would read /etc/shadow. An installed unit that already runs as root is
kept on a re-run (a refusal there left no way to re-run at all: another --user is refused too), with
a warning. Real files under `--root`, the command in a subprocess as an admin runs it.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_install_service_rerun import install, run, unit


def test_install_service_refuses_to_run_the_service_as_root(tmp_path: Path) -> None:
    res = run(tmp_path, "--hostname", "gw.example.com", "--user", "root")
    assert res.returncode == 2, (res.stdout, res.stderr)
    said = " ".join(res.stderr.split())
    assert "--user root runs the service as root (uid 0)" in said and "/etc/shadow" in said, said
    assert "leave --user out for the system user smsgw" in said, said
    assert not unit(tmp_path).exists() and not (tmp_path / "etc/smsgw/config.toml").exists()


def test_an_installed_unit_running_as_root_is_kept_with_a_warning(tmp_path: Path) -> None:
    install(tmp_path, "--user", "nobody")
    text = unit(tmp_path).read_text()
    unit(tmp_path).write_text(text.replace("User=nobody", "User=root"))  # as an admin's edit left it
    res = run(tmp_path, "--hostname", "gw.example.com")
    assert res.returncode == 0, res.stderr
    assert "warning: the installed unit runs the service as root (uid 0)" in " ".join(res.stderr.split())
    assert "User=root" in unit(tmp_path).read_text()
    ok = run(tmp_path, "--hostname", "gw.example.com", "--user", "nobody")  # not root: refused as before
    assert ok.returncode == 2 and "runs the service as root; --user nobody would change it" in ok.stderr
