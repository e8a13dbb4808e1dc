"""Email bytes to text below the MIME structure: transfer encodings (base64 that may not be base64),
MIME charset labels mapped to Python codecs (with the aliases mail clients really send and the
configured fallbacks for a wrong or missing label), RFC 2047 encoded words in headers, RFC 3676
format=flowed bodies and the whitespace normalisation every decoded text gets. The bytes come from the
network, so a wrong label or a broken encoding degrades to the best guess rather than failing the
mail; `gateway.smtp.intake` decides which part's text is the message and `gateway.smtp.textclean` what to cut.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import itertools
import re
from email.message import Message

from gateway.smtp.invisibles import normalize
from gateway.smtp.westernpolish import misread_by_label, misread_letters, misread_symbols, telling


def _to_bytes(payload: str) -> bytes:
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


_B64_CHARS = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_CHARSET_OF_MAX = 200  # `content_charset`: longer values (rare, unbounded) are not kept


def payload_bytes(part: Message) -> bytes:
    """Decoded content bytes. Base64 is decoded here, not by the email package, because a client that
    labels plain text as base64 must get its text through rather than decoded noise."""
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte in ("", "7bit", "8bit", "binary") and type(text := part._payload) is str and text.isascii():  # type: ignore[attr-defined]
        return text.encode("ascii")  # what `get_payload(decode=True)` makes of an ASCII text sent as is
    if cte != "base64":
        decoded = part.get_payload(decode=True)
        return decoded if isinstance(decoded, bytes) else b""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return b""
    raw = _to_bytes(payload)
    compact = raw.translate(None, b" \t\r\n")
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        pass
    if raw.strip().find(b" ") >= 0 or len(compact) < 16 or not _B64_CHARS.fullmatch(compact):
        return raw
    return base64.b64decode(compact[: len(compact) // 4 * 4])


def content_charset(part: Message) -> str | None:
    """The declared charset label, or None when the Content-Type parameters cannot even be parsed.

    The label is a function of the first Content-Type value alone, and a client sends the same
    few values all day: the email package's parameter parse (most of what reading a one-part
    mail's body costs after its headers) is done once per value, not once per mail."""
    value = part.get("content-type")
    if type(value) is str and len(value) <= _CHARSET_OF_MAX:
        return _charset_of(value)
    return _declared(part)


