"""The admin panel of the layout `smsgw install-service` writes: on, where the shipped config has it,
and the admin told how to reach it and where its first password is.

The written config had no [web] section, and `[web] enabled` is false by default: a packaged install
ran without the panel that the README said the shipped config runs, and nothing said so.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from gateway.config import parse_config
from tests.fakes.ports import free_port

CLI = [sys.executable, "-m", "gateway.cli"]
ROOT = Path(__file__).resolve().parents[1]


def smsgw(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def install(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "root"
    res = smsgw(
        "install-service", "--root", str(root), "--hostname", "gw.acme.example", "--exec", "/usr/bin/smsgw"
    )
    assert res.returncode == 0, res.stderr
    return root / "etc/smsgw/config.toml", res.stdout


def test_the_written_config_runs_the_panel_where_the_shipped_one_does(tmp_path: Path) -> None:
    config, said = install(tmp_path)
    written = parse_config(config.read_text(), source="written", base_dir=config.parent).web
    shipped = parse_config((ROOT / "config.toml").read_text(), source="shipped", base_dir=ROOT).web
    assert written.enabled and shipped.enabled
    assert written.listen == shipped.listen == "127.0.0.1:8080"
    # The next steps say how to reach a loopback panel from elsewhere, and where the password is.
    assert "ssh -L 8080:127.0.0.1:8080 gw.acme.example" in said
    assert "/var/lib/smsgw/web-initial-password" in said
    assert (
        "sudo -u smsgw /usr/bin/smsgw --config /etc/smsgw/config.toml user set EMAIL --role operator" in said
    )
    readme = (ROOT / "README.md").read_text()
    systemd = readme[readme.index("## Running under systemd") :]
    assert "ssh -L 8080:127.0.0.1:8080 gw.example.com" in systemd
    assert "sudo cat /var/lib/smsgw/web-initial-password" in systemd


def test_the_written_config_serves_the_panel_and_its_first_password(tmp_path: Path) -> None:
    # The written config as the service would run it, its state dir and ports moved to where a test
    # may have them, and the [[account]] block uncommented as the next steps say.
    config, _ = install(tmp_path)
    panel = free_port()
    text = config.read_text()
    text = text.replace("/var/lib/smsgw", str(tmp_path / "state"))
    text = text.replace('"0.0.0.0:25"', f'"127.0.0.1:{free_port()}"')
    text = text.replace('"0.0.0.0:587"', f'"127.0.0.1:{free_port()}"')
    text = text.replace('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{panel}"')
    text = re.sub(r"^# (\[\[account\]\]|name = |users = )", r"\1", text, flags=re.M)
    config.write_text(text)
    (config.parent / "smsc-password").write_text("secret\n")
    (config.parent / "smsc-password").chmod(0o600)
    (tmp_path / "state").mkdir()
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "--config", str(config), "run"], cwd=ROOT, stdout=out, stderr=out)
    try:
        page = None
        for _ in range(300):
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{panel}/login", timeout=5) as r:
                    page = r.status, r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert page is not None and page[0] == 200, log.read_text()[-3000:]
        first = tmp_path / "state" / "web-initial-password"
        assert first.read_text().strip(), log.read_text()[-3000:]
        assert "web.first_operator" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(60)
