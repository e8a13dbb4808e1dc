"""What a person typed below a phone's or an app's footer reaches the phone (R-1.3).

"Sent from my iPhone" and its kin cut everything below them, so a reply typed under the footer of a
reply ("Sent from my iPhone\\n\\nTak\\n\\n> ...") reached the phone as nothing, "Sent from my phone, sorry
for typos.\\n\\nMeeting moved to 3pm." as nothing, and a Polish device footer above a paragraph longer
than 100 characters took that paragraph for a disclaimer ("Wysłane z mojego Huawei.\\n\\n<the
paragraph>" sent only the greeting above). One rule now holds for both languages: a footer ends the
text above nothing but signature material (a name, contact details, rules, other footers, a
disclaimer that reads as one); a known footer with the person's text below goes alone, and "Sent
from my" / "Wysłane z mojego" with words no phone has may be a sentence and stays with its text.

At `clean_body` and `only_signature`, as the other signature tests read bodies, and through a real
SMTP client into the running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body, only_signature
from tests.conftest import DOMAIN, STAFF, Running, free_port, mail, running_gateway, smtp_sink
from tests.test_reply_no_new_text import config, mo, refused_as_empty, sent_after
from tests.test_two_way import parsed, two_way_config

LONG_TEXT = (
    "Jutro nie będzie mnie w biurze, proszę dzwonić na 601 123 456 albo pisać na adres służbowy, "
    "odpowiem w poniedziałek."
)
DISCLAIMER = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Odbiorcą może być jedynie jej adresat. "
    "This e-mail is confidential and may be privileged. If you are not the intended recipient, delete it."
)
# As a mail server appends it to a plain text part: wrapped at 72 columns, no line over 100.
WRAPPED_DISCLAIMER = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Odbiorcą może\n"
    "być jedynie jej adresat z wyłączeniem dostępu osób trzecich. Jeżeli\n"
    "nie jest Pan/Pani adresatem tej wiadomości, proszę ją usunąć.\n"
    "This e-mail is confidential and may be legally privileged. If you are\n"
    "not the intended recipient, please delete it and notify the sender.\n"
    "ACME Sp. z o.o., ul. Prosta 1, 00-001 Warszawa, KRS 0000123456,\n"
    "NIP 123-456-78-90, kapitał zakładowy 50 000 zł.\n"
    "Please consider the environment before printing this e-mail."
)
COMPANY = (
    "Jan Kowalski\nKierownik Działu Sprzedaży | Sales Manager\nACME Sp. z o.o.\n"
    "ul. Prosta 1, 00-001 Warszawa\ntel. +48 22 123 45 67 | kom. +48 601 123 456\nwww.acme.pl"
)
QUOTE = "On 5 Dec 2026, at 10:00, Anna Nowak <anna@example.com> wrote:\n\n> Czy potwierdza Pan termin?"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The reply typed below the footer of a reply, above the quote.
        (f"\nSent from my iPhone\n\nTak\n\n{QUOTE}", "Tak"),
        (f"Wysłane z mojego iPhone'a\n\nPotwierdzam, będę o 10.\n\n{QUOTE}", "Potwierdzam, będę o 10."),
        ("Sent from my phone, sorry for typos.\n\nMeeting moved to 3pm.", "Meeting moved to 3pm."),
        ("Sent from my iPhone\n\nMeeting moved to 3pm.\n\nPozdrawiam\nJan", "Meeting moved to 3pm."),
        (
            "Will be late.\n\nSent from my iPhone\n\nMeeting moved to 3pm.",
            "Will be late.\n\nMeeting moved to 3pm.",
        ),
        # A forward whose footer the forwarded text carries, and the person's line below it.
        (
            "---------- Forwarded message ---------\nFrom: Anna Nowak <anna@example.com>\n"
            "Date: Sat, 5 Dec 2026 at 10:00\nSubject: Paczka\nTo: <biuro@example.com>\n\n"
            "Klient prosi o telefon.\n\nSent from my iPhone\n\nZadzwonię jutro rano.",
            "Klient prosi o telefon.\n\nZadzwonię jutro rano.",
        ),
        ("Tekst\n\nGet Outlook for iOS\n\nJeszcze jedno: sala 204.", "Tekst\n\nJeszcze jedno: sala 204."),
        ("Tekst\n\nWysłane z telefonu służbowego\n\nTak, będę.", "Tekst\n\nTak, będę."),
        # A known phone above a long paragraph that is no disclaimer: the paragraph stays.
        (f"Dzień dobry,\n\nWysłane z mojego Huawei.\n\n{LONG_TEXT}", f"Dzień dobry,\n\n{LONG_TEXT}"),
        (f"Dzień dobry,\n\nWysłane z telefonu\n{LONG_TEXT}", f"Dzień dobry,\n\n{LONG_TEXT}"),
    ],
)
def test_the_text_below_a_known_footer_stays_and_the_footer_goes(body: str, expected: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (expected, True)


@pytest.mark.parametrize(
    "body",
    [
        # "Wysłane z mojego" and words no phone has, above a long paragraph of the person's.
        f"Dzień dobry,\nWysłane z mojego prywatnego adresu.\n\n{LONG_TEXT}",
        f"Dzień dobry,\nWysłane z mojego prywatnego adresu.\n{LONG_TEXT}",
        "Hi,\nSent from my home office today.\nCall me on the landline.",
    ],
)
def test_a_sentence_that_begins_like_a_footer_keeps_its_text(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my Samsung Galaxy smartphone.",
        "Sent from my Verizon Wireless 4G LTE smartphone",
        "Sent from my phone, sorry for typos.",
        "Wysłane z mojego Huawei",
        "Wysłane z mojego iPhone'a",
        "Wysłane z telefonu służbowego",
        "Wysłano z mojego Xiaomi Redmi Note 9",
        "Wysłano z Poczty Onet",
        "Get Outlook for iOS",
    ],
)
@pytest.mark.parametrize(
    "below",
    [
        "",
        "Jan",
        "Jan Kowalski",
        COMPANY,
        DISCLAIMER,
        WRAPPED_DISCLAIMER,
        f"Jan Kowalski\n\n{WRAPPED_DISCLAIMER}",
        "\u200b\nJan Kowalski",  # a zero-width space an HTML part left: nothing a phone shows
    ],
)
def test_a_footer_above_a_signature_or_a_disclaimer_still_ends_the_text(footer: str, below: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10:00.\n\n{footer}\n\n{below}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10:00.", True)


def test_a_reply_typed_below_the_footer_is_no_bare_signature() -> None:
    # A body of nothing but the footer, or the footer and a name, was written by no one; one with
    # the person's answer below the footer was (a reply of "Tak" was taken for no new text).
    assert not only_signature("Sent from my iPhone\n\nTak")
    assert not only_signature("Wysłane z mojego iPhone'a\n\nBędę o 10.")
    assert only_signature("Sent from my iPhone\n\nJan Kowalski")
    assert only_signature(f"Wysłane z mojego Huawei\n\n{WRAPPED_DISCLAIMER}")


async def parts_got(gw: Running, numbers: list[str]) -> list[list[dict[str, object]]]:
    """The built-in simulator's records of the parts each number got, in their order, once every
    number got all its parts."""
    core = gw.daemon.simulator.core

    def parts(number: str) -> list[dict[str, object]]:
        found = [r for r in core.records if str(r["destination"]).endswith(number)]
        return sorted(found, key=lambda r: r["concat"]["seq"] if r["concat"] else 0)  # type: ignore[index]

    def whole(number: str) -> bool:
        got = parts(number)
        return bool(got) and (got[0]["concat"] is None or len(got) == got[0]["concat"]["total"])  # type: ignore[index]

    await gw.until(lambda: all(whole(n) for n in numbers))
    return [parts(n) for n in numbers]


async def phone_got(tmp_path: Path, bodies: list[str], sender: str = STAFF) -> list[str]:
    """What each phone got, its parts joined in order, for each body sent with no subject from `sender`."""
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    numbers = [f"6011235{n + 10:02d}" for n in range(len(bodies))]
    async with running_gateway(cfg) as gw:
        for number, body in zip(numbers, bodies, strict=True):
            msg = mail(f"{number}@{DOMAIN}", body)
            msg.replace_header("From", sender)
            assert (await gw.send(msg)).error is None
        return ["".join(str(r["text"]) for r in parts) for parts in await parts_got(gw, numbers)]


async def test_through_smtp_the_text_below_a_footer_reaches_the_phone(tmp_path: Path) -> None:
    bodies = [
        f"\nSent from my iPhone\n\nTak\n\n{QUOTE}",
        "Sent from my phone, sorry for typos.\n\nMeeting moved to 3pm.",
        f"Dzień dobry,\n\nWysłane z mojego Huawei.\n\n{LONG_TEXT}",
        f"Dzień dobry,\nWysłane z mojego prywatnego adresu.\n\n{LONG_TEXT}",
        # What stays off the phone still does.
        f"Spotkanie o 10:00.\n\nSent from my iPhone\n\n{COMPANY}\n\n{WRAPPED_DISCLAIMER}",
    ]
    assert await phone_got(tmp_path, bodies) == [
        "Tak",
        "Meeting moved to 3pm.",
        f"Dzień dobry,\n\n{LONG_TEXT}",
        f"Dzień dobry,\nWysłane z mojego prywatnego adresu.\n\n{LONG_TEXT}",
        "Spotkanie o 10:00.",
    ]


def iphone_reply(got: EmailMessage, typed: str) -> EmailMessage:
    """iPhone Mail's Reply with the cursor put below its footer: the footer, what was typed, the quote."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = STAFF, got["From"], f"Re: {got['Subject']}"
    msg["In-Reply-To"] = msg["References"] = got["Message-ID"]
    quoted = "".join(f"> {line}\n" for line in got.get_content().splitlines())
    msg.set_content(
        f"\nSent from my iPhone\n\n{typed}\n\nOn 3 Dec 2026, at 10:00, {got['From']} wrote:\n\n{quoted}"
    )
    return msg


