"""A premium answer comes from its short code or not at all (R-4.5), and `check-config` names every
premium number a CIMD2 link's `sender_prefix` cannot carry.

A CIMD2 sender is a sub-address of the SMSC interface's number: with `sender_prefix = "+48500100"`
the short code 7355 cannot be written, and the answer went from the interface's number while
`premium answers` said "sent" and the bill "from 7355"; the phone's next SMS reached a number that
is not premium. Against real peers, as tests/test_premium_answer_rules.py: the daemon with its
built-in simulator, the vote by its CIMD2 port, the answer by a real SMTP client, the CLI as its own
process.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import cast

from tests.billing_world import cli
from tests.conftest import SmtpResult
from tests.test_premium_answer_rules import premium
from tests.test_premium_loop import premium_config, reply_to, smtp

INTERFACE = "+48500100"


def with_cimd2_link(prefix: str) -> Callable[[str], str]:
    """The SMPP link to the simulator serves German numbers alone; a CIMD2 link to it, with this
    `sender_prefix`, is the default route (Polish phones vote by it)."""

    def edit(text: str) -> str:
        cimd2 = re.search(r"cimd2_port = (\d+)", text)
        assert cimd2 is not None
        link = f'[[smsc]]\nname = "cimd"\ntype = "cimd2"\nport = {cimd2[1]}\nsender_prefix = "{prefix}"\n'
        link += 'system_id = "smsgw"\npassword = "secret"\n'
        text = text.replace('type = "smpp"\n', 'type = "smpp"\nprefixes = ["+49"]\n', 1)
        return text.replace("\n[simulator]", "\n" + link + "\n[simulator]", 1)

    return edit


async def test_an_answer_the_link_would_send_from_its_own_number_is_refused(tmp_path: Path) -> None:
    async with premium(tmp_path, with_cimd2_link(INTERFACE)) as w:
        by_cimd2 = await w.vote("KP123 vote B", protocol="cimd2")
        by_smpp = await w.vote("KP123 vote C", phone="+4915112345678", protocol="smpp")
        result = cast(SmtpResult, await smtp(w.gw.port, *reply_to(by_cimd2, "Thanks for voting")))
        assert isinstance(result.error, smtplib.SMTPDataError), result.error
        said = f"{result.error.smtp_code} {result.error.smtp_error.decode()}"
        assert said.startswith("550 5.3.5 This premium SMS cannot be answered from 7355: SMSC link cimd")
        assert f"sender_prefix {INTERFACE}" in said and "no free answer was used up" in said
        assert w.answers() == [("refused", f"link cimd cannot send from 7355 (sender_prefix {INTERFACE})")]

        # The vote that came by the SMPP link is answered from the short code, as before; nothing
        # went out from the CIMD2 interface's number.
        assert (await smtp(w.gw.port, *reply_to(by_smpp, "Danke"))).error is None  # type: ignore[attr-defined]
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert [(s["protocol"], s["source"], s["text"]) for s in w.sent()] == [("smpp", "7355", "Danke")]
        listed = await cli_out(w.config, "premium", "answers")
        assert "refused: link cimd cannot send from 7355" in listed, listed


async def test_a_link_whose_interface_is_the_short_code_answers_from_it(tmp_path: Path) -> None:
    async with premium(tmp_path, with_cimd2_link("7355")) as w:
        vote = await w.vote(protocol="cimd2")
        assert (await smtp(w.gw.port, *reply_to(vote, "Thanks"))).error is None  # type: ignore[attr-defined]
        await w.gw.until(lambda: len(w.sent()) == 1)
        assert (w.sent()[0]["protocol"], w.sent()[0]["text"]) == ("cimd2", "Thanks")


def test_check_config_names_the_premium_numbers_outside_a_links_sender_prefix(tmp_path: Path) -> None:
    path, _ = premium_config(tmp_path, "smpp", 2525)
    shipped = path.read_text()
    cases = (
        (INTERFACE, "numbers 7155, 7355 are"),
        ("never", "numbers 7155, 7355 are"),
        ("7355", "number 7155 is"),
    )
    for prefix, named in cases:
        path.write_text(with_cimd2_link(prefix)(shipped))
        done = cli(path, "check-config")
        assert done.returncode == 0, done.stderr
        warned = [line for line in done.stderr.splitlines() if "premium number" in line]
        assert len(warned) == 1, done.stderr
        assert warned[0].startswith(f'smsgw: warning: [[smsc]] "cimd" sender_prefix: premium {named}')
        assert f'outside "{prefix}"' in warned[0] and "are refused (550 5.3.5)" in warned[0]
    path.write_text(with_cimd2_link("7355")(shipped).replace('sender_prefix = "7355"\n', ""))
    done = cli(path, "check-config")
    assert done.returncode == 0 and "premium number" not in done.stderr, done.stderr


async def cli_out(config: Path, *args: str) -> str:
    done = await asyncio.to_thread(cli, config, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout
