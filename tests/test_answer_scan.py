"""Which conversation a phone's answer answers, when the phone also gets many SMS from others: the
choice reads the phone's recent SMS (`gateway.conversations.reached`), a bounded scan. An alerting
system's hundreds of SMS to an on-call phone filled it, and a conversation whose SMS that went lay
beyond it was taken for one whose SMS never went: the answer went to the wrong colleague. A real
SQLite file, the real acceptance write and matching, an injected clock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.conversations.reached import SCAN_LIMIT
from gateway.conversations.repo import ConversationsRepo
from gateway.smtp.accept import accept
from gateway.store.db import Store
from tests.test_store import Clock, acceptance, vm_steps

PHONE, OURS, ALERTS = "+48601123892", "+48100200300", "+48100200999"


class Phone:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.store = Store.open(tmp_path / "db.sqlite", clock=self.clock)
        self.account = self.store.accounts.add_account("acme").id
        self.repo = ConversationsRepo(self.store.db, self.store.clock)

    async def sms(
        self, user: str, source: str, text: str, *, went: bool = True, subject: str = "s", kept: str = "s"
    ) -> None:
        """An SMS of `user`'s mail with `subject`, whose conversation keeps `kept` (as `on_accept` does)."""
        base = acceptance([PHONE])
        message = dataclasses.replace(base.messages[0], source=source, text=text)
        mail = dataclasses.replace(
            base, mail_from=user, account_id=self.account, messages=[message], subject=subject,
            header_message_id=f"<{self.clock.t}@acme.example>",
        )  # fmt: skip
        res = await accept(self.store, mail)
        self.repo.record_mt(
            phone=PHONE, number=source, user_email=user, account_id=self.account, domain="sms.example.com",
            header_message_id=mail.header_message_id, subject=kept, text=text,
        )  # fmt: skip
        if went:
            self.store.db.conn.execute(
                "UPDATE parts SET state = 'delivered', submitted_at = ? WHERE message_id = ?",
                (self.clock.t, res.message_ids[0]),
            )
        self.clock.t += 1

    def answered_by(self) -> tuple[str, str]:
        conv = self.repo.match(PHONE, OURS, self.clock.t, 30 * 86400, "PL")
        assert conv is not None
        return conv.user_email, conv.text


async def test_an_alerting_systems_sms_do_not_hide_the_sms_that_went(tmp_path: Path) -> None:
    phone = Phone(tmp_path)
    await phone.sms("demo@acme.example", OURS, "demo asks")
    await phone.sms("anna@acme.example", OURS, "anna asks: can you call me?")
    for i in range(SCAN_LIMIT + 10):  # from another user and number, to the same phone
        await phone.sms("alerts@acme.example", ALERTS, f"disk full on db{i}")
    await phone.sms("anna@acme.example", OURS, "anna's offer, held for quiet hours", went=False)
    assert phone.answered_by() == ("anna@acme.example", "anna asks: can you call me?")
    phone.store.close()


async def test_a_full_scan_does_not_call_a_conversation_unsent(tmp_path: Path) -> None:
    # The same user sends more than the scan reads: anna's SMS that went is beyond it. Not known,
    # so taken by its last mail (as before the choice read the SMS), not as "none went" (demo).
    phone = Phone(tmp_path)
    await phone.sms("demo@acme.example", OURS, "demo asks")
    await phone.sms("anna@acme.example", OURS, "anna asks: can you call me?")
    for i in range(SCAN_LIMIT + 10):
        await phone.sms("anna@acme.example", ALERTS, f"disk full on db{i}")
    await phone.sms("anna@acme.example", OURS, "anna's offer, held for quiet hours", went=False)
    assert phone.answered_by()[0] == "anna@acme.example"
    phone.store.close()


async def test_an_answer_quoting_an_earlier_reply_keeps_the_conversations_whole_topic(tmp_path: Path) -> None:
    # The SMS that went came from a Reply to one of our reply mails, its subject the cut topic;
    # the conversation keeps the topic whole (Outlook threads by it), and so must the answer that
    # quotes that SMS because a later one is held.
    topic = "Spotkanie w sprawie budżetu na przyszły rok i planu szkoleń dla całego zespołu sprzedaży"
    cut = f"RE: Re: {topic[:40]}… (SMS from +48 601 123 892)"
    phone = Phone(tmp_path)
    await phone.sms("anna@acme.example", OURS, "Czy 10:00 pasuje?", subject=topic, kept=topic)
    await phone.sms("anna@acme.example", OURS, "To 11:00?", subject=cut, kept=topic)
    await phone.sms("anna@acme.example", OURS, "Oferta", went=False, subject=cut, kept=topic)
    conv = phone.repo.match(PHONE, OURS, phone.clock.t, 30 * 86400, "PL")
    assert conv is not None and conv.text == "To 11:00?"
    assert conv.subject == topic
    phone.store.close()


async def test_another_senders_sms_to_the_phone_cost_the_match_no_more_than_a_bounded_read(
    tmp_path: Path,
) -> None:
    # Only the users' SMS were limited: an alerting system's 200,000 SMS to the phone were each read
    # to find theirs, 40 ms of the event loop per answer. The work is counted in SQLite's steps (a
    # progress handler), not timed: with four times the alerts, the match must not do more.
    phone = Phone(tmp_path)
    await phone.sms("anna@acme.example", OURS, "anna asks: can you call me?")
    await phone.sms("alerts@acme.example", ALERTS, "disk full on db0")
    conn = phone.store.db.conn
    cols = [r[1] for r in conn.execute("PRAGMA table_info(messages)") if r[1] != "id"]
    picked = ", ".join("m.created_at - 3 * n.i" if c == "created_at" else f"m.{c}" for c in cols)
    alert = conn.execute("SELECT MAX(id) FROM messages").fetchone()[0]

    def alerts(count: int, start: int) -> None:
        """`count` more copies of the alert, each 3 s older than the last (an alert every 3 s)."""
        with conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                f" INSERT INTO messages ({', '.join(cols)})"
                f" SELECT {picked} FROM messages m, n WHERE m.id = ?",
                (start, start + count - 1, alert),
            )

    def steps() -> int:
        counted, answered = vm_steps(conn, phone.answered_by)
        assert answered[0] == "anna@acme.example"
        return counted

    alerts(5_000, 1)
    fewer = steps()
    alerts(15_000, 5_001)
    assert steps() <= fewer * 1.1 + 10, fewer
    phone.store.close()


async def test_an_answer_to_an_sms_past_its_window_is_not_given_to_an_sms_the_phone_never_got(
    tmp_path: Path,
) -> None:
    # demo's SMS reached the phone; its window closed; then a colleague's SMS to the phone was held
    # for quiet hours. The phone's answer is to demo's SMS, out of its window: the fallback address
    # (no conversation), not the colleague, who would read an answer to a text the phone never got.
    phone = Phone(tmp_path)
    await phone.sms("demo@acme.example", OURS, "your invoice is ready")
    phone.clock.t += 200
    await phone.sms("b@acme.example", OURS, "ACME promo, held for quiet hours", went=False)
    assert phone.repo.match(PHONE, OURS, phone.clock.t, 100, "PL") is None
    # Nothing of anyone's reached the phone: the held one is the only one it can mean (an answer
    # racing the write of its submit), as before.
    other = Phone(tmp_path / "other")
    await other.sms("b@acme.example", OURS, "ACME promo, held for quiet hours", went=False)
    conv = other.repo.match(PHONE, OURS, other.clock.t, 100, "PL")
    assert conv is not None and conv.user_email == "b@acme.example"
    phone.store.close()
    other.store.close()
