"""`smsgw status` on a relay login refusal held (`gateway.mailauth.RelayLogins`): no send logs in until
a probe's login is taken, which only the log said once (`mail.relay_login_refused`), while status
showed mail waiting "which goes once a probe of the relay gets through". Now the text and `--json`
say since when, with which mechanisms and in the relay's words, cleaned of control characters and
of the password where the relay echoes it.

Real peers: the daemon on a real database file, a relay (aiosmtpd with AUTH) refusing the gateway's
password, `smsgw status` as a process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult

from gateway.config import load_config
from gateway.housekeeping import read_status
from tests.conftest import free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_relay_fixed_restart import deferred_outbox
from tests.test_relay_login_gate import Relay, relay_at
from tests.test_relay_probe_mechanism import login_config

# A relay that echoes what it was sent, with a terminal escape and a bell: AUTH LOGIN's password
# step in base64 ("right"), as a misconfigured SASL backend's error text may.
ECHOED = base64.b64encode(b"right").decode()
REPLY = f"535 5.7.8 Authentication failed: \x1b[2J{ECHOED}\x07 (account gw)"


class Echoing(Relay):
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.failed.append((self.clock(), mechanism))
        return AuthResult(success=False, handled=False, message=REPLY)


async def test_status_shows_a_refusal_held_since_when_with_which_mechanisms_and_the_relays_words(
    tmp_path: Path,
) -> None:
    port = free_port()
    relay = Echoing(time.monotonic, password="other")
    async with HappySMSC() as smsc, relay_at(port, relay):
        cfg = login_config(tmp_path, port, smsc.port)
        config = tmp_path / "config.toml"
        config.chmod(0o640)
        cfg = load_config(config)
        deferred_outbox(cfg)  # mail waiting for the relay: the start's probe logs in
        began = time.time()
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: bool((read_status(cfg.state_dir) or {}).get("relay_login")))
            text = await asyncio.to_thread(smsgw, config, "status")
            shown = await asyncio.to_thread(smsgw, config, "status", "--json")
    login = json.loads(shown.stdout)["relay_login"]
    assert login["state"] == "refused" and login["by"] == "a probe"
    # The start's probe logged in as a first send does: every mechanism offered, in its order.
    assert login["mechanisms"] == ["CRAM-MD5", "PLAIN", "LOGIN"]
    assert login["reply"] == "535 5.7.8 Authentication failed: [2J*** (account gw)"
    assert began - 1 <= login["since"] <= time.time()
    assert login["failed_logins"] == 3 and login["next_login_in_seconds"] > 0
    lines = [line for line in text.stdout.splitlines() if line.startswith("relay ")]
    assert len(lines) == 1, text.stdout
    assert lines[0].startswith("relay     login refused (CRAM-MD5, PLAIN, LOGIN) since ")
    assert "): 535 5.7.8 Authentication failed: [2J*** (account gw); " in lines[0]
    assert "no mail logs in until a probe's login is taken (the next in " in lines[0]
    assert ECHOED not in text.stdout + shown.stdout and "\x1b" not in text.stdout + shown.stdout


async def test_status_shows_nothing_of_the_relay_login_while_logins_go(tmp_path: Path) -> None:
    port = free_port()
    relay = Relay(time.monotonic, password="right")
    async with HappySMSC() as smsc, relay_at(port, relay) as sink:
        cfg = login_config(tmp_path, port, smsc.port)
        deferred_outbox(cfg)
        async with running_gateway(cfg) as gw:
            await gw.until(lambda: len(sink.messages) >= 3)
            status_path = cfg.state_dir / "status.json"
            written = status_path.stat().st_mtime_ns
            await gw.until(lambda: status_path.stat().st_mtime_ns != written)  # written after the mail went
            shown = await asyncio.to_thread(smsgw, tmp_path / "config.toml", "status", "--json")
    shown_json = json.loads(shown.stdout)
    assert "relay_login" in shown_json and shown_json["relay_login"] is None
