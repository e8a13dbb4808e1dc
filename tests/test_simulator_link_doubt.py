"""A link that misses the enabled built-in simulator is warned of by `check-config` (and at start).

Changing the SMPP port takes two edits, `[[smsc]] port` and `[simulator] smpp_port`; with only the
first, the link knocked on the simulator's control port (or on nothing) for ever, and `check-config`
said `config OK`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.configdoubts import simulator_link_doubts
from tests.test_first_day_cli import ROOT, run


@pytest.mark.parametrize(
    ("port", "said"),
    [
        (2776, '[[smsc]] "simulator" (smpp) goes to port 2776, the simulator\'s control_port'),
        (2999, "no [[smsc]] link goes to it (it takes SMPP on 2775, CIMD2 on 9971);"),
        (2775, None),
    ],
)
def test_a_link_that_misses_the_enabled_simulator_is_warned_of(
    tmp_path: Path, port: int, said: str | None
) -> None:
    """The SMPP port changed in `[[smsc]]` only: the link knocked on the control port for ever and
    `check-config` said OK."""
    text = (ROOT / "config.toml").read_text().replace("port = 2775", f"port = {port}", 1)
    (tmp_path / "config.toml").write_text(text)
    res = run("--config", str(tmp_path / "config.toml"), "check-config", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    if said is None:
        assert "no [[smsc]] link goes to it" not in res.stderr, res.stderr
    else:
        assert said in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("sim_host", "link_host", "warned"),
    [
        ("0.0.0.0", "127.0.0.1", False),  # a listener on every address takes loopback too
        ("0.0.0.0", "localhost", False),
        ("::", "::1", False),
        ("127.0.0.1", "localhost", False),  # localhost is tried on 127.0.0.1 too
        ("localhost", "127.0.0.1", False),
        ("127.0.0.1", "::1", True),  # nothing listens on ::1
        ("::1", "127.0.0.1", True),
    ],
)
def test_the_simulators_address_and_the_links_are_compared_as_addresses(
    sim_host: str, link_host: str, warned: bool
) -> None:
    text = (ROOT / "config.toml").read_text()
    text = text.replace('host = "127.0.0.1"', f'host = "{link_host}"', 1)
    text = text.replace("\n[simulator]", f'\n[simulator]\nhost = "{sim_host}"', 1)
    cfg = parse_config(text, source="test", base_dir=ROOT)
    assert bool(simulator_link_doubts(cfg)) == warned, simulator_link_doubts(cfg)
