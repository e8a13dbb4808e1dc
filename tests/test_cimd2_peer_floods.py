"""What an SMSC can make of a CIMD2 link: deliveries beyond what the link holds in memory, and a
login the link could never write (refused by the config, stopped by the link without logging it).
The link tests talk to a scripted SMSC over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import structlog

from gateway.config import ConfigError, parse_config
from gateway.configcheck import check_files
from smsc import backpressure
from smsc.base import Ack, InboundSms, LinkState
from smsc.cimd2 import session as cimd2_session
from smsc.cimd2.link import Cimd2Link
from smsc.cimd2.packet import encode
from tests.conftest import config_text, free_port
from tests.fakes.events import EventRecorder
from tests.test_cimd2_link import mo, scripted, section
from tests.test_smpp_peer_floods import peak_of


async def test_a_cimd2_delivery_flood_waits_in_tcp_while_the_inbox_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 200,000 deliveries in one write: 199,931 of them queued in the inbox at once. The inbox is
    # bounded by what its packets take in memory: 64 kB here, some 100 MOs, and one read beyond.
    limit = 1 << 16
    monkeypatch.setattr(backpressure, "HELD_LIMIT", limit)
    n = 1500
    shortest, longest = mo(0, text="vote 0"), mo(0, text=f"vote {n}")
    one_read = (65536 // len(encode(shortest)) + 1) * cimd2_session.weight(longest)
    async with scripted(response_timeout_seconds=30) as (link, events, peer, _smsc):
        gate = asyncio.Event()
        handed = events.on_deliver

        async def slow(name: str, sms: InboundSms) -> Ack:
            await gate.wait()
            return await handed(name, sms)

        events.on_deliver = slow  # type: ignore[method-assign]
        conn = link._conn
        assert conn is not None
        peak = [0]
        sampler = asyncio.create_task(peak_of(lambda: conn.inbox_bytes, peak))
        peer.send(b"".join(encode(mo(2 * (i % 128), text=f"vote {i}")) for i in range(n)))
        await asyncio.sleep(0.3)
        held = peak[0]
        gate.set()
        await events.wait_for(lambda: events.calls == n)
        sampler.cancel()
    assert limit <= held == peak[0] < limit + one_read, (held, peak[0])
    assert [sms.text for sms in events.delivered] == [f"vote {i}" for i in range(n)]  # in order


# --- a login that cannot be written ---------------------------------------------------------------


async def test_a_cimd2_password_outside_latin1_stops_the_link_without_logging_it() -> None:
    # "hasło42": every reconnect raised in the login's encoding, and its traceback, which quoted the
    # character, went to the log each time.
    connections = 0

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    link = Cimd2Link(section(port, reconnect_min_seconds=0.05, reconnect_max_seconds=0.2), password="hasło42")
    events = EventRecorder()
    try:
        with structlog.testing.capture_logs() as logs:
            await link.start(events)
            await asyncio.sleep(0.5)
            await link.stop(drain=False)
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
    assert connections == 0
    refused = [e for e in logs if e["event"] == "cimd2.login_not_encodable"]
    assert 1 <= len(refused) <= 4 and refused[0]["log_level"] == "error"  # each longest pause
    assert not [e for e in logs if e["event"] == "cimd2.session_failed" or e.get("exc_info")]
    assert "ł" not in repr(logs) and "hasło" not in repr(logs)
    assert LinkState.DISCONNECTED in events.states and LinkState.ACTIVE not in events.states
    assert link.stats().last_error == "login not encodable"


@pytest.mark.parametrize(
    ("kind", "line", "key"),
    [("cimd2", 'password = "hasło"', "password"), ("cimd2", 'password = "a\\tb"', "password"),
     ("cimd2", 'system_id = "bramka\\u0105"', "system_id")],
)  # fmt: skip
def test_a_cimd2_login_that_cannot_be_sent_is_refused_by_the_config(
    tmp_path: Path, kind: str, line: str, key: str
) -> None:
    text = link_config(tmp_path, kind, line)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", base_dir=tmp_path)
    message = str(caught.value)
    assert f'[[smsc]] "main" {key}: must be ISO-8859-1 without TAB, NUL, STX or ETX' in message
    assert "ł" not in message and "ą" not in message


@pytest.mark.parametrize("kind", ["cimd2", "smpp"])
def test_a_password_file_the_link_could_never_send_stops_check_config_and_the_start(
    tmp_path: Path, kind: str
) -> None:
    # Only an inline SMPP password was checked: a password_file was read as it was, and the link
    # then failed every login.
    (tmp_path / "smsc-password").write_text("hasło\n")
    cfg = parse_config(link_config(tmp_path, kind, 'password_file = "smsc-password"'), source="config.toml",
                       base_dir=tmp_path)  # fmt: skip
    for attempt in (lambda: check_files(cfg), lambda: cfg.smsc[0].driver(tmp_path)):
        with pytest.raises(ConfigError) as caught:
            attempt()
        assert '[[smsc]] "main" password_file: the password in ' in str(caught.value)
        assert " must be " in str(caught.value)
        assert "ł" not in str(caught.value)
    (tmp_path / "smsc-password").write_text("haslo\n")
    check_files(cfg)
    assert cfg.smsc[0].secret(tmp_path) == "haslo"


def link_config(tmp_path: Path, kind: str, line: str) -> str:
    text = config_text(tmp_path, smsc_port=free_port()).replace('type = "smpp"', f'type = "{kind}"', 1)
    if line.startswith("system_id"):
        return text.replace('system_id = "smsgw"', line, 1)
    return text.replace('password = "secret"', line, 1)
