"""Numbers, money, statuses, reasons and notes in Polish mails (`[gateway] language = "pl"`), and
English mails as they were: plurals, thousands and złoty, every billing status and bounce reason, the
suspension reason, the billing mail's amounts, forwarded bounces and postmaster mail, the notes of
fallback and answer mails, refused answer copies, quota refusals, the reply window. Through the
running gateway as in test_polish_mails.py; split from it by subject (it was over 400 lines)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from billing_reports.monthly import STATUSES
from gateway import polish as pl
from gateway import wording
from gateway.config import parse_config
from gateway.smtp import automail
from gateway.smtp.subjects import sms_subject
from gateway.smtp.textclean import clean_body
from gateway.store.db import Store
from smsc.simulator.control import send_command
from tests.billing_world import at, fill, prepare
from tests.conftest import (
    DOMAIN,
    STAFF,
    config_text,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_bounces import bounce, delivered
from tests.test_own_numbers import FALLBACK, OURS, answer, own_config
from tests.test_own_numbers import PHONE as OWN_PHONE
from tests.test_policy import error_text
from tests.test_polish_mails import in_polish
from tests.test_premium_loop import PHONE, premium_config
from tests.test_reply_refused import USER_UNKNOWN, RefusingRelay, sms_and_answer
from tests.test_spec_smtp_postmaster import letter, talk
from tests.test_two_way import parsed

# --- numbers, money, statuses, reasons and notes in Polish mails; English mails as they were ---


def polish(cfg: Any) -> Any:
    """`cfg` with `[gateway] language = "pl"`."""
    return cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"language": "pl"})})


def noted(msg: EmailMessage) -> str:
    """The mail's text with its lines joined: a long note may be folded over lines."""
    return " ".join(str(msg.get_content()).split())


def test_polish_plurals_thousands_and_zloty() -> None:
    forms = ("bajt", "bajty", "bajtów")
    said = {n: pl.counted(n, *forms) for n in (0, 1, 2, 4, 5, 11, 12, 14, 21, 22, 24, 25, 102, 112, 308053)}
    assert said == {
        0: "0 bajtów", 1: "1 bajt", 2: "2 bajty", 4: "4 bajty", 5: "5 bajtów", 11: "11 bajtów",
        12: "12 bajtów", 14: "14 bajtów", 21: "21 bajtów", 22: "22 bajty", 24: "24 bajty",
        25: "25 bajtów", 102: "102 bajty", 112: "112 bajtów", 308053: "308 053 bajty",
    }  # fmt: skip
    assert [pl.zloty(g) for g in (600, 220, 123450, 5, -5, 100_000_000)] == [
        "6,00 zł", "2,20 zł", "1 234,50 zł", "0,05 zł", "-0,05 zł", "1 000 000,00 zł",
    ]  # fmt: skip


def test_every_billing_status_and_bounce_reason_has_polish_words() -> None:
    """A status or a reason added in English only would show up English in a Polish mail again."""
    assert set(pl.STATUS_PL) == set(STATUSES)
    reasons = {automail.DSN, automail.EMPTY_SENDER, automail.MAILER_DAEMON, automail.OOF_GUESSED}
    reasons |= {*automail._REPORT_TYPES.values(), *automail._REPORT_PARTS.values()}
    reasons |= {why for _, why in automail._TNEF_CLASSES}
    for reason in reasons:
        assert pl.reason_words(reason, "pl") != reason, reason
        assert pl.reason_words(reason, "en") == reason


@pytest.mark.parametrize(
    ("failed", "verb"),
    [
        (1, "nie została doręczona"),
        (3, "nie zostały doręczone"),
        (5, "nie zostało doręczonych"),
        (13, "nie zostało doręczonych"),
        (22, "nie zostały doręczone"),
    ],
)
def test_the_suspension_reason_agrees_with_its_number(failed: int, verb: str) -> None:
    said = {"failed": failed, "judged": 30, "share": "50%", "after": 30}
    assert wording.SUSPENDED_REASON("pl", **said) == (
        f"{failed} z ostatnich 30 wiadomości {verb} (próg zawieszenia: ponad 50% z 30)"
    )
    english = wording.SUSPENDED_REASON("en", **said)
    assert english == f"{failed} of its last 30 messages failed (more than 50% of 30)"


