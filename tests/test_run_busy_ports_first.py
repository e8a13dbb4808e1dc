"""`smsgw run` with its ports taken makes nothing first: no database, no demo account, no password.

A second `smsgw run` (another state_dir) with every port held by the first created its database,
seeded the demo account and wrote web-initial-password, then failed on the ports: a state
directory the admin had not meant to have, with an operator's password in it. The ports are now
probed before the start makes anything. The command in a subprocess, ports held by real sockets.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.conftest import config_text, free_port
from tests.test_first_day_cli import run


def test_a_start_with_every_port_taken_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as smtp, socket.socket() as submission, socket.socket() as web:
        for taken in (smtp, submission, web):
            taken.bind(("127.0.0.1", 0))
            taken.listen()
        port, sub_port, web_port = (s.getsockname()[1] for s in (smtp, submission, web))
        text = config_text(tmp_path, smsc_port=free_port(), smtp_port=port).replace(
            'submission_listen = "127.0.0.1:0"', f'submission_listen = "127.0.0.1:{sub_port}"'
        )
        config = tmp_path / "config.toml"
        config.write_text(text + f'\n[web]\nenabled = true\nlisten = "127.0.0.1:{web_port}"\n')
        config.chmod(0o640)
        res = run("--config", str(config), "run")
    assert res.returncode == 1, res.stderr
    line = " ".join(res.stderr.split())
    assert f'cannot listen on [smtp] listen = "127.0.0.1:{port}": the port is already in use' in line, line
    also = f'also in use: [smtp] submission_listen = "127.0.0.1:{sub_port}", [web] listen = "127.0.0.1:'
    also += f'{web_port}"'
    assert also in line, line
    state = tmp_path / "state"
    made = sorted(p.name for p in state.iterdir()) if state.exists() else []
    assert not {"smsgw.db", "web-initial-password"} & set(made), made
    assert "Traceback" not in res.stderr
