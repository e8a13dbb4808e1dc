"""HTML and Outlook TNEF (winmail.dat) bodies → plain text, for gateway.smtp.intake, which decides which part
is the message. HTML loses the quoted earlier message of a reply (the containers mail programs put it
in); a TNEF attachment yields its MAPI message class, subject and body (plain, else HTML, else RTF).
Nothing here raises on bad input: a quirk costs formatting, never the mail.

HTML is converted with inscriptis rather than html2text: inscriptis is Apache-2.0 (html2text is
GPL-3.0), about twice as fast, and on the corpus its output is at least as good (Outlook's MsoNormal
paragraphs, tables and conditional comments come out as clean lines).
"""

from __future__ import annotations

import html
import logging
import re
import struct
from dataclasses import dataclass
from email.message import Message
from itertools import islice, takewhile
from typing import Any

import structlog
import tnefparse.tnef
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig
from lxml.html import HtmlElement, HTMLParser, document_fromstring
from tnefparse import TNEF

from gateway.smtp.charsets import decode_text, one_line, payload_bytes
from gateway.smtp.htmlinline import drop_struck, hour_minutes
from gateway.smtp.htmlshown import CSS, drop_hidden
from gateway.smtp.signatures import SIGNATURE, cut_signature
from gateway.smtp.signofftail import POSTSCRIPT
from gateway.smtp.textclean import QUOTED
from gateway.smtp.textlinks import TARGETS_BUDGET, link_target

try:  # RTF-only TNEF bodies need both; without them such a body is skipped, never garbled.
    import compressed_rtf
    from compressed_rtf.crc32 import crc32
    from striprtf.striprtf import rtf_to_text
except ImportError:  # pragma: no cover - both are declared dependencies
    compressed_rtf = None

log = structlog.get_logger(__name__)

# tnefparse reads a MAPI property block by looping over the count the block states, up to 2**32-1,
# skipping (and logging a warning for) each property past the end of the data: a 282-byte mail
# held the event loop for hours. Each property takes at least its 4-byte tag, so no more than
# that many can be read from the data; the count is cut to that before the library loops, which
# changes no result (the rest would only have been skipped), and its per-property complaints
# about malformed input stay below the journal's level.
_decode_mapi = tnefparse.tnef.decode_mapi
logging.getLogger("tnefparse").setLevel(logging.ERROR)


def _bounded_decode_mapi(data: bytes, codepage: str = "cp1252", starting_offset: int | None = None) -> Any:
    offset = starting_offset or 0
    if len(data) >= offset + 4:
        (count,) = struct.unpack_from("<I", data, offset)
        readable = max(0, len(data) - offset - 4) // 4
        if count > readable:
            data = data[:offset] + struct.pack("<I", readable) + data[offset + 4 :]
    return _decode_mapi(data, codepage, starting_offset)


tnefparse.tnef.decode_mapi = _bounded_decode_mapi

_MAX_HTML = 500_000
# An RTF body is decompressed and read to its first 400,000 bytes: room for a letterhead picture of
# 200 KB (hex in RTF) before the text, and pages of text (an SMS takes at most 1,530 characters).
# The library decompresses in pure Python, about 1.2 MB of RTF a second, up to 8.5 times its input:
# a 731 KB winmail.dat of maximum-ratio LZFu held the event loop for 9 s (5.8 MB of RTF, then 3 s
# in striprtf). Bounded by what it makes, not by what it reads: a cut at 32 KiB of LZFu lost the
# text behind a 20 KB picture, which hardly compresses.
_MAX_RTF = 400_000
RTF_CUT = "rich-text body read to its first 400,000 bytes"
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^<>]*\?>")
_HTML_CONFIG = ParserConfig(css=CSS, display_links=False, display_images=False)

