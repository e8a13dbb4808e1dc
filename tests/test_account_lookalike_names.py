"""`smsgw account add` beside an account whose name reads alike: `rivaI` (a capital I) beside
`rival`, `ACME0` beside `ACMEO`. Only names differing in case were warned of; the CLI in another
process over a real SQLite file, as an operator runs it."""

from __future__ import annotations

from pathlib import Path

from tests.billing_world import cli, prepare
from tests.conftest import free_port


def test_a_name_read_alike_is_warned_of_as_a_name_differing_in_case(tmp_path: Path) -> None:
    config, _cfg = prepare(tmp_path, free_port(), last_billed=None, traffic={"rival": [], "GL0BEX": []})
    said = {}
    for name in ("rivaI", "riva1", "Rival", "GLOBEX", "rival2", "Globe"):
        res = cli(config, "account", "add", name)
        assert res.returncode == 0, (name, res.stderr)
        said[name] = " ".join(res.stderr.split())
    read_alike = "read alike (I, l and 1, O and 0 are easily mistaken)"
    assert said["rivaI"] == (
        f"smsgw: warning: account 'rival' exists, its name {read_alike}: 'rivaI' is another account"
        " (its own users, limits and billing file); if it was a typo: smsgw account remove rivaI"
    ), said
    assert f"its name {read_alike}: 'riva1' is another account" in said["riva1"], said
    assert f"account 'GL0BEX' exists, its name {read_alike}" in said["GLOBEX"], said
    # A name differing in case only is said so, before one read alike (`rivaI` is there by now).
    assert "account 'rival' exists, its name differing in case only" in said["Rival"], said
    assert said["rival2"] == said["Globe"] == "", said
