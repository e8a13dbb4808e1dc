"""`[gateway] language = "pl"`: the mails staff and clients read, in Polish (a Polish office's setting).

Each kind goes through the running gateway: a real SMTP client mails it, an SMSC over TCP (a fake one,
or the built-in simulator) answers, and the mail is caught at a real SMTP sink (or read from the
outbox the daemon queued it in). What the gateway and mail programs read back stays as it is: the
DSN's delivery-status fields, the answer mail's "(SMS from …)" subject; the Polish header above a
quoted SMS is cut from a user's Reply as the English one is. The default stays English. Numbers,
money, statuses, reasons and notes in Polish mails have a module of their own
(test_polish_mails_words.py).
"""

from __future__ import annotations

import asyncio
import email
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.smtp.textclean import clean_body
from smsc.simulator.control import send_command
from tests.billing_world import at, prepare
from tests.conftest import (
    DOMAIN,
    STAFF,
    free_port,
    mail,
    make_config,
    running_gateway,
    smtp_sink,
)
from tests.fakes.smsc import HappySMSC
from tests.test_dsn_format import REFUSED, report_of
from tests.test_notice_headers import outbound
from tests.test_premium_loop import CLIENT, PHONE, premium_config, reply_to, smtp
from tests.test_two_way import e164, parsed, two_way_config

POLISH = 'language = "pl"\n'


def in_polish(path: Path, tmp_path: Path) -> object:
    """The config at `path` with `[gateway] language = "pl"`, written back (the CLI reads it too)."""
    text = path.read_text().replace("[gateway]\n", f"[gateway]\n{POLISH}", 1)
    path.write_text(text)
    return parse_config(text, source="test", base_dir=tmp_path)


def human_part(report: EmailMessage) -> str:
    text = report.get_payload()[0]  # the first part of a multipart/report: the words a person reads
    assert isinstance(text, EmailMessage) and text.get_content_type() == "text/plain"
    return str(text.get_content())


async def a_bounce(tmp_path: Path, **gateway: str) -> bytes:
    """The bounce of a mail to a number the SMSC refuses (ESME_RINVDSTADR)."""
    sink_port = free_port()
    async with HappySMSC(reject_suffixes=["0000"]) as fake, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=fake.port, relay_port=sink_port, **gateway)
        async with running_gateway(cfg) as gw:
            assert (await gw.send(mail([REFUSED], "Wizyta jutro o 10:00", "Wizyta"), [REFUSED])).error is None
            await sink.wait(1)
    return sink.messages[0][2]


async def test_a_bounce_is_written_in_polish_its_report_fields_as_they_were(tmp_path: Path) -> None:
    raw = await a_bounce(tmp_path, language="pl")
    report = parsed(raw)
    assert report["Subject"] == "Niedostarczony SMS do +48601120000"
    text = human_part(report)
    assert text.startswith("Nie udało się dostarczyć SMS-a do +48601120000.\n\n")
    assert (
        "Przyczyna: operator odrzucił numer jako nieprawidłowy (ESME_RINVDSTADR, 0x0B)\n"
        "Co zrobić: proszę sprawdzić numer; operator nie przyjmuje go w tej postaci.\n\n"
        "Treść SMS-a (liczba części: 1):\n\nWizyta: Wizyta jutro o 10:00\n"
    ) in text
    fields, _original = report_of(raw)  # machine-read: as in English
    assert fields["Action"] == "failed" and fields["Status"] == "5.1.1"
    assert str(fields["Diagnostic-Code"]) == "X-SMSC; ESME_RINVDSTADR (0x0B)"


async def test_without_the_setting_every_mail_stays_english(tmp_path: Path) -> None:
    report = parsed(await a_bounce(tmp_path))
    assert report["Subject"] == "Undelivered SMS to +48601120000"
    text = human_part(report)
    assert text.startswith("Your SMS to +48601120000 could not be delivered.\n\n")
    assert "Reason: the operator refused the number as invalid (ESME_RINVDSTADR, 0x0B)" in text


