"""Sign-offs of other words and languages close the text as "Pozdrawiam" does (R-1.3).

"Potwierdzam odbiór.\\n\\nBest,\\nJan" reached the phone whole, and so did "All the best,", "Sincerely,",
"Cordialement,", "Saludos,", "Grüße", "Gruß", "Do usłyszenia,", "Ściskam" and "Buziaki" above a name:
`signatures.SIGN_OFF` knew none of them. A line that only starts with such a word ("Saludos a todos",
"Sincerely yours" right under a greeting) is no sign-off and stays, as does a sign-off with nothing
above it.

At `clean_body`, and through a real SMTP client into the running daemon and out to its built-in SMPP
simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.conftest import DOMAIN, mail
from tests.test_signature_subject_only import phone_got

TEXT = "Potwierdzam odbiór."
SIGN_OFFS = [
    "Best,",
    "All the best,",
    "Sincerely,",
    "Yours sincerely,",
    "Cheers,",
    "Cordialement,",
    "Saludos,",
    "Grüße",
    "Gruß",
    "Liebe Grüße",
    "Do usłyszenia,",
    "Do uslyszenia",
    "Ściskam",
    "Buziaki",
]


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_the_sign_off_and_the_name_go(sign_off: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{sign_off}\nJan\n")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


KEPT = ["Best,\nJan", f"{TEXT}\n\nSaludos a todos, nos vemos el lunes en la oficina."]


@pytest.mark.parametrize("body", KEPT)
def test_what_is_no_closing_sign_off_stays(body: str) -> None:
    assert clean_body(body).text == body


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    sent = [mail(f"6011236{20 + n}@{DOMAIN}", f"{TEXT}\n\n{s}\nJan\n", "X") for n, s in enumerate(SIGN_OFFS)]
    assert await phone_got(tmp_path, sent) == [(f"X: {TEXT}", 1)] * len(SIGN_OFFS)
