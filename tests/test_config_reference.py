"""docs/config.md lists every config key with its default and meaning, generated from the model."""

from __future__ import annotations

from pathlib import Path

from gateway import configdoc

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_has_a_meaning() -> None:
    assert configdoc.missing() == [], "add these to gateway/configdoc.py MEANINGS"


def test_the_reference_page_is_current() -> None:
    page = (ROOT / "docs" / "config.md").read_text()
    assert page == configdoc.render(), "run: python -m gateway.configdoc > docs/config.md"
    for key in ("relay_username", "relay_starttls", "fallback_address", "timezone", "queue_high_water",
                "auth_max_failures", "enquire_link_seconds"):  # fmt: skip
        assert f"| `{key}` |" in page
