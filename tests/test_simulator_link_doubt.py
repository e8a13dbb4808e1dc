"""A link that misses the enabled built-in simulator is warned of by `check-config` (and at start).

Changing the SMPP port takes two edits, `[[smsc]] port` and `[simulator] smpp_port`; with only the
first, the link knocked on the simulator's control port (or on nothing) for ever, and `check-config`
said `config OK`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
