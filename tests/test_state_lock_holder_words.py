"""A command holding the state lock is named to whoever waits for it by its words (`statelock.
command_words`): they were joined raw, so an argument's line break (a `send --text` of two lines)
broke the message's line in two and its log line showed `\\x0a`. Its lock file is read whole, however
wide the letters of those words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import statelock
from tests.test_sudo_full_path import ROOT


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


def test_the_config_is_left_out_as_the_parser_reads_it() -> None:
    # The holder's words had their own reading of --config: an abbreviation (`--conf=`) or `-cFILE`
    # stayed in, and a text after the command that is "-c" lost the word after it.
    assert statelock.command_words(["--conf=/etc/x.toml", "billing", "run"]) == "billing run"
    assert statelock.command_words(["-c/etc/x.toml", "billing", "run"]) == "billing run"
    said = statelock.command_words(["send", "--to", "601123456", "--text", "-c", "x"])
    assert said == "send --to 601123456 --text -c x", said


class Waiter:
    """What a starting daemon tells systemd and its log while a command's upgrade holds the lock."""

    def __init__(self) -> None:
        self.told: list[tuple[int | None, str]] = []

    def waiting(self, pid: int | None, upgrading: str) -> None:
        self.told.append((pid, upgrading))

    def waited(self) -> None:
        pass


# Takes the state lock for an upgrade in the directory its first argument names, with the command's
# words its second, says so, and holds it until its input ends.
HOLD = (
    "import sys\nfrom pathlib import Path\nfrom gateway import statelock\n"
    "statelock.upgrade_lock(Path(sys.argv[1]), sys.argv[2])\nprint(flush=True)\nsys.stdin.read()"
)


def test_a_command_upgrading_under_long_words_of_wide_letters_is_waited_for_by_name(tmp_path: Path) -> None:
    # The lock file was read to its 200th byte: words of about 60 characters of 4 bytes each lost their
    # line's end, so a starting daemon took the holder for another daemon and refused to start
    # ("smsgw is already running") instead of waiting for the upgrade, and named no command.
    command = "smsgw " + statelock.command_words(["send", "\U0001f600" * 100])
    assert len(command.encode()) > 200 and command.endswith("..."), command
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "\n"
            waiter = Waiter()
            with (
                pytest.raises(statelock.UpgradeOutlasted) as raised,
                statelock.held(tmp_path, wait=0.3, waiter=waiter),
            ):
                pass
        finally:
            holder.communicate("")
    assert raised.value.pid == holder.pid and raised.value.upgrading == command, str(raised.value)
    assert waiter.told and set(waiter.told) == {(holder.pid, command)}, waiter.told
