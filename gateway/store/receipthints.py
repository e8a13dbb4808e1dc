"""What an unmatched delivery receipt says about the configuration: a warning, once an hour a link,
naming the key that would have matched it. Each receipt missed left its SMS `submitted` for two
days, to end `unreported` (a failed one never bounced), with an info line per receipt as the only
trace. `gateway.store.reports` calls these for every receipt it stores without a part, and
`_unprefixed` for a receipt naming a phone that matched no part as it was written."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import structlog

from gateway.store.receiptkeys import stamped_key
from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

ID_FORM_HINT_SECONDS = 3600.0
# Seconds after which a receipt that came while a submit answer was awaited, still unmatched, is no
# early receipt of that SMS: its answer came, or the link gave up waiting for it (`_hint_id_form`).
ID_FORM_ANSWER_WAIT = 60.0
_ANSWER_AWAITED = "SELECT 1 FROM parts WHERE state = 'active' LIMIT 1"
# A receipt naming the phone behind a routing prefix (an MNP or hub code, "14" in "1448601131111"):
# at most this many digits before the recipient's E.164 digits, which it must hold in full, no fewer
# than ROUTED_MIN (a country code and a subscriber number: never a national number's tail).
ROUTING_PREFIX_MAX = 6
ROUTED_MIN = 8


def digit_args(digits: str | None) -> tuple[str | int | None, ...]:
    """The arguments of a receipt match's phone condition (`ReportsRepo.record_report`), written once
    for its first match and the one again behind a routing prefix (`_unprefixed`)."""
    return (digits, len(digits or ""), digits, len(digits or ""), digits)


# The `message_id_type` that matches a receipt whose id is the stored id written in decimal or in hex,
# by the link's current mode: stored ids are the submit answers' as that mode converted them.
_ID_FORM_ADVICE: dict[str, dict[str, str]] = {
    "as_is": {"decimal": "hex_to_dec", "hex": "dec_to_hex"},
    "hex_to_dec": {"hex": "as_is"},  # the receipt writes the answer's hex id as it came
    "dec_to_hex": {"decimal": "as_is"},
}


class ReceiptHints(Repository):
    # Per link (and hint): when a hint last spoke (the repository's clock).
    _hinted: dict[str, float] | None = None
    # Per link, the others bound to the same SMSC account, whose receipts may come by it
    # (`gateway.configlinks.receipt_siblings`).
    siblings: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    # Every configured link's name, and its type: a receipt that matched nothing may name a part of
    # another one of its type (`_hint_other_link`).
    link_names: Mapping[str, str] = MappingProxyType({})
    # Per link, its `message_id_type`: the form its parts' ids are stored in (`_id_form_says`).
    id_modes: Mapping[str, str] = MappingProxyType({})
    # Per link, receipts stored unmatched while a submit answer was awaited: (dlrs id, SMSC id, when).
    _id_form_waiting: dict[str, list[tuple[int, str, float]]] | None = None

    def _hint_due(self, key: str, now: float) -> bool:
        """Whether the hint under `key` (a link's, per kind) has not spoken within the hour."""
        if self._hinted is None:
            self._hinted = {}
        return now - self._hinted.get(key, float("-inf")) >= ID_FORM_HINT_SECONDS

    def _hint_id_form(self, link: str, smsc_id: str, now: float, dlr_id: int | None = None) -> None:
        """Say which `message_id_type` the link needs when a receipt misses only because its id is
        written in the other base than the submit answers' (Kannel's well-known case: hex in the
        answer, decimal in the receipt). Each missed, their SMS waited `submitted` for two days and
        ended `unreported`, with an info line per receipt as the only trace. Once an hour a link.

        A receipt that came while a submit answer was awaited may be that SMS's, overtaking it (then
        matched by the answer, `_take_early`): it speaks only if still unmatched `ID_FORM_ANSWER_WAIT`
        later, when the link's next unmatched receipt comes. Judged at once, its id read in the other
        base met some other SMS still waiting, and the hint advised a change for a receipt that matched."""
        if not self._hint_due(link, now):
            return
        if self._id_form_waiting is None:
            self._id_form_waiting = {}
        waiting = self._id_form_waiting.setdefault(link, [])
        for earlier in [w for w in waiting if w[2] <= now - ID_FORM_ANSWER_WAIT]:
            waiting.remove(earlier)
            row = self.conn.execute("SELECT part_id FROM dlrs WHERE id = ?", (earlier[0],)).fetchone()
            if row is not None and row[0] is None and self._id_form_says(link, earlier[1], now):
                return
        if not smsc_id.isascii() or not smsc_id.isalnum():  # no number in either base (`_id_form_says`)
            return
        if dlr_id is not None and self.conn.execute(_ANSWER_AWAITED).fetchone() is not None:
            if len(waiting) < 8:  # a few suffice: with the wrong form every receipt misses
                waiting.append((dlr_id, smsc_id, now))
            return
        self._id_form_says(link, smsc_id, now)

    def _id_form_says(self, link: str, smsc_id: str, now: float) -> bool:
        """Warn, and say True, when `smsc_id` read in the other base is the id of an SMS of the link
        still waiting for its receipt and a `message_id_type` would have matched them. The advice is
        the mode that, applied to the submit answer's id as the SMSC gave it, reads like the receipt:
        the ids stored are already converted by the link's current mode (`id_modes`), so on a link
        set to hex_to_dec it is "as_is", never the hex_to_dec it already has."""
        # ASCII only: "²".isdigit() holds and int() refuses it, inside the receipt's write.
        if not smsc_id.isascii() or not smsc_id.isalnum():  # also "": no number in either base
            return False
        # How the receipt's id is written from the stored one: its decimal reading as hex, or hex.
        forms = {"decimal": format(int(smsc_id), "x")} if smsc_id.isdigit() else {}
        if all(c in "0123456789abcdef" for c in smsc_id):
            forms["hex"] = str(int(smsc_id, 16))
        advice = _ID_FORM_ADVICE.get(self.id_modes.get(link, "as_is"), {})
        for written, form in forms.items():
            mode = advice.get(written)
            if mode is None:  # a conversion applied twice: no setting matches it
                continue
            waiting = self.conn.execute(
                "SELECT 1 FROM parts WHERE link = ? AND smsc_id = ? AND state = 'submitted' LIMIT 1",
                (link, form.lstrip("0") or "0"),
            ).fetchone()
            if waiting is not None:
                self._hinted[link] = now  # type: ignore[index]
                log.warning(
                    "dlr.id_form_mismatch",
                    link=link,
                    receipt_id=smsc_id,
                    submitted_id=form,
                    fix=f'set message_id_type = "{mode}" in the [[smsc]] section of link {link}',
                )
                return True
        return False

    def _hint_other_link(self, link: str, smsc_id: str, now: float, digits: str | None = None) -> None:
        """Say which links need one `smsc_account` when a receipt misses only because it came by
        another link than its SMS left by (an operator whose binds share the receipts): each such
        SMS waited `submitted` and ended `unreported`, a failed one never bounced, and the info line
        per receipt was the only trace. Once an hour a link; one index look per other link of its
        type: an SMPP and a CIMD2 link are two SMSCs, whose ids may meet, and one smsc_account on
        both is refused (`gateway.smscaccount`)."""
        key = f"{link} smsc_account"
        if not self._hint_due(key, now) or not smsc_id:
            return
        own = {link, *self.siblings.get(link, ())}
        kind = self.link_names.get(link)
        for other, other_kind in self.link_names.items():
            if other in own or other_kind != kind:
                continue
            # An SMS to the phone the receipt names, when it names one: two SMSCs that number
            # their ids alike are no binds of one account.
            sql = (
                "SELECT 1 FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.link = ?"
                " AND p.smsc_id = ? AND p.state = 'submitted' AND (? IS NULL OR m.recipient = '+' || ?)"
                " LIMIT 1"
            )
            if self.conn.execute(sql, (other, smsc_id, digits, digits)).fetchone() is not None:
                self._hinted[key] = now  # type: ignore[index]
                log.warning(
                    "dlr.other_link",
                    link=link,
                    receipt_id=smsc_id,
                    sent_by=other,
                    fix=f"links {other} and {link} are binds of one SMSC account: give both the same"
                    ' smsc_account = "..." in their [[smsc]] sections',
                )
                return

    def _unprefixed(
        self, link: str, links: tuple[str, ...], smsc_id: str, digits: str | None, now: float
    ) -> str | None:
        """The digits to match a receipt's phone by (`ReportsRepo.record_report`): the recipient's own
        when the receipt writes a routing prefix before them and its id is that of exactly one part
        waiting for its receipt, else `digits` as they are. Compared as the end of the recipient's
        number, the longer form matched no SMS: it waited `submitted` and ended `unreported`, an
        UNDELIV never bounced, with an info line as the only trace. Nothing else is widened: the
        prefix must stand before the recipient's whole international number, and an id on two
        waiting parts (ids repeat) is left unmatched, said once an hour a link."""
        if digits is None or len(digits) <= ROUTED_MIN or not smsc_id or stamped_key(smsc_id) is not None:
            return digits  # a CIMD2 key names the phone itself (`stamped_key`)
        rows = self.conn.execute(
            "SELECT m.recipient, m.source FROM parts p JOIN messages m ON m.id = p.message_id"
            f" WHERE p.link IN ({','.join('?' * len(links))}) AND p.smsc_id = ? AND p.state = 'submitted'"
            " LIMIT 2",
            (*links, smsc_id),
        ).fetchall()
        if any(number.endswith(digits) for row in rows for number in row if number):
            return digits  # matched as it is
        routed = [
            recipient[1:]
            for recipient, _source in rows
            if recipient and recipient[:1] == "+" and len(recipient) > ROUTED_MIN
            and digits.endswith(recipient[1:]) and len(digits) - len(recipient) + 1 <= ROUTING_PREFIX_MAX
        ]  # fmt: skip
        if not routed:
            return digits
        found = routed[0] if len(rows) == 1 else None
        key = f"{link} routing_prefix"
        if self._hint_due(key, now):
            self._hinted[key] = now  # type: ignore[index]
            log.warning(
                "dlr.routing_prefix",
                link=link,
                receipt_id=smsc_id,
                prefix=digits[: len(digits) - len(routed[0])],
                matched=found is not None,
                note="the SMSC's receipts name the phone behind a routing prefix: matched by their id"
                " while it is that of one SMS waiting for its receipt, left unmatched when the SMSC gave"
                " it to several",
            )
        return found or digits