def premium_billed(tmp_path: Path, relay: int) -> Path:
    """The billing world's acme with two SMS delivered and one failed in February 2026, and two
    premium SMS (one mailed to its client, one awaiting a confirmation): 1234.50 PLN, 500.20 PLN."""
    path, cfg = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 14, 12)] * 2})
    store = Store.open(cfg.db_path, clock=lambda: at(2026, 2, 20))  # type: ignore[attr-defined]
    try:
        acme = store.accounts.get_account("acme").id
        fill(store, acme, [at(2026, 2, 15, 12)], reason="UNDELIV")
        with store.db.transaction():
            for mo_id, (state, price, commission) in enumerate(
                [("mailed", 123400, 50000), ("awaiting", 50, 20)], start=1
            ):
                store.db.conn.execute(
                    "INSERT INTO premium_mo (mo_id, number, phone, service_id, account_id, password, parts,"
                    " price, commission, text, state, received_at) VALUES (?, '7955', '+48601100005', NULL,"
                    " ?, 'KP100', 1, ?, ?, 'x', ?, ?)",
                    (mo_id, acme, price, commission, state, at(2026, 2, 16)),
                )
    finally:
        store.close()
    return path


@pytest.mark.parametrize("lang", ["pl", "en"])
async def test_the_billing_mail_says_statuses_and_amounts_as_its_language_writes_them(
    tmp_path: Path, lang: str
) -> None:
    """The Polish mail read "według stanu: delivered 2, failed 1" and "cena 1234.50 PLN"; the file, which
    programs read, keeps its English status columns and "1234.50" in both."""
    relay = free_port()
    path = premium_billed(tmp_path, relay)
    cfg = (
        in_polish(path, tmp_path)
        if lang == "pl"
        else parse_config(path.read_text(), source="test", base_dir=tmp_path)
    )
    now = at(2026, 3, 2, 9)
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: now) as gw:  # type: ignore[arg-type]
            await gw.until(lambda: len(sink.messages) == 3)
    [account] = [parsed(raw) for _, rcpts, raw in sink.messages if rcpts == ["billing@acme.pl"]]
    text = account.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    if lang == "pl":
        assert (
            "SMS-y: 5, części: 5; według stanu: doręczone 3, niedoręczone 1, wygasłe 0, oczekujące 1.\n"
            "SMS premium: cena 1 234,50 zł, prowizja 500,20 zł (kwoty netto, bez VAT).\n"
        ) in text, text
    else:
        assert (
            "5 SMS, 5 part(s): 3 delivered, 1 failed, 0 expired, 1 pending.\n"
            "Premium SMS: price 1234.50 PLN, commission 500.20 PLN (net amounts, excluding VAT).\n"
        ) in text, text
    attachment = next(account.iter_attachments()).get_payload(decode=True)
    assert isinstance(attachment, bytes) and b"\t1234.50\t500.20\n" in attachment
    assert "doręczone".encode() not in attachment and b"\tdelivered\t" in attachment


def bounce_world(tmp_path: Path, relay: int, lang: str) -> Any:
    """Bounces to the fallback address, mail to postmaster to the admin address."""
    extra = '\n[replies]\nfallback_address = "ops@acme.example"\n'
    text = config_text(tmp_path, smsc_port=1, relay_port=relay, extra=extra, language=lang)
    text = text.replace("[mail]\n", '[mail]\nadmin_address = "admin@acme.example"\n', 1)
    return parse_config(text, source="test", base_dir=tmp_path)


def why_line(msg: EmailMessage) -> str:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return next(line for line in text.splitlines() if line.startswith(("Dlaczego", "Why")))


