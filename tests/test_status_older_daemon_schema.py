"""`smsgw status` of a new smsgw beside an older daemon across a schema change.

README promises `running an older smsgw` (or `running 0.2.30, pid N, installed ...: restart it`) until the
restart; across a schema change status printed nothing on stdout, only the refusal on stderr, exit 1.
"""

from __future__ import annotations

import json

import gateway
from tests.test_account_show import CLI
from tests.test_process import smsgw
from tests.test_restart_words import no_unit as no_unit  # fixture
from tests.test_restart_words import older_daemon, older_schema


def test_status_across_a_schema_change_prints_the_daemon_line_readme_promises(
    cli: CLI, no_unit: None
) -> None:
    older_schema(cli)
    with older_daemon(cli, None) as pid:
        text = smsgw(cli.path, "status")
        shown = smsgw(cli.path, "status", "--json")
    with older_daemon(cli, "0.2.30") as versioned:
        named = smsgw(cli.path, "status")
    assert text.returncode == 1 and "restart it on this version first" in text.stderr, text.stderr
    assert f"daemon    running an older smsgw (its status names no version), pid {pid}" in text.stdout, text
    assert named.returncode == 1
    line = f"daemon    running 0.2.30, pid {versioned}, installed {gateway.__version__}: restart it ("
    assert line in named.stdout, named
    assert json.loads(shown.stdout)["daemon"]["state"] == "running", shown.stdout