_HTML_START = re.compile(
    r"^\s*<(!doctype\s+html|html|head|body|div|p|table|span|font|meta|br)\b", re.IGNORECASE
)
_HTML_CLOSE = re.compile(r"</(html|body|div|p|span|table|font)>|<br\s*/?>", re.IGNORECASE)
# Containers in which mail programs put the quoted earlier message of an HTML reply.
_HTML_QUOTES = (
    "//blockquote[@type='cite']",
    "//div[contains(concat(' ', @class, ' '), ' gmail_quote ')]",
    "//div[@class='moz-cite-prefix']",
    "//div[@id='divRplyFwdMsg']",
    "//div[@id='appendonsend']",
)
# Containers in which mail programs put the sender's signature: its links' targets are not shown.
# "Get <a href=…>Outlook for iOS</a>" became "Get Outlook for iOS (https://aka.ms/o0ukef)", which
# costs a part when it is not cut, and a company signature's web and map links say nothing new.
_HTML_SIGNATURES = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' ms-outlook-mobile-signature ')]",
    "//*[@id='ms-outlook-mobile-signature']",
    "//*[@id='Signature']",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-signature ')]",
)
# Apple Mail's, from iOS and macOS. Outlook for Windows marks its automatic signature with a bookmark
# in its first paragraph (<a name="_MailAutoSig">, the later ones a span's mso-bookmark): the
# paragraph holding it starts the signature ("Jan Kowalski\nKierownik Działu Zakupów\nACME …"). Only
# a bookmark holding that paragraph's whole text: deleting the signature leaves an empty one, and
# "Dzień dobry,\n[bookmark]Paczka czeka w recepcji do 18." went out as "Dzień dobry,". NBSP, Outlook's
# "<o:p>&nbsp;</o:p>", is a space here (XPath's normalize-space keeps it).
_SHOWN = "normalize-space(translate({}, '\u00a0', ' '))"
_BOOKMARK, _PARAGRAPH = _SHOWN.format("."), _SHOWN.format("ancestor::p[1]")
_AUTOSIG = f"a[@name='_MailAutoSig'][{_BOOKMARK}][{_BOOKMARK} = {_PARAGRAPH}]"
_BOOKMARKED = "mso-bookmark:_MailAutoSig"  # the style of the signature's later paragraphs' spans
_HTML_SIGNATURES += ("//*[@id='AppleMailSignature']", f"//p[descendant::{_AUTOSIG}]")
# Where a signature container starts, on a line of its own: characters of Unicode's private use
# area, which no mail shows. Only for one with the sender's text above it: in one with nothing above,
# what it holds is the mail.
SIGNATURE_MARK = "\ue000\ue001\ue000"
_SHOWN_ABOVE = "boolean(preceding::text()[normalize-space()])"
# Outlook's paragraphs: its style sheet gives p.MsoNormal no margin (inscriptis reads no style
# sheet and gives every <p> a blank line above and below), so each line of the mail came out with a
# blank line after it, a list of four items as seven lines. An inline margin still wins, and an
# empty one (Outlook's blank line, "&nbsp;") keeps its margins: one blank line. The items of its lists
# (MsoListParagraph, MsoListParagraphCxSpFirst/Middle/Last) have no margin above or below either.
_MSO_PARAGRAPHS = (
    "//p[contains(concat(' ', normalize-space(@class), ' '), ' MsoNormal ')"
    " or starts-with(normalize-space(@class), 'MsoListParagraph')]"
)
_NO_MARGIN = "margin-top:0em;margin-bottom:0em;"


def _rtf_start(data: bytes) -> tuple[bytes, bool]:
    """The RTF a compressed-RTF property (MS-OXRTFCP) holds, to its first `_MAX_RTF` bytes, and
    whether it went on. The LZFu stream is cut after the last run whose output still fits (a run is
    a control byte, then per bit a literal byte or a 2-byte reference of 2 to 17 bytes): given the
    size and CRC of what is kept, the library decompresses just that. An uncompressed one is cut."""
    if len(data) < 16:
        raise ValueError("compressed RTF shorter than its header")
    data += b"\x00"  # as tnefparse's `rtfbody`: its reader drops a last NUL the CRC covers
    comp_size, raw_size = struct.unpack_from("<II", data)
    kind, body = data[8:12], data[16 : 4 + comp_size]
    if kind != compressed_rtf.compressed_rtf.COMPRESSED:
        rtf = compressed_rtf.decompress(data)
        return rtf[:_MAX_RTF], len(rtf) > _MAX_RTF
    made = end = 0
    while end < len(body):
        control, at, run = body[end], end + 1, 0
        for bit in range(8):
            if control >> bit & 1:
                run += (body[at + 1] & 0x0F) + 2 if at + 1 < len(body) else 0
                at += 2
            else:
                run += 1
                at += 1
        if made + run > _MAX_RTF:
            break
        made, end = made + run, min(at, len(body))
    if end >= len(body):
        return compressed_rtf.decompress(data), False
    body = body[:end]
    data = struct.pack("<II", len(body) + 12, raw_size) + kind + struct.pack("<I", crc32(body)) + body
    return compressed_rtf.decompress(data), True


