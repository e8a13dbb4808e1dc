"""R-1.3 over real SMTP: a reply written by a partner's mail client in their language sends the phone
only what they wrote above the quote. Outlook's separator and header block, Gmail's, Apple Mail's and
Thunderbird's attribution are written in the user's language (Spanish, Italian, Dutch, Czech, Russian,
Ukrainian, French ...); each such quote reached the phone whole, or its attribution line did. A
person's own line that merely looks like one ("On Monday the customer wrote:" above their text, a
signature's "Od: Jan Kowalski") stays.

Every mail goes through the listener to its own number; the text is what the SMSC received.
"""

from __future__ import annotations

import asyncio
import html
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import DOMAIN, STAFF, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_golden_smtp import reassemble, send_raw

NEW = "Potwierdzam termin na wtorek."
QUOTE = "Czy wtorek 10:00 pasuje?\nKlient"
SENDER = "Juan García <j@partner.example>"

# Outlook's separators as it writes them in each language, with the header block below them.
SEPARATORS = (
    "-----Original Message-----",
    "-----Ursprüngliche Nachricht-----",
    "-----Message d'origine-----",
    "-----Mensaje original-----",
    "-----Messaggio originale-----",
    "-----Oorspronkelijk bericht-----",
    "-----Původní zpráva-----",
    "-----Исходное сообщение-----",
    "-----Оригінальне повідомлення-----",
)
# Outlook's header block (desktop, OWA, the newer Outlook) in its labels of each language.
HEADER_BLOCKS = {
    "fr": "De : Jean Dupont <j@partner.example>\nEnvoyé : lundi 5 décembre 2026 10:00\nÀ : Anna\nObjet : Re",
    "es": f"De: {SENDER}\nEnviado el: lunes, 5 de diciembre de 2026 10:00\nPara: Anna\nAsunto: Termin",
    "es-date": f"De: {SENDER}\nFecha: lunes, 5 de diciembre de 2026 10:00\nPara: Anna\nAsunto: Termin",
    "it": "Da: Mario Rossi <m@partner.example>\nInviato: lunedì 5 dicembre 2026 10:00\nA: Anna\nOggetto: Re",
    "nl": "Van: Jan de Vries\nVerzonden: maandag 5 december 2026 10:00\nAan: Anna\nOnderwerp: Termin",
    "cs": "Od: Jan Novák\nOdesláno: pondělí 5. prosince 2026 10:00\nKomu: Anna\nKopie: Petr\nPředmět: Termin",
    "ru": "От: Иван Петров\nОтправлено: 5 декабря 2026 г. 10:00\nКому: Анна\nТема: Termin",
    "ru-date": "От: Иван Петров <i@partner.example>\nДата: 5 декабря 2026 г. 10:00\nКому: Анна\nТема: Termin",
    "uk": "Від: Тарас Шевченко\nНадіслано: 5 грудня 2026 р. 10:00\nКому: Анна\nТема: Termin",
    "pt": "De: João Silva\nEnviado: segunda-feira, 5 de dezembro de 2026 10:00\nPara: Anna\nAssunto: Termin",
}
# Attributions as Gmail, Apple Mail and Thunderbird write them above a `>` quote.
ATTRIBUTIONS = {
    "gmail-es": "El lun, 5 dic 2026 a las 10:00, Juan García (<j@partner.example>) escribió:",
    "gmail-it": "Il giorno lun 5 dic 2026 alle ore 10:00 Mario Rossi <m@partner.example> ha scritto:",
    "gmail-nl": "Op ma 5 dec. 2026 om 10:00 schreef Jan de Vries <j@partner.example>:",
    "gmail-cs": "po 5. 12. 2026 v 10:00 odesílatel Jan Novák <j@partner.example> napsal:",
    "gmail-ru": "пн, 5 дек. 2026 г. в 10:00, Иван Петров <i@partner.example>:",
    "gmail-uk": "пн, 5 груд. 2026 р. о 10:00 Тарас <t@partner.example> пише:",
    "apple-es": "El 5 dic 2026, a las 10:00, Juan García <j@partner.example> escribió:",
    "apple-nl": "Op 5 dec. 2026 om 10:00 heeft Jan de Vries <j@partner.example> het volgende geschreven:",
    "apple-cs": "Dne 5. 12. 2026 v 10:00, Jan Novák <j@partner.example> napsal(a):",
    "apple-ru": "5 дек. 2026 г., в 10:00, Иван Петров <i@partner.example> написал(а):",
    "apple-uk": "5 груд. 2026 р. о 10:00 Тарас <t@partner.example> написав(ла):",
    "tb-es": "El 5/12/26 a las 10:00, Juan García escribió:",
    "tb-it": "Il 05/12/26 10:00, Mario Rossi ha scritto:",
    "tb-nl": "Op 05-12-2026 om 10:00 schreef Jan de Vries:",
    "tb-cs": "Dne 05. 12. 26 v 10:00 Jan Novák napsal(a):",
    "tb-ru": "05.12.2026 10:00, Иван Петров пишет:",
    "tb-uk": "05.12.26 10:00, Тарас пише:",
}
# Outlook's attribution above a quote it indents instead of marking with `>`.
OUTLOOK_INDENTED = (
    'El lun, 5 dic 2026 a las 10:00, "Juan García" <j@partner.example> escribió:',
    'Il giorno lun 5 dic 2026 10:00 "Mario Rossi" <m@partner.example> ha scritto:',
    "Dne 05.12.2026 10:00, Jan Novák <j@partner.example> napsal(a):",
    '5 декабря 2026 г., в 10:00, пользователь "Иван" <i@partner.example> написал:',
)
# Lines of a person's own text that look like a quote's header: kept with everything below them.
OWN_TEXT = (
    "Dzień dobry,\nOn Monday the customer wrote:\nplease deliver on Tuesday.\nThanks",
    "Hola,\nEl cliente escribió:\nentrega el martes.\nGracias",
    "Please see below, as the customer wrote:\nTuesday works.\nAnna",
    "Klient prosi o kontakt.\n\nOd: Jan Kowalski\nTel. 601 123 456",
    "Buongiorno,\nDa: lunedì\nA: venerdì\nOggetto: ferie",
    "Dobrý den,\nDne v pondělí zákazník napsal:\nschůzka bude v úterý.",
)


