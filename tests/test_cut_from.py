"""An account's cut-from phrases: the confidentiality clause a company's mail server appends to every
mail ("Treść tej wiadomości jest poufna…") made six UCS-2 parts of each SMS, and the end marker
helped only when typed by the sender or equal to the clause's whole first line, which the
conversion of HTML to text wraps anywhere.

The phrases are set with the real CLI and the real panel on the SQLite file a running daemon uses;
mail goes through the daemon's real SMTP listener to its built-in simulator, whose records are what
the phone got, and the confirmation mail to a real SMTP sink.
"""

from __future__ import annotations

import asyncio
import email
import html
import smtplib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from acl.passwords import hash_password
from gateway.cli.common import EXIT_USAGE
from gateway.cli.main import main
from gateway.config import Config, parse_config
from gateway.smtp.textclean import clean_body
from gateway.store.db import Store
from gateway.web.server import WebServer
from tests.conftest import (
    DOMAIN,
    STAFF,
    Running,
    Sink,
    config_text,
    free_port,
    mail,
    running_gateway,
    smtp_sink,
)
from tests.web_helpers import csrf_of, web_context

CLAUSE_PL = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Jeżeli nie jesteś jej adresatem, powiadom"
    " nadawcę i usuń ją ze swojego systemu; jej rozpowszechnianie, kopiowanie lub wykorzystanie w"
    " jakikolwiek sposób jest zabronione. Spółka nie ponosi odpowiedzialności za treść wiadomości"
    " wysłanych z naruszeniem niniejszych zasad ani za szkody wynikłe z ich otrzymania."
)
CLAUSE_EN = (
    "This e-mail and any attachments are confidential and may be privileged. If you are not the"
    " intended recipient, please notify the sender and delete it."
)
PHRASE = "Treść tej wiadomości"
PASSWORD = "correct horse 1"
ADMIN = "boss@acme.example"


