"""R-5.1: billing files are kept under a configured directory, `[gateway] billing_dir`.

They always went to `<state_dir>/billing`. Every reader and writer of them follows the key: the
daemon's month-end run (mails through a real SMTP sink), `billing run|list|show`, the web panel's
billing page; `billing run` refuses a directory it cannot write; the systemd unit opens one outside
the state directory (ProtectSystem=strict leaves only the state directory writable)."""

from __future__ import annotations

import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.common import CliError
from gateway.cli.main import main
from gateway.cli.servicefiles import render_unit, writable_paths
from gateway.config import Config, ConfigError, parse_config
from gateway.web.app import WebContext
from tests.billing_world import at, billing_mails, last_billed, prepare
from tests.conftest import config_text, free_port, running_gateway, smtp_sink, unwritable
from tests.test_billing import add_account, mt, setup
from tests.web_helpers import OPERATOR, as_user, panel_store, web_context


def test_billing_dir_is_resolved_as_the_other_paths_and_defaults_to_the_state_dir(tmp_path: Path) -> None:
    def billing_dir(line: str) -> Path:
        text = config_text(tmp_path, smsc_port=2775).replace("[gateway]\n", f"[gateway]\n{line}\n", 1)
        return parse_config(text, source="test", base_dir=tmp_path / "etc").billing_dir

    assert billing_dir("") == tmp_path / "state" / "billing"  # where the files always were
    assert billing_dir('billing_dir = "books"') == tmp_path / "etc" / "books"  # beside the config
    assert billing_dir(f'billing_dir = "{tmp_path}/srv/books"') == tmp_path / "srv" / "books"
    with pytest.raises(ConfigError, match=r"\[gateway\] billing_dir: give a directory"):
        billing_dir('billing_dir = " "')


def test_billing_run_list_and_show_use_the_configured_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, store, _, path = setup(tmp_path, at(2026, 2, 1), billing_dir="books")
    mt(store, add_account(store), at(2026, 2, 3))
    c = ["-c", str(path)]
    books = tmp_path / "books" / "2026-02"  # relative to the config's directory
    assert main([*c, "billing", "run", "--month", "2026-02"]) == 0
    assert sorted(p.name for p in books.iterdir()) == ["_summary.txt", "acme.txt"]
    assert not (cfg.state_dir / "billing").exists()
    capsys.readouterr()
    assert main([*c, "billing", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-02: 1 account file(s) + summary",
        "  2026-02 is not billed yet; a run of the whole month wrote its files",  # by hand, not sent
        f"  {books / 'acme.txt'}",
    ]
    assert main([*c, "billing", "show", "--month", "2026-02", "--account", "acme"]) == 0
    assert capsys.readouterr().out.encode() == (books / "acme.txt").read_bytes()
    # Only month directories are months: the directory may hold other things.
    (tmp_path / "books" / "notes").mkdir()
    assert main([*c, "billing", "list"]) == 0
    assert "notes" not in capsys.readouterr().out


def test_billing_run_refuses_a_billing_dir_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    _, store, _, path = setup(tmp_path, at(2026, 2, 1), billing_dir=str(locked / "books"))
    mt(store, add_account(store), at(2026, 2, 3))
    capsys.readouterr()
    with unwritable(locked):
        code = main(["-c", str(path), "billing", "run", "--month", "2026-02"])
    err = capsys.readouterr().err
    assert code == 3, err
    # No unit, no daemon: the service's user is smsgw where the machine has it, else the directory's owner.
    owner = (
        "smsgw"
        if "smsgw" in {u.pw_name for u in pwd.getpwall()}
        else pwd.getpwuid(locked.stat().st_uid).pw_name
    )
    assert err == (
        f"smsgw: [gateway] billing_dir: {locked / 'books'} does not exist and cannot be created by this"
        f" user ({locked} is not writable); create it: mkdir -p {locked / 'books'} && chown {owner}:"
        f" {locked / 'books'}\n"
    )
    (tmp_path / "afile").write_text("not a directory\n")
    path.write_text(path.read_text().replace(str(locked / "books"), str(tmp_path / "afile" / "books")))
    assert main(["-c", str(path), "billing", "run", "--month", "2026-02"]) == 3
    err = capsys.readouterr().err
    assert f"[gateway] billing_dir: {tmp_path / 'afile' / 'books'} cannot be created: " in err
    assert "is a file, not a directory" in err and "Traceback" not in err


async def test_the_daemons_month_end_run_writes_and_mails_from_the_configured_directory(
    tmp_path: Path,
) -> None:
    relay = free_port()
    path, _ = prepare(tmp_path, relay, last_billed="2026-02", traffic={"acme": [at(2026, 3, 2, 8)]})
    books = tmp_path / "srv" / "books"
    path.write_text(path.read_text().replace("[gateway]\n", f'[gateway]\nbilling_dir = "{books}"\n', 1))
    cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: at(2026, 4, 2, 9)) as gw:  # its start-up run
            await gw.until(lambda: len(billing_mails(sink)) == 3 and last_billed(gw.store) == "2026-03")
    for m in billing_mails(sink):  # each mail carries the file kept in the configured directory
        name = m.filename[len("2026-03-") :].replace("summary", "_summary")
        assert m.attachment == (books / "2026-03" / name).read_bytes()
    assert not (cfg.state_dir / "billing").exists()