def looks_like_html(text: str) -> bool:
    return bool(_HTML_START.match(text)) and bool(_HTML_CLOSE.search(text, 0, 20_000))


def html_to_text(markup: str, notes: list[str]) -> str:
    """The text of an HTML body; when the quoted earlier message was dropped, `notes` says so. Where
    the sender's signature container starts, a line of `SIGNATURE_MARK` (`cut_marked_signature`)."""
    markup = markup[:_MAX_HTML].strip()
    if not markup:
        return ""
    try:
        # lxml refuses a str that declares its encoding (XHTML from some mail programs). libxml2
        # stops at 256 nested elements and drops what lies deeper (90 nested tables, three elements
        # each, sent the subject alone): such a tree is read as one too deep for inscriptis is (the
        # fallback below). Not huge_tree: its bound of 2,048 let deep tables cost a part twice as much.
        parser = HTMLParser()  # one a call: a parser's error log is its last parse's
        tree = document_fromstring(_XML_DECLARATION.sub("", markup, count=1), parser=parser)
        if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
            raise RecursionError("HTML nested past libxml2's bound")
        drop_hidden(tree, markup)  # a hidden preheader or tracking code, before anything reads the text
        drop_struck(tree, markup)  # before the links' targets are shown: a struck link's go with it
        quotes = [e for path in _HTML_QUOTES for e in tree.xpath(path)]
        for paragraph in tree.xpath(_MSO_PARAGRAPHS):
            if paragraph.text_content().strip():  # "<p class=MsoNormal>&nbsp;</p>" is the blank line
                paragraph.set("style", _NO_MARGIN + (paragraph.get("style") or ""))
        # The sender's own links spend the targets' budget first: in a reply written below the quote,
        # the quoted links came first in the document and left the sender's meeting link none. The
        # quoted links get what is left, which matters only when the mail is nothing but the quote.
        quoted = {link for element in quotes for part in _quoted(element) for link in part.iter("a")}
        signatures = [element for path in _HTML_SIGNATURES for element in tree.xpath(path)]
        signed = {link for element in signatures for link in element.iter("a")}
        links = [a for a in tree.iter("a") if a not in signed]
        budget = _show_link_targets([a for a in links if a not in quoted], TARGETS_BUDGET)
        _show_link_targets([a for a in links if a in quoted], budget)
        _mark_signatures(signatures, quotes)
        hour_minutes(tree)
        _escape_ampersands(tree)
        full = Inscriptis(tree, _HTML_CONFIG).get_text()
        if not quotes:
            return full
        for element in quotes:
            _drop_with_following(element)
        own = Inscriptis(tree, _HTML_CONFIG).get_text()
    except Exception as exc:  # an HTML quirk must cost formatting, not the message
        log.info("intake.html_unreadable", error=type(exc).__name__)
        # Up to the next "<" at most: `<[^>]*>` scanned to the end of the text from every "<" that
        # is never closed, quadratic in their number.
        return html.unescape(re.sub(r"<[^<>]*>", " ", markup))
    if not own.replace(SIGNATURE_MARK, "").strip():
        return full  # nothing but the quote: a forward, handled by the text rules
    notes.append(QUOTED)
    return own


