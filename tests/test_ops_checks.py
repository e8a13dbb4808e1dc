"""Operations: the admin's mail kept off the gateway's domains, numbers no link serves refused
at RCPT (in the daemon and in an intake worker), and `smsgw run` as root in the service user's
state directory refused."""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG, EXIT_USAGE
from gateway.config import parse_config
from gateway.store.db import Store
from tests.conftest import DOMAIN, config_text, free_port, mail, running_gateway, send_blocking
from tests.fakes.smsc import HappySMSC
from tests.test_cli_errors import run as cli
from tests.test_config_checks import LISTEN, config_file, relay, smsgw
from tests.test_first_day_cli import run as first_day
from tests.test_intake_workers import stop, worker_config
from tests.test_process import CLI, ROOT, start_daemon

# ---- 1. the admin's mailbox is not on a gateway domain ----------------------------------------------


def admin_line(root: Path) -> str:
    text = (root / "etc/smsgw/config.toml").read_text()
    return next(line for line in text.splitlines() if line.startswith("admin_address"))


def test_install_service_writes_an_admin_address_off_the_gateways_domain(tmp_path: Path) -> None:
    # It wrote postmaster@<--domain>: the company relay delivered the billing summaries and the
    # suspension notices back to the gateway (the domain's MX), which refused them.
    root = tmp_path / "root"
    res = first_day("install-service", "--root", str(root), "--domain", "sms.acme.example")
    assert res.returncode == 0, res.stderr
    assert admin_line(root).startswith('admin_address = "postmaster@acme.example"'), admin_line(root)
    assert "admin_address postmaster@acme.example" in res.stdout  # said, so the admin sees it
    config = root / "etc/smsgw/config.toml"
    config.write_text(config.read_text().replace("/var/lib/smsgw", str(tmp_path / "state")))
    assert first_day("--config", str(config), "check-config").returncode == 0

    chosen = ("--domain", "sms.acme.example", "--admin-address", "it@acme.example", "--force")
    assert first_day("install-service", "--root", str(root), *chosen).returncode == 0
    assert admin_line(root).startswith('admin_address = "it@acme.example"')

    for args, said in (
        (("--domain", "sms.acme.example", "--admin-address", "ops@SMS.acme.example"), "[gateway] domains"),
        (("--domain", "acme.example"), "has no domain above it"),  # no default: the admin names one
        (("--hostname", "gw.acme.example", "--admin-address", "root@gw.acme.example"), "takes its mail"),
        (("--admin-address", "IT <it@acme.example>"), "is not a mail address"),
    ):
        refused = tmp_path / "refused"
        res = first_day("install-service", "--root", str(refused), *args)
        assert res.returncode == EXIT_USAGE and "Traceback" not in res.stderr, (args, res.stderr)
        assert "--admin-address" in res.stderr and said in res.stderr, (args, res.stderr)
        assert not refused.exists(), args  # nothing written, no user made


@pytest.mark.parametrize(
    ("address", "changes"),
    [
        ("postmaster@sms.example.com", ()),
        ("it@SMS2.example", ()),
        # A maildir relay never loops, but it is the try-out that is later pointed at the company's
        # server: refused as the fallback addresses are, whatever the relay.
        ("postmaster@sms.example.com", (relay("maildir:mail"),)),
    ],
)
def test_check_config_and_run_refuse_an_admin_address_on_the_gateways_domains(
    tmp_path: Path, address: str, changes: tuple[tuple[str, str], ...]
) -> None:
    config = config_file(
        tmp_path,
        ('domains = ["sms.example.com"]', 'domains = ["sms.example.com", "sms2.example"]'),
        *changes,  # before the admin line: a relay change comments out the line after [mail]
        ("[mail]\n", f'[mail]\nadmin_address = "{address}"\n'),
    )
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, (command, res.stderr)
        assert f'[mail] admin_address: "{address}" would loop: ' in res.stderr, res.stderr
        assert "use a mailbox elsewhere" in res.stderr


