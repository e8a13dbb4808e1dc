"""Accounts that send from one number without a reply pool are told of (R-3.2).

Without a pool the most recent sender wins: a phone's answer goes to whoever texted it last, of
any account sending from that number. Every account added without `--sender` sends from
`[gateway] default_sender`, the demo account's number too, so a new company's customers' answers
could land in another company's mailbox, and neither `account add` nor `check-config` said so.
"""

from __future__ import annotations

from typing import Any

NOTE = "all send from +48100200300 and [replies] pool is empty"


def test_a_second_account_on_the_default_sender_is_told_and_check_config_warns(cli: Any) -> None:
    first = cli.ok("account", "add", "ACME")
    assert not any(NOTE in line for line in first)
    out = cli.ok("account", "add", "BETA")
    [note] = [line for line in out if NOTE in line]
    assert note.startswith("note: accounts ACME, BETA all send from +48100200300")
    assert "smsgw account set NAME --sender" in note
    code, _out, err = cli("check-config")
    assert code == 0 and "warning: accounts ACME, BETA all send from +48100200300" in err, err

    cli.ok("account", "set", "BETA", "--sender", "+48100200301")
    code, _out, err = cli("check-config")
    assert code == 0 and NOTE not in err and "send from" not in err, err
    out = cli.ok("account", "add", "GAMMA", "--sender", "+48100200302")
    assert not any("send from" in line for line in out)


def test_a_reply_pool_or_a_named_sender_says_nothing(cli: Any) -> None:
    text = cli.path.read_text()
    cli.path.write_text(text.replace("[replies]", '[replies]\npool = ["+48500100200..+48500100209"]', 1))
    if "[replies]" not in text:
        cli.path.write_text(text + '\n[replies]\npool = ["+48500100200..+48500100209"]\n')
    cli.ok("account", "add", "ACME")
    assert not any("send from" in line for line in cli.ok("account", "add", "BETA"))
    code, _out, err = cli("check-config")
    assert code == 0 and "send from" not in err, err


def test_one_number_written_three_ways_is_one_number(cli: Any) -> None:
    """An answer is matched to our number by its digits: accounts sending from "48100200300",
    "100200300" and the default "+48100200300" share one number, and nothing said so."""
    cli.ok("account", "add", "beta", "--sender", "48100200300")
    cli.ok("account", "add", "gamma", "--sender", "100200300")
    out = cli.ok("account", "add", "delta")
    [note] = [line for line in out if "all send from" in line]
    assert note.startswith("note: accounts beta, delta, gamma all send from"), note
    assert all(form in note for form in ("48100200300", "100200300", "+48100200300")), note
    cli.ok("account", "add", "epsilon", "--sender", "+48100200399")
    code, _out, err = cli("check-config")
    assert code == 0 and "epsilon" not in err and err.count("all send from") == 1, err