def autosig_lines(markup: str) -> str | None:
    """The lines of Outlook's automatic signature that an HTML alternative marks (`_AUTOSIG`, and the
    paragraphs after it in its bookmark) in the sender's own text, or None: its text alternative has
    no mark, and a signature under another name than the From's went to the phone there, though the
    HTML one said where it starts (`mark_line`). One in a quoted or forwarded message is not the
    sender's, as `_mark_signatures`."""
    if "_MailAutoSig" not in markup:
        return None
    try:
        tree = document_fromstring(_XML_DECLARATION.sub("", markup[:_MAX_HTML].strip(), count=1))
        quotes = [e for path in _HTML_QUOTES for e in tree.xpath(path)]
        quoted = {e for element in quotes for part in _quoted(element) for e in part.iter()}
        found = [e for e in tree.xpath(f"//{_AUTOSIG}") if e not in quoted]
    except Exception:
        return None
    if not found:
        return None
    paragraph = found[0].xpath("ancestor::p[1]")[0]
    rest = takewhile(lambda p: p.xpath(f".//*[contains(@style, '{_BOOKMARKED}')]"), paragraph.itersiblings())
    shown = (" ".join(line.split()) for p in [found[0], *rest] for line in p.text_content().split("\n"))
    return "\n".join(line for line in shown if line) or None


def mark_line(text: str, signature: str) -> str:
    """`text` with a line of `SIGNATURE_MARK` above the line reading the `signature`'s first (spaces
    aside) that has a line of text above it, for `cut_marked_signature`; unchanged when there is none.
    Of several such lines, the one most of the signature's next lines follow, the first of equals: the
    first alone was a line of the person's ("Pytanie od:\nDział Zakupów\nczy dostawa…" above the
    signature "Dział Zakupów\nACME…"), and their question went with the signature."""
    lines, wanted = text.split("\n"), signature.split("\n")
    shown = [" ".join(line.split()) for line in lines]
    first = next((i for i, line in enumerate(shown) if line), len(shown))
    best, most = None, -1
    for i in range(first + 1, len(shown)):
        if shown[i] == wanted[0]:
            below = islice((shown[j] for j in range(i + 1, len(shown)) if shown[j]), len(wanted) - 1)
            pairs = zip(below, wanted[1:], strict=False)
            same = sum(1 for _ in takewhile(lambda pair: pair[0] == pair[1], pairs))
            best, most = (i, same) if same > most else (best, most)
    return text if best is None else "\n".join([*lines[:best], SIGNATURE_MARK, *lines[best:]])


def _mark_signatures(signatures: list[HtmlElement], quotes: list[HtmlElement]) -> None:
    """Put a line of `SIGNATURE_MARK` above each signature container of the sender's own that shows
    something and has something shown above it (`cut_marked_signature` reads it). One inside
    another, or inside a quoted earlier message, gets none."""
    quoted = {e for element in quotes for part in _quoted(element) for e in part.iter()}
    found = set(signatures)
    for element in dict.fromkeys(signatures):
        if element in quoted or any(outer in found for outer in element.iterancestors()):
            continue
        if not element.text_content().strip() or not element.xpath(_SHOWN_ABOVE):
            continue
        mark = element.makeelement("div", {})
        mark.text = SIGNATURE_MARK
        element.addprevious(mark)


def cut_marked_signature(text: str, notes: list[str]) -> str:
    """The text without the signature that a container marked (`_mark_signatures`) holds: a name and a
    phone with no "Pozdrawiam" above them, a disclaimer below, reached the phone whole. The container
    is cut as below a bare "--" (`signatures.cut_signature`): only when what it holds and what
    follows pass a signature block's guards, so that a text the person typed into it stays; else
    only the mark goes."""
    if SIGNATURE_MARK not in text:
        return text
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if line.strip() == SIGNATURE_MARK), None)
    if at is None:
        return text.replace(SIGNATURE_MARK, "")  # not on a line of its own: no place to cut at
    below = [line for line in lines[at + 1 :] if line.strip() != SIGNATURE_MARK]
    # A postscript typed below the signature ("PS. Kierowca ma dzwonić pod 601 222 333") is the
    # person's, as below a sign-off: below a bare "--" it went with the signature.
    ps = next((k for k, line in enumerate(below) if POSTSCRIPT.match(line.strip())), len(below))
    if not any(line.strip() for line in cut_signature(["x", "--", *below[:ps]], [])[1:]):
        notes.append(SIGNATURE)
        return "\n".join([*lines[:at], "", *below[ps:]])
    return "\n".join(line for line in lines if line.strip() != SIGNATURE_MARK)


