"""A command holding the state lock is named to whoever waits for it by its words (`statelock.
command_words`): they were joined raw, so an argument's line break (a `send --text` of two lines)
broke the message's line in two and its log line showed `\\x0a`."""

from __future__ import annotations

from gateway import statelock


def test_a_line_break_in_an_argument_is_said_escaped_not_raw() -> None:
    said = statelock.command_words(["--config", "/etc/smsgw/config.toml", "send", "--text", "a\nb"])
    assert said == "send --text $'a\\nb'", said
    assert "\n" not in said


def test_plain_words_and_the_length_cut_stay_readable() -> None:
    assert statelock.command_words(["-c", "x.toml", "billing", "run", "--month", "2026-11"]) == (
        "billing run --month 2026-11"
    )
    long = statelock.command_words(["send", "--text", "word " * 40])
    assert len(long) <= 64 and long.endswith("...") and long.startswith("send --text 'word"), long