async def test_an_answer_mail_quotes_in_polish_and_a_reply_to_it_loses_that_header(tmp_path: Path) -> None:
    relay = free_port()
    english = two_way_config(tmp_path, "smpp", relay_port=relay)
    cfg = english.model_copy(update={"gateway": english.gateway.model_copy(update={"language": "pl"})})
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        first = mail(f"601123456@{DOMAIN}", body="Czy 10:00 pasuje?", subject="Spotkanie")
        assert (await gw.send(first)).error is None
        await gw.until(lambda: len(core.records) == 1)
        number = e164(core.records[0]["source"])
        answer = {"op": "mo", "reply_to_last": True, "text": "Tak, będę"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, answer))["ok"]
        await sink.wait(1)
        reply = parsed(sink.messages[0][2])
        # Read back by the gateway (a Reply's subject): as in English.
        assert reply["Subject"] == "Re: Spotkanie (SMS from +48 601 123 456)"
        content = reply.get_content()
        sent_at = content.split("Dnia ", 1)[1][:16]
        assert content == (
            f"Tak, będę\n\nDnia {sent_at} napisano do +48 601 123 456:\n> Spotkanie: Czy 10:00 pasuje?\n"
        )
        # A client that quotes without `>` on the header line: the header never reaches the phone.
        back = EmailMessage()
        back["From"], back["To"] = STAFF, reply["From"]
        back["Subject"], back["In-Reply-To"] = f"Re: {reply['Subject']}", reply["Message-ID"]
        back.set_content(
            f"Do zobaczenia\n\nDnia {sent_at} napisano do +48 601 123 456:\n> Czy 10:00 pasuje?\n"
        )
        assert (await gw.send(back, [reply["From"].addresses[0].addr_spec])).error is None
        await gw.until(lambda: len(core.records) == 2)
        assert (core.records[1]["destination"], e164(core.records[1]["source"])) == (PHONE, number)
        assert str(core.records[1]["text"]).endswith("Do zobaczenia")
        assert "napisano" not in str(core.records[1]["text"])


@pytest.mark.parametrize(
    "header",
    [
        "Dnia 2026-12-03 06:31 napisano do +48 601 123 430:",
        "Dnia 2026-12-03 06:31 anna@acme.example napisał(a) do +48 601 123 430:",
        "On 2026-12-03 06:31, you wrote to +48 601 123 430:",
    ],
)
def test_the_quote_header_is_cut_in_either_language(header: str) -> None:
    assert clean_body(f"OK\n\n{header}\n> Wizyta jutro o 10:00\n").text == "OK"


@pytest.mark.parametrize(
    "body",
    [
        "Dzień dobry,\nDnia 5 maja napisano do Pana:\nproszę o zwrot dokumentów do 10 maja.",
        "Dnia 5 maja Anna napisała do klienta:\nproszę o zwrot dokumentów do 10 maja.",
    ],
)
def test_a_persons_own_sentence_like_the_polish_header_stays(body: str) -> None:
    """Read as any "dnia … napisano do …:", a staff member's sentence ending in a colon was taken for
    the header above a quote: the phone got "Dzień dobry," and nothing of the request."""
    assert clean_body(body).text == body


async def test_the_shortened_notice_is_in_polish(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, language="pl")
        async with running_gateway(cfg) as gw:
            body = " ".join(f"w{i:04d}" for i in range(400))  # more than 10 parts
            assert (await gw.send(mail(f"601123456@{DOMAIN}", body, "Raport"))).error is None
            await sink.wait(1)
    (notice,) = outbound(sink)
    assert notice["Subject"] == "Tekst SMS-a został skrócony: Raport"
    assert (
        notice.get_content()
        .replace("\r\n", "\n")
        .startswith(
            "Wiadomość e-mail do +48601123456 przekroczyła dopuszczalną liczbę części SMS-a (10).\n"
            "Wysłano pierwsze części (10); ten tekst został obcięty i nie został wysłany:\n\n"
        )
    )


