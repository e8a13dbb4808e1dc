"""Display names in an address header (an answer's From naming the phone as the user's mail did)
written as RFC 2047 encoded words, for `gateway.mailheaders.POLICY`, whose folder hands such a header
here when a name is not ASCII.
"""

from __future__ import annotations

import re
from email import base64mime, quoprimime
from email.headerregistry import Address

import regex

LINE_MAX = 76  # RFC 2047 2: a header line holding an encoded word; each word at most 75
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # RFC 5322 atext


def address_header(name: str, addresses: tuple[Address, ...], linesep: str) -> str:
    """An address header with display names that are not ASCII, folded at spaces between words.

    A name's plain words (atoms) stay as they are; each run of the others (a letter beyond ASCII,
    a quote, a bracket) is encoded whole where it fits a line with "From: " before it (RFC 2047 2
    allows 75 characters), else in as many encoded words as it takes (`_encoded_words`). The
    default folder wrote a long name (an answer's From naming the phone as the user's mail did)
    in encoded words of 76 characters, cut inside a word; one encoded word a run cut the name far
    below the 60 characters a contact's name may have ("Dział Księgowości Zakładów… (+48 …)")."""
    tokens: list[str] = []
    for i, a in enumerate(addresses):
        if a.display_name:
            tokens.extend(_phrase(a.display_name, LINE_MAX - len(name) - 2))
            tokens.append(f"<{a.addr_spec}>")
        else:
            tokens.append(a.addr_spec)
        if i < len(addresses) - 1:
            tokens[-1] += ","
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) > len(name) + 1 and len(lines[-1]) + 1 + len(token) > LINE_MAX:
            lines.append("")
        lines[-1] += f" {token}"
    return linesep.join(lines) + linesep


_CLUSTER = regex.compile(r"\X")  # a grapheme cluster: an emoji with its skin tone, a letter and its accent


def _phrase(display_name: str, limit: int) -> list[str]:
    """The words of a display name: the whole name as one encoded word where it fits (as Outlook
    writes one, and as names were written before), else atoms as they are and each run of other
    words as encoded words."""
    whole = _encoded(display_name)
    if len(whole) <= limit:
        return [whole]
    out: list[str] = []
    run: list[str] = []
    for word in [*display_name.split(), ""]:
        if word and not _ATOM.fullmatch(word):
            run.append(word)
            continue
        if run:
            out.extend(_encoded_words(run, limit))
            run = []
        if word:
            out.append(word)
    return out


def _encoded(text: str) -> str:
    """`text` as one encoded word, Q or B, whichever is shorter."""
    data = text.encode("utf-8")
    return min(quoprimime.header_encode(data, "utf-8"), base64mime.header_encode(data, "utf-8"), key=len)


def _encoded_words(words: list[str], limit: int) -> list[str]:
    """`words` as encoded words of at most `limit` characters each, whole: split before a space
    where one is (the space opens the next word, "=?utf-8?q?_Ksi…?="), else between grapheme
    clusters, never inside a UTF-8 character or a cluster (an emoji and its skin tone, a flag).

    RFC 2047 6.2 makes a mail client join adjacent encoded words, ignoring the white space between
    them: the name's own spaces are inside the words. Python's address parser (3.11) reads a space
    there too, and shows such a name with two spaces where it was split (`email.header` reads it
    as mail clients do)."""
    chunks: list[str] = []
    current = ""
    for i, word in enumerate(words):
        piece = word if i == 0 else f" {word}"
        if len(_encoded(current + piece)) <= limit:
            current += piece
            continue
        if current:
            chunks.append(current)
            current = ""
        if len(_encoded(piece)) <= limit:
            current = piece
            continue
        for cluster in _CLUSTER.findall(piece):  # a word longer than an encoded word
            # A cluster too long for a word alone (a family of ZWJ emoji) is split by characters.
            for part in [cluster] if len(_encoded(cluster)) <= limit else list(cluster):
                if current and len(_encoded(current + part)) > limit:
                    chunks.append(current)
                    current = ""
                current += part
    if current:
        chunks.append(current)
    return [_encoded(chunk) for chunk in chunks]
