"""What an HTML body marks that its text must show (R-1.3). Outlook's automatic signature: a postscript
typed below it ("PS. Kierowca ma dzwonić pod 601 222 333 przed 9:00.") went with it, in the HTML and in
the text alternative; in the text alternative the signature was taken to start at the first line
reading its first line, and a person's "Pytanie od:\nDział Zakupów\nczy dostawa…" above a signature
"Dział Zakupów\nACME…" lost the question. Struck-out text (<del>, <s>, <strike>, a line-through style)
went as valid: "Cena 1200 zł 990 zł." Through the intake's reading of a whole mail."""

from __future__ import annotations

import pytest

from gateway.smtp.intake import read_mail
from tests.test_intake import mail

B = "=_b1"
ALTERNATIVE = f'multipart/alternative; boundary="{B}"'
HTML = "text/html; charset=utf-8"


def alternative(text: str, markup: str) -> str:
    return (
        f"--{B}\nContent-Type: text/plain; charset=utf-8\n\n{text}\n"
        f"--{B}\nContent-Type: text/html; charset=utf-8\n\n{markup}\n--{B}--\n"
    )


def outlook(paragraphs: list[str], signature: list[str], after: tuple[str, ...] = ()) -> str:
    """An Outlook HTML body: its paragraphs, its automatic signature (a bookmark in the first
    paragraph, the later ones' spans in it), then what was typed below the signature."""
    first, *rest = signature
    sig = f'<p class=MsoNormal><a name="_MailAutoSig"><span lang=PL>{first}<o:p></o:p></span></a></p>'
    sig += "".join(
        f"<p class=MsoNormal><span style='mso-bookmark:_MailAutoSig'><span style='font-size:9.0pt'>{line}"
        "<o:p></o:p></span></span></p>"
        for line in rest
    )
    own = "".join(f"<p class=MsoNormal>{p}<o:p></o:p></p>" for p in paragraphs)
    below = "".join(f"<p class=MsoNormal>{p}<o:p></o:p></p>" for p in after)
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><body lang=PL><div class=WordSection1>'
        f"{own}<p class=MsoNormal><o:p>&nbsp;</o:p></p>{sig}{below}</div></body></html>"
    )


TEXT = ["Dzień dobry,", "proszę o potwierdzenie dostawy na jutro 10:00."]
SIGNATURE = ["Paweł Świątek", "Kierownik Działu Zakupów", "ACME Sp. z o.o."]
PS = "PS. Kierowca ma dzwonić pod 601 222 333 przed 9:00."


def read(body: str, ctype: str) -> str:
    return read_mail(mail(body, subject="Test", ctype=ctype)).body


def test_a_postscript_below_outlooks_signature_stays() -> None:
    text = "\n".join(TEXT) + "\n\n" + "\n".join(SIGNATURE) + f"\n\n{PS}\n"
    want = "\n".join(TEXT) + f"\n\n{PS}"
    assert read(alternative(text, outlook(TEXT, SIGNATURE, (PS,))), ALTERNATIVE) == want
    assert read(outlook(TEXT, SIGNATURE, (PS,)), HTML) == want


def test_outlooks_signature_alone_still_goes() -> None:
    text = "\n".join(TEXT) + "\n\n" + "\n".join(SIGNATURE) + "\n"
    assert read(alternative(text, outlook(TEXT, SIGNATURE)), ALTERNATIVE) == "\n".join(TEXT)


@pytest.mark.parametrize(
    ("own", "signature"),
    [
        (
            ["Pytanie od:", "Dział Zakupów", "czy dostawa będzie jutro o 10:00? Kierowca: 601 222 333."],
            ["Dział Zakupów", "ACME Sp. z o.o.", "tel. 22 123 45 67"],
        ),
        (
            ["Dostawa:", "Paweł Świątek", "odbierze paczkę jutro o 10:00."],
            ["Paweł Świątek", "Kierownik Działu Zakupów", "ACME Sp. z o.o."],
        ),
    ],
)
def test_the_text_alternatives_signature_starts_where_the_html_marks_it(
    own: list[str], signature: list[str]
) -> None:
    text = "\n".join(own) + "\n\n" + "\n".join(signature) + "\n"
    assert read(alternative(text, outlook(own, signature)), ALTERNATIVE) == "\n".join(own)


@pytest.mark.parametrize(
    ("markup", "sent"),
    [
        ("<p>Cena <del>1200 zł</del> 990 zł.</p>", "Cena 990 zł."),
        ("<p>Spotkanie <s>w poniedziałek</s> we wtorek 10:00.</p>", "Spotkanie we wtorek 10:00."),
        ("<p>Sala <strike>101</strike> 204.</p>", "Sala 204."),
        ("<p>Sala <span style='TEXT-DECORATION: line-through'>101</span> 204.</p>", "Sala 204."),
        (
            "<p>Sala <span style='text-decoration:underline line-through'>1<b>0</b>1</span> 204.</p>",
            "Sala 204.",
        ),
        ("<p><del>Spotkanie odwołane</del></p>", "Spotkanie odwołane"),
        ("<p>Sala <u>204</u> <sub>s</sub>.</p>", "Sala 204 s."),
    ],
)
def test_struck_out_text_is_not_sent(markup: str, sent: str) -> None:
    assert read(f"<html><body>{markup}</body></html>", HTML) == sent