async def test_the_not_sent_notice_is_in_polish(tmp_path: Path) -> None:
    async with HappySMSC() as smsc:
        cfg = make_config(tmp_path, smsc_port=smsc.port, language="pl")
        async with running_gateway(cfg) as gw:
            guess = mail(f"601123456@{DOMAIN}", "Jutro mnie nie ma", subject="Nieobecność jutro")
            guess["X-Auto-Response-Suppress"] = "All"
            assert (await gw.send(guess)).error is None
            told = gw.store.db.conn.execute("SELECT kind, content FROM outbox").fetchall()
    assert [kind for kind, _ in told] == ["not-sent"]
    notice = email.message_from_bytes(told[0][1], policy=policy.default)
    assert notice["Subject"] == "Nie wysłano jako SMS: Nieobecność jutro"
    assert notice.get_content().startswith(
        "Wiadomość „Nieobecność jutro” do +48601123456 nie została wysłana jako SMS: jej temat i nagłówek"
        " X-Auto-Response-Suppress wskazują na automatyczną odpowiedź o nieobecności"
    )


async def test_the_premium_mails_are_in_polish(tmp_path: Path) -> None:
    relay = free_port()
    path, _ = premium_config(tmp_path, "smpp", relay)
    cfg = in_polish(path, tmp_path)
    from gateway.cli.main import main

    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:  # type: ignore[arg-type]
        added = ["-c", str(path), "premium", "add", "kp123", "--account", "acme", "--email", CLIENT]
        assert await asyncio.to_thread(main, [*added, "--number", "7355"]) == 0
        gw.store.outbox.on_queued()
        await sink.wait(1)
        ask = parsed(sink.messages[0][2])
        assert ask["Subject"] == "Potwierdzenie usługi SMS premium KP123"
        assert ask.get_content().startswith(
            "SMS-y premium wysłane z hasłem KP123 na numer(y) 7355 (konto acme) mają być przesyłane"
            " na ten adres."
        )
        assert (await smtp(gw.port, *reply_to(ask, "tak"))).error is None
        mo = {"op": "mo", "source": PHONE, "destination": "7355", "text": "KP123 głos A"}
        assert (await send_command("127.0.0.1", gw.daemon.simulator.control_port, mo))["ok"]
        await sink.wait(2)
        vote = parsed(sink.messages[1][2])
        assert vote["Subject"] == "KP123 · 7355 · +48 601 123 456"  # read back: as it was
        content = vote.get_content()
        assert content.startswith("głos A\n\n-- \nSMS premium na numer 7355 z telefonu +48 601 123 456, ")
        assert content.endswith(
            "Aby odpowiedzieć, wystarczy odpowiedzieć na tę wiadomość: telefon otrzyma jeden bezpłatny SMS"
            " (160 znaków, 70 z polskimi literami lub emoji).\n"
        )
        # A client's answer past one SMS: the notice of its cut.
        answer, to = reply_to(vote, "Dziękujemy " + "x" * 200)
        assert (await smtp(gw.port, answer, to)).error is None
        await sink.wait(3)
        cut = parsed(sink.messages[2][2])
        assert cut["Subject"] == "Odpowiedź do +48 601 123 456 została skrócona"
        assert cut.get_content().startswith(
            "Odpowiedź na SMS premium to jeden SMS. Telefon +48 601 123 456 otrzymał tylko to:"
        )


async def test_the_billing_mails_are_in_polish_their_file_as_it_was(tmp_path: Path) -> None:
    relay = free_port()
    path, _ = prepare(tmp_path, relay, last_billed="2026-01", traffic={"acme": [at(2026, 2, 14, 12)]})
    cfg = in_polish(path, tmp_path)
    now = at(2026, 3, 2, 9)
    async with smtp_sink(relay) as sink:
        async with running_gateway(cfg, clock=lambda: now) as gw:  # type: ignore[arg-type]
            await gw.until(lambda: len(sink.messages) == 3)
    mails = {(rcpts[0], str(parsed(raw)["Subject"])): parsed(raw) for _, rcpts, raw in sink.messages}
    account = mails[("billing@acme.pl", "Rozliczenie SMS 2026-02: acme")]
    text = account.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text == (
        "Rozliczenie konta acme za 2026-02 (Europe/Warsaw, od północy do północy czasu lokalnego).\n\n"
        "SMS-y: 1, części: 1; według stanu: doręczone 1, niedoręczone 0, wygasłe 0, oczekujące 0.\n\n"
        "Załączony plik 2026-02-acme.txt zawiera każdy SMS, pola rozdzielone tabulatorami (UTF-8); ostatni\n"
        "wiersz podaje liczbę wierszy SMS-ów i sumę SHA-256 całej treści przed nim.\n"
    )
    attachment = next(account.iter_attachments()).get_payload(decode=True)
    assert isinstance(attachment, bytes) and attachment.startswith(b"# ")  # the file: English columns
    summary = [
        m for (_, subject), m in mails.items() if subject.startswith("Rozliczenie SMS 2026-02: podsum")
    ]
    assert summary[0]["Subject"] == "Rozliczenie SMS 2026-02: podsumowanie kont (liczba kont: 1)"
    assert (
        "Załączone podsumowanie ma po jednym wierszu na konto."
        in summary[0].get_body(("plain",)).get_content()
    )  # type: ignore[union-attr]


