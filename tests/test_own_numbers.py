"""Answers to our own number in whatever form the SMSC writes it reach the conversation (R-3).

The shipped default sender +48100200300 is no number libphonenumber knows, so the form an SMSC
gives it in an MO ("48100200300" under SMPP TON 0 or 2, "100200300" national, "0048100200300" in
CIMD2) could not be read into E.164 and never equalled the conversation's "+48100200300": every
answer went to the fallback. Real mail over SMTP, the built-in simulator over SMPP and CIMD2, the
answer mail at a real SMTP sink.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.conversations.numbers import normalise, written_forms
from gateway.store.db import Store
from smsc.simulator.smpp_texts import address_fields, mo_parts
from tests.conftest import DOMAIN, STAFF, config_text, free_port, mail, running_gateway, smtp_sink
from tests.test_account_show import CLI
from tests.test_process import smsgw
from tests.test_two_way import BOB, parsed

OURS = "+48100200300"  # config.toml's default_sender, which libphonenumber rejects
PHONE = "+48601222222"
FALLBACK = "ops@acme.example"


def own_config(tmp_path: Path, protocol: str, relay: int, pool: str = "") -> Any:
    """The shipped-like setup: accounts without a sender of their own, so SMS go out from the default
    sender (tests.test_two_way's config gives each account its own); a fallback, so that an answer
    that misses its conversation is still mailed, where the test sees whom to."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(
        tmp_path,
        smsc_port=cimd2 if protocol == "cimd2" else smpp,
        relay_port=relay,
        default_sender=OURS,
        extra=f'\n[[account]]\nname = "other"\nrelay_networks = ["127.0.0.0/8"]\nusers = ["{BOB}"]\n'
        f'\n[replies]\nfallback_address = "{FALLBACK}"\npool = [{pool}]\n',
    )
    text = text.replace(f'sender = "{OURS}"\n', "", 1).replace('type = "smpp"', f'type = "{protocol}"')
    text = text.replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    cfg = parse_config(text, source="test", base_dir=tmp_path)
    assert [a.sender for a in cfg.account] == [None, None] and cfg.gateway.default_sender == OURS
    return cfg


async def answer(gw: Any, protocol: str, destination: str, ton: int | None, text: str) -> None:
    """An MO from PHONE to `destination`, SMPP with the destination TON given (the simulator's own
    `send-mo` picks 1 for "+…" and 2 for digits; TON 0 is what some SMSCs send), or CIMD2."""
    core = gw.daemon.simulator.core
    if protocol == "cimd2":
        assert await core.inject_mo(PHONE, destination, text, protocol="cimd2") == 1
        return
    session = core._pick("smpp")
    assert session is not None
    for esm, dc, sm in mo_parts(text, ref=7):
        fields = dict(address_fields(PHONE, destination), dest_addr_ton=ton, esm_class=esm, data_coding=dc)
        await session.send_part(tuple(dict(fields, short_message=sm).items()))


def mo_rows(gw: Any) -> list[tuple[str, str, str | None]]:
    rows = gw.store.db.conn.execute("SELECT destination, state, note FROM mo ORDER BY id")
    return [tuple(r) for r in rows]


def test_normalise_keeps_an_unknown_own_number_as_sent_and_own_form_maps_it() -> None:
    # The reproduction: each form stays as it came (normalise is unchanged), and is mapped to the
    # stored form of the own number it writes; a valid number is read into E.164 as before.
    from gateway.conversations.numbers import own_form

    forms = [("48100200300", 0), ("48100200300", 1), ("100200300", 2), ("0048100200300", None)]
    assert [normalise(a, "PL", ton) for a, ton in forms] == [a for a, _ in forms]
    assert [own_form(a, [OURS, "+48501000000"], "PL") for a, _ in forms] == [OURS] * 4
    assert own_form("48100200301", [OURS], "PL") is None  # another number, one digit apart
    assert own_form("0301234567", ["+49301234567"], "DE") == "+49301234567"  # trunk prefix 0 dropped
    assert normalise("48501000000", "PL", 0) == "+48501000000"  # a valid number, exactly as today


@pytest.mark.parametrize(
    ("protocol", "destination", "ton"),
    [
        ("smpp", "48100200300", 0),
        ("smpp", "48100200300", 1),
        ("smpp", "100200300", 2),
        ("smpp", "48100200300", 2),
        ("cimd2", "0048100200300", None),
        ("cimd2", "48100200300", None),
    ],
)
async def test_an_answer_to_the_default_sender_in_any_form_reaches_its_user(
    tmp_path: Path, protocol: str, destination: str, ton: int | None
) -> None:
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(own_config(tmp_path, protocol, relay)) as gw:
        core = gw.daemon.simulator.core
        first = mail(
            f"601222222@{DOMAIN}", body="Czy 10:00?", subject="Spotkanie", Message_ID="<o1@acme.example>"
        )
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        await answer(gw, protocol, destination, ton, "Tak, 10:00")
        await gw.until(lambda: len(mo_rows(gw)) == 1)  # stored and settled in one transaction
        [(stored, state, note)] = mo_rows(gw)
        assert (state, note) == ("mailed", None), stored
        await sink.wait(1)
        _, rcpts, raw = sink.messages[0]
        reply = parsed(raw)
        assert rcpts == [STAFF]
        assert reply["In-Reply-To"] == "<o1@acme.example>"
        assert reply.get_content().startswith("Tak, 10:00\n")


