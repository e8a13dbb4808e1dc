"""`install-service`'s ProtectHome hint names a `pip install` that works.

The hint said `pip install smsgw`, which fails: smsgw is on no package index. It now names the
source directory smsgw runs from, or the one pip recorded installing it from (PEP 610), else a
placeholder to fill in.
"""

from __future__ import annotations

import json
import shlex
from importlib.metadata import PathDistribution
from pathlib import Path

from tests.test_first_day_cli import ROOT, run


def test_the_protecthome_hint_installs_from_the_source_tree_it_runs_from(tmp_path: Path) -> None:
    args = ("install-service", "--root", str(tmp_path / "root"), "--hostname", "gw.example", "--force")
    res = run(*args, "--exec", "/home/alice/venv/bin/smsgw")
    assert res.returncode == 0, res.stderr
    assert "ProtectHome=yes" in res.stdout, res.stdout
    assert f"/opt/smsgw/venv/bin/pip install {shlex.quote(str(ROOT))})" in res.stdout, res.stdout
    assert "pip install smsgw" not in res.stdout


def dist_info(tmp_path: Path, direct_url: dict[str, object] | None) -> PathDistribution:
    """An installed smsgw's metadata directory, as pip writes it."""
    info = tmp_path / "smsgw-0.2.34.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: smsgw\nVersion: 0.2.34\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return PathDistribution(info)


def test_an_installed_copy_names_the_directory_pip_installed_it_from(tmp_path: Path) -> None:
    from gateway.cli.serviceexec import recorded_source

    local = {"url": "file:///srv/src/sms%20gw", "dir_info": {}}
    assert recorded_source(dist_info(tmp_path / "a", local)) == "/srv/src/sms gw"
    remote = {"url": "https://example.com/smsgw.tar.gz", "archive_info": {}}
    assert recorded_source(dist_info(tmp_path / "b", remote)) is None
    assert recorded_source(dist_info(tmp_path / "c", None)) is None
