"""The simulator's control port refuses an MO whose source or destination is not printable ASCII,
saying so: SMPP and CIMD2 carry addresses as ASCII, and an address holding U+202E (right-to-left
override) was answered `internal error: UnicodeEncodeError` once the SMPP session tried to encode it.
The real daemon with its built-in simulator bound over SMPP, the control port over TCP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsc.simulator.control import send_command
from tests.conftest import free_port, running_gateway
from tests.test_two_way import two_way_config


@pytest.mark.parametrize("field", ["source", "destination"])
async def test_an_mo_address_that_is_not_ascii_is_refused_by_name(tmp_path: Path, field: str) -> None:
    async with running_gateway(two_way_config(tmp_path, "smpp", relay_port=free_port())) as gw:
        port = gw.daemon.simulator.control_port
        command = {"op": "mo", "source": "+48601222333", "destination": "+48100200300", "text": "Tak"}
        bad = await send_command("127.0.0.1", port, {**command, field: "+48601\u202e222333"})
        good = await send_command("127.0.0.1", port, command)
    assert bad["ok"] is False, bad
    assert bad["error"] == (
        f"mo {field} must be printable ASCII (SMPP and CIMD2 carry addresses so): '+48601\\u202e222333'"
    ), bad
    assert good["ok"] is True, good
