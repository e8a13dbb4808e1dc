"""check-config on prefixes that can never match, and on an exclusive link's prefix another link shares.

Defects: a prefix no number can start with (`+060`: no country code starts with 0; one longer than the
15 digits of E.164) was taken, and routed nothing; and a link not exclusive listing a prefix an
exclusive link lists (every link listing it takes its numbers) went unsaid. Now the first are refused,
naming the link and the key, and the second warned of. The CLI as the admin runs it, on config files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.common import EXIT_CONFIG
from tests.conftest import config_text, free_port, smsc_link
from tests.test_cli_errors import run, write_config

NEVER = {  # the prefix: what the refusal says of it
    "+060": "prefix '+060' can match no number: no country code starts with 0",
    "+4860112345678901": "prefix '+4860112345678901' can match no number: it is longer than 15 digits",
}


@pytest.mark.parametrize("prefix", NEVER)
def test_check_config_refuses_a_prefix_no_number_can_match(tmp_path: Path, prefix: str) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra=f'prefixes = ["+48", "{prefix}"]')
    res = run(write_config(tmp_path, text), "check-config")
    assert res.returncode == EXIT_CONFIG, (res.stdout, res.stderr)
    assert '[[smsc]] "main" prefixes' in res.stderr and NEVER[prefix] in res.stderr, res.stderr


def test_check_config_takes_the_longest_prefix_a_number_can_start_with(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra='prefixes = ["+486011234567890"]')
    res = run(write_config(tmp_path, text), "check-config")
    assert res.returncode == 0, (res.stdout, res.stderr)


def test_check_config_warns_of_an_exclusive_prefix_another_link_shares(tmp_path: Path) -> None:
    text = config_text(tmp_path, smsc_port=free_port(), smsc_extra='prefixes = ["+4860"]\nexclusive = true')
    text += smsc_link("other", free_port(), 'prefixes = ["+4860", "+4850"]')
    text += smsc_link("fallback", free_port())
    res = run(write_config(tmp_path, text), "check-config")
    assert res.returncode == 0, (res.stdout, res.stderr)
    said = " ".join((res.stdout + res.stderr).split())
    assert (
        '[[smsc]] "other" prefixes: "+4860" is also the exclusive link "main"\'s prefix: its numbers leave'
        ' by either link ("other" is not exclusive)' in said
    ), said
    assert '"+4850" is also' not in said, said


def test_check_config_warns_of_a_longer_prefix_under_an_exclusive_one(tmp_path: Path) -> None:
    # "+4869" exclusive on main, "+48691" plain on other: +48691… left by other first (the longer
    # prefix wins), which the doubt's rule, equal prefixes only, never said. A bind of main's own SMSC
    # account under it or listing it too ("spare") is that operator's all the same: no word of it.
    text = config_text(
        tmp_path,
        smsc_port=free_port(),
        smsc_extra='prefixes = ["+4869"]\nexclusive = true\nsmsc_account = "a"',
    )
    text += smsc_link("other", free_port(), 'prefixes = ["+486", "+48691"]')
    text += smsc_link("spare", free_port(), 'prefixes = ["+48692", "+4869"]\nsmsc_account = "a"')
    text += smsc_link("fallback", free_port())
    res = run(write_config(tmp_path, text), "check-config")
    assert res.returncode == 0, (res.stdout, res.stderr)
    said = " ".join((res.stdout + res.stderr).split())
    assert (
        '[[smsc]] "other" prefixes: "+48691" lies under the exclusive link "main"\'s "+4869": numbers'
        ' starting +48691 leave by "other" first (the longer prefix), then by "main"; take the prefix out'
        ' if they are "main"\'s alone, or make "other" exclusive to send them by it alone'
    ) in said, said
    assert '"+486" lies' not in said and '"spare" prefixes' not in said, said
