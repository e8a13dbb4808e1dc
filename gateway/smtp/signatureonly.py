"""Whether what the cutting rules left of a body holds nothing the person wrote (R-1.3): for
`gateway.smtp.intake`, where a mail with a subject then sends its subject alone, and for
`gateway.conversations.answers`, where a reply then holds no new text. `cut_signature` and
`notices.cut_notice` keep a signature or a notice with nothing above it, since then it may be what a
person wrote; under a subject, or in a reply, it is what their mail program or server added: Outlook's
automatic signature ("Jan Kowalski\\nDyrektor Handlowy\\nACME Sp. z o.o.\\ntel. …"), the company's
confidentiality notice under a subject-only alert ("Awaria zasilania w serwerowni: Treść tej wiadomości
jest poufna…", 4 UCS-2 parts for a subject of one GSM part).
"""

from __future__ import annotations

from gateway.smtp.notices import only_notices, only_senders_block
from gateway.smtp.signatures import SIGNATURE, cut_signature, may_open_signature


def only_signature(
    text: str,
    *,
    sender: str = "",
    subject: str = "",
    removed: list[str] | None = None,
    under_subject: bool = False,
) -> bool:
    """Whether a cleaned body is nothing but a sign-off or signature ("Pozdrawiam\\nAnna Nowak", the
    automatic signature Outlook puts above the quote of a Reply, a tagline below it too: "Quality you
    can trust."), nothing but a company's notice and its footer (`notices.only_notices`), or, given the
    mail's From (`sender`, decoded), nothing but the sender's own signature block with no sign-off
    (`notices.only_senders_block`; not under a `subject` that asks to be called). `removed`, when
    given and the answer is yes, gets the labels of what it is: a notice is named for the writer.
    `under_subject` is for the body that would go under a subject alone (`notices.only_notices`: a
    short notice with nothing above it is then the person's line, not the server's)."""
    lines = text.split("\n")
    first = next((stripped for line in lines if (stripped := line.strip())), None)
    if first is None:
        return False
    # Each cut of `cut_signature` that takes the first line starts at it (an "x" stands above it here):
    # a first line that may open none needs no cut to tell.
    said: list[str] = []
    if may_open_signature(first) and not any(
        line.strip() for line in cut_signature(["", "x", *lines], [], own=False)[2:]
    ):
        said.append(SIGNATURE)
    elif not only_notices(lines, said, under_subject=under_subject) and not (
        sender and only_senders_block(lines, sender, subject)
    ):
        return False
    if removed is not None:
        removed += said or [SIGNATURE]
    return True
