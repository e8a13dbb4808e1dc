"""Each cutting rule of gateway.smtp.textclean on its own, plus whitespace normalisation and format=flowed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.smtp.textclean import (
    ATTRIBUTION,
    FORWARD_HEADER,
    FORWARDED,
    IMAGE_REF,
    QUOTED,
    SIGNATURE,
    clean_body,
    collapse,
    normalize,
    unflow,
)

# (id, body, expected text, label expected in `removed` or None for "nothing removed")
RULES: list[tuple[str, str, str, str | None]] = [
    # --- end marker
    ("end-marker-cuts-below", "Hello\nEND\nConfidentiality notice\nmore", "Hello", "text below END"),
    ("end-marker-case-sensitive", "Hello\nend\nstill here", "Hello\nend\nstill here", None),
    ("end-marker-whole-line-only", "Hello END\nstill here", "Hello END\nstill here", None),
    ("end-marker-with-spaces", "Hello\n  END  \nfooter", "Hello", "text below END"),
    ("end-marker-cuts-quote-too", "Hi\nEND\nOn Mon, Bob wrote:\n> old", "Hi", "text below END"),
    # --- reply attributions
    (
        "on-wrote-top-post",
        "Yes, 10:00.\n\nOn Mon, 1 Mar 2021, Bob <b@x.pl> wrote:\n> When?",
        "Yes, 10:00.",
        QUOTED,
    ),
    (
        "on-wrote-split-across-lines",
        "Yes.\n\nOn Mon, 1 Mar 2021 at 10:00, Jan Kowalski <\njan@example.com> wrote:\n\n> When?",
        "Yes.",
        QUOTED,
    ),
    ("on-wrote-bottom-post", "On 04/02/2012 06:26 PM, Megan wrote:\n> Hi\nHello", "Hello", QUOTED),
    (
        "w-dniu-pisze",
        "Dziękuję.\n\nW dniu 1.03.2021 o 10:00, Jan Kowalski pisze:\n> Pytanie",
        "Dziękuję.",
        QUOTED,
    ),
    ("dnia-napisal-a", "Tak.\nDnia 28 lutego 2023 14:00 Anna <a@x.pl> napisał(a):\n> Czy?", "Tak.", QUOTED),
    ("dnia-napisala", "Tak.\nDnia 28 lutego 2023 Anna Nowak napisała:\n> Czy?", "Tak.", QUOTED),
    ("generic-wrote-before-quote", "Marc Slemko wrote:\n> old text\n\nMy answer", "My answer", QUOTED),
    (
        "generic-wrote-without-quote-kept",
        "Yes.\nThe customer wrote: call me",
        "Yes.\nThe customer wrote: call me",
        None,
    ),
    (
        "generic-wrote-line-without-quote-kept",
        "Yes.\nBob wrote:\nplain text",
        "Yes.\nBob wrote:\nplain text",
        None,
    ),
    (
        "inline-reply-keeps-answers",
        "Hi\nOn Mon, Bob wrote:\n> first question\nfirst answer\n> second question\nsecond answer",
        "Hi\nfirst answer\nsecond answer",
        QUOTED,
    ),
    ("quote-marks-dropped", "Answer\n> quoted line\n>> deeper", "Answer", QUOTED),
    ("quote-alone-and-nested", "Answer\n>\n>>nested\n>\told", "Answer", QUOTED),
    # ">" right before text is no client's quote: a person's "more than" (or an mbox ">From").
    (
        "greater-than-is-text",
        "Temperatura w hali:\n>35 stopni, wyłączyć linię 2",
        "Temperatura w hali:\n>35 stopni, wyłączyć linię 2",
        None,
    ),
    ("mbox-escaped-from-is-text", "Line one\n>From here on", "Line one\n>From here on", None),
    # --- separators and header blocks
    ("original-message-lower", "New text\n\n-----original message-----\n\nOld text", "New text", QUOTED),
    ("original-message-upper", "New text\n-----ORIGINAL MESSAGE-----\nFrom: a@b.pl\nOld", "New text", QUOTED),
    (
        "wiadomosc-oryginalna",
        "Nowy tekst\n-----Wiadomość oryginalna-----\nOd: a@b.pl\nStary",
        "Nowy tekst",
        QUOTED,
    ),
    (
        "outlook-rule-and-block",
        "Reply\n\n________________________________\nFrom: Any One <a@x.net>\nSent: Wednesday\nTo: b@x.de\n"
        "Subject: Hi\n\nHello",
        "Reply",
        QUOTED,
    ),
    (
        "outlook-block-mailto",
        "Hello\n\nFrom: xxx@x.org [mailto:xxx@x.org]\nSent: March-09-12 4:22 PM\n"
        "To: Dan\nSubject: Loop\n\nOld",
        "Hello",
        QUOTED,
    ),
    (
        "polish-outlook-block",
        "Odpowiedź\n\nOd: Jan Kowalski\nWysłano: środa, 1 marca 2023 12:00\n"
        "Do: Anna Nowak\nTemat: Test\n\nStary",
        "Odpowiedź",
        QUOTED,
    ),
    (
        "human-od-do-lines-are-no-header",
        "Spotkanie\nOd: 10:00\nDo: 12:00\nData: 5 maja\nTemat: budżet",
        "Spotkanie\nOd: 10:00\nDo: 12:00\nData: 5 maja\nTemat: budżet",
        None,
    ),
    (
        "forward-with-note-above-cuts-forward",
        "Please call him\n---------- Forwarded message ---------\n"
        "From: A <a@x.pl>\nDate: today\nTo: me\n\nOld",
        "Please call him",
        FORWARDED,
    ),
    # --- forwards at the very top: the forwarded text is the message
    (
        "gmail-forward-at-top",
        "---------- Forwarded message ---------\nOd: John <j@acme.com>\nDate: śr., 27 paź 2021\nSubject: S\n"
        "To: <b@acme.com>\n\nForwarded body",
        "Forwarded body",
        FORWARD_HEADER,
    ),
    (
        "thunderbird-pl-forward",
        "--- Treść przekazanej wiadomości ---\nTemat: \tS\nData: \tWed\n"
        "Nadawca: \tJ <j@a.com>\nAdresat: \tb@a.com\n\n\nBody",
        "Body",
        FORWARD_HEADER,
    ),
    (
        "hubspot-pl-forward",
        "---------- Wiadomość przesłana dalej ---------\n"
        "Od: J <j@a.com>\nData: pon\nTemat: S\nDo: b@a.com\n\nBody",
        "Body",
        FORWARD_HEADER,
    ),
    (
        "yahoo-pl-run-together",
        "   ----- Przekazana wiadomość ----- Od: J <j@a.com>Do: b@a.comWysłano: wtorekTemat: S\n Body",
        "Body",
        FORWARD_HEADER,
    ),
    (
        "apple-pl-forward-all-quoted",
        "> Początek przekazywanej wiadomości:\n>\n"
        "> Od: J <j@a.com>\n> Temat: S\n> Data: 26\n> Do: b@a.com\n>\n> Body",
        "Body",
        FORWARD_HEADER,
    ),
    (
        "begin-forwarded-message",
        "Begin forwarded message:\n\nFrom: J <j@a.com>\nDate: x\nTo: y\n\nBody",
        "Body",
        None,
    ),
    (
        "outlook-2019-pl-indented-forward",
        "Dnia 28/10/2021, 12:46 użytkownik „John Doe” <j@acme.com> napisał:\n\n    Indented body",
        "Indented body",
        ATTRIBUTION,
    ),
    ("reply-with-only-quote-is-empty", "> only old text", "", QUOTED),
    # --- signatures
    ("dash-dash-space", "Text\n-- \nJan Kowalski\ntel. 601", "Text", SIGNATURE),
    ("dash-dash-bare", "Text\n--\nJan", "Text", SIGNATURE),
    ("dash-dash-name", "Text\n-- Greg\nGreg Allen\nSenior Engineer", "Text", SIGNATURE),
    ("sent-from-iphone", "Hello\n\nSent from my iPhone", "Hello", SIGNATURE),
    ("wyslane-z-iphonea", "Cześć\n\nWysłane z iPhone'a", "Cześć", SIGNATURE),
    (
        "download-outlook-android",
        "Text\n\nDownload Outlook for Android<https://aka.ms/ghei36>",
        "Text",
        SIGNATURE,
    ),
    ("get-outlook-ios", "Text\nGet Outlook for iOS", "Text", SIGNATURE),
    # Outlook mobile and Windows Mail in Polish, link and all.
    (
        "pobierz-outlook",
        "Tekst\n\nPobierz aplikację Outlook dla systemu Android<https://aka.ms/AAb9ysg>",
        "Tekst",
        SIGNATURE,
    ),
    ("pobierz-outlook-ios", "Tekst\nPobierz aplikację Outlook dla systemu iOS", "Tekst", SIGNATURE),
    ("wyslano-z-poczty", "Tekst\n\nWysłano z aplikacji Poczta dla systemu Windows", "Tekst", SIGNATURE),
    ("emailsignature-placeholder", "шостий\n\n{EMAILSIGNATURE}\n\nRR Test 1", "шостий", SIGNATURE),
    ("pozdrawiam-block", "Jak się masz?\n\nPozdrawiam,\nJan", "Jak się masz?", SIGNATURE),
    (
        "z-powazaniem-block",
        "Faktura w załączniku.\n\nZ poważaniem,\nJan Kowalski\nDyrektor\ntel. +48 601 123 456",
        "Faktura w załączniku.",
        SIGNATURE,
    ),
    ("pozdrawiam-name-same-line", "Do jutra.\nPozdrawiam Jan Kowalski", "Do jutra.", SIGNATURE),
    ("best-regards", "See you.\n\nBest regards,\nBob", "See you.", SIGNATURE),
    (
        "pozdrawiam-lowercase-continuation-kept",
        "Dziękuję.\npozdrawiam i do zobaczenia jutro",
        "Dziękuję.\npozdrawiam i do zobaczenia jutro",
        None,
    ),
    ("pozdrawiam-alone-kept", "Pozdrawiam,\nJan", "Pozdrawiam,\nJan", None),
    (
        "pozdrawiam-long-tail-kept",
        "Tekst\nPozdrawiam\n" + "\n".join(f"linia {n}" for n in range(10)),
        "Tekst\nPozdrawiam\n" + "\n".join(f"linia {n}" for n in range(10)),
        None,
    ),
    (
        # Polish Gmail: the date first, the attribution wrapped onto two lines
        "gmail-pl-date-first-top",
        "Będę o 15.\n\nśr., 11 gru 2019 o 10:49 Uwe Kleine-König\n<u.k@example.de> napisał(a):\n>\n> Kiedy?",
        "Będę o 15.",
        QUOTED,
    ),
    (
        "gmail-pl-date-first-bottom",
        "pt., 13 gru 2019 o 08:01 Jan Nowak\n<jan@example.pl> napisał(a):\n>\n> Kiedy?\n\nBędę o 15.",
        "Będę o 15.",
        QUOTED,
    ),
    (
        # the reply's own first line starts like an attribution, with no blank line before the real one
        "own-line-starting-with-on",
        "On my way, 10 minutes.\nOn Mon, Feb 5, 2024 at 10:00 AM John <john@example.com> wrote:\n> Where?",
        "On my way, 10 minutes.",
        QUOTED,
    ),
    (
        "own-line-starting-with-w-dniu",
        "W dniu jutrzejszym biuro nieczynne.\nJan pisze:\n> czy jutro otwarte?",
        "W dniu jutrzejszym biuro nieczynne.",
        QUOTED,
    ),
    (
        "dash-list-is-no-signature",
        "Zmiany na jutro:\n-- Sala 204\n-- Start 10:00\n-- Obiad 13:00",
        "Zmiany na jutro:\n-- Sala 204\n-- Start 10:00\n-- Obiad 13:00",
        None,
    ),
    (
        "postscript-after-sign-off-stays",
        "Spotkanie przeniesione na 15:00.\nPozdrawiam\nJan\n\nPS. Sala 204 zamiast 101.",
        "Spotkanie przeniesione na 15:00.\n\nPS. Sala 204 zamiast 101.",
        SIGNATURE,
    ),
    ("dash-sign-off", "Isn't that the case?\n\n---/dev/il", "Isn't that the case?", SIGNATURE),
    ("tilde-sign-off", "Hello\n\n~Danielle", "Hello", SIGNATURE),
    ("signature-only", "-- \nJan Kowalski", "", SIGNATURE),
    (
        "pgp-signed-inline",
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSigned text\n- -- dash-escaped\nend\n"
        "-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n-----END PGP SIGNATURE-----\n",
        "Signed text\n-- dash-escaped\nend",
        "PGP signature",
    ),
    # --- inline images and whitespace
    ("cid-image-ref", "Text\n[cid:image001.png@01D2EE6A.85652C70]\nmore", "Text\nmore", IMAGE_REF),
    ("gmail-image-ref", "Text\n[image: logo.png]", "Text", IMAGE_REF),
    ("collapse-blank-lines-and-spaces", "  a   b\t\tc  \n\n\n\n   d  ", "a b c\n\nd", None),
]


@pytest.mark.parametrize(("body", "expected", "label"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(body: str, expected: str, label: str | None) -> None:
    # Each table row: the rule cuts exactly what a person did not mean to send, and says so.
    cleaned = clean_body(body)
    assert cleaned.text == expected
    if label is None:
        assert not [r for r in cleaned.removed if r in (QUOTED, SIGNATURE, FORWARDED)]
    else:
        assert label in cleaned.removed


def test_every_line_end_style_gives_the_same_result() -> None:
    # CRLF and lone CR bodies are cut exactly like LF bodies.
    body = "Yes.\n\nOn Mon, Bob wrote:\n> q\n-- \nsig"
    assert clean_body(body.replace("\n", "\r\n")) == clean_body(body) == clean_body(body.replace("\n", "\r"))


def test_end_marker_is_configurable_and_can_be_off() -> None:
    # Another marker word cuts; None disables the rule altogether.
    assert clean_body("Hi\nKONIEC\nfooter", end_marker="KONIEC").text == "Hi"
    assert clean_body("Hi\nEND\nfooter", end_marker=None).text == "Hi\nEND\nfooter"
    assert clean_body("Hi\nEND", end_marker="END").removed == ()  # nothing below: nothing reported cut


def test_removed_labels_are_unique() -> None:
    # Two quotes and two signatures are reported once each.
    cleaned = clean_body("a\n> q1\nb\n> q2\n-- \nsig")
    assert len(cleaned.removed) == len(set(cleaned.removed))


def test_normalize_invisible_characters() -> None:
    # NBSP and narrow spaces become spaces; BOM, zero-width space, soft hyphen and controls vanish.
    assert normalize("\ufeffa\u00a0b\u202fc\u200bd\u00ade\x07f\r\ng\rh") == "a b cdef\ng\nh"


def test_collapse() -> None:
    # Blank-line runs shrink to one blank line and the ends are trimmed.
    assert collapse(["", " x ", "", "", "y", ""]) == "x\n\ny"


@pytest.mark.parametrize(
    ("flowed", "delsp", "expected"),
    [
        ("Hello \nworld\n", False, "Hello world\n"),
        ("Hel \nlo\n", True, "Hello\n"),
        ("> quoted \n> more\nnew\n", False, "> quoted more\nnew\n"),
        ("-- \nsig\n", False, "-- \nsig\n"),
        (" >stuffed\n", False, ">stuffed\n"),
        ("soft \n> quote\n", False, "soft \n> quote\n"),
    ],
    ids=["soft-break", "delsp", "quote-depth", "signature-separator", "space-stuffing", "depth-change"],
)
def test_unflow(flowed: str, delsp: bool, expected: str) -> None:
    # RFC 3676: soft line breaks join lines of equal quote depth; the "-- " line never flows.
    assert unflow(flowed, delsp) == expected


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_clean_body_never_fails_and_leaves_tidy_text(body: str) -> None:
    # Any text at all: no exception, no blank-line runs, no doubled spaces, no outer whitespace.
    text = clean_body(normalize(body)).text
    assert "\n\n\n" not in text
    assert "  " not in text
    assert text == text.strip()
