"""An HTML mail's signature container is where its signature starts (R-1.3).

Outlook's and OWA's `<div id="Signature">`, Gmail's `gmail_signature`, Thunderbird's `moz-signature`
and Apple Mail's `AppleMailSignature` were read only to hide their links' targets: a name, a company
and a phone with no "Pozdrawiam" above reached the phone, and with a disclaimer inside the container
4 UCS-2 parts for "Dostawa jutro o 9.". The container's start is now marked, and what it holds is cut
as below a bare "--" (`signatures.cut_signature`): a signature's block goes, a long text the person
typed into the container stays, and so does a container with nothing above it.

Read by the intake as it reads a mail off the wire, and through a real SMTP client into the running
daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.smtp.intake import read_mail
from gateway.smtp.textclean import SIGNATURE
from tests.conftest import DOMAIN, STAFF, free_port, running_gateway
from tests.test_two_way import two_way_config

TEXT = "Dostawa jutro o 9."
NOTICE = (
    "Treść tej wiadomości jest poufna i prawnie chroniona. Jeżeli nie jest Pan/Pani adresatem niniejszej "
    "wiadomości, jej rozpowszechnianie lub kopiowanie jest zabronione."
)
CONTAINERS = {
    "owa": ('<div style="font-family:Aptos">{text}</div><div><br></div><div id="Signature">{sig}</div>'),
    "apple": '<div>{text}</div><div><br><div id="AppleMailSignature">{sig}</div></div>',
    "gmail": (
        '<div dir="ltr">{text}<div><div dir="ltr" class="gmail_signature" '
        'data-smartmail="gmail_signature">{sig}</div></div></div>'
    ),
    "thunderbird": '<p>{text}</p><div class="moz-signature">{sig}</div>',
}
SIGNATURES = [
    "Jan Kowalski<br>ACME Sp. z o.o.<br>tel. 601 222 333",
    f"<div>Jan Kowalski</div><div>Kierownik Logistyki | ACME Sp. z o.o.</div><div>tel. 601 222 333</div>"
    f'<div style="font-size:8pt">{NOTICE}</div>',
]


def html_mail(markup: str, to: str = f"601123456@{DOMAIN}") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = STAFF
    msg["To"] = to
    msg.set_content(f"<html><body>{markup}</body></html>", subtype="html")
    return msg


@pytest.mark.parametrize("signature", SIGNATURES, ids=["block", "with-notice"])
@pytest.mark.parametrize("program", sorted(CONTAINERS))
def test_the_containers_signature_stays_off_the_phone(program: str, signature: str) -> None:
    markup = CONTAINERS[program].format(text=TEXT, sig=signature)
    mail = read_mail(bytes(html_mail(markup)))
    assert (mail.text, SIGNATURE in mail.removed) == (TEXT, True)


LONG = (
    "Proszę jeszcze pamiętać, że parking przy biurze jest zamknięty do końca miesiąca, więc najlepiej "
    "przyjechać komunikacją miejską."
)


@pytest.mark.parametrize("program", sorted(CONTAINERS))
def test_what_the_person_wrote_into_or_below_the_container_stays(program: str) -> None:
    # A long paragraph typed into the container below the name: the person's text, as below a bare "--".
    markup = CONTAINERS[program].format(text=TEXT, sig=f"Jan<br><br>{LONG}")
    text = read_mail(bytes(html_mail(markup))).text
    assert (text.startswith(TEXT), text.endswith(f"Jan\n\n{LONG}")) == (True, True), text
    # Nothing above the container: what is in it is the mail.
    markup = CONTAINERS[program].format(text="", sig="Będę o 10.<br>Jan")
    assert read_mail(bytes(html_mail(markup))).text == "Będę o 10.\nJan"


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    cfg = two_way_config(tmp_path, "smpp", relay_port=free_port())
    numbers = {program: f"6011235{n + 10:02d}" for n, program in enumerate(sorted(CONTAINERS))}
    async with running_gateway(cfg) as gw:
        core = gw.daemon.simulator.core
        for program, number in numbers.items():
            markup = CONTAINERS[program].format(text=TEXT, sig=SIGNATURES[0])
            assert (await gw.send(html_mail(markup, f"{number}@{DOMAIN}"))).error is None

        def got(number: str) -> list[str]:
            return [str(r["text"]) for r in core.records if str(r["destination"]).endswith(number)]

        await gw.until(lambda: all(got(n) for n in numbers.values()))
        assert {program: got(n) for program, n in numbers.items()} == {p: [TEXT] for p in numbers}
