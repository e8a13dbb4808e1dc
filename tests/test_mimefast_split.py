"""A header block of unfolded fields is split in one pass of the regex engine (`mimefast._simple`):
the same fields as the line loop (`mimefast._fields`) makes, for every block the one pass takes;
every other block (folded fields, a line that is no field) still goes through the loop."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smtp import mimefast

_LINES = st.one_of(
    st.sampled_from(
        [
            "Subject: hello",
            "Subject:",
            "Subject:   ",
            "Subject: \t two  spaces ",
            "X-Empty:\t",
            "Subject: a: b: c",
            "To: a@b, c@d",
            " continued",
            "\tcontinued",
            ":no name",
            "Bad Name: x",
            "Subject: form\x0cfeed and\x1cfile separator",
            "Subject: 8bit \udcc5\udc82",
            "N\udcc5me: x",
            "no colon at all",
        ]
    ),
    st.text(alphabet=st.sampled_from("Ab:- \t\x0b\x0c\x1cz;="), max_size=12),
)


# How the one pass was first told apart: a pass of its own for a block of unfolded fields alone.
_UNFOLDED = re.compile(r"(?:[\041-\071\073-\176]++:[^\n]*+\n)++")
_FIELDS = re.compile(r"([\041-\071\073-\176]+):[ \t]*([^\n]*)\n")


def one_pass(block: str) -> list[tuple[str, str]] | None:
    """What `_simple` takes in one pass, or None where it hands the block to the loop; the same as
    the two passes took (the fields counted against the lines instead of a match of the whole)."""
    fast = mimefast._one_pass(block)
    if "\n " in block or "\n\t" in block or _UNFOLDED.fullmatch(block) is None:
        assert fast is None
    else:
        assert fast == _FIELDS.findall(block)
    return fast


@settings(max_examples=2000, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=10))
def test_one_pass_splits_as_the_loop(lines: list[str]) -> None:
    block = "\n".join(lines) + "\n"
    if "\n\n" in block or block.startswith("\n"):
        return  # not a header block: `_simple` ends the block at the first empty line
    fast = one_pass(block)
    if fast is not None:
        assert fast == mimefast._fields(block)


def test_plain_blocks_take_the_one_pass_and_others_the_loop() -> None:
    bench = (
        "From: bench@acme.example\nTo: +48600000001@sms.example.com\nSubject: Bench 1\n"
        "Message-ID: <bench-1@acme.example>\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    )
    assert one_pass(bench) == mimefast._fields(bench)
    assert one_pass(bench) is not None and len(one_pass(bench) or []) == 7
    assert one_pass("Subject: a\n folded\n") is None
    assert one_pass("Subject: a\nno field here\n") is None
    assert mimefast._fields("Subject: a\n folded\n") == [("Subject", "a\n folded")]
