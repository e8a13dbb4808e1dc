"""`account set ACME --sender +48 500 100 200` answered "a value with spaces goes in quotes: --sender
'+48 500 100 200'", and the quoted form was then refused: "looks like a number: write it in digits
only". A number as people write it is taken in digits, as `send`, the queue and RCPT take a phone's."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import config_text
from tests.test_process import smsgw


def test_the_quoted_sender_the_usage_error_offers_is_taken_as_the_number(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    assert smsgw(config, "account", "add", "ACME").returncode == 0
    unquoted = smsgw(config, "account", "set", "ACME", "--sender", "+48", "500", "100", "200")
    assert unquoted.returncode != 0
    assert "a value with spaces goes in quotes: --sender '+48 500 100 200'" in unquoted.stderr, (
        unquoted.stderr
    )
    quoted = smsgw(config, "account", "set", "ACME", "--sender", "+48 500 100 200")
    assert quoted.returncode == 0, quoted.stderr
    added = smsgw(config, "account", "add", "BETA", "--sender", "+48-500-100-201")
    assert added.returncode == 0, added.stderr
    shown = smsgw(config, "account", "list").stdout
    assert "+48500100200" in shown and "+48500100201" in shown, shown
    # A name with digits stays a name; one that is no number is still refused as before.
    assert smsgw(config, "account", "set", "ACME", "--sender", "Shop 24").returncode == 0
    assert "Shop 24" in smsgw(config, "account", "show", "ACME").stdout
