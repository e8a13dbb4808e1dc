"""Short closing words above a name are a sign-off (R-1.3).

"Thanks,\\nJohn", "Dzięki,\\nAnia", "Cheers,\\nBob", "Pzdr\\nJan", "MfG\\nHans", "LG\\nAnna" and "Miłego
dnia!\\nJan" reached the phone below the text: only "Pozdrawiam", "Regards" and their kin were sign-offs.
These are now too, but only above a name (`signofftail.NAMED_SIGN_OFF`): alone at the end, or above a
sentence, such a word is the person's answer and stays.

At `clean_body`, as the other signature tests read bodies, and through a real SMTP client into the
running daemon and out to its built-in SMPP simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.smtp.textclean import SIGNATURE, clean_body
from tests.test_signatures_footer_text import phone_got

TEXT = "Dostawa jutro o 9."
SIGN_OFFS = [
    "Thanks,\nJohn",
    "Thank you!\nJohn Smith",
    "Dzięki,\nAnia",
    "Dzieki\nAnia",
    "Cheers,\nBob",
    "Pzdr\nJan",
    "MfG\nHans Müller",
    "LG\nAnna",
    "Miłego dnia!\nJan Kowalski",
    "Dzięki,\nJan Kowalski\nKierownik Logistyki\ntel. 601 222 333",
]


@pytest.mark.parametrize("sign_off", SIGN_OFFS)
def test_a_short_closing_word_above_a_name_is_cut(sign_off: str) -> None:
    cleaned = clean_body(f"{TEXT}\n\n{sign_off}")
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (TEXT, True)


KEPT = [
    # Alone at the end, or above a sentence: the person's answer.
    "Tak, pasuje.\nDzięki",
    "Tak, pasuje.\n\nThanks!",
    "Tak, pasuje.\n\nDzięki\n\nDo zobaczenia jutro.",
    # In a sentence of its own.
    "Dzięki Jan za pomoc.\nJutro o 9.",
    # Nothing above it: the message.
    "Thanks,\nJohn",
]


@pytest.mark.parametrize("body", KEPT)
def test_without_a_name_below_it_the_word_stays(body: str) -> None:
    cleaned = clean_body(body)
    assert (cleaned.text, SIGNATURE in cleaned.removed) == (body, False)


async def test_through_smtp_the_phone_gets_the_text_alone(tmp_path: Path) -> None:
    bodies = [f"{TEXT}\n\n{s}" for s in SIGN_OFFS[::3]] + [KEPT[0]]
    assert await phone_got(tmp_path, bodies) == [TEXT] * len(SIGN_OFFS[::3]) + [KEPT[0]]
