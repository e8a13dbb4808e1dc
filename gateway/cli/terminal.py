"""What the CLI prints comes partly from outside: numbers and message ids an SMSC sent, texts from
phones and mails. Printed as they are, an ESC sequence in an MO's source address set the admin's
terminal title or cleared the screen, and a CR/LF forged lines in a listing. Every listing goes
through `Printable`, which shows such characters escaped (`\\x1b`); binary output (a billing file
written to stdout) goes to the stream's `buffer` untouched. A newline is the one control it must
let through (listings and JSON are written in lines): a field from outside is printed through
`one_line`, which escapes it there.
"""

from __future__ import annotations

from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides and isolates, which
# reorder what follows on the line.
_UNSAFE = [c for c in range(0x20) if c not in (0x09, 0x0A)] + list(range(0x7F, 0xA0))
_UNSAFE += [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
ESCAPES = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE}


class Printable:
    """A text stream that writes control characters escaped; everything else is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(ESCAPES))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def one_line(field: object) -> str:
    """A field from outside (an SMSC's address, a delivery report's error) that stays on its line."""
    return str(field).replace("\n", "\\x0a")
