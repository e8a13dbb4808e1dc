"""A CIMD2 link's `sender_prefix`: the originating address (023) is a sub-address the SMSC appends to the
number of the interface (protocols.md 1.5), so a number sender under that number goes without it.

Sent whole, "+48500100200" reached phones as the interface's number with ours appended. The link is
built from its config section as the daemon builds it and logged in to the simulator's CIMD2 server
over TCP; the server's session notes the 023 and 027 of each submit as they came off the wire.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.config import SimulatorSection, SmscSection
from smsc.base import LinkState, OutboundSms, Outcome
from smsc.cimd2.packet import P, Packet
from smsc.gsmalphabet import gsm_encode
from smsc.simulator.cimd2_server import Cimd2Server, Cimd2Session
from smsc.simulator.core import SimulatorCore
from tests.conftest import config_text
from tests.fakes.cimd2 import RecordingEvents
from tests.test_process import CLI, ROOT

TEXT = "Your code is 4711"
ADDRESSES = (P.ORIGINATOR, P.ALPHA_ORIGINATOR)


class AddressSession(Cimd2Session):
    def _on_submit(self, packet: Packet) -> None:
        self.server.addresses.append([(c, v) for c, v in packet.params if c in ADDRESSES])
        super()._on_submit(packet)


class AddressServer(Cimd2Server):
    """The simulator's CIMD2 server, keeping the 023/027 of every submit (its `received` merges them)."""

    session_class = AddressSession

    def __init__(self, core: SimulatorCore) -> None:
        super().__init__(core, retry_delay=0.02)
        self.addresses: list[list[tuple[int, str]]] = []


@asynccontextmanager
async def linked(tmp_path: Path, **link: Any) -> AsyncIterator[tuple[Any, AddressServer]]:
    core = SimulatorCore(SimulatorSection(system_id="smsgw", password="secret"), tmp_path / "sim.jsonl")
    server = AddressServer(core)
    await server.start()
    values = {
        "name": "op", "type": "cimd2", "port": server.port, "system_id": "smsgw", "password": "secret",
        "response_timeout_seconds": 5, "reconnect_min_seconds": 0.02, "reconnect_max_seconds": 0.1,
    }  # fmt: skip
    driver, events = SmscSection.model_validate(values | link).driver(), RecordingEvents()
    await driver.start(events)
    try:
        await events.wait_for(lambda: driver.state is LinkState.ACTIVE)
        yield driver, server
    finally:
        await driver.stop()
        await server.stop()
        await core.close()


def sms(source: str, part_id: int = 1) -> OutboundSms:
    return OutboundSms(part_id, source, "+48601123456", 0, gsm_encode(TEXT), TEXT)


async def sent(tmp_path: Path, sources: list[str], **link: Any) -> list[list[tuple[int, str]]]:
    """What 023/027 the SMSC received for a submit from each of `sources`."""
    async with linked(tmp_path, **link) as (driver, server):
        for part_id, source in enumerate(sources, 1):
            result = await driver.submit(sms(source, part_id))
            assert result.outcome is Outcome.ACCEPTED, result.error
        assert [p.text for p in server.received] == [TEXT] * len(sources)
        return server.addresses


ORIG, ALPHA = P.ORIGINATOR, P.ALPHA_ORIGINATOR


@pytest.mark.parametrize(
    ("prefix", "source", "wire"),
    [
        (None, "+48500100200", [(ORIG, "+48500100200")]),  # no prefix: the whole number, as before
        (None, "7355", [(ORIG, "7355")]),
        ("+48500100", "+48500100200", [(ORIG, "200")]),  # a conversation (pool) number
        ("+48500100", "48500100200", [(ORIG, "200")]),  # a sender written without its "+"
        ("+48500100", "0048500100200", [(ORIG, "200")]),  # or in the "00" form
        ("0048500100", "+48500100201", [(ORIG, "201")]),  # the prefix in the "00" form
        ("48500100", "+48500100202", [(ORIG, "202")]),
        ("+48500100", "+48500100", []),  # the interface's number itself: no 023
        ("7355", "7355", []),  # a premium short number as the interface
        ("73", "7355", [(ORIG, "55")]),
        ("never", "+48500100200", []),
        ("never", "7355", []),
        ("+48500100", "ACME", [(ALPHA, "ACME")]),  # an alphanumeric sender is no sub-address
        ("never", "ACME", [(ALPHA, "ACME")]),
    ],
)
async def test_the_originator_the_smsc_receives(
    tmp_path: Path, prefix: str | None, source: str, wire: list[tuple[int, str]]
) -> None:
    link = {} if prefix is None else {"sender_prefix": prefix}
    assert await sent(tmp_path, [source], **link) == [wire]


async def test_a_sender_outside_the_prefix_goes_without_023_and_is_logged_once(tmp_path: Path) -> None:
    # The SMSC sends it from the interface's number; the admin is told once per sender and link, not
    # once per SMS (a bulk of 10,000 from a wrong default_sender), and never the SMS's text.
    sources = ["+48600100200", "+48500100200", "+48600100200", "7355", "+48600100200", "7355"]
    with structlog.testing.capture_logs() as logs:
        wire = await sent(tmp_path, sources, sender_prefix="+48500100")
    assert wire == [[], [(ORIG, "200")], [], [], [], []]
    warned = [e for e in logs if e["event"] == "cimd2.sender_outside_prefix"]
    assert [(e["link"], e["sender"], e["sender_prefix"]) for e in warned] == [
        ("op", "+48600100200", "+48500100"),
        ("op", "7355", "+48500100"),
    ]
    assert all(e["log_level"] == "warning" for e in warned)
    assert not any(TEXT in str(e) or "4711" in str(e) for e in warned)


def check_config(tmp_path: Path, extra: str, link_type: str = "cimd2") -> subprocess.CompletedProcess[str]:
    text = config_text(tmp_path, smsc_port=9971, smsc_extra=extra)
    text = text.replace('type = "smpp"', f'type = "{link_type}"', 1)
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return subprocess.run(
        [*CLI, "--config", str(path), "check-config"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


@pytest.mark.parametrize("value", ["+48500100", "48500100", "0048500100", "never"])
def test_check_config_takes_a_number_or_never(tmp_path: Path, value: str) -> None:
    res = check_config(tmp_path, f'sender_prefix = "{value}"')
    assert res.returncode == 0, res.stderr
    assert SmscSection.model_validate(
        {"name": "op", "type": "cimd2", "port": 9971, "sender_prefix": value}
    ).driver_settings().sender_prefix == value  # fmt: skip


@pytest.mark.parametrize("value", ["+48 500 100", "48-500", "Never", "+", "00", "", "ACME", "1" * 21])
def test_check_config_refuses_another_value_naming_the_key(tmp_path: Path, value: str) -> None:
    res = check_config(tmp_path, f'sender_prefix = "{value}"')
    assert res.returncode != 0, res.stderr
    assert '[[smsc]] "main" sender_prefix:' in res.stderr, res.stderr
    assert "is neither the number of the SMSC interface" in res.stderr and '"never"' in res.stderr


def test_check_config_refuses_it_on_an_smpp_link(tmp_path: Path) -> None:
    res = check_config(tmp_path, 'sender_prefix = "+48500100"', link_type="smpp")
    assert res.returncode != 0, res.stderr
    assert '[[smsc]] "main" sender_prefix: only a type = "cimd2" link takes it' in res.stderr, res.stderr