def test_an_admin_address_at_the_host_name_is_refused_only_when_the_gateway_takes_port_25(
    tmp_path: Path,
) -> None:
    named = ('domains = ["sms.example.com"]', 'domains = ["sms.example.com"]\nhostname = "gw.example"')
    admin = ("[mail]\n", '[mail]\nadmin_address = "root@gw.example"\n')
    config = config_file(tmp_path, named, admin, (LISTEN, 'listen = "0.0.0.0:25"'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "gw.example is [gateway] hostname" in res.stderr, res.stderr
    config = config_file(tmp_path, named, admin, (LISTEN, 'listen = "0.0.0.0:2525"'))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr


def test_check_config_warns_of_stored_billing_and_notice_addresses_on_a_gateway_domain(
    tmp_path: Path,
) -> None:
    config = config_file(tmp_path)
    store = Store.open(tmp_path / "state" / "smsgw.db")
    store.accounts.add_account("acme", sender="+48100200300")
    store.accounts.set_billing_addresses("acme", ["billing@acme.example", "postmaster@sms.example.com"])
    store.accounts.update_account("acme", notify_address="601123456@sms.example.com")
    store.close()
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if "would loop" in line]
    assert len(warned) == 2, res.stderr
    assert 'account acme: --billing-to "postmaster@sms.example.com" would loop' in warned[0]
    assert 'account acme: --notify-address "601123456@sms.example.com" would loop' in warned[1]


# ---- 2. a number no link serves is refused at RCPT --------------------------------------------------

PREFIX_ONLY = 'prefixes = ["+4850"]'  # no link without prefixes: no default route
UNSERVED = "+4917012345678"


def refusal(error: Exception | None) -> tuple[int, bytes]:
    assert isinstance(error, smtplib.SMTPRecipientsRefused), error
    [(code, text)] = error.recipients.values()
    return code, text


async def test_a_number_no_link_serves_is_refused_at_rcpt(tmp_path: Path) -> None:
    # It was taken with 250, retried for the whole validity, then bounced as expired a day later.
    async with HappySMSC() as smsc:
        written = config_text(tmp_path, smsc_port=smsc.port, smsc_extra=PREFIX_ONLY)
        cfg = parse_config(written, base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            alone = f"{UNSERVED}@{DOMAIN}"
            code, text = refusal((await gw.send(mail(alone, "Nobody sends this"))).error)
            assert code == 550 and text.startswith(b"5.1.2 "), text
            assert f"no SMSC link serves {UNSERVED}".encode() in text

            # Beside a served number: that one is taken and sent, the other refused on its own.
            served = f"501234567@{DOMAIN}"
            res = await gw.send(mail([served, alone], "Half of it"))
            assert res.error is None and list(res.refused) == [alone], res.refused
            assert res.refused[alone][0] == 550 and res.refused[alone][1].startswith(b"5.1.2 ")
            await smsc.wait_for(1)
            await gw.until(lambda: gw.states() == ["delivered"])
            assert smsc.received[0].destination.endswith("48501234567")
            rows = gw.store.db.conn.execute("SELECT COUNT(*) FROM messages WHERE recipient = ?", (UNSERVED,))
            assert rows.fetchone()[0] == 0


async def test_an_intake_worker_refuses_a_number_no_link_serves(tmp_path: Path) -> None:
    smtp_port = free_port()
    async with HappySMSC() as smsc:
        config = worker_config(tmp_path, smsc.port, smtp_port, 1, smsc_extra=PREFIX_ONLY)
        proc = await start_daemon(config, smtp_port)
        try:
            alone = f"{UNSERVED}@{DOMAIN}"
            res = await asyncio.to_thread(send_blocking, smtp_port, mail(alone, "Via a worker"), [alone])
            code, text = refusal(res.error)
            assert code == 550 and text.startswith(b"5.1.2 "), text
            served = f"501234567@{DOMAIN}"
            res = await asyncio.to_thread(send_blocking, smtp_port, mail(served, "Served"), [served])
            assert res.error is None
            await smsc.wait_for(1, timeout=20)
        finally:
            await stop(proc)


def test_check_config_warns_when_no_link_is_a_default_route(tmp_path: Path) -> None:
    config = config_file(tmp_path, ("window = 10\n", f"window = 10\n{PREFIX_ONLY}\n"))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr  # a warning, not a refusal
    [line] = [line for line in res.stderr.splitlines() if "default route" in line]
    assert (
        line.startswith("smsgw: warning: [[smsc]] prefixes: every link has some (no default route)")
        and "+4850" in line
    )
    res = smsgw("--config", str(config_file(tmp_path)), "check-config")
    assert res.returncode == 0 and "default route" not in res.stderr, res.stderr


# ---- 3. `smsgw run` as root in the service user's state directory -----------------------------------


def test_run_as_root_is_refused_in_a_state_dir_the_service_user_owns(tmp_path: Path) -> None:
    # It started, and left a root-owned smsgw.pid, status file and WAL the service user could not open.
    if os.geteuid() != 0:
        pytest.skip("only root is refused; CI runs the tests as root")
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=free_port()))
    state = tmp_path / "state"
    Store.open(state / "smsgw.db").close()
    for path in (state, *state.iterdir()):
        os.chown(path, 65534, 65534)  # nobody, as the service's user would own them
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SMSGW_CONFIG", None)
    log = tmp_path / "run.log"  # outside state_dir
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=ROOT, env=env, stderr=out)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(30)
        pytest.fail("`smsgw run` as root started in the service user's state_dir")
    stderr = log.read_text()
    assert code == EXIT_USAGE, stderr
    assert "belongs to user nobody" in stderr and "sudo -u nobody" in stderr, stderr
    assert {p.stat().st_uid for p in state.iterdir()} == {65534}  # nothing made as root
    assert cli(config, "check-config").returncode == 0  # reading only: still allowed as root
