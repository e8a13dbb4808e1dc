"""How a forwarded bounce carries its original, whatever the relay that takes the forward offers.

`gateway.forwarded.bounce_forward` attaches the original as it came, byte for byte. An original
with 8-bit text in its body goes as message/rfc822 with `Content-Transfer-Encoding: 8bit`, valid
only on a relay that offers 8BITMIME (RFC 6152 3): message/rfc822 may be 7bit, 8bit or binary but
never base64 (RFC 2046 5.2.1). A relay without 8BITMIME gets it from `seven_bit` instead, the
original base64 as the file bounce.eml; a 7-bit original stays message/rfc822 on any relay.

Why a file and not message/global (RFC 6532 3.5 lets that one be base64): Thunderbird and Outlook
both show message/rfc822 inline (Outlook as an attached item), which is why it is kept wherever the
relay can take it; neither is known to show message/global so, and both open an attachment named
.eml as a mail by its name, whatever its type. One form for every original that cannot travel as
it is (lines over 998 octets, a NUL, UTF-8 headers, 8-bit on a 7-bit relay) also keeps the admin's
view of them alike.
"""

from __future__ import annotations

import base64
import re

# The attachment's part as `bounce_forward` writes it, when the original went in as 8bit.
_EIGHT_BIT_PART = re.compile(
    rb"^Content-Type: message/rfc822\r?\n"
    rb'Content-Disposition: attachment; filename="bounce\.eml"\r?\n'
    rb"Content-Transfer-Encoding: 8bit\r?\n\r?\n",
    re.MULTILINE,
)
_BOUNDARY = re.compile(
    rb'^Content-Type: multipart/mixed;\r?\n? ?boundary="(=_smsgw_[0-9a-f]+)"', re.MULTILINE
)


def as_file(original: bytes) -> bytes:
    """An original (LF line ends) in base64, for a part that says so: canonical CR LF inside, as a
    mail file holds it."""
    return base64.encodebytes(original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def seven_bit(content: bytes) -> bytes:
    """A bounce forward whose original went in as 8bit, with the original as the base64 file
    bounce.eml instead: what a relay without 8BITMIME may be sent. Any other mail as it is.

    Done as the mail is sent, not when it is written: the relay's offer is known only then, and a
    relay with 8BITMIME gets the original inline."""
    part = _EIGHT_BIT_PART.search(content)
    boundary = _BOUNDARY.search(content)
    if part is None or boundary is None:
        return content
    end = content.rfind(b"--" + boundary.group(1) + b"--")
    if end < part.end():
        return content
    # The line end before a boundary belongs to the boundary (RFC 2046 5.1.1).
    cut = (
        end - 2 if content[end - 2 : end] == b"\r\n" else end - 1 if content[end - 1 : end] == b"\n" else end
    )
    eol = b"\r\n" if part.group(0).endswith(b"\r\n") else b"\n"
    head = (
        b"Content-Type: application/octet-stream" + eol
        + b'Content-Disposition: attachment; filename="bounce.eml"' + eol
        + b"Content-Transfer-Encoding: base64" + eol + eol
    )  # fmt: skip
    encoded = as_file(content[part.end() : cut]).replace(b"\n", eol)
    return content[: part.start()] + head + encoded + content[cut:].removeprefix(b"\r\n").removeprefix(b"\n")
