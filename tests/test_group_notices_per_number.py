"""A group mail's confirmation and "shortened" notice describe each number's own SMS (R-1.9).

A number in a conversation gets the typed answer alone, without the subject; the other numbers of the
same mail get subject and text. Both notices used the plan of the mail's whole text for every number:
the conversation's phone was said to get 2 UCS-2 parts when it got 1 GSM part, and to have lost text
it had whole. Over real SMTP against the daemon with its simulator; the notices read at a real sink.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.conftest import DOMAIN, Running, mail, running_gateway, smtp_sink
from tests.fakes.ports import free_port
from tests.test_two_way import two_way_config

A, B = "+48601123456", "+48601123457"


async def _open_conversation(gw: Running, subject: str) -> None:
    """The first mail to A under `subject`, delivered: its phone knows the topic, so a Reply to that
    mail (from Sent Items, "RE: <subject>", with B added) is an answer for A and goes without it."""
    first = mail(f"601123456@{DOMAIN}", "Opening note.", subject, Message_ID="<first@acme.example>")
    assert (await gw.send(first)).error is None
    await gw.until(lambda: gw.states() == ["delivered"])


async def _send_to_both(gw: Running, subject: str, body: str) -> None:
    second = mail([f"601123456@{DOMAIN}", f"601123457@{DOMAIN}"], body, f"RE: {subject}")
    second["Message-ID"] = "<second@acme.example>"
    second["In-Reply-To"] = "<first@acme.example>"
    assert (await gw.send(second)).error is None


def _received(gw: Running, number: str) -> str:
    """The text the simulator got for `number` in the second mail, its parts in their order."""
    core = gw.daemon.simulator.core
    records: list[dict[str, Any]] = [r for r in core.records if r["destination"] == number]
    if number == A:
        records = records[1:]  # the first mail's SMS
    records.sort(key=lambda r: r["concat"]["seq"] if r["concat"] else 0)
    return "".join(str(r["text"]) for r in records)


def _notices(sink: Any, kind: str) -> list[str]:
    """The bodies of the notices about the second mail whose subject starts with `kind`."""
    found = []
    for _, _, raw in sink.messages:
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["In-Reply-To"] == "<second@acme.example>" and str(msg["Subject"]).startswith(kind):
            body = msg.get_body()
            assert body is not None
            found.append(body.get_content().replace("\r\n", "\n"))
    return found


async def test_the_confirmation_gives_each_number_its_own_parts_and_coding(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
        subject = "Spotkanie w środę"
        await _open_conversation(gw, subject)
        body = "Please bring the printed reports and the signed contracts for the new office, thanks a lot."
        await _send_to_both(gw, subject, body)
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 4)
        await gw.until(lambda: len(_notices(sink, "SMS accepted")) == 1)
        assert _received(gw, A) == body
        assert _received(gw, B) == f"{subject}: {body}"
        (confirmation,) = _notices(sink, "SMS accepted")
    lines = [line for line in confirmation.splitlines() if line.startswith("  +48")]
    assert lines == [
        f"  {A}: 1 SMS part(s), GSM 03.38",
        f"  {B}: 2 SMS part(s), UCS-2 (ś, ę forced UCS-2)",
    ], confirmation
    assert f"subject not sent (an answer in a conversation with {A})" in confirmation


async def test_the_shortened_notice_names_only_the_numbers_whose_text_was_cut(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
        await _open_conversation(gw, "Topic X")
        body = "n" * 1520 + "WXYZ!"  # whole in 10 GSM parts; "Topic X: " before it is not
        await _send_to_both(gw, "Topic X", body)
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 21)
        await gw.until(lambda: len(_notices(sink, "SMS")) == 2)
        assert _received(gw, A) == body
        got = _received(gw, B)
        dropped = f"Topic X: {body}"[len(got) :]
        assert got.startswith("Topic X: nnn") and dropped.endswith("Z!"), got[-20:]
        (shortened,) = _notices(sink, "SMS text was shortened")
        (confirmation,) = _notices(sink, "SMS accepted")
    assert shortened.startswith(f"Your email to {B} was longer than 10 SMS parts.\n"), shortened
    assert A not in shortened, shortened
    assert shortened.rstrip().endswith(f"\n\n{dropped}"), shortened
    lines = [line for line in confirmation.splitlines() if line.startswith("  +48")]
    assert lines == [
        f"  {A}: 10 SMS part(s), GSM 03.38",
        f"  {B}: 10 SMS part(s), GSM 03.38 (text past 10 parts)",
    ], confirmation


async def test_two_different_cuts_are_each_told_with_their_own_text(tmp_path: Path) -> None:
    relay = free_port()
    cfg = two_way_config(tmp_path, "smpp", relay_port=relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await _open_conversation(gw, "Topic Y")
        body = " ".join(f"w{i:04d}" for i in range(300))  # 1,799 characters: both texts are cut
        await _send_to_both(gw, "Topic Y", body)
        await gw.until(lambda: len(gw.daemon.simulator.core.records) == 21)
        await gw.until(lambda: len(_notices(sink, "SMS text was shortened")) == 1)
        lost = {A: body[len(_received(gw, A)) :], B: f"Topic Y: {body}"[len(_received(gw, B)) :]}
        (shortened,) = _notices(sink, "SMS text was shortened")
    assert lost[A].strip() != lost[B].strip(), lost
    paragraphs = shortened.split("Your email to ")[1:]
    assert [p.split(" ", 1)[0] for p in paragraphs] == [A, B], shortened
    for number, paragraph in zip([A, B], paragraphs, strict=True):
        preview = paragraph.split("\n\n", 1)[1].strip()
        assert preview == lost[number].strip(), (number, paragraph)
