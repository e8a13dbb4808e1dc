"""`check-config` says when a CIMD2 link to an operator is given a window above 1.

CIMD2 waits for each answer unless the operator allows a window; a CIMD2 link without `window` sends
one submit at a time. The shipped config's link says `window = 10` (for SMPP), and its comment invites
`type = "cimd2"`: an admin who changed the type alone pipelined ten submits at an SMSC that may answer
the extra ones with errors or drop the session, and check-config said "Config OK". Now it says so,
naming the link, and `docs/config.md` gives the CIMD2 default. `smsgw check-config` as a real process.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import config_text
from tests.test_config_checks import smsgw, write

OPERATOR = "192.0.2.10"  # an address, not a name: nothing to resolve, and not this machine


def cimd2_config(tmp_path: Path, window_line: str, host: str = OPERATOR) -> Path:
    text = config_text(tmp_path, smsc_port=9971)
    text = text.replace('type = "smpp"\nport = 9971\n', f'type = "cimd2"\nhost = "{host}"\nport = 9971\n', 1)
    assert 'type = "cimd2"' in text
    return write(tmp_path, text.replace("window = 10\n", window_line, 1))


def test_a_cimd2_operator_link_with_a_window_is_named(tmp_path: Path) -> None:
    res = smsgw("--config", str(cimd2_config(tmp_path, "window = 10\n")), "check-config")
    assert res.returncode == 0, res.stderr  # a warning, not a refusal: some operators allow a window
    assert (
        '[[smsc]] "main" window: 10 submits at once on a CIMD2 link; CIMD2 waits for each answer (1)'
        " unless the operator allows a window: take the line out for 1, or keep it if the operator agreed"
        " to 10"
    ) in res.stderr + res.stdout


def test_no_word_without_the_key_or_for_a_local_test_smsc(tmp_path: Path) -> None:
    for path in (
        cimd2_config(tmp_path, ""),  # the CIMD2 default: 1
        cimd2_config(tmp_path, "window = 1\n"),
        cimd2_config(tmp_path, "window = 10\n", host="127.0.0.1"),  # the simulator takes a window
    ):
        res = smsgw("--config", str(path), "check-config")
        assert res.returncode == 0 and "CIMD2 link" not in res.stderr + res.stdout, res.stderr


def test_the_config_reference_gives_the_cimd2_default() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    assert "(a CIMD2 link without the key: 1, stop-and-wait)" in docs
