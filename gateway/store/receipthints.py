"""What an unmatched delivery receipt says about the configuration: a warning, once an hour a link,
naming the key that would have matched it. Each receipt missed left its SMS `submitted` for two
days, to end `unreported` (a failed one never bounced), with an info line per receipt as the only
trace. `gateway.store.reports` calls these for every receipt it stores without a part."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import structlog

from gateway.store.repository import Repository

log = structlog.get_logger(__name__)

ID_FORM_HINT_SECONDS = 3600.0


class ReceiptHints(Repository):
    # Per link (and hint): when a hint last spoke (the repository's clock).
    _hinted: dict[str, float] | None = None
    # Per link, the others bound to the same SMSC account, whose receipts may come by it
    # (`gateway.configlinks.receipt_siblings`).
    siblings: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    # Every configured link's name: a receipt that matched nothing may name a part of another one.
    link_names: tuple[str, ...] = ()

    def _hint_due(self, key: str, now: float) -> bool:
        """Whether the hint under `key` (a link's, per kind) has not spoken within the hour."""
        if self._hinted is None:
            self._hinted = {}
        return now - self._hinted.get(key, float("-inf")) >= ID_FORM_HINT_SECONDS

    def _hint_id_form(self, link: str, smsc_id: str, now: float) -> None:
        """Say which `message_id_type` the link needs when a receipt misses only because its id is
        written in the other base than the submit answers' (Kannel's well-known case: hex in the
        answer, decimal in the receipt). Each missed, their SMS waited `submitted` for two days and
        ended `unreported`, with an info line per receipt as the only trace. Once an hour a link."""
        # ASCII only: "²".isdigit() holds and int() refuses it, inside the receipt's write.
        if not self._hint_due(link, now) or not smsc_id.isascii():
            return
        if not smsc_id.isalnum():  # also "": no number in either base
            return
        forms = {"hex_to_dec": format(int(smsc_id), "x")} if smsc_id.isdigit() else {}
        if all(c in "0123456789abcdef" for c in smsc_id):
            forms["dec_to_hex"] = str(int(smsc_id, 16))
        for mode, form in forms.items():
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
                return

    def _hint_other_link(self, link: str, smsc_id: str, now: float, digits: str | None = None) -> None:
        """Say which links need one `smsc_account` when a receipt misses only because it came by
        another link than its SMS left by (an operator whose binds share the receipts): each such
        SMS waited `submitted` and ended `unreported`, a failed one never bounced, and the info line
        per receipt was the only trace. Once an hour a link; one index look per other link."""
        key = f"{link} smsc_account"
        if not self._hint_due(key, now) or not smsc_id:
            return
        own = {link, *self.siblings.get(link, ())}
        for other in self.link_names:
            if other in own:
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