async def test_through_smtp_a_reply_typed_below_the_footer_answers_the_customer(tmp_path: Path) -> None:
    # The reply was taken for one with nothing written ("holds no new text") and refused.
    cfg, relay = config(tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        assert (
            await gw.send(mail(f"601123456@{DOMAIN}", body="Jutro o 10?", subject="Wizyta"))
        ).error is None
        await gw.until(lambda: len(core.records) == 1)
        await mo(gw, reply_to_last=True, text="Czy moze byc 11?")
        await sink.wait(1)
        answer = parsed(sink.messages[0][2])
        before = len(core.records)
        assert refused_as_empty(await gw.send(iphone_reply(answer, "")))
        assert (await gw.send(iphone_reply(answer, "Tak, 11 pasuje"))).error is None
        assert await sent_after(gw, before) == ["Tak, 11 pasuje"]


# What a mail server or a list appends below the footer of a phone or an app, which is no sentence of
# anyone's. Each reached the phone with the text above it (1 part became 2-5): a notice with one word
# of its kind or in lines under 50 characters, a list's footer below its rule, a company's signature
# opening with its logo, the name with a title or a role, or in capitals.
APPENDED = [
    "This message is intended only for the addressee.",
    "Ta wiadomość może zawierać informacje poufne.",
    "ACME Sp. z o.o.\nSąd Rejonowy dla m.st. Warszawy\nKRS: 0000123456\nNIP: 1234567890\nREGON: 123456789",
    "_______________________________________________\nUsers mailing list\nUsers@lists.example.org\n"
    "https://lists.example.org/mailman/listinfo/users",
    f"[cid:image001.png@01D9A1B2.C3D4E5F0]\n{COMPANY}",
    "Jan Kowalski | Kierownik Projektu\nACME Sp. z o.o.\ntel. +48 22 123 45 67\nwww.acme.pl",
    "JAN KOWALSKI\nACME Sp. z o.o.\ntel. +48 22 123 45 67\nwww.acme.pl",
    "mgr inż. Jan Kowalski\nACME Sp. z o.o.\ntel. +48 22 123 45 67\nwww.acme.pl",
]


@pytest.mark.parametrize("footer", ["Sent from my iPhone", "Wysłane z mojego Huawei", "Get Outlook for iOS"])
@pytest.mark.parametrize("below", APPENDED)
def test_what_a_server_appends_below_a_known_footer_goes_with_it(footer: str, below: str) -> None:
    cleaned = clean_body(f"Spotkanie o 10:00.\n\n{footer}\n\n{below}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == ("Spotkanie o 10:00.", True)


async def test_through_smtp_a_lists_footer_and_a_logo_signature_stay_off_the_phone(tmp_path: Path) -> None:
    bodies = [f"Spotkanie o 10:00.\n\nSent from my iPhone\n{below}" for below in APPENDED[3:5]]
    assert await phone_got(tmp_path, bodies) == ["Spotkanie o 10:00.", "Spotkanie o 10:00."]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # "Wysłane z mojego" and a small letter no device's name begins with: the person's sentence,
        # and the sign-off or the name below it goes as it would below any sentence. The sign-off and
        # name were read as signature material below a footer, so the sentence went with them: the
        # first mail was refused as holding no text, the others lost their last line.
        ("Wysłane z mojego nowego konta.\n\nPozdrawiam\nJan", "Wysłane z mojego nowego konta."),
        (
            "Cześć,\nto jest test bramki SMS.\nWysłane z mojego nowego konta.\n\nPozdrawiam\nJan",
            "Cześć,\nto jest test bramki SMS.\nWysłane z mojego nowego konta.",
        ),
        (
            "Faktura w załączniku.\nWysłane z mojego prywatnego adresu.\n\nJan Kowalski",
            "Faktura w załączniku.\nWysłane z mojego prywatnego adresu.\n\nJan Kowalski",
        ),
        ("Hi,\nSent from my home office today.\n\nRegards,\nBob", "Hi,\nSent from my home office today."),
    ],
)
def test_a_sentence_that_begins_like_a_footer_stays_above_a_sign_off(body: str, expected: str) -> None:
    assert clean_body(body).text == expected


