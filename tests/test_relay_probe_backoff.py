"""The relay's probe against a relay that refuses our login: the probes back off, and each costs the
relay one failed login. A real relay (aiosmtpd with an authenticator), a real database file.

A probe every 30 s with a wrong password was some 240 failed logins an hour (aiosmtplib tried PLAIN,
then LOGIN, on each): a relay with fail2ban banned the gateway's address within minutes, an
Exchange lockout locked the shared account. The relay down, silent or closing costs no login, and
keeps the probe's 30 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from structlog.testing import capture_logs

from gateway.bitelog import FaultLog
from gateway.config import Config, load_config
from gateway.mailer import SmtpRelayMailer
from gateway.relayprobe import RelayBack
from gateway.store.db import Store
from tests.conftest import Sink, config_text, free_port, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.relay_server import relay_server
from tests.test_relay_fixed_restart import deferred_outbox

EVERY = 0.01  # PROBE_EVERY, scaled: 30 s
CAP = 0.08  # PROBE_EVERY_MAX, scaled


@pytest.fixture(autouse=True)
def quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY", EVERY)
    monkeypatch.setattr("gateway.relayprobe.PROBE_EVERY_MAX", CAP)
    monkeypatch.setattr("gateway.relayprobepace.PROBE_EVERY_MAX", CAP)
    monkeypatch.setattr("gateway.relayloginbudget.FINDTIME", 20 * EVERY)  # ten minutes, scaled


class Logins:
    """The relay's authenticator: each AUTH's mechanism by session, refused (535) until `accept`."""

    def __init__(self) -> None:
        self.by_session: dict[tuple[str, int], list[str]] = {}
        self.accept = False

    def __call__(self, _server: Any, session: Any, _envelope: Any, mechanism: str, _data: Any) -> AuthResult:
        self.by_session.setdefault(session.peer, []).append(mechanism)
        return AuthResult(success=self.accept, handled=False)


@asynccontextmanager
async def login_relay(port: int, logins: Logins) -> AsyncIterator[Sink]:
    async with relay_server(port, SMTP, logins) as sink:
        yield sink


def login_config(tmp_path: Path, port: int, smsc_port: int = 1) -> Config:
    text = config_text(tmp_path, smsc_port=smsc_port, relay_port=port)
    anchor = f'relay = "127.0.0.1:{port}"\n'
    text = text.replace(anchor, anchor + 'relay_username = "gw"\nrelay_password = "wrong"\n', 1)
    config = tmp_path / "config.toml"
    config.write_text(text)
    return load_config(config)


def probes_failed(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "outbox.relay_probe_failed"]


async def test_probes_refused_their_login_back_off_and_each_logs_in_once(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins()
    async with HappySMSC() as smsc, login_relay(port, logins) as sink:
        cfg = login_config(tmp_path, port, smsc.port)
        deferred_outbox(cfg)  # mail deferred for the relay down, most of an hour still to wait each
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: len(probes_failed(logs)) >= 5)
    failed = probes_failed(logs)[:5]
    assert {e["relay_fault"] for e in failed} == {"login refused"}
    # The first probe logs in as a first send, every mechanism; then one failed login a probe: a 535
    # to PLAIN may be the mechanism's (a relay taking LOGIN alone), so the next tries LOGIN, in turn.
    sessions = list(logins.by_session.values())
    assert sessions[:5] == [["PLAIN", "LOGIN"], ["PLAIN"], ["LOGIN"], ["PLAIN"], ["LOGIN"]]
    # Twice as far apart after each refusal, up to the cap (an hour at real speed).
    assert [e["next_probe_in"] for e in failed] == [2 * EVERY, 4 * EVERY, CAP, CAP, CAP]
    assert sink.messages == []


async def test_a_success_resets_the_back_off_and_a_relay_down_keeps_it(tmp_path: Path) -> None:
    port = free_port()
    logins = Logins()
    cfg = login_config(tmp_path, port)
    deferred_outbox(cfg)
    store = Store.open(cfg.db_path)
    now = [0.0]
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", "wrong", clock=lambda: now[0])
    woken: list[bool] = []
    relay = RelayBack(store, mailer, lambda: woken.append(True), FaultLog())
    try:
        with capture_logs() as logs:
            # Nothing listens: no login was refused, the probes keep their pace.
            await relay._probe()
            assert relay.interval() == EVERY
            async with login_relay(port, logins):
                await relay._probe()
                now[0] = mailer.logins.next_login_at()  # not stopped before its time
                await relay._probe()
                assert relay.interval() == 4 * EVERY
            now[0] = mailer.logins.next_login_at()
            await relay._probe()  # down again: a relay restarted has not changed our login
            assert relay.interval() == 4 * EVERY
            async with login_relay(port, logins):
                logins.accept = True
                await relay._probe()  # the login taken: one mail woken, the back-off gone
                assert woken == [True]
                assert relay.interval() == 2 * EVERY  # that mail not yet taken (`RelayBack.back`)
                await relay.back()
                assert relay.interval() == EVERY
    finally:
        await mailer.close()
        store.close()
    kinds = [e["relay_fault"] for e in probes_failed(logs)]
    assert kinds == ["unreachable", "login refused", "login refused", "unreachable"]