def _declared(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        return None


@functools.lru_cache(maxsize=256)
def _charset_of(value: str) -> str | None:
    """`content_charset` of a part whose first Content-Type is `value` (a str: no undecodable bytes)."""
    probe = Message()  # compat32, as every parsed part: `get` hands a str value back unchanged
    probe._headers = [("Content-Type", value)]  # type: ignore[attr-defined]
    return _declared(probe)


# Names seen in the wild that Python does not know, or knows under a narrower meaning. ISO-8859-1
# and US-ASCII labels are routinely put on windows-1252 / 8-bit text (the WHATWG encoding standard
# does the same mapping); an "unknown" label means "guess", i.e. the configured fallbacks.
_ALIASES: dict[str, str] = dict(
    pair.split("=")
    for pair in (
        "iso-8859-1=cp1252 iso8859-1=cp1252 iso_8859-1=cp1252 latin1=cp1252 latin-1=cp1252 us-ascii= ascii="
        " x-unknown= unknown= unknown-8bit= x-user-defined= default= unicode-1-1-utf-8=utf-8 utf8=utf-8"
        " cp-1250=cp1250 win-1250=cp1250 x-cp1250=cp1250 windows-1250=cp1250 iso-8859-8-i=iso-8859-8"
        " ks_c_5601-1987=cp949 gb2312=gb18030 gbk=gb18030 ucs-2=utf-16 unicode=utf-16 unicode-1-1=utf-16"
    ).split()
)
_REFUSED_CODECS = frozenset({"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode"})
_NOT_ASCII_SAFE = ("utf-16", "utf-32", "utf-7", "iso2022", "hz")
_C1 = re.compile(r"[\x80-\x9f]")
_WESTERN = frozenset({"cp1252", "iso8859-1", "iso8859-15"})  # `decode_text`: valid UTF-8 under them is UTF-8


@functools.lru_cache(maxsize=256)
def _codec(name: str | None) -> str | None:
    """Python codec for a MIME charset label, or None for absent, unknown or unsafe labels."""
    if not name:
        return None
    key = name.strip().strip("\"'").lower()
    key = _ALIASES.get(key, key)
    if not key:
        return None
    try:
        info = codecs.lookup(key)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED_CODECS:
        return None
    return info.name


def decode_text(data: bytes, declared: str | None, fallbacks: tuple[str, ...]) -> str:
    """Bytes → text: BOM, then the declared charset, then each fallback; a single-byte guess that
    yields C1 control characters is a wrong guess (iso-8859-2 declared on windows-1250 text). A
    multi-byte reading that succeeds strictly is kept even with C1 controls: valid UTF-8 is almost
    never a wrong label, and a "…" misread once upstream arrives as U+0085 in correct UTF-8 mail
    (windows-1250 would read its bytes without an error and garble every Polish letter).

    Windows-1250 and ISO-8859-2 both read every byte from 0xA0 up, so the first of them among the
    fallbacks never fails: a guess between the two goes by which reading yields more Polish letters
    (`_likelier`), or ISO-8859-2 mail without a label would always be read as windows-1250. So does
    either label on its reading's sign of them (`misread_by_label`): "ścisłą" went out as "¶cisł±".

    A Western single-byte label (ISO-8859-1, windows-1252, ISO-8859-15) on bytes that are valid UTF-8
    is a wrong label: scripts and web forms write UTF-8 under a fixed "iso-8859-1", and read as the
    label "Zażółć" went out as "ZaÅ¼Ã³Å‚Ä‡" in UCS-2. Text really written in such a charset is
    almost never valid UTF-8 (an accented capital would have to be followed by a symbol: "É»"), so
    the bytes are believed over the label. Not for the Central European labels: there a capital before
    "Ł" is common ("PÓŁNOC" in ISO-8859-2 is valid UTF-8), and the label is believed."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):  # UTF-32 LE's too
        return data.decode("utf-32" if b"\0\0" in (data[:2], data[2:4]) else "utf-16", "replace")  # FFFE0000
    codec = _codec(declared)
    if data.isascii() and (codec is None or not codec.startswith(_NOT_ASCII_SAFE)):
        return data.decode("ascii")
    if codec in _WESTERN:
        try:  # non-ASCII bytes that are valid UTF-8 hold multi-byte sequences: UTF-8 under a wrong label
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    candidates = [c for c in dict.fromkeys([codec, *map(_codec, fallbacks)]) if c]
    for i, c in enumerate(candidates):
        try:
            text = data.decode(c)
        except (UnicodeDecodeError, LookupError):
            continue
        # One character per byte is a single-byte reading; a multi-byte one never yields C1 that way.
        if i == len(candidates) - 1 or len(text) != len(data) or not _C1.search(text):
            # A label is trusted (the C1 rule above catches the usual wrong one); a guess is weighed.
            if c != codec:
                return _likelier(data, text, c, candidates[i + 1 :])
            if c in _LOOK_ALIKES and misread_by_label(text, c):
                return _likelier(data, text, c, [_LOOK_ALIKES[c]])
            return _polish_under_western(data, text) if codec in _WESTERN else text
    return data.decode(candidates[-1] if candidates else "cp1250", "replace")


# The look-alike pair: one reading's letter is the other's symbol (0xB6 "ś" / "¶", 0xB1 "ą" / "±",
# 0xBC "ź" / "Ľ", 0xA6 "Ś" / "¦"…), and 0x80-0x9F are letters in windows-1250, controls in ISO-8859-2.
_LOOK_ALIKES = {"cp1250": "iso8859-2", "iso8859-2": "cp1250"}
_POLISH = frozenset("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")


# No Polish word starts with "ą", "ę" or "ń", and no letter stands between two digits: windows-1250's
# "±" reads as ISO-8859-2's "ą", so "5 ±0,2" and "5±2" are a symbol, not a letter.
_NEVER_FIRST = frozenset("ąęńĄĘŃ")
# Non-ASCII characters of each reading weighed (`_likelier`), wherever they stand: ASCII carries no
# evidence, and a mail may open with more of it than any fixed beginning (an HTML head, a disclaimer).
_WEIGHED = 4096
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _weighed_letters(text: str) -> list[tuple[str, str, str]]:
    """The letters among the first `_WEIGHED` non-ASCII characters, each with its neighbours. The
    search runs in C, so a long ASCII stretch costs little; only the hits are weighed in Python."""
    letters: list[tuple[str, str, str]] = []
    for m in itertools.islice(_NON_ASCII.finditer(text), _WEIGHED):
        i = m.start()
        ch = text[i]
        if ch.isalpha():
            letters.append((text[i - 1] if i else " ", ch, text[i + 1] if i + 1 < len(text) else " "))
    return letters


def _polish_score(text: str) -> int:
    """Polish letters less other non-ASCII letters: "© «cytat» ±" in windows-1250 reads as
    "Š Ťcytatť ą" in ISO-8859-2, one Polish letter among three that a Polish text would not have.
    A Polish letter where Polish puts none (`_NEVER_FIRST` after a non-letter, a letter between
    digits) counts against its reading too: "5 ±0,2 mg/dl … Paweł" read "5 ą0,2", one letter more."""
    score = 0
    for before, ch, after in _weighed_letters(text):
        misplaced = (ch in _NEVER_FIRST and not before.isalpha()) or (before.isdigit() and after.isdigit())
        score += 1 if ch in _POLISH and not misplaced else -1
    return score


def _likelier(data: bytes, text: str, codec: str, later: list[str]) -> str:
    """`text` (read as `codec`), or the reading of its look-alike among the later fallbacks when that
    one reads as more Polish and has no C1 controls; a tie keeps the configured order."""
    other = _LOOK_ALIKES.get(codec)
    if other is None or other not in later:
        return text
    try:
        alternative = data.decode(other)
    except UnicodeDecodeError:  # windows-1250 leaves five bytes undefined
        return text
    if _C1.search(alternative):
        return text
    # Weighed on their first few thousand non-ASCII characters: a letter at a time in Python, a whole
    # 1 MB body took 0.35 s of the event loop a mail. Both readings are single-byte, so the same bytes.
    if _polish_score(alternative) <= _polish_score(text):
        return text
    return alternative


def _polish_under_western(data: bytes, text: str) -> str:
    """`text` (read as its Western label), or its windows-1250 / ISO-8859-2 reading when the label is
    wrong ("Paweł będzie" went out as "Pawe³ bêdzie"), on strong evidence: every character the readings
    disagree on a Polish letter in the other ("crème", "crčme", keeps its label), and two different
    symbols where letters stand, one and two different Polish letters made ("Pawe³ bêdzie"; "Wiadomoœæ
    od Paw³a": windows-1252's "œ" of byte 0x9C is "ś"), or one twice (`telling`: "Pawe³ przyszed³")."""
    hits = misread_symbols(text, _WEIGHED)
    if not hits and not misread_letters(text):
        return text
    for other in ("cp1250", "iso8859-2"):
        try:
            alternative = data.decode(other)
        except UnicodeDecodeError:
            continue
        if len(alternative) != len(text) or _C1.search(alternative) or misread_symbols(alternative, 1):
            continue  # ISO-8859-2's "ą" is windows-1250's "±": the other reading leaves no such symbol
        made = {  # what the other reading makes of the characters the two disagree on
            alternative[m.start()]
            for m in itertools.islice(_NON_ASCII.finditer(text), _WEIGHED)
            if alternative[m.start()] != m.group()
        }
        if made <= _POLISH and telling(text, hits, made, alternative):
            return _likelier(data, alternative, other, ["iso8859-2"])  # windows-1250's "¶" is ISO's "ś"
    return text


# An encoded word; one the header ends in without its closing "?=" (a client that cut the header at a
# length) is read too: "=?utf-8?Q?Za=C5=BC=C3=B3=C5=82" reached the phone as written.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)(?:\?=|\??\Z)")
# What a cut leaves of a Q escape ("=C", "="): read as text it made "Zażó=C", and the bytes before it
# were decoded as Latin-1 ("ZaĹźĂłĹ=8").
_CUT_ESCAPE = re.compile(r"=[0-9A-Fa-f]?\Z")


def decode_header(value: str, fallbacks: tuple[str, ...], declared: str | None = None) -> str:
    """A raw header value (surrogate-escaped 8-bit allowed) → one line of text.

    Raw 8-bit that is valid UTF-8 is UTF-8 (what SMTPUTF8 clients and most scripts write, whatever
    charset their body declares: a single-byte codec would read it without an error, as mojibake);
    other bytes are tried as `declared` (the mail's body charset) first, as Thunderbird does: a
    client that writes its headers raw writes them in its body's charset, and windows-1250, the
    first fallback, reads ISO-8859-2's "ś" and "ą" as "¶" and "±" without an error. With no body
    charset either, `decode_text` weighs the two readings, for headers and bodies alike."""
    if not value.isascii():
        data = _to_bytes(value)
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = decode_text(data, declared, fallbacks)
    value = value.replace("\n", "")
    if "=?" in value:
        value = _decode_words(value, fallbacks)
    return one_line(value)


def _decode_words(value: str, fallbacks: tuple[str, ...]) -> str:
    """RFC 2047 encoded words; adjacent words of one charset are joined before decoding, because
    clients split a multi-byte character across two words."""
    out: list[str] = []
    pending = bytearray()  # not bytes: `+=` copied the run so far, and 75,000 words took 2.8 s
    pending_cs: str | None = None
    pos = 0
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        charset, enc, text = m.group(1).split("*")[0], m.group(2).upper(), m.group(3)
        cut = not m.group().endswith("?=")
        b64 = "".join(text.split()) if enc == "B" else ""
        if cut and enc == "Q":
            text = _CUT_ESCAPE.sub("", text)
        elif cut and len(b64) % 4 == 1:
            b64 = b64[:-1]  # one character is no byte: whole, the word was no base64 and stayed raw
        try:
            # Validated: without it base64 skips what is no base64 ("!!!notb64" read as "notb64") and
            # a broken word reached the phone as a few random letters instead of as it was written.
            data = (
                base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
                if enc == "B"
                else binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)
            )
        except (binascii.Error, ValueError):
            continue  # leave a broken word as it stands
        if cut and charset.lower() in ("utf-8", "utf8"):
            data = _whole_utf8(data)  # cut: a character's first bytes would make the run mojibake
        # Whitespace between two encoded words is not text (RFC 2047 6.2), whatever their charsets.
        adjacent = pending_cs is not None and not between.strip()
        if pending_cs is not None and not (adjacent and charset.lower() == pending_cs):
            out.append(decode_text(bytes(pending), pending_cs, fallbacks))
            pending, pending_cs = bytearray(), None
        if pending_cs is None and not adjacent:
            out.append(between)
        pending += data
        pending_cs = charset.lower()
        pos = m.end()
    if pending_cs is not None:
        out.append(decode_text(bytes(pending), pending_cs, fallbacks))
    out.append(value[pos:])
    return "".join(out)


def _whole_utf8(data: bytes) -> bytes:
    """`data` without the start of a UTF-8 character it ends in."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return data
    return data[: len(data) - len(decoder.getstate()[0])]


def one_line(text: str) -> str:
    """Header text as the SMS shows it: normalised, with every run of whitespace one space."""
    return " ".join(normalize(text.replace("\t", " ")).split())


def unflow(text: str, delsp: bool = False) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line of equal quote depth.
    The signature separator "-- " (4.3) is neither, and a soft line above it ends there: joined, the
    separator ran into the last sentence ("jutro. --") and the signature below it went to the phone."""
    out: list[str] = []
    buf: str | None = None
    buf_depth = 0
    for line in text.replace("\r\n", "\n").split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        content = content.removeprefix(" ")  # space-stuffing
        separator = content.rstrip() == "--"
        soft = content.endswith(" ") and not separator
        if soft and delsp:
            content = content[:-1]
        if buf is not None and depth == buf_depth and not separator:
            buf += content
        else:
            if buf is not None:
                out.append(_requote(buf, buf_depth))
            buf, buf_depth = content, depth
        if not soft:
            out.append(_requote(buf, buf_depth))
            buf = None
    if buf is not None:
        out.append(_requote(buf, buf_depth))
    return "\n".join(out)


def _requote(text: str, depth: int) -> str:
    return f"{'>' * depth} {text}" if depth else text