@pytest.mark.parametrize("lang", ["pl", "en"])
async def test_a_forwarded_bounce_and_postmaster_mail_say_why_and_how_big_in_their_language(
    tmp_path: Path, lang: str
) -> None:
    """ "Dlaczego to zwrot poczty: bounce (empty envelope sender)" and "Oryginał ma 308053 bajtów" in
    Polish mails; the reason stored for the log and the CLI stays English."""
    relay = free_port()
    filler = b"".join(b"w" * 70 + b"\r\n" for _ in range(4000))  # past 256 KiB: its headers only
    async with smtp_sink(relay) as sink, running_gateway(bounce_world(tmp_path, relay, lang)) as gw:
        assert (await delivered(gw.port, bounce())).startswith("250 ")
        big = letter("<pm-big@acme.example>").replace(b"\r\n\r\n", b"\r\n\r\n" + filler, 1)
        _, said = await talk(gw.port, [f"postmaster@{DOMAIN}"], big)
        assert said is not None and said.startswith("250 ")
        await sink.wait(2)
        stored = [r[0] for r in gw.store.db.conn.execute("SELECT automatic FROM emails ORDER BY id")]
    by_rcpt = {rcpts[0]: parsed(raw) for _, rcpts, raw in sink.messages}
    bounced, postmastered = by_rcpt["ops@acme.example"], by_rcpt["admin@acme.example"]
    assert "empty envelope sender" in stored[0]  # the log's and the CLI's, in English
    text = " ".join(postmastered.get_body(("plain",)).get_content().split())  # type: ignore[union-attr]
    size = re.search(r"(?:ma|is) ([0-9 ]+) (bajty|bajtów|bytes)", text)
    assert size is not None, text
    if lang == "pl":
        assert why_line(postmastered) == (
            f"Dlaczego to wiadomość do postmastera: zaadresowana do <postmaster@{DOMAIN}>"
        )
        assert why_line(bounced).startswith("Dlaczego to zwrot poczty: ")
        assert "pusty nadawca w kopercie" in why_line(bounced) and "bounce" not in why_line(bounced)
        digits = size[1].replace(" ", "")
        assert size[1] == f"{int(digits):,}".replace(",", " ") and len(digits) == 6  # 2xx xxx
        few = digits[-1] in "234" and digits[-2] != "1"
        assert size[2] == ("bajty" if few else "bajtów"), size[0]
    else:
        assert why_line(postmastered) == f"Why it is a mail to postmaster: addressed to <postmaster@{DOMAIN}>"
        assert "bounce (empty envelope sender)" in why_line(bounced)
        assert size[1].isdigit() and size[2] == "bytes"


async def test_the_notes_and_subjects_of_fallback_and_answer_mails_are_polish(tmp_path: Path) -> None:
    """ "[Not matched: …]", "(no conversation)" and "[… answered with an opt-out word: …]" in Polish
    mails; what the MO row keeps (`smsgw mo list`) stays English. A forward of such a mail still
    loses the note on its way to a phone."""
    relay = free_port()
    async with smtp_sink(relay) as sink, running_gateway(polish(own_config(tmp_path, "smpp", relay))) as gw:
        await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
        await answer(gw, "smpp", "48100200300", 0, "Kto to?")
        await sink.wait(1)
        await sms_and_answer(gw, "STOP")
        await sink.wait(2)
        notes = [r[0] for r in gw.store.db.conn.execute("SELECT note FROM mo ORDER BY id")]
    unmatched, stopped = parsed(sink.messages[0][2]), parsed(sink.messages[1][2])
    assert sink.messages[0][1] == [FALLBACK] and sink.messages[1][1] == [STAFF]
    assert unmatched["Subject"] == f"SMS from {OWN_PHONE} to {OURS} (nie pasuje do żadnej rozmowy)"
    assert (
        f"[Nie dopasowano: na numer {OWN_PHONE} nie wysłano z numeru {OURS} żadnego SMS-a w czasie na"
        " odpowiedź (7 dni, o ile konto nie ustala własnego)]"
    ) in noted(unmatched), noted(unmatched)
    said = "Numer +48 601 222 222 odpowiedział słowem rezygnacji: kolejne SMS-y na ten numer są odrzucane"
    assert f"[{said}]" in noted(stopped), noted(stopped)
    assert notes[0] is not None and notes[0].startswith(f"no SMS was sent to {OWN_PHONE}")
    assert notes[1] is not None and "answered with an opt-out word" in notes[1]
    # The shape `textclean` knows as the gateway's own note: cut from a forward to a phone.
    forward = (
        "---------- Forwarded message ---------\nFrom: +48 601 222 222 <+48601222222@sms.example.com>\n"
        "Date: Thu, 3 Dec 2026 10:00\nSubject: SMS\n\n"
    )
    for note in (said, "Nie dopasowano: na numer +48601222222 nie wysłano"):
        assert clean_body(f"{forward}Proszę oddzwonić.\n\n[{note}]\n").text == "Proszę oddzwonić."


