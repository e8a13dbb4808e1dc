"""A config value of the wrong kind is said in the admin's words: the key with its table, what it
takes and what was given. `port = "2775"` said `port: Input should be a valid integer`, which does
not tell a new admin that the quotes are the fault, and an unknown table (`[reply]`) got no
"did you mean" while a misspelt key inside a table did."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, parse_config
from tests.test_config_checks import EXIT_CONFIG, shipped, smsgw, write

LINK = (
    'name = "operator"\ntype = "smpp"\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "smsgw"\npassword = "x"\n'
)


def refused(*changes: tuple[str, str], extra: str = "") -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(shipped(*changes) + extra, source="config.toml")
    return str(caught.value)


def test_check_config_says_the_quoted_port_and_the_single_domain_in_plain_words(tmp_path: Path) -> None:
    text = shipped(('domains = ["sms.example.com"]', 'domains = "sms.example.com"'))
    text += "\n[[smsc]]\n" + LINK.replace("port = 2775", 'port = "2775"')
    res = smsgw("--config", str(write(tmp_path, text)), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    port = '[[smsc]] "operator" port: give a whole number without quotes (port = 2775), not the text "2775"'
    domains = '[gateway] domains: give a list, domains = ["sms.example.com"], not a single text'
    assert port in res.stderr and domains in res.stderr, res.stderr
    assert "Input should" not in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("validity_hours = 24", 'validity_hours = "24h"',
         '[gateway] validity_hours: give a number without quotes (validity_hours = 24), not the text "24h"'),
        ("subject_max = 30", "subject_max = 30.5",
         "[gateway] subject_max: give a whole number (subject_max = 30), not the number 30.5"),
        ("enabled = true\nlisten", 'enabled = "ja"\nlisten',
         '[web] enabled: give true or false without quotes (enabled = true), not the text "ja"'),
        ('host = "127.0.0.1"\nport = 2775', "host = 127\nport = 2775",
         '[[smsc]] "simulator" host: give a text in quotes (host = "127"), not the number 127'),
        ('domains = ["sms.example.com"]', 'domains = ["sms.example.com", 5]',
         '[gateway] domains item 2: give a text in quotes ("5"), not the number 5'),
        ('domains = ["sms.example.com"]', "domains = []",
         "[gateway] domains: give at least 1 item, not an empty list"),
        ("subject_max = 30", "subject_max = -1", "[gateway] subject_max: give 0 or more, not the number -1"),
        ("max_parts = 10", "max_parts = 300", "[gateway] max_parts: give 255 or less, not the number 300"),
        ('type = "smpp"', 'type = "smp"',
         '[[smsc]] "simulator" type: give "smpp" or "cimd2", not the text "smp"'),
        ('name = "simulator"\n', "", "[[smsc]] #1 name: required, and missing (add name = ...)"),
        ("[[smsc]]", "[smsc]",
         "[smsc]: write [[smsc]] (double brackets: a list, one [[smsc]] per entry), not [smsc]"),
        ("[gateway]", "[[gateway]]", "[gateway] is one table: write [gateway], not [[gateway]]"),
        ("[gateway]\n", "domains = []\n[gateway]\n",
         "unknown key 'domains' above the first table: it belongs under [gateway]"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_kind_names_its_table_what_it_takes_and_what_was_given(
    old: str, new: str, said: str
) -> None:
    message = refused((old, new))
    assert said in message, message
    assert "Input should" not in message and "Field required" not in message, message


def test_an_entry_of_a_list_of_tables_in_a_section_is_named_too() -> None:
    extra = '\n[[premium.number]]\nnumber = 7455\nprice = "4.00"\ncommission = "1.40"\n'
    message = refused(extra=extra)
    said = '[[premium.number]] #1 number: give a text in quotes (number = "7455"), not the number 7455'
    assert said in message, message


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("[replies]", "[reply]", "unknown table [reply] (did you mean [replies]?)"),
        ("[web]", "[webb]", "unknown table [webb] (did you mean [web]?)"),
        ("[[smsc]]", "[[smsx]]", "unknown table [[smsx]] (did you mean [[smsc]]?)"),
        ("[simulator]", "[[simulators]]", "unknown table [[simulators]] (did you mean [simulator]?)"),
    ],
)  # fmt: skip
def test_an_unknown_table_gets_the_table_it_most_likely_meant(old: str, new: str, said: str) -> None:
    assert said in refused((old, new))


def test_an_unknown_table_nothing_like_ours_is_named_without_a_guess() -> None:
    message = refused(extra="\n[frobnicate]\nx = 1\n")
    assert "unknown table [frobnicate]" in message and "did you mean" not in message, message


def test_the_good_messages_stay() -> None:
    # A misspelt key in a named entry, a key that moved, and a section's own check keep their words.
    message = refused(extra="\n[[smsc]]\n" + LINK.replace("port = 2775", "prot = 2775"))
    assert "unknown key 'prot' in [[smsc]] \"operator\" (did you mean 'port'?)" in message, message
    assert "key 'mail.fallback_address' has moved: use [replies] fallback_address" in refused(
        ("[mail] ", '[mail]\nfallback_address = "a@example.com"\n')
    )
    message = refused(("validity_hours = 24 ", "validity_hours = 721 "))
    assert "gateway.validity_hours: must be at most 720 hours" in message, message


def test_a_nested_list_of_tables_written_single_is_named_by_its_whole_header() -> None:
    """`[premium.number]` was told to be `[[number]]`, an unknown table."""
    extra = '\n[premium.number]\nnumber = "7455"\nprice = "4.00"\ncommission = "1.40"\n'
    message = refused(extra=extra)
    assert "[premium.number]: write [[premium.number]] (double brackets" in message, message
