"""The administrator's first day, ports: a busy port is one clear line, every busy port named in one
start, a busy simulator port naming the link that must move with it, low ports and unwritable
databases explained. Commands in a subprocess, as in test_first_day_cli.py; split from it by subject
(it was over 400 lines)."""

from __future__ import annotations

import errno
import socket
import sqlite3
from pathlib import Path

import pytest

from gateway.cli import binderror, common
from tests.conftest import config_text, free_port
from tests.test_first_day_cli import run, write_config

# ---- ports ------------------------------------------------------------------------------------


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, smtp_port=port)
        res = run("--config", str(config), "run")
    assert res.returncode == 1
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in res.stderr
    assert "a mail server" in res.stderr
    assert "Traceback" not in res.stderr and "CancelledError" not in res.stderr


def test_every_busy_port_is_named_in_one_start(tmp_path: Path) -> None:
    # The start stopped at the first busy port: with the shipped ports held by another smsgw an
    # admin learnt of the six busy ones in six starts. The free ones must not be named, nor the
    # daemon's own listeners bound before the failing one.
    with socket.socket() as smtp, socket.socket() as submission:
        for taken in (smtp, submission):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        port, sub_port = smtp.getsockname()[1], submission.getsockname()[1]
        config = write_config(tmp_path, smtp_port=port)
        text = config.read_text().replace(
            'submission_listen = "127.0.0.1:0"', f'submission_listen = "127.0.0.1:{sub_port}"'
        )
        config.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{free_port()}"\n')
        res = run("--config", str(config), "run")
    assert res.returncode == 1, res.stderr
    line = " ".join(res.stderr.split())
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in line, line
    assert line.count("in use") == 2, line
    assert f'; also in use: [smtp] submission_listen = "127.0.0.1:{sub_port}"' in line, line
    assert "[web]" not in line, line


def test_a_busy_simulator_port_names_the_link_that_must_move_with_it(tmp_path: Path) -> None:
    # The README said to move a busy port in [simulator]; moving only smpp_port left the shipped
    # `[[smsc]] "simulator"` link connecting to the old port, to whatever held it. The message was
    # also written `simulator.smpp_port = "127.0.0.1:2775"` and asked about "a mail server".
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        text = config_text(tmp_path, smsc_port=port).replace(
            "[simulator]\nenabled = false\n",
            f"[simulator]\nenabled = true\nsmpp_port = {port}\ncimd2_port = 0\ncontrol_port = 0\n",
        )
        config.write_text(text.replace('name = "main"', 'name = "simulator"'))
        config.chmod(0o640)
        res = run("--config", str(config), "run")
    assert res.returncode == 1, res.stderr
    line = " ".join(res.stderr.split())
    assert f"cannot listen on [simulator] smpp_port = {port}: the port is already in use" in line, line
    assert f'[[smsc]] "simulator" connects to this port (port = {port})' in line, line
    assert "give it the port you choose for [simulator] smpp_port too" in line, line
    assert "mail server" not in line and "another SMSC" in line, line


@pytest.mark.parametrize("key", ["smpp_port", "control_port", "cimd2_port"])
def test_simulator_run_says_which_simulator_port_is_busy(tmp_path: Path, key: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path)
        ports = {"smpp_port": 0, "control_port": 0, "cimd2_port": 0, key: port}
        lines = "".join(f"{k} = {v}\n" for k, v in ports.items())
        config.write_text(config.read_text().replace("[simulator]\n", "[simulator]\n" + lines, 1))
        res = run("--config", str(config), "simulator", "run")
    assert res.returncode == 1, res.stderr
    assert f"[simulator] {key} = {port}:" in res.stderr and "already in use" in res.stderr
    assert "mail server" not in res.stderr and "[[smsc]]" not in res.stderr  # no link connects to it
    assert "Traceback" not in res.stderr


def test_low_ports_and_unwritable_databases_are_explained() -> None:
    # Root may bind any port and write any file, so these two are checked on the wording.
    denied = OSError(errno.EACCES, "Permission denied")
    assert "CAP_NET_BIND_SERVICE" in binderror.bind_error("smtp.listen", "0.0.0.0", 25, denied)
    text = common.database_error(
        Path("/x/smsgw.db"), sqlite3.OperationalError("attempt to write a readonly database")
    )
    # No sudo line where it cannot work (no such user here): the owner to fix, and as whom it runs.
    assert "fix the owner of the state directory" in text and "smsgw" in text, text