def _escape_ampersands(tree: HtmlElement) -> None:
    """Escape each "&" of the text once more: inscriptis unescapes the text it writes out
    (`html.unescape` in its Block), though lxml has already read the entities. A mail that showed
    "&lt;b&gt;" ("&amp;lt;b&amp;gt;" in its HTML) reached the phone as "<b>", one that showed
    "&nbsp;" as a space, and a shown target's "?a=1&copy=2" as "?a=1©=2"."""
    for element in tree.iter():
        if element.text and "&" in element.text:
            element.text = element.text.replace("&", "&amp;")
        if element.tail and "&" in element.tail:
            element.tail = element.tail.replace("&", "&amp;")


def _show_link_targets(links: list[HtmlElement], budget: int) -> int:
    """Put "(target)" after a link's text: an HTML-only "Meeting at <a href=…>this link</a>" lost its
    URL in the SMS. inscriptis' own display_links writes Markdown, "[this link](https://…)", for every
    link, mailto: and javascript: too. Which target is shown, and the budget of a mail, is
    `gateway.smtp.textlinks.link_target`'s rule, which Outlook's plain-text links follow too. Returns
    what is left of the budget."""
    for link in links:
        href = link_target(link.text_content(), link.get("href") or "", budget)
        if href is not None:
            link.tail = f" ({href}){link.tail or ''}"
            budget -= len(href)
    return budget


def _quoted(element: HtmlElement) -> list[HtmlElement]:
    """A quote container and, for Outlook, which puts the quoted header in a div and the quoted body
    in its following siblings, those siblings."""
    if element.get("id") in ("divRplyFwdMsg", "appendonsend"):
        return [element, *element.itersiblings()]
    return [element]


def _drop_with_following(element: HtmlElement) -> None:
    parent = element.getparent()
    if parent is None:
        return
    for part in _quoted(element):
        parent.remove(part)


@dataclass(slots=True)
class Tnef:
    """What a winmail.dat says: intake uses the class for machine-mail rules and the subject when the
    mail's own is empty."""

    msg_class: str | None
    subject: str | None
    text: str
    kind: str


def read_tnef(part: Message, fallbacks: tuple[str, ...], notes: list[str], *, want_body: bool) -> Tnef | None:
    """MAPI message class, subject and (if wanted) body, plain else HTML else RTF, of a winmail.dat."""
    try:
        tnef = TNEF(payload_bytes(part), do_checksum=False)
    except Exception as exc:
        log.info("intake.tnef_unreadable", error=type(exc).__name__)
        return None
    props: dict[int, object] = {}
    for obj in [*tnef.msgprops, *tnef.mapiprops]:
        try:
            props.setdefault(obj.name, obj.data)
        except Exception:
            continue
    msg_class = props.get(TNEF.ATTMESSAGECLASS) or props.get(0x001A)
    subject = props.get(TNEF.ATTSUBJECT) or props.get(0x0037)
    codepage = tnef.codepage or "cp1252"
    text, kind = "", "plain"
    if not want_body:
        pass
    elif isinstance(tnef.body, str | bytes) and tnef.body:  # a property of another type is no body
        text = tnef.body if isinstance(tnef.body, str) else decode_text(tnef.body, codepage, fallbacks)
    elif isinstance(tnef.htmlbody, str | bytes) and tnef.htmlbody:
        markup = tnef.htmlbody
        text = markup if isinstance(markup, str) else decode_text(markup, None, fallbacks)
        text, kind = cut_marked_signature(html_to_text(text, notes), notes), "html"
    elif tnef.has_body() and compressed_rtf is not None:
        try:
            start, cut = _rtf_start(tnef._rtfbody)
            if cut:
                notes.append(RTF_CUT)
            rtf = start.decode("latin-1")
            cp = re.search(r"\\ansicpg(\d+)", rtf[:500])
            text, kind = (
                rtf_to_text(rtf, encoding=f"cp{cp.group(1)}" if cp else "cp1252", errors="replace"),
                "rtf",
            )
        except Exception as exc:
            log.info("intake.rtf_unreadable", error=type(exc).__name__)
    return Tnef(
        msg_class=str(msg_class).strip("\x00 ") if msg_class else None,
        subject=one_line(str(subject)) if isinstance(subject, str) and subject.strip("\x00 ") else None,
        text=text.replace("\x00", ""),
        kind=kind,
    )
