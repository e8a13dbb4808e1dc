"""A start with no operator at all says that the panel has no operator login, and how to make one.

The config `smsgw install-service` writes has its [[account]] block commented out: the daemon served
the panel, made no first operator (there was no user to make it of) and said nothing, so the admin
met a login page nobody could pass. `web.no_operator` was logged only once an operator had existed.
The written config runs here as the service would run it; the commands the warning names are run
as written, and the next start says nothing more.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.fakes.ports import free_port
from tests.test_install_panel import CLI, ROOT, install, smsgw


def written_config(tmp_path: Path) -> tuple[Path, int]:
    """install-service's config, its state dir and ports moved to where a test may have them."""
    config, _ = install(tmp_path)
    panel = free_port()
    text = config.read_text()
    text = text.replace("/var/lib/smsgw", str(tmp_path / "state"))
    text = text.replace('"0.0.0.0:25"', f'"127.0.0.1:{free_port()}"')
    text = text.replace('"0.0.0.0:587"', f'"127.0.0.1:{free_port()}"')
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{panel}"')
    config.write_text(text)
    (config.parent / "smsc-password").write_text("secret\n")
    (config.parent / "smsc-password").chmod(0o600)
    (tmp_path / "state").mkdir(exist_ok=True)
    return config, panel


def start_and_stop(config: Path, panel: int, log: Path) -> list[dict[str, object]]:
    """Run the daemon until its panel answers, stop it; the events it logged."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "--config", str(config), "run", "--json-logs"], cwd=ROOT, stdout=out, stderr=out
        )
    try:
        for _ in range(300):  # a hang guard, not a timing assertion
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{panel}/login", timeout=5) as r:
                    assert r.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            raise AssertionError(log.read_text()[-3000:])
    finally:
        proc.terminate()
        proc.wait(60)
    events = []
    for line in log.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def test_a_start_with_no_user_at_all_says_the_panel_has_no_operator_and_how_to_make_one(
    tmp_path: Path,
) -> None:
    config, panel = written_config(tmp_path)
    events = start_and_stop(config, panel, tmp_path / "daemon.log")
    (said,) = [e for e in events if e["event"] == "web.no_operator"]
    assert said["level"] == "warning"
    note = str(said["note"])
    assert note.startswith("nobody can use the panel's operator pages; there is no user yet:"), note
    for command in (
        "smsgw account add NAME",
        "smsgw user add EMAIL --account NAME",
        "smsgw user set EMAIL --role operator",
        "smsgw user passwd EMAIL",
    ):
        assert f"`{command}`" in note, note
    # The commands as the note names them make an operator. Without its password yet nobody can log
    # in as it: the next start says so; once it has one, a start says nothing of it.
    email = "admin@acme.example"
    for args in (
        ("account", "add", "acme"),
        ("user", "add", email, "--account", "acme"),
        ("user", "set", email, "--role", "operator"),
    ):
        done = smsgw("--config", str(config), *args)
        assert done.returncode == 0, done.stderr
    events = start_and_stop(config, panel, tmp_path / "daemon2.log")
    (said,) = [e for e in events if e["event"] == "web.no_operator"]
    note = str(said["note"])
    assert note == (
        "nobody can use the panel's operator pages; no operator has a password:"
        " `smsgw user passwd EMAIL` gives one"
    ), note
    done = subprocess.run(
        [*CLI, "--config", str(config), "user", "passwd", email],
        input="a-long-operator-password\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = start_and_stop(config, panel, tmp_path / "daemon3.log")
    assert not [e for e in events if e["event"] == "web.no_operator"], events