@pytest.mark.parametrize("lang", ["pl", "en"])
async def test_a_refused_answer_copy_says_why_in_its_language(tmp_path: Path, lang: str) -> None:
    port = free_port()
    cfg = own_config(tmp_path, "smpp", port)
    async with (
        smtp_sink(port, RefusingRelay(STAFF)) as relay,
        running_gateway(polish(cfg) if lang == "pl" else cfg) as gw,
    ):
        await sms_and_answer(gw)
        await relay.wait(1)
        [note] = [r[0] for r in gw.store.db.conn.execute("SELECT note FROM mo")]
    copy = parsed(relay.messages[0][2])
    refusal = f"({USER_UNKNOWN.format(STAFF)})"
    assert note.startswith(f"the mail relay refused the mail to {STAFF} {refusal}")  # stored: English
    if lang == "pl":
        # "SMS from … to …" is read back (`gateway.smtp.subjects`): only the brackets are words.
        assert copy["Subject"] == f"SMS from +48601222222 to +48100200300 (odrzucono pocztę do {STAFF})"
        assert (
            f"[Nie doręczono: serwer pocztowy odrzucił wiadomość do {STAFF} {refusal}. Wysłano zamiast"
            " tego na adres zapasowy]"
        ) in noted(copy), noted(copy)
        assert sms_subject(copy["Subject"]) == ""
    else:
        assert copy["Subject"] == f"SMS from +48601222222 to +48100200300 for {STAFF} (its mail was refused)"
        assert (
            f"[Not delivered: the mail relay refused the mail to {STAFF} {refusal}. Sent to the fallback"
            " address instead]"
        ) in noted(copy)


async def test_a_premium_sms_of_no_service_reaches_the_fallback_with_a_polish_note(tmp_path: Path) -> None:
    relay = free_port()
    path, _ = premium_config(tmp_path, "smpp", relay)
    cfg = in_polish(path, tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        await gw.until(lambda: gw.daemon.simulator.core._pick("smpp") is not None)
        mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KPZZZ głos A"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
        await sink.wait(1)
        [stored] = [r[0] for r in gw.store.db.conn.execute("SELECT note FROM premium_mo")]
    assert sink.messages[0][1] == ["ops@example.com"]
    said = noted(parsed(sink.messages[0][2]))
    assert "[Nie przekazano klientowi: żadna usługa premium nie ma hasła KPZZZ]" in said, said
    assert stored == "no premium service has the password KPZZZ"


async def test_a_quota_refusal_of_one_part_says_part(tmp_path: Path) -> None:
    """The SMTP reply stays English (programs and Outlook show it as it is), "1 parts" no more."""
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, language="pl")
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=1))
            two_parts = mail(f"601123456@{DOMAIN}", "Przypomnienie o spotkaniu " * 12, "Spotkanie")
            refused = error_text(await gw.send(two_parts))
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=2))
            three = error_text(await gw.send(mail(f"601123456@{DOMAIN}", "Wizyta " * 60, "Wizyta")))
    assert "Monthly limit of account acme: 1 part, used 0, this email needs 3" in refused, refused
    assert "Monthly limit of account acme: 2 parts, used 0" in three, three


async def test_the_last_answer_mailed_before_a_flood_is_kept_says_so_in_polish(tmp_path: Path) -> None:
    relay = free_port()
    cfg = polish(own_config(tmp_path, "smpp", relay))
    cfg = cfg.model_copy(update={"replies": cfg.replies.model_copy(update={"mails_per_phone_per_hour": 2})})
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        await sms_and_answer(gw, "Tak")
        await sink.wait(1)
        again = {"op": "mo", "reply_to_last": True, "text": "Jeszcze jedno"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, again))["ok"]
        await sink.wait(2)
    second = noted(parsed(sink.messages[1][2]))
    assert (
        "[Numer +48 601 222 222 wysłał 2 SMS-y w ciągu godziny: kolejne z tej godziny zostają w bramce"
        " i przyjdą razem w jednym e-mailu, gdy minie godzina bez nowych]"
    ) in second, second


def test_a_fractional_reply_window_reads_as_polish_writes_it() -> None:
    # "0.5 dni": a decimal point, and the plural of whole days; Polish writes "0,5 dnia".
    from gateway import polish

    note = (
        "no SMS was sent to +48601123456 from 7355 within the reply window"
        " ({days} days unless the account sets its own)"
    )
    assert "(0,5 dnia, o ile" in polish.note_words(note.format(days="0.5"), "pl")
    assert "(2,5 dnia, o ile" in polish.note_words(note.format(days="2.5"), "pl")
    assert "(7 dni, o ile" in polish.note_words(note.format(days="7"), "pl")
    assert "(1 dzień, o ile" in polish.note_words(note.format(days="1"), "pl")
