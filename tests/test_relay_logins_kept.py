"""The relay's failed logins kept across a restart in `relay-logins.json` (`gateway.relayloginkept`):

- the file named no relay nor account: after `[mail] relay` or `relay_username` moved (an admin
  getting round a lockout), no login went for up to ten minutes, every mail failing with the old
  relay's answer, and with `relay_username` removed status still said "login waits";
- a failed login "in the future" (the wall clock set back) counted as made just now at every start,
  and `Infinity` for good; an integer too large for a float stopped the start;
- a file corrupt, empty or unwritable never stops a start nor a send; it is 0600 whatever the umask,
  and the relay's echo of our password is masked in it.

Real peers: an aiosmtpd relay with AUTH on 127.0.0.1, real files in a real state directory; the
wall clock injected.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from structlog.testing import capture_logs

from gateway.cli.statusrelay import relay_login_lines
from gateway.config import load_config
from gateway.mailer import SmtpRelayMailer, build_mailer
from gateway.relayloginkept import KEPT_FILE, KeptLogins
from tests.conftest import Sink, free_port
from tests.test_relay_login_gate import MAIL, Clock, Relay, relay_at
from tests.test_relay_login_loose_ends import Wall, send_refused
from tests.test_relay_login_refusals import auth_relay
from tests.test_relay_probe_mechanism import login_config

START = 1_900_000_000.0  # the injected wall clock's reading at the first start


def kept_file(cfg: Any) -> Path:
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    return Path(cfg.state_dir) / KEPT_FILE


def four_failed(path: Path, relay: str, user: str, at: float) -> None:
    """The file as a daemon left it after four refused logins at `relay` as `user`, the last at `at`."""
    failed = [at - 30.0, at - 20.0, at - 10.0, at]
    data = {"relay": relay, "user": user, "failed": failed, "state": "refused", "code": 535}
    path.write_text(json.dumps({**data, "reply": "535 5.7.8 the old relay says no"}))


def started(
    cfg: Any, port: int, wall: Wall, password: str = "right", clock: Clock | None = None
) -> SmtpRelayMailer:
    mailer = SmtpRelayMailer(cfg.mail, "gw.test", password, clock=clock or Clock())
    mailer.logins.keep(KeptLogins(kept_file(cfg), relay=f"127.0.0.1:{port}", user="gw", wall=wall))
    return mailer


async def test_the_failed_logins_of_another_relay_or_account_hold_no_login(tmp_path: Path) -> None:
    port = free_port()
    cfg = login_config(tmp_path, port)
    path = kept_file(cfg)
    now = time.time()
    relay = Relay(time.time, password="right")
    async with relay_at(port, relay) as sink:
        four_failed(path, "127.0.0.1:1", "gw", now)  # the relay moved to this port since
        moved = build_mailer(cfg)
        assert moved.logins.report() is None
        await moved.send("gw@gw.test", "u@acme.example", MAIL)
        await moved.close()
        four_failed(path, f"127.0.0.1:{port}", "old-account", now)  # the account changed since
        other = build_mailer(cfg)
        assert other.logins.report() is None
        await other.send("gw@gw.test", "u@acme.example", MAIL)
        await other.close()
        four_failed(path, f"127.0.0.1:{port}", "gw", now)  # the same relay and account: waits
        same = build_mailer(cfg)
        waiting = await send_refused(same)
        await same.close()
    assert len(sink.messages) == 2
    assert "the old relay says no" in waiting.message and "no login to the relay for " in waiting.message
    # relay_username removed: the relay takes mail without a login, status says nothing of one.
    text = (tmp_path / "config.toml").read_text()
    kept_out = [
        line for line in text.splitlines() if not line.startswith(("relay_username", "relay_password"))
    ]
    (tmp_path / "config.toml").write_text("\n".join(kept_out) + "\n")
    anonymous = build_mailer(load_config(tmp_path / "config.toml"))
    report = anonymous.logins.report()
    assert report is None and relay_login_lines({"updated_at": now, "relay_login": report}, now) == []


async def test_failed_logins_after_the_wall_clock_count_as_made_at_one_start_not_at_each(
    tmp_path: Path,
) -> None:
    port, wall = free_port(), Wall()
    cfg = login_config(tmp_path, port)
    path = kept_file(cfg)
    four_failed(path, f"127.0.0.1:{port}", "gw", START + 86400.0)  # made before the clock went back a day
    relay = Relay(wall, password="right")
    async with relay_at(port, relay) as sink:
        first = started(cfg, port, wall)
        report = first.logins.report()
        await send_refused(first)  # the budget full: counted as made at this start
        await first.close()
        assert json.loads(path.read_text())["failed"] == [START] * 4  # and kept so
        wall.now += 601.0  # ten minutes after that start: the budget has room again
        second = started(cfg, port, wall)
        assert second.logins.report() is None
        await second.send("gw@gw.test", "u@acme.example", MAIL)
        await second.close()
    assert report is not None and report["state"] == "waiting" and report["next_login_in_seconds"] == 600.0
    assert len(sink.messages) == 1 and relay.connections == [START + 601.0]


@pytest.mark.parametrize(
    "failed",
    [
        "[1" + "0" * 400 + ", 1" + "0" * 400 + ", 1" + "0" * 400 + ", 1" + "0" * 400 + "]",  # no float
        "[Infinity, Infinity, Infinity, Infinity]",
        "[NaN, NaN, NaN, NaN]",
        '["1900000000", null, true, {"t": 1}]',
    ],
    ids=["too-large", "infinity", "nan", "no-number"],
)
async def test_failed_logins_that_are_no_finite_time_are_dropped_at_the_start(
    tmp_path: Path, failed: str
) -> None:
    port, wall = free_port(), Wall()
    cfg = login_config(tmp_path, port)
    path = kept_file(cfg)
    path.write_text(f'{{"relay": "127.0.0.1:{port}", "user": "gw", "failed": {failed}, "state": "refused"}}')
    relay = Relay(wall, password="right")
    async with relay_at(port, relay) as sink:
        mailer = started(cfg, port, wall)  # starts: no OverflowError
        written = json.loads(path.read_text())
        assert mailer.logins.report() is None
        await mailer.send("gw@gw.test", "u@acme.example", MAIL)
        await mailer.close()
    assert len(sink.messages) == 1
    assert written["failed"] == [] and written["state"] == "refused"  # written back without them


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[1, 2]", '{"failed": "yesterday"}', "\x00\xff"],
    ids=["empty", "not-json", "a-list", "no-list", "binary"],
)
async def test_a_corrupt_or_empty_file_starts_with_the_whole_budget(tmp_path: Path, text: str) -> None:
    port, wall = free_port(), Wall()
    cfg = login_config(tmp_path, port)
    kept_file(cfg).write_text(text)
    relay = Relay(wall, password="other")  # our password wrong: the failed logins written anew
    async with relay_at(port, relay):
        mailer = started(cfg, port, wall)
        assert mailer.logins.report() is None
        await send_refused(mailer)  # every mechanism tried, as after a start with no file
        await mailer.close()
    assert len(relay.failed) == 3
    assert json.loads(kept_file(cfg).read_text())["failed"] == [START] * 3


async def test_an_unwritable_file_is_said_once_and_fails_no_send(tmp_path: Path) -> None:
    port, wall = free_port(), Wall()
    cfg = login_config(tmp_path, port)
    kept_file(cfg).mkdir()  # a directory where the file goes: neither read nor written
    relay = Relay(wall, password="other")
    with capture_logs() as logs:
        async with relay_at(port, relay):
            clock = Clock()
            mailer = started(cfg, port, wall, clock=clock)
            refused = await send_refused(mailer)
            clock.now, wall.now = 3600.0, wall.now + 3600.0  # an hour on: a probe's login refused again
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await mailer.probe()
            await mailer.close()
    assert refused.code == 535 and len(relay.failed) == 4
    events = [e["event"] for e in logs]
    assert events.count("mail.relay_logins_unread") == 1 and events.count("mail.relay_logins_unwritten") == 1


def echoes_the_password(
    _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
) -> AuthResult:
    said = data.password.decode() if isinstance(data, LoginPassword) else "?"
    return AuthResult(success=False, handled=False, message=f"535 5.7.8 bad password {said} for gw")


@pytest.mark.parametrize("password", ["Secr3t!pw", "pw9"])
async def test_the_file_is_private_and_masks_the_password_the_relay_echoes(
    tmp_path: Path, password: str
) -> None:
    port, wall = free_port(), Wall()
    cfg = login_config(tmp_path, port)
    path = kept_file(cfg)
    old = os.umask(0o022)
    try:
        async with auth_relay(port, echoes_the_password, SMTP) as sink:
            mailer = started(cfg, port, wall, password)
            await send_refused(mailer)
            await mailer.close()
    finally:
        os.umask(old)
    assert isinstance(sink, Sink) and not sink.messages
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())
    assert password not in path.read_text() and kept["reply"] == "535 5.7.8 bad password *** for gw"
    assert kept["relay"] == f"127.0.0.1:{port}" and kept["user"] == "gw"
