"""Small answers of an administrator's first day that said too little or the wrong thing: each
command run as the admin runs it (the real CLI in a subprocess, a real SQLite file in tmp_path)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import free_port, unwritable
from tests.test_config_checks import EXIT_CONFIG, config_file, smsgw


def test_a_state_dir_that_is_a_dangling_link_is_said_as_such(tmp_path: Path) -> None:
    # check-config passed it, and `run` stopped with a bare "No such file or directory: .../smsgw.pid".
    # Exit 1, not 3: a disk mounted late (`nofail`, network storage) is waited for, as the unit
    # restarts the service on 1; on 3 it had stayed stopped once the disk came.
    config = config_file(tmp_path)
    (tmp_path / "state").symlink_to(tmp_path / "nowhere")
    state, nowhere = tmp_path / "state", tmp_path / "nowhere"
    said = (
        f"[gateway] state_dir: {state} is a link to {nowhere}, which does not exist (a disk not mounted"
        " yet?); mount it, create that directory or name another state_dir"
    )
    for command in ("check-config", "run"):
        res = smsgw("--config", str(config), command)
        assert res.returncode == 1 and said in " ".join(res.stderr.split()), (command, res.stderr)


def test_an_operators_link_without_a_password_is_warned_of(tmp_path: Path) -> None:
    # It passed check-config; `smsgw status` said later that the SMSC refused the login.
    config = config_file(tmp_path, ('name = "main"', 'name = "main"\nhost = "192.0.2.10"'))
    text = config.read_text()
    for line in [line for line in text.splitlines() if line.startswith("password")]:
        text = text.replace(line + "\n", "")
    config.write_text(text)
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    assert '[[smsc]] "main" password: neither password nor password_file is set' in res.stderr, res.stderr


def test_a_key_in_another_table_is_said_with_the_table_it_belongs_in(tmp_path: Path) -> None:
    # `admin_address` under [gateway] was only "unknown key"; `fallback` under [replies] got no
    # "did you mean" (too far from fallback_address for the spelling match).
    config = config_file(tmp_path, ("[gateway]\n", '[gateway]\nadmin_address = "it@acme.example"\n'))
    config.write_text(config.read_text() + '\n[replies]\nfallback = "it@acme.example"\n')
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG, res.stderr
    assert "[gateway] admin_address: unknown key here: it belongs under [mail]" in res.stderr, res.stderr
    assert "[replies] fallback: unknown key (did you mean fallback_address?)" in res.stderr, res.stderr
    # A key of a list of tables too: `window` under [gateway] was a bare "unknown key".
    config.write_text(config.read_text().replace("[gateway]\n", "[gateway]\nwindow = 5\n", 1))
    res = smsgw("--config", str(config), "check-config")
    assert "[gateway] window: unknown key here: it belongs under [[smsc]]" in res.stderr, res.stderr


def test_a_port_over_65535_is_said_as_that(tmp_path: Path) -> None:
    # "a listen address must be HOST:PORT such as ..." for an address of that very shape.
    config = config_file(tmp_path)
    text = config.read_text()
    listen = next(line for line in text.splitlines() if line.startswith("listen = "))
    config.write_text(text.replace(listen, 'listen = "127.0.0.1:99999"', 1))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == EXIT_CONFIG and "port 99999 is over 65535" in res.stderr, res.stderr


def test_a_simulator_log_that_cannot_be_written_is_warned_of(tmp_path: Path) -> None:
    # It passed check-config; the daemon then logged sim.log_write_failed and sim.owed_not_kept.
    locked = tmp_path / "locked"
    locked.mkdir()
    simulator = f'[simulator]\nenabled = true\nlog = "{locked}/sim.jsonl"\n'
    config = config_file(tmp_path, ("[simulator]\nenabled = false\n", simulator))
    res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0 and "[simulator] log" not in res.stderr, res.stderr
    with unwritable(locked):  # as a read-only mount is to the service
        res = smsgw("--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    assert f"[simulator] log: {locked} cannot be written in" in res.stderr, res.stderr
    assert "keeps no report it owes" in res.stderr


async def test_check_config_names_a_listener_port_another_program_holds(tmp_path: Path) -> None:
    # "config OK" while the port was taken; `run` then stopped on it. Tried only with no daemon on
    # the state directory: a running daemon holds its own ports.
    import asyncio
    import signal
    import socket

    from tests.test_process import start_daemon

    smtp = free_port()
    config = config_file(tmp_path)
    text = config.read_text()
    listen = next(line for line in text.splitlines() if line.startswith("listen = "))
    config.write_text(text.replace(listen, f'listen = "127.0.0.1:{smtp}"', 1))
    (tmp_path / "state").mkdir(exist_ok=True)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", smtp))
        other.listen()
        res = await asyncio.to_thread(smsgw, "--config", str(config), "check-config")
    assert res.returncode == 0, res.stderr
    said = f'cannot listen on [smtp] listen = "127.0.0.1:{smtp}": the port is already in use (another smsgw'
    assert said in res.stderr, res.stderr
    daemon = await start_daemon(config, smtp)
    try:
        res = await asyncio.to_thread(smsgw, "--config", str(config), "check-config")
        assert res.returncode == 0 and "already in use" not in res.stderr, res.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
