"""A config value of the wrong kind is said in the admin's words: the key with its table, what it
takes and what was given. `port = "2775"` said `port: Input should be a valid integer`, which does
not tell a new admin that the quotes are the fault, and an unknown table (`[reply]`) got no
"did you mean" while a misspelt key inside a table did."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config
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
         "domains: unknown key above the first table: it belongs under [gateway]"),
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
    # A misspelt key in a named entry, a key that moved, and a section's own check: each names its place
    # as the file writes it, then what is wrong.
    message = refused(extra="\n[[smsc]]\n" + LINK.replace("port = 2775", "prot = 2775"))
    assert '[[smsc]] "operator" prot: unknown key (did you mean port?)' in message, message
    assert "[mail] fallback_address: has moved: use [replies] fallback_address" in refused(
        ("[mail] ", '[mail]\nfallback_address = "a@example.com"\n')
    )
    message = refused(("validity_hours = 24 ", "validity_hours = 721 "))
    assert "[gateway] validity_hours: must be at most 720 hours" in message, message


def test_a_nested_list_of_tables_written_single_is_named_by_its_whole_header() -> None:
    """`[premium.number]` was told to be `[[number]]`, an unknown table."""
    extra = '\n[premium.number]\nnumber = "7455"\nprice = "4.00"\ncommission = "1.40"\n'
    message = refused(extra=extra)
    assert "[premium.number]: write [[premium.number]] (double brackets" in message, message


SIM = "[simulator]                     # the built-in SMSC; set enabled = false with a real operator link\n"


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (SIM + "enabled = true", SIM + 'enabled = "on"',
         '[simulator] enabled: give true or false without quotes (enabled = true), not the text "on"'),
        (SIM + "enabled = true", SIM + 'enabled = "yes"',
         '[simulator] enabled: give true or false without quotes (enabled = true), not the text "yes"'),
        (SIM + "enabled = true", SIM + 'enabled = "1"',
         '[simulator] enabled: give true or false without quotes (enabled = true), not the text "1"'),
        (SIM + "enabled = true", SIM + "enabled = 1",
         "[simulator] enabled: give true or false (enabled = true), not the number 1"),
        ("[mail] ", '[mail]\nrelay_starttls = "false"\n',
         "[mail] relay_starttls: give true or false without quotes (relay_starttls = true),"
         ' not the text "false"'),
        ("window = 10 ", "window = true ",
         '[[smsc]] "simulator" window: give a whole number (window = 10), not true'),
        ("window = 10 ", "window = 1.0 ",
         '[[smsc]] "simulator" window: give a whole number (window = 1), not the number 1.0'),
        ("window = 10 ", 'window = "5" ',
         '[[smsc]] "simulator" window: give a whole number without quotes (window = 5), not the text "5"'),
        ("max_message_bytes = 1048576 ", "max_message_bytes = 1048576.0 ",
         "[smtp] max_message_bytes: give a whole number (max_message_bytes = 1048576),"
         " not the number 1048576.0"),
        ("validity_hours = 24 ", "validity_hours = true ",
         "[gateway] validity_hours: give a number (validity_hours = 24), not true"),
        ("validity_hours = 24 ", 'validity_hours = "24" ',
         '[gateway] validity_hours: give a number without quotes (validity_hours = 24), not the text "24"'),
    ],
)  # fmt: skip
def test_a_yes_no_or_number_key_takes_only_its_own_kind(
    tmp_path: Path, old: str, new: str, said: str
) -> None:
    """Read leniently, `enabled = "on"` (or "yes", "1", 1) was true and `window = true` 1: an admin's
    slip silently meant something. The file is loaded as the daemon loads it."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, shipped((old, new))))
    assert said in str(caught.value), str(caught.value)


def test_a_number_key_still_takes_a_whole_number_and_a_path_key_its_text(tmp_path: Path) -> None:
    text = shipped(
        ("validity_hours = 24 ", "validity_hours = 12 "), ('state_dir = "var" ', 'state_dir = "data" ')
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.gateway.validity_hours == 12.0 and isinstance(cfg.gateway.validity_hours, float)
    assert cfg.state_dir == tmp_path / "data" and cfg.simulator.log == Path("var/simulator.jsonl")


def test_every_error_of_a_listing_names_its_place_as_the_file_writes_it(tmp_path: Path) -> None:
    """pydantic's kinds and our own checks were said two ways in one listing (`gateway.validity_hours:
    ...` beside `[[smsc]] "simulator" port: ...`); check-config says them all as the file writes them."""
    text = shipped(
        ("validity_hours = 24 ", "validity_hours = 721 "),
        ("port = 2775\n", 'port = "x"\nprot = 1\n'),
        ("[smtp]", '[smtp]\ntls_cert_file = "cert.pem"'),
        ("[mail] ", '[mail]\nrelay_password = "a"\nrelay_password_file = "b"\n'),
        ("pool = [] ", 'pool = ["1"] '),
    )
    res = smsgw("--config", str(write(tmp_path, text)), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    for said in (
        "[gateway] validity_hours: must be at most 720 hours",
        '[[smsc]] "simulator" port: give a whole number without quotes, not the text "x"',
        '[[smsc]] "simulator" prot: unknown key (did you mean port?)',
        "[smtp]: give both tls_cert_file and tls_key_file, or neither",
        "[mail]: give relay_password or relay_password_file, not both",
        "[replies] pool: pool number '1' must be an E.164 number",
    ):
        assert said in res.stderr, res.stderr
    assert "gateway." not in res.stderr and "smtp:" not in res.stderr and "mail:" not in res.stderr, (
        res.stderr
    )