def daemon_config(tmp_path: Path, relay: int) -> tuple[Config, Path]:
    """The test daemon's config with its simulator on, written where the CLI reads it too."""
    smpp, cimd2, control = free_port(), free_port(), free_port()
    text = config_text(tmp_path, smsc_port=smpp, relay_port=relay).replace(
        "[simulator]\nenabled = false",
        f"[simulator]\nenabled = true\nsmpp_port = {smpp}\ncimd2_port = {cimd2}\ncontrol_port = {control}\n"
        f'log = "{tmp_path / "sim.jsonl"}"\ndlr_delay_seconds = 0',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return parse_config(text, source="test", base_dir=tmp_path), path


def smsgw(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-c", str(path), *args])
    out, err = capsys.readouterr()
    return code, out, err


@asynccontextmanager
async def confirming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[tuple[Running, Sink]]:
    """The daemon with its simulator (`gw.daemon.simulator.core.records`: what each phone got), a sink
    as its relay, and acme's confirmations on, set by the CLI as an admin sets them: what a mail
    became is read at the phone and in the mail its sender is told."""
    relay = free_port()
    cfg, path = daemon_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        code, _, err = smsgw(capsys, path, "account", "set", "acme", "--confirm", "on")
        assert code == 0, err
        yield gw, sink


def html_mail(body_html: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = f"601123456@{DOMAIN}"
    msg["Subject"] = subject
    msg.set_content("")
    msg.add_alternative(body_html, subtype="html")
    return msg


def body_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    part = msg.get_body(("plain",))  # type: ignore[attr-defined]
    return " ".join(str(part.get_content()).split())


async def test_the_phone_gets_the_text_without_the_clause_however_it_is_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = free_port()
    cfg, path = daemon_config(tmp_path, relay)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        # Set while the daemon runs, as an admin does: the next mail is read with the phrases.
        code, out, err = smsgw(
            capsys, path, "account", "set", "acme", "--cut-from", PHRASE,
            "--cut-from", "  This e-mail   and any attachments ", "--confirm", "on",
        )  # fmt: skip
        assert code == 0, err
        code, out, err = smsgw(capsys, path, "account", "show", "acme")
        assert f'cut-from: "{PHRASE}", "This e-mail and any attachments"' in out.splitlines(), out

        # 1. HTML, the clause in a paragraph of its own under a rule, as Outlook's server adds it.
        first = html_mail(
            "<html><body><p>Spotkanie przeniesione na 14:00.</p><hr>"
            f"<p style='font-size:8pt;color:gray'>{html.escape(CLAUSE_PL)}</p></body></html>",
            subject="Zmiana",
        )
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) >= 1)
        await asyncio.sleep(0.3)  # a second part would have come by now
        assert [r["text"] for r in core.records] == ["Zmiana: Spotkanie przeniesione na 14:00."]
        await sink.wait(1)
        confirmation = body_of(sink.messages[0][2])
        assert f'text from "{PHRASE}…"' in confirmation, confirmation

        # 2. Plain text, the clause in capitals and wrapped inside the phrase; the English one with
        # a non-breaking space; each after a signature rule, which goes with it.
        wrapped = CLAUSE_PL.upper().replace("TEJ ", "TEJ\n", 1)
        second = mail(f"601123456@{DOMAIN}", f"Proszę oddzwonić.\n\n________________\n{wrapped}")
        assert (await gw.send(second)).error is None
        english = CLAUSE_EN.replace("e-mail ", "e-mail\u00a0", 1).replace(" any ", "\nany ", 1)
        third = mail(f"601123456@{DOMAIN}", f"Call me back.\n-----\n{english}")
        assert (await gw.send(third)).error is None
        await gw.until(lambda: len(core.records) >= 3)
        await asyncio.sleep(0.3)
        assert sorted(r["text"] for r in core.records[1:]) == ["Call me back.", "Proszę oddzwonić."]

        # 3. Nothing but the clause, no subject: refused, naming the phrase (ASCII, as a reply line is).
        only = mail(f"601123456@{DOMAIN}", CLAUSE_PL.lower())
        result = await gw.send(only)
        assert isinstance(result.error, smtplib.SMTPDataError), result
        assert result.error.smtp_code == 554
        said = result.error.smtp_error.decode()
        assert 'began with "Tresc tej wiadomosci", which the account cuts the text from' in said, said
        await asyncio.sleep(0.3)
        assert len(core.records) == 3

        code, _, err = smsgw(capsys, path, "account", "set", "acme", "--no-cut-from")
        assert code == 0, err
        assert gw.store.accounts.get_account("acme").cut_from == ()


def test_clean_body_cuts_only_from_a_line_starting_with_a_phrase() -> None:
    phrases = ("Treść tej wiadomości",)
    kept = "Proszę przeczytać: treść tej wiadomości jest ważna.\n> Treść tej wiadomości jest poufna"
    assert clean_body(kept, None, phrases).text == "Proszę przeczytać: treść tej wiadomości jest ważna."
    cut = clean_body("Hi\n\nTREŚĆ  TEJ\n\u00a0WIADOMOŚCI jest poufna\nmore", None, phrases)
    assert (cut.text, cut.removed, cut.all_below_cut) == ("Hi", ('text from "Treść tej wiadomości…"',), None)
    # A line that is only part of the phrase, and no continuation: nothing is cut.
    assert clean_body("Hi\nTreść tej\n\nwiadomości", None, phrases).text == "Hi\nTreść tej\n\nwiadomości"
    alone = clean_body("\n  \nTreść tej wiadomości jest poufna", None, phrases)
    assert (alone.text, alone.all_below_cut) == ("", "Treść tej wiadomości")


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path, smsc_port=2775))
    (tmp_path / "state").mkdir()
    assert smsgw(capsys, path, "account", "add", "acme")[0] == 0
    return path


def phrases(path: Path) -> tuple[str, ...]:
    cfg = parse_config(path.read_text(), source="test", base_dir=path.parent)
    store = Store.open(cfg.db_path)
    try:
        return store.accounts.get_account("acme").cut_from
    finally:
        store.close()