async def test_an_unmatched_answer_names_our_number_as_configured(tmp_path: Path) -> None:
    # No SMS went to this phone: the fallback's note names our number as the config does, not as
    # "48100200300", which read as some other number.
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(own_config(tmp_path, "smpp", relay)) as gw:
        await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
        await answer(gw, "smpp", "48100200300", 0, "Kto to?")
        await sink.wait(1)
        assert sink.messages[0][1] == [FALLBACK]
        assert parsed(sink.messages[0][2])["Subject"] == f"SMS from {PHONE} to {OURS} (no conversation)"
        [(_, state, note)] = mo_rows(gw)
        assert state == "fallback"
        assert note is not None and f"no SMS was sent to {PHONE} from {OURS} " in note


async def test_each_pool_number_in_the_smscs_form_reaches_the_user_holding_it(tmp_path: Path) -> None:
    # Two users write to one phone from a pool of unknown numbers; the phone answers each number,
    # written as TON 0 digits and as the national form: each answer reaches the user holding it.
    relay = free_port()
    cfg = own_config(tmp_path, "smpp", relay, pool='"+48100200300..+48100200301"')
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (await gw.send(mail(f"601222222@{DOMAIN}", body="Anna here", subject="A"))).error is None
        await gw.until(lambda: len(core.records) == 1)
        bob = mail(f"601222222@{DOMAIN}", body="Bob here", subject="B")
        bob.replace_header("From", BOB)
        assert (await gw.send(bob, sender=BOB)).error is None
        await gw.until(lambda: len(core.records) == 2)
        # SMPP carries each pool number without its "+" (TON 1); the SMSC's answers write it otherwise.
        by_text = {str(r["text"]).split(": ", 1)[1]: str(r["source"]).lstrip("+") for r in core.records}
        assert sorted(by_text.values()) == ["48100200300", "48100200301"]
        await answer(gw, "smpp", by_text["Bob here"], 0, "to Bob")
        await answer(gw, "smpp", by_text["Anna here"].removeprefix("48"), 2, "to Anna")
        await gw.until(lambda: len(mo_rows(gw)) == 2)
        assert [state for _, state, _ in mo_rows(gw)] == ["mailed", "mailed"]
        await sink.wait(2)
        got = {parsed(raw).get_content().split("\n")[0]: rcpts for _, rcpts, raw in sink.messages}
        assert got == {"to Bob": [BOB], "to Anna": [STAFF]}


def test_check_config_notes_own_numbers_matched_by_digits(tmp_path: Path) -> None:
    # A note on stdout, not an error: check-config passes, and says how answers to them are matched.
    # One note a number (account acme sends from the default sender's); valid numbers get none.
    path = tmp_path / "config.toml"
    raw = config_text(
        tmp_path,
        smsc_port=free_port(),
        default_sender=OURS,
        extra='\n[[account]]\nname = "shop"\nsender = "100200301"\n'
        '\n[[account]]\nname = "valid"\nsender = "48501000000"\n'
        '\n[replies]\npool = ["+48501000000", "+48100200310..+48100200319"]\n',
    )
    path.write_text(raw)
    out = smsgw(path, "check-config")
    assert out.returncode == 0, out.stderr
    notes = [line.removeprefix("note: ") for line in out.stdout.splitlines() if line.startswith("note: ")]
    # The pool sends instead of each number sender: said of each (test_check_config_stored_senders.py).
    pooled = [n.split(":")[0] for n in notes if "[replies] pool is set" in n]
    assert pooled == ["account acme", "account shop", "account valid"]
    notes = [n for n in notes if "[replies] pool is set" not in n]
    unknown = "libphonenumber knows (region PL): answers are matched by digits, in whichever of"
    assert notes == [
        f"[gateway] default_sender '{OURS}' is no number {unknown} +48100200300, 0048100200300, 48100200300"
        " or 100200300 (national) the SMSC writes",
        f"account shop: sender '100200301' is no number {unknown} +48100200301, 0048100200301, 48100200301"
        " or 100200301 (national) the SMSC writes",
        f"[replies] pool: '+48100200310', '+48100200319' are no numbers {unknown} +48100200310,"
        " 0048100200310, 48100200310 or 100200310 (national) the SMSC writes",
    ]


def test_mo_list_by_our_number_finds_it_in_every_form_the_smsc_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MOs keep the destination as the SMSC wrote it; `mo list --number +48100200300` found only the
    # rows written so, and an admin looking for the answers to that number saw one in four.
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=free_port(), default_sender=OURS))
    store = Store.open(tmp_path / "state" / "smsgw.db")
    forms = ["+48100200300", "48100200300", "0048100200300", "100200300"]
    for i, form in enumerate(forms):
        store.mo.record_mo("main", f"+4860122222{i}", form, f"answer {i}", 0, None)
    store.mo.record_mo("main", "+48601222229", "+48100200301", "to another number", 0, None)
    store.close()
    cli = CLI(path, capsys)  # the command in this process (a start of smsgw costs a second of CI)
    for typed in ("+48100200300", "0048100200300", "100 200 300", "+48 100-200-300", "(100) 200 300"):
        code, out, err = cli("mo", "list", "--number", typed)
        assert code == 0, err
        assert sorted(line.split()[3] for line in out) == sorted(f"+4860122222{i}" for i in range(4)), (
            typed,
            out,
        )
    # A short code is itself only: its digits read as other countries' numbers matched 355 and 8355.
    assert written_forms("7355", "PL") == ("7355",)
    code, out, _ = cli("mo", "list", "--number", "+48601222221")  # a phone: as before
    assert [line.split()[3] for line in out] == ["+48601222221"]