async def test_the_limit_notice_is_in_polish(tmp_path: Path) -> None:
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, language="pl")
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", monthly_limit=1))
            two_parts = mail(f"601123456@{DOMAIN}", "Przypomnienie o spotkaniu " * 12, "Spotkanie")
            assert (await gw.send(two_parts)).error is not None  # the SMTP refusal itself stays English
            await sink.wait(1)
    (notice,) = outbound(sink)
    assert notice["Subject"] == "Limit SMS za niski dla tej wiadomości: miesięczny limit konta acme"
    assert notice.get_content().replace("\r\n", "\n") == (
        "Wiadomość e-mail nie została wysłana jako SMS: miesięczny limit konta acme (w częściach SMS)"
        " wynosi 1, wykorzystano 0, a wiadomość wymagała 3.\nNależy poprosić administratora"
        " o podniesienie limitu albo poczekać na następny okres.\n"
    )


async def test_what_was_removed_is_named_in_polish_in_the_confirmation(tmp_path: Path) -> None:
    """The confirmation's list of what was taken from the mail kept the English labels of the code
    that cuts them ("quoted reply; signature") inside the Polish sentence."""
    sink_port = free_port()
    async with HappySMSC() as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(tmp_path, smsc_port=smsc.port, relay_port=sink_port, language="pl")
        async with running_gateway(cfg) as gw:
            await gw.store.write(lambda: gw.store.accounts.update_account("acme", confirm=True))
            body = "Będę o 10.\n\n-- \nAnna Nowak\n\n> Kiedy będziesz?\n"
            assert (await gw.send(mail(f"601123456@{DOMAIN}", body, "Wizyta"))).error is None
            await sink.wait(1)
    (notice,) = outbound(sink)
    text = notice.get_content().replace("\r\n", "\n")
    assert "Przed wysłaniem usunięto z wiadomości: " in text, text
    removed = text.split("Przed wysłaniem usunięto z wiadomości: ", 1)[1].split(".\n", 1)[0]
    assert "podpis" in removed and "quoted" not in removed and "signature" not in removed, removed
    assert "UCS-2 (z powodu znaków: ę)" in text and "forced" not in text, text  # the coding, in Polish


async def test_the_suspension_notice_gives_its_reason_in_polish(tmp_path: Path) -> None:
    """The notice's sentence was Polish and its reason English ("4 of its last 4 messages failed")."""
    sink_port = free_port()
    async with HappySMSC(fail_suffixes=["13"]) as smsc, smtp_sink(sink_port) as sink:
        cfg = make_config(
            tmp_path, smsc_port=smsc.port, relay_port=sink_port, language="pl", suspend_after=4,
            suspend_failed_share=0.5,
        )  # fmt: skip
        async with running_gateway(cfg) as gw:
            for i in range(4):
                await gw.send(mail(f"60112{i}413@{DOMAIN}", f"Nie dojdzie {i}"))
            await gw.until(lambda: gw.store.accounts.get_account("acme").suspended_at is not None)
            reason = gw.store.accounts.get_account("acme").suspended_reason or ""
            await gw.until(lambda: any(m["Subject"].startswith("Konto SMS") for m in outbound(sink)))
    notice = next(m for m in outbound(sink) if m["Subject"] == "Konto SMS acme zostało zawieszone")
    text = notice.get_content()
    # 3 or 4 of them (the fourth may come after the suspension): "zostały doręczone" either way.
    said = r"([34]) z ostatnich \1 wiadomości nie zostały doręczone \(próg zawieszenia: ponad 50% z 4\)"
    assert re.search(said, text), text
    assert "messages failed" not in text
    assert "of its last" in reason  # the CLI and the panel show the stored reason, in English
