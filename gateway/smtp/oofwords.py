"""The words out-of-office and vacation responders start their subjects with, in the languages
Outlook and Exchange mailboxes are set to: `gateway.smtp.automail` reads them (with a second sign),
as do `gateway.smtp.alerts` and `gateway.premium.responders`.

Exchange writes "<its words>: <the mail's subject>" in the mailbox's language; with only 8 languages
known, out-of-office replies in Swedish, Finnish, Russian, Japanese, ... to a phone's answer mail
went to the phone as SMS, the staff member's absence note (colleagues' names and phones) with them.
"""

from __future__ import annotations

import re

# Subjects that out-of-office and vacation responders use: Outlook/Exchange's "Automatic reply" in
# the languages its mailboxes are set to (English, Polish, German, French, Czech, Slovak, Spanish,
# Catalan, Italian, Dutch, Swedish, Danish/Norwegian, Finnish, Estonian, Latvian, Lithuanian,
# Portuguese, Russian, Ukrainian, Bulgarian, Hungarian, Turkish, Romanian, Greek, Croatian/Serbian/
# Bosnian, Slovenian, Japanese, Chinese, Korean) and other responders' words. Every mail's subject is
# asked (`automail._quick_reason`): anchored at its start, one that starts otherwise fails at its
# first letters. A subject alone is never enough: a person may well write "Out of office tomorrow".
OOF_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[ -]?reply|autoreply|auto-response|out of (the )?office( autoreply)?"
    r"|odpowiedź automatyczna|automatyczna odpowiedź|autoodpowiedź|nieobecność|poza biurem"
    r"|automatische antwort|abwesenheitsnotiz|réponse automatique|automatická odpověď|automatická odpoveď"
    r"|respuesta automática|fuera de la oficina|resposta automàtica|risposta automatica"
    r"|automatisch antwoord|automatiskt svar|automatisk svar|automaattinen vastaus|automaatvastus"
    r"|automātiskā atbilde|automatinis atsakymas|resposta automática|автоматический ответ"
    r"|автоматична відповідь|автоматичен отговор|automatikus válasz|otomatik yan[ıi]t|r[ăa]spuns automat"
    r"|αυτόματη απάντηση|automatski odgovor|аутоматски одговор|samodejni odgovor"
    r"|自動応答|自動返信|自动答复|自动回复|自動回覆|자동 회신|자동 응답)\b",
    re.IGNORECASE,
)
# What follows a responder's words in its template: a colon (a full-width one in Japanese and Chinese).
TEMPLATE_COLONS = (":", "\uff1a")

# The words above that a person types as a title of their own too ("Nieobecność: Jan Kowalski 14-18.12,
# zastępuje Anna 601 222 333", "Poza biurem: …", "Out of office: server room tomorrow 8:00"), unlike
# a responder's "Automatic reply" or "Odpowiedź automatyczna": with a colon after them and only the
# `X-Auto-Response-Suppress` every Outlook mail may carry beside them, no responder's template.
OOF_TITLE = re.compile(
    r"out of (the )?office|nieobecność|poza biurem|abwesenheitsnotiz|fuera de la oficina", re.IGNORECASE
)

# The words that make a tag name an automatic reply. A compound one (`_AUTO_COMPOUND`) anywhere in it:
# "[Auto-Reply]", "[Out of Office]", and a helpdesk's "[Service Desk Auto-Reply]" or "[Ticket
# auto-response]" (its tool's name first). A bare word (`_AUTO_BARE`) only as its first: "(Urlop)",
# "[Vacation]", while "[Komis Auto]", "[Moto-Auto]" ("auto" is Polish for a car) and "[Take-away]" name
# a shop's or a list's tag. "[Automotive]", "[Urlopy]" and "[Autoryzowane]" name none.
_AUTO_COMPOUND = (
    r"auto(?:matic|matyczn\w*|matische)?[\s-]*(?:reply|response|responder|respond|antwort|odpowied\w*)"
    r"|odpowied\w*[\s-]+automatyczn\w*|out[\s-]+of[\s-]+(?:the[\s-]+)?office|abwesenheitsnotiz"
)
_AUTO_BARE = (
    r"auto(?:matic|matyczn\w*|matische)?|ooo|oof|abwesen\w*|absen(?:t|ce)|urlop|na urlopie|nieobecn\w*"
    r"|vacation|holiday|away"
)


def _auto_tag(inside: str) -> str:
    """A lookahead refusing a tag that opens with one of `_AUTO_BARE` or whose text (`inside`: what may
    stand before its closing mark) holds one of `_AUTO_COMPOUND` anywhere: a helpdesk puts its tool's
    name before them. Only a tag's length (60) is looked through, however long the subject."""
    return (
        r"(?!\s*(?:" + _AUTO_BARE + r"|" + _AUTO_COMPOUND + r")\b"
        r"|" + inside + r"{0,60}\b(?:" + _AUTO_COMPOUND + r")\b)"
    )


# A tag a classification tool, a filter or the relay puts before the subject: in brackets, braces or
# parentheses ("[EXT]", "{Internal}", "(External)"), between asterisks ("*EXTERNAL*", "***SPAM***"),
# or an external mail's word and a colon ("EXTERNAL:", "EXT:", "ZEWNĘTRZNA:").
_TAG = (
    r"(?:\["
    + _auto_tag(r"[^\]\n]")
    + r"[^\]\n]{0,60}\]|\{"
    + _auto_tag(r"[^}\n]")
    + r"[^}\n]{0,60}\}|\("
    + _auto_tag(r"[^)\n]")
    + r"[^)\n]{0,60}\)|\*+"
    + _auto_tag(r"[^*\n]")
    + r"[^*\n]{1,30}\*+"
    + r"|(?:external|extern|ext|zewnętrzn[aey]|zewn)\s*:)"
)
# What a person's Reply (or forward) from a mail program starts its subject with, in Outlook's
# languages (Korean 회신/전달, Hebrew השב/העבר, Bulgarian Отг, Ukrainian Відп/Пересл, Greek ΣΧΕΤ, ...),
# after any tags put first (`_TAG`): Exchange's out-of-office reply in a language not above starts
# with its own words instead. Outlook puts `X-Auto-Response-Suppress: All` on a person's Reply too
# (`automail`); one not matched here is only guessed to be a responder's, and its writer is told it
# was not sent. A leading tag is skipped ("[Internal] RE:", "(External) RE:", "EXTERNAL: RE:"), not
# one naming an automatic reply ("[Auto-Reply] RE:", "[Out of Office]", `_auto_tag`).
PERSON_REPLY = re.compile(
    r"^\s*(?:" + _TAG + r"\s*)*"
    r"(re|odp|aw|sv|vs|antw|antwort|antwoord|rif|ris|r|res|rv|ref|réf|ynt|vá|odg|otv|отв|отг|одг|відп|απ|σχετ"
    r"|atb|ats|bls|vl|odpoveď|odpověď|회신|답장|השב|תשובה|رد|回复|答复|回覆|返信|ตอบกลับ"
    r"|fw|fwd|pd|tr|wg|vb|i|enc|doorst|př|posl|pers|pārs|tov|trs|fs|πρθ|i̇lt|ilt|пересл|препр|전달|העבר|הועבר"
    r"|إعادة توجيه|转发|轉寄|轉發|転送|ส่งต่อ)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]",
    re.IGNORECASE,
)
