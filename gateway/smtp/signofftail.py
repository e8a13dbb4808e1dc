"""What stands below a sign-off and a name (R-1.3), for `gateway.smtp.signatures`: when a closing
"Pozdrawiam\nJan" block is cut, a postscript ("PS. Sala 204.") and everything below it stays, but a
company's banner ("Odwiedź nasz sklep www.example.pl — rabat 20% na wszystko!", "Join us at Booth 42 at
Expo 2027") and a notice do not: written to be read, the postscript; the banner cost the phone up to
10 parts.
"""

from __future__ import annotations

import re

from gateway.smtp.footers import is_disclaimer

# "PS. Sala 204 zamiast 101.", "P.S.: ...", "PS ..."
POSTSCRIPT = re.compile(r"^(?i:p\.?\s?s\b)[.:]?")

# A banner below a signature: a company's advertisement, not the person's ("Odwiedź nasz sklep
# www.example.pl — rabat 20% na wszystko!", "Join us at Booth 42 at Expo 2027"). A paragraph there with
# a link or a web address is one, and so is a paragraph with words of two of these kinds: an
# invitation, an offer, an event, the company's channels, its prizes, its "we". A person's own sentence
# seldom holds two ("Zapraszam jutro na 10.", "Feel free to call.").
_PROMOTION_KINDS = tuple(
    re.compile(words, re.IGNORECASE)
    for words in (
        r"\b(odwiedź|odwiedz|zapraszamy|visit|join us|meet us|see us|follow us|obserwuj nas|polub nas"
        r"|(sprawdź|sprawdz|zobacz|poznaj|odkryj|zajrzyj|check out|discover) (nasz|our|now))",
        r"\b(rabat|zniżk|znizk|promocj|wyprzeda|okazj|gratis|darmow|bezpłatn|bezplatn|discount|on sale"
        r"|special offer|free (entry|shipping|delivery|trial|demo)|taniej|nowość|nowosc)|\d\s?%",
        r"\b(booth|stoisk|expo|targ(i|ach|ów|ow)\b|konferencj|conference|webinar|summit|trade fair)",
        r"\b(sklep|shop|newsletter|facebook|linkedin|instagram|twitter|youtube|tiktok|obserwuj|polub"
        r"|subscri|subskryb)",
        r"\b(hiring|rekrutujemy|award|nagrod|laureat|winner)",
        # The company speaking: "our", "nasz", "we're".
        r"\b(our|we're|we are|nasz\w*)\b",
    )
)
_LINK = re.compile(r"(?i:https?://|www\.|\b[\w-]+\.(pl|com|eu|net|org|io|de|uk|info|biz|shop)\b)")


def is_banner(text: str) -> bool:
    """Whether a paragraph below a sign-off and a name is a company's banner: a link or a web address
    in it, or words of two kinds of `_PROMOTION_KINDS`."""
    if _LINK.search(text):
        return True
    return sum(1 for kind in _PROMOTION_KINDS if kind.search(text)) >= 2


def kept_below(lines: list[str], i: int, last: int) -> list[str]:
    """The lines below sign-off line `i`, down to `last`, that stay when its block is cut: from the
    first postscript line down, but for the banners and notices below it (`is_banner`,
    `footers.is_disclaimer`); each kept paragraph after a blank line."""
    kept: list[str] = []
    postscript = False
    j = i + 1
    while j <= last:
        if not lines[j].strip():
            j += 1
            continue
        end = j
        while end <= last and lines[end].strip():
            end += 1
        paragraph = [line.strip() for line in lines[j:end]]
        if postscript:
            text = "\n".join(paragraph)
            if not is_banner(text) and not is_disclaimer(text):
                kept += ["", *lines[j:end]]
        elif (ps := next((k for k in range(j, end) if POSTSCRIPT.match(lines[k].strip())), None)) is not None:
            postscript = True
            kept += ["", *lines[ps:end]]
        j = end
    return kept