async def test_through_smtp_a_sentence_that_begins_like_a_footer_reaches_the_phone(tmp_path: Path) -> None:
    # It was refused as a mail with no text.
    body = "Wysłane z mojego nowego konta.\n\nPozdrawiam\nJan"
    assert await phone_got(tmp_path, [body]) == ["Wysłane z mojego nowego konta."]


# Answers of a name's or a contact's shape, typed below the footer of a reply: each was read as the
# signature below the footer, and the reply was refused as holding no new text.
ANSWERS = ["Pasuje", "Przyjdę", "Oczywiście", "Noted", "Tak Jutro", "601 123 456", "jan.kowalski@gmail.com"]


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("footer", ["Sent from my iPhone", "Wysłane z iPhone’a", "Get Outlook for iOS"])
def test_a_one_line_answer_below_the_footer_of_a_reply_stays(footer: str, answer: str) -> None:
    for quote in (QUOTE, "> Czy potwierdza Pan termin?"):
        cleaned = clean_body(f"\n{footer}\n\n{answer}\n\n{quote}")
        assert (cleaned.text, SIGNATURE in cleaned.removed) == (answer, True)


async def test_through_smtp_a_one_line_answer_below_the_footer_reaches_the_phone(tmp_path: Path) -> None:
    bodies = [f"\nSent from my iPhone\n\n{answer}\n\n{QUOTE}" for answer in ("Pasuje", "601 123 456")]
    assert await phone_got(tmp_path, bodies) == ["Pasuje", "601 123 456"]
