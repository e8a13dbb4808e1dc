"""Hosts an administrator types wrong on the first day: an SMSC or relay name that does not resolve,
the install template's placeholder SMSC left in place, and a "maildir:" relay on a gateway whose links
go to an operator. check-config passed all three without a word, and the daemon said
"connect smsc.nonexistent.invalid:2775: Unknown error -2"; production mail landed in files unnoticed."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from gateway.cli.servicefiles import CONFIG
from gateway.config import parse_config
from gateway.configdoubts import TEMPLATE_SMSC_HOST, setup_doubts, unresolved
from gateway.linkstatus import LinkView
from smsc.outage import connect_failure
from tests.conftest import config_text, free_port, make_config, running_gateway
from tests.test_process import CLI, ROOT

NOWHERE = "smsc.nonexistent.invalid"  # .invalid never resolves (RFC 6761)


def check_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return subprocess.run(
        [*CLI, "--config", str(path), "check-config"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_a_connect_to_a_name_that_does_not_resolve_says_so() -> None:
    exc = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    said = connect_failure(NOWHERE, 2775, exc)
    assert said == f"connect {NOWHERE}:2775: host name does not resolve (Name or service not known)"
    refused = ConnectionRefusedError(111, "Connect call failed")
    assert connect_failure("10.0.0.5", 2775, refused) == "connect 10.0.0.5:2775: Connection refused"


async def test_a_link_to_a_name_that_does_not_resolve_says_so_in_its_last_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, smsc_port=2775, smsc_extra=f'host = "{NOWHERE}"')
    async with running_gateway(cfg) as gw:
        links = LinkView(gw.daemon.dispatcher)
        await gw.until(lambda: bool(links()["main"]["last_error"]))
        said = links()["main"]["last_error"]
    assert said.startswith(f"connect {NOWHERE}:2775: host name does not resolve ("), said
    assert "Unknown error" not in said


def test_check_config_warns_of_smsc_and_relay_hosts_that_do_not_resolve(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=2775, smsc_extra=f'host = "{NOWHERE}"')
    text = text.replace('relay = "127.0.0.1:', 'relay = "mail.nonexistent.invalid:25"\n# ', 1)
    res = check_config(tmp_path, text)
    assert res.returncode == 0, res.stderr  # a warning, as every doubt: DNS may be down for a while
    assert f'[[smsc]] "main" host: "{NOWHERE}" does not resolve (' in res.stderr, res.stderr
    assert "check the name, or give the SMSC's IP address" in res.stderr
    assert '[mail] relay: host "mail.nonexistent.invalid" does not resolve (' in res.stderr, res.stderr
    assert "wait in the outbox" in res.stderr


def test_addresses_and_localhost_are_not_looked_up() -> None:
    assert unresolved(["127.0.0.1", "::1", "192.0.2.10", "localhost", "LOCALHOST."]) == {}
    assert set(unresolved([NOWHERE, "10.1.2.3"])) == {NOWHERE}


def test_the_install_templates_placeholder_smsc_is_named_as_such(tmp_path: Path) -> None:
    assert f'host = "{TEMPLATE_SMSC_HOST}"' in CONFIG  # the template and the check agree
    text = config_text(tmp_path, smsc_port=2775, smsc_extra=f'host = "{TEMPLATE_SMSC_HOST}"')
    res = check_config(tmp_path, text)
    assert res.returncode == 0, res.stderr
    said = f'host: "{TEMPLATE_SMSC_HOST}" is still the placeholder `smsgw install-service` wrote'
    assert said in res.stderr, res.stderr
    assert "does not resolve" not in res.stderr  # said once, as what it is


def test_a_maildir_relay_beside_an_operators_link_is_said(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=2775, smsc_extra='host = "192.0.2.10"')
    text = text.replace('relay = "127.0.0.1:', f'relay = "maildir:{tmp_path}/mail"\n# ', 1)
    cfg = parse_config(text, source="t", base_dir=tmp_path)
    [said] = [text for event, text in setup_doubts(cfg) if event == "config.relay_maildir"]
    assert f'[mail] relay: "maildir:{tmp_path}/mail" keeps every outgoing mail on this machine' in said
    assert '[[smsc]] "main" goes to an operator' in said
    res = check_config(tmp_path, text)
    assert res.returncode == 0 and "keeps every outgoing mail on this machine" in res.stderr, res.stderr


def test_a_maildir_relay_beside_the_simulator_is_the_walkthrough_and_not_said(tmp_path: Path) -> None:
    port = free_port()
    text = config_text(tmp_path, smsc_port=port)  # the link on 127.0.0.1, at the simulator's port
    text = text.replace('relay = "127.0.0.1:', 'relay = "maildir:var/mail"\n# ', 1)
    text = text.replace("[simulator]\nenabled = false", f"[simulator]\nenabled = true\nsmpp_port = {port}", 1)
    cfg = parse_config(text, source="t", base_dir=tmp_path)
    assert not [event for event, _ in setup_doubts(cfg) if event.startswith("config.relay")]
    # The same link with the simulator off goes to whatever listens there: a tunnel to an operator.
    tunnel = parse_config(text.replace("enabled = true", "enabled = false", 1), source="t", base_dir=tmp_path)
    assert [event for event, _ in setup_doubts(tunnel) if event == "config.relay_maildir"]
    shipped = parse_config((ROOT / "config.toml").read_text(), source="t", base_dir=tmp_path)
    assert not [event for event, _ in setup_doubts(shipped) if event.startswith("config.")], "walkthrough"


def test_status_says_that_nothing_leaves_a_gateway_whose_relay_is_a_maildir(tmp_path: Path) -> None:
    from gateway.store.db import Store

    text = config_text(tmp_path, smsc_port=2775, smsc_extra='host = "192.0.2.10"')
    text = text.replace('relay = "127.0.0.1:', f'relay = "maildir:{tmp_path}/mail"\n# ', 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    Store.open(tmp_path / "state" / "smsgw.db").close()
    res = subprocess.run(
        [*CLI, "--config", str(path), "status"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert res.returncode == 3, res.stderr  # not running: the line changes no exit status
    assert f"mail      relay maildir:{tmp_path}/mail (nothing leaves this machine)" in res.stdout, res.stdout