def test_the_cli_refuses_a_short_phrase_and_keeps_the_list(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert smsgw(capsys, config, "account", "set", "acme", "--cut-from", PHRASE)[0] == 0
    code, _, err = smsgw(capsys, config, "account", "set", "acme", "--cut-from", "Pozdrawiam")
    assert code == 0, err  # ten characters: the least taken
    for short in ("Thanks", "  Regards  ", "Uwaga   !"):
        code, _, err = smsgw(capsys, config, "account", "set", "acme", "--cut-from", short)
        assert code == EXIT_USAGE, err
        assert "--cut-from: cut-from phrase" in err and "give at least 10" in err, err
    assert phrases(config) == (PHRASE, "Pozdrawiam")
    # Invisible characters counted towards the ten and never matched a clause.
    for hidden in ("Zzzzzzzzzz\u200b\u200b", "\u200b" * 10, "Treść\u200btej wiadomości"):
        code, _, err = smsgw(capsys, config, "account", "set", "acme", "--cut-from", hidden)
        assert code == EXIT_USAGE and "an invisible character" in err, err
    # A phrase holding '", "' is shown as one.
    odd = 'Treść", "Disclaimer here'
    assert smsgw(capsys, config, "account", "set", "acme", "--cut-from", odd)[0] == 0
    shown = smsgw(capsys, config, "account", "show", "acme")[1].splitlines()
    listed = [line.strip() for line in shown if line.strip().startswith("cut-from:")]
    assert listed == [f'cut-from: "{PHRASE}", "Pozdrawiam", "Treść\\", \\"Disclaimer here"'], listed
    assert smsgw(capsys, config, "account", "set", "acme", "--remove-cut-from", odd)[0] == 0
    # Added once whatever the case; taken off one at a time, or all.
    assert smsgw(capsys, config, "account", "set", "acme", "--cut-from", PHRASE.upper())[0] == 0
    assert phrases(config) == (PHRASE, "Pozdrawiam")
    code, _, err = smsgw(capsys, config, "account", "set", "acme", "--remove-cut-from", "pozdrawiam")
    assert code == 0 and phrases(config) == (PHRASE,), err
    code, _, err = smsgw(capsys, config, "account", "set", "acme", "--remove-cut-from", "Not one of them")
    assert code == EXIT_USAGE and "is not one of the account's cut-from phrases" in err, err
    code, _, err = smsgw(capsys, config, "account", "set", "acme", "--no-cut-from")
    assert code == 0 and phrases(config) == (), err
    assert "cut-from: none" in smsgw(capsys, config, "account", "show", "acme")[1].splitlines()


def page_error(page: str) -> str:
    start = page.index('id="error">') + len('id="error">')
    return html.unescape(page[start : page.index("<", start)])


async def test_the_panel_sets_phrases_and_refuses_a_short_one(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "panel.db")
    store.accounts.add_account("acme")
    store.accounts.add_user(ADMIN, "acme", password_hash=hash_password(PASSWORD))
    store.accounts.set_user(ADMIN, role="admin")
    panel = web_context(tmp_path, store, 'listen = "127.0.0.1:0"\n')
    server = WebServer(panel)
    port = await server.start()
    form: dict[str, Any] = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            page = await c.get("/login")
            data = {"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)}
            assert (await c.post("/login", data=data)).status_code == 303
            token = csrf_of((await c.get("/account")).text)
            r = await c.post("/account", data={**form, "csrf": token, "cut_from": f"{PHRASE}\nThanks"})
            assert r.status_code == 400, r.text[-600:]
            said = page_error(r.text)
            assert "cut-from phrase 'Thanks' is 6 characters long; give at least 10" in said, said
            assert f"{PHRASE}\nThanks</textarea>" in r.text  # the refused form as typed
            assert store.accounts.get_account("acme").cut_from == ()
            both = f"{PHRASE}\r\n\r\nThis e-mail and any attachments\r\n"
            r = await c.post("/account", data={**form, "csrf": token, "cut_from": both})
            assert r.status_code == 303, r.text[-600:]
            assert store.accounts.get_account("acme").cut_from == (PHRASE, "This e-mail and any attachments")
            page = await c.get("/account")
            assert f"{PHRASE}\nThis e-mail and any attachments</textarea>" in page.text
    finally:
        await server.stop()
        panel.counts.close()
        store.close()
