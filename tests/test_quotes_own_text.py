"""R-1.3 over real SMTP: a staff member's own line that reads like a reply attribution, with a date in
it, keeps everything it heads. Clients write a time or the sender's address in theirs ("Op 5 dec. 2026
om 10:00 schreef Jan <j@x.nl>:"); a person writes "Op 5 december schreef ik al:" or "Reklamacja z 5.12
od klienta Jan Kowalski <jan@x.pl>:" and the text below it is the message. Each was cut from the SMS,
the phone getting only the greeting above it; a date alone closing the text ("Klient 5.12 pisze:") lost
that line. Real clients' attributions with a time still cut the quote below them, indented or not.

Every mail goes through the listener to its own number; the text is what the SMSC received.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import DOMAIN, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_golden_smtp import reassemble, send_raw
from tests.test_quotes_languages import _mail

# A person's own text: the SMS is all of it.
OWN_TEXT = (
    # a dated line ending in an address and a colon, above the complaint it introduces
    "Proszę oddzwonić.\nReklamacja z 5.12 od klienta Jan Kowalski <jan@x.pl>:\nTowar uszkodzony.",
    "Hi,\nNew lead from the 5.12 fair, Jan Kowalski (jan@x.pl):\ncall him back today.",
    "Hi,\nOn 5.12 I spoke with\nJan Kowalski <jan@x.pl>:\nhe wants 10 pallets.",
    "Zgłoszenie przyjęte.\nReklamacja z 5.12 od klienta Jan Kowalski <jan@x.pl>:",
    # a date without a time or an address, in each language's attribution form
    "Hallo,\nOp 5 december schreef ik al:\nde levering komt dinsdag.",
    "Hola,\nEl 5 de diciembre el cliente escribió:\nentrega el martes.",
    "Ciao,\nIl 5 dicembre il cliente ha scritto:\nconsegna martedì.",
    "Olá,\nEm 5 de dezembro o cliente escreveu:\nentrega na terça.",
    "Dobrý den,\nDne 5. 12. zákazník napsal:\nschůzka bude v úterý.",
    "Добрый день,\n5 декабря пользователь Иван написал:\nдоставка во вторник.",
    "Cześć,\nW dniu 5.12 klient pisze:\nchce zmienić termin.",
    "Hallo,\nAm 5.12. schrieb der Kunde:\nLieferung Dienstag.",
    # such a line last in the text
    "Paleta gotowa do odbioru.\nKlient 5.12 pisze:",
    "Hallo Anna, de levering komt dinsdag.\nOp 5 december schreef ik al:",
    "Zamówienie 123 wysłane.\nJak 5.12 Jan napisał:",
)
NEW = "Potwierdzam termin na wtorek."
INDENTED = "    Czy wtorek 10:00 pasuje?\n    Klient"
QUOTED = "> Czy wtorek 10:00 pasuje?\n> Klient"
# A client's attribution and the quote below it: the SMS is the new text above them.
REPLIES = (
    f"{NEW}\n\nW dniu 05.12.2026 o 10:00, Jan Kowalski pisze:\n\n{INDENTED}",
    f"{NEW}\n\nOp 05-12-2026 om 10.00 schreef Jan de Vries:\n\n{INDENTED}",
    f"{NEW}\n\nпн, 5 дек. 2026 г. в 10:00, Иван Петров <i@partner.example>:\n\n{INDENTED}",
    f"{NEW}\n\npo 5. 12. 2026 o 10:00 Ján Novák <j@partner.example> napísal(a):\n{QUOTED}",
    f"{NEW}\n\n05.12.2026 10:00, Иван Петров пишет:",
)


async def test_own_dated_lines_keep_the_text_they_head(tmp_path: Path) -> None:
    table = [(text, text) for text in OWN_TEXT] + [(mail, NEW) for mail in REPLIES]
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        expected: dict[str, tuple[str, str]] = {}
        for i, (body, text) in enumerate(table):
            number = f"+48604{i:06d}"
            code, reply = await asyncio.to_thread(send_raw, gw.port, _mail(body + "\n"), f"{number}@{DOMAIN}")
            assert code == 250, f"{body!r}: {code} {reply}"
            expected[number] = (body, text)
        await smsc.wait_until(lambda: {s.destination for s in smsc.received} >= set(expected), timeout=60)
        by_number: dict[str, list] = {}
        for s in smsc.received:
            by_number.setdefault(s.destination, []).append(s)
        problems = [
            f"{body!r}: the phone got {reassemble(by_number[number])!r}, not {text!r}"
            for number, (body, text) in expected.items()
            if reassemble(by_number[number]) != text
        ]
    assert not problems, "\n".join(problems)