async def test_the_panel_lists_and_downloads_from_the_configured_directory(tmp_path: Path) -> None:
    store = panel_store(tmp_path)  # this month's files, written under <state_dir>/billing
    web = web_context(tmp_path, store)
    books = tmp_path / "books"
    shutil.move(tmp_path / "billing", books)
    gateway = web.config.gateway.model_copy(update={"billing_dir": books})
    web = WebContext(web.config.model_copy(update={"gateway": gateway}), store, web.guard, links=web.links)
    month = str(store.month)  # type: ignore[attr-defined]
    try:
        async with as_user(web, OPERATOR) as c:
            page = (await c.get("/billing")).text
            for name in ("acme.txt", "rival.txt", "_summary.txt"):
                assert f'href="/billing/{month}/{name}"' in page, name
            r = await c.get(f"/billing/{month}/acme.txt")
            assert r.status_code == 200 and r.content == (books / month / "acme.txt").read_bytes()
    finally:
        web.counts.close()
        store.close()


def test_the_unit_opens_a_billing_dir_outside_the_state_directory(tmp_path: Path) -> None:
    def cfg(billing_dir: str | None) -> Config:
        line = f'billing_dir = "{billing_dir}"' if billing_dir else ""
        text = config_text(tmp_path, smsc_port=2775).replace("[gateway]\n", f"[gateway]\n{line}\n", 1)
        text = text.replace(f'state_dir = "{tmp_path / "state"}"', 'state_dir = "/var/lib/smsgw"')
        return parse_config(text, source="test", base_dir=Path("/etc/smsgw"))

    assert writable_paths(cfg(None)) == []  # /var/lib/smsgw/billing: the StateDirectory= is writable
    assert writable_paths(cfg("/var/lib/smsgw/books")) == []
    assert writable_paths(cfg("/var/lib/smsgw/../books")) == [Path("/var/lib/books")]
    assert writable_paths(cfg("/srv/smsgw/billing")) == [Path("/srv/smsgw/billing")]
    assert writable_paths(cfg("books")) == [Path("/etc/smsgw/books")]  # relative: beside the config
    assert "ReadWritePaths" not in render_unit()
    exec_cmd = f"{sys.executable} -m gateway.cli"
    text = render_unit(exec_cmd, writable=writable_paths(cfg("/srv/smsgw/50%")))
    assert "\nReadWritePaths=/srv/smsgw/50%%\n" in text  # `%` starts a specifier in a unit file
    if shutil.which("systemd-analyze"):
        unit = tmp_path / "smsgw.service"
        unit.write_text(text)
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    with pytest.raises(CliError, match="ReadWritePaths= needs an absolute path without spaces"):
        render_unit(writable=writable_paths(cfg("/srv/smsgw billing")))


def test_check_config_refuses_a_billing_dir_it_cannot_write(tmp_path: Path) -> None:
    from tests.test_config_checks import smsgw

    locked = tmp_path / "locked"
    locked.mkdir()
    _, store, _, path = setup(tmp_path, at(2026, 2, 1), billing_dir=str(locked / "books"))
    store.close()
    with unwritable(locked):
        res = smsgw("--config", str(path), "check-config")
    assert res.returncode == 3 and "Traceback" not in res.stderr
    assert f"[gateway] billing_dir: {locked / 'books'} does not exist and cannot be created" in res.stderr
    assert smsgw("--config", str(path), "check-config").returncode == 0


def test_install_service_opens_the_billing_dir_of_a_kept_config(tmp_path: Path) -> None:
    from tests.test_first_day_cli import run

    root = tmp_path / "root"
    args = ("install-service", "--root", str(root), "--hostname", "gw.example")
    assert run(*args).returncode == 0
    config = root / "etc/smsgw/config.toml"
    config.write_text(
        config.read_text().replace('# billing_dir = "/srv/smsgw/billing"', 'billing_dir = "/srv/books"')
    )
    res = run(*args)  # the config is kept; the unit is written again for it
    assert res.returncode == 0, res.stderr
    assert "ReadWritePaths=/srv/books\n" in (root / "etc/systemd/system/smsgw.service").read_text()
    assert (root / "srv/books").is_dir()