def _mail(body: str, subtype: str = "plain") -> bytes:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = f"601123456@{DOMAIN}"
    msg["Message-ID"] = "<reply-languages@acme.example>"
    msg.set_content(body, subtype=subtype)
    return bytes(msg)


def _outlook_html(block: str) -> str:
    """Outlook desktop's HTML reply: the header block in a div with a rule as its top border."""
    fields = "<br>\n".join(
        f"<b>{html.escape(label)}:</b>{html.escape(value)}"
        for label, _, value in (line.partition(":") for line in block.split("\n"))
    )
    return (
        "<html><body lang=PL><div class=WordSection1><p class=MsoNormal>"
        f"{NEW}<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
        f"<p class=MsoNormal>{fields}<o:p></o:p></p></div></div>"
        "<p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        "<p class=MsoNormal>Czy wtorek 10:00 pasuje?<o:p></o:p></p></div></body></html>"
    )


def _apple_html(attribution: str) -> str:
    """Apple Mail's HTML reply: the attribution above the `cite` blockquote, outside it."""
    return (
        f"<html><body><div>{NEW}</div><div><br><div>{html.escape(attribution)}</div>"
        '<blockquote type="cite"><div>Czy wtorek 10:00 pasuje?</div></blockquote></div></body></html>'
    )


def _quoted(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.split("\n"))


def cases() -> list[tuple[str, bytes, str]]:
    """(name, mail, the SMS it must give)."""
    out: list[tuple[str, bytes, str]] = []
    block = HEADER_BLOCKS["es"]
    for sep in SEPARATORS:
        out.append((f"separator {sep}", _mail(f"{NEW}\n\n{sep}\n{block}\n\n{QUOTE}\n"), NEW))
    for name, block in HEADER_BLOCKS.items():
        out.append((f"header {name}", _mail(f"{NEW}\n\n{block}\n\n{QUOTE}\n"), NEW))
        rule = "_" * 32
        out.append((f"header after rule {name}", _mail(f"{NEW}\n\n{rule}\n{block}\n\n{QUOTE}\n"), NEW))
        out.append((f"header html {name}", _mail(_outlook_html(block), "html"), NEW))
    for name, attribution in ATTRIBUTIONS.items():
        out.append((f"attribution {name}", _mail(f"{NEW}\n\n{attribution}\n{_quoted(QUOTE)}\n"), NEW))
        out.append((f"attribution html {name}", _mail(_apple_html(attribution), "html"), NEW))
    for attribution in OUTLOOK_INDENTED:
        indented = "\n".join(f"    {line}" for line in QUOTE.split("\n"))
        out.append((f"outlook indented {attribution}", _mail(f"{NEW}\n\n{attribution}\n\n{indented}\n"), NEW))
    for i, text in enumerate(OWN_TEXT):
        out.append((f"own text {i}", _mail(text + "\n"), text))
    return out


async def test_quotes_in_other_languages_do_not_reach_the_phone(tmp_path: Path) -> None:
    table = cases()
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        expected: dict[str, tuple[str, str]] = {}
        for i, (name, raw, text) in enumerate(table):
            number = f"+48602{i:06d}"
            code, reply = await asyncio.to_thread(send_raw, gw.port, raw, f"{number}@{DOMAIN}")
            assert code == 250, f"{name}: {code} {reply}"
            expected[number] = (name, text)
        await smsc.wait_until(lambda: {s.destination for s in smsc.received} >= set(expected), timeout=60)
        by_number: dict[str, list] = {}
        for s in smsc.received:
            by_number.setdefault(s.destination, []).append(s)
        problems = [
            f"{name}: the phone got {reassemble(by_number[number])!r}, not {text!r}"
            for number, (name, text) in expected.items()
            if reassemble(by_number[number]) != text
        ]
    assert not problems, "\n".join(problems)
