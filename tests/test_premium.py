"""Premium-rate services (issue 11) below the network: passwords, routing, money, verification, answers.

The handlers run on a real SQLite file through `GatewayEvents` and the answer/confirmation
functions the relay port calls, as the daemon runs them; the clock is injected.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import ConfigError, parse_config
from gateway.events import GatewayEvents, Notifier
from gateway.premium import answers, handlers, passwords
from gateway.premium.stats import PremiumStats
from gateway.smtp import replies
from gateway.smtp.intake import IntakeOptions, IntakeRefused, read_mail
from gateway.store.db import Store
from smsc.base import Ack, Concat, InboundSms

PHONE = "+48601123456"
CLIENT = "konkurs@acme.pl"
FALLBACK = "premium-ops@example.com"
T0 = 1_800_000_000.0

BASE = """
[gateway]
domains = ["sms.example.com"]
[[smsc]]
name = "main"
type = "smpp"
port = 2775
[premium]
numbers = ["7155", "7355", "7955"]
"""


def cfg(premium: str = f'fallback_address = "{FALLBACK}"', base_dir: Path = Path(".")) -> object:
    return parse_config(BASE + premium, source="test", base_dir=base_dir)


class World:
    def __init__(self, tmp_path: Path, premium: str = f'fallback_address = "{FALLBACK}"') -> None:
        self.now = T0
        # state_dir (and so billing_dir) under the test's own directory: relative to the working
        # directory, tests billing a month wrote into one var/billing that parallel workers share.
        self.config = cfg(premium, tmp_path)
        self.store = Store.open(tmp_path / "db.sqlite", clock=lambda: self.now)
        self.events = GatewayEvents(self.store, Notifier(self.store, self.config))  # type: ignore[arg-type]
        self.account = self.store.accounts.add_account("acme")
        self.r = handlers.repo(self.store)

    def service(
        self, password: str = "KP123", *, numbers: tuple[str, ...] = (), verified: bool = True
    ) -> int:
        sid = self.r.add_service(password, self.account.id, CLIENT, list(numbers), [CLIENT])
        if verified:
            self.r.update_service(sid, verified_at=self.now)
        else:
            handlers.ask_verification(self.store, self.config, self.r.service(sid), "acme")  # type: ignore[arg-type]
        return sid

    async def mo(
        self, text: str, *, to: str = "7355", source: str = PHONE, acked: bool = True, **kw: object
    ) -> None:
        """An MO as a link hands it up; `acked`: the driver then reports that the SMSC read its
        acknowledgement (False: a crash or a dropped connection before it could)."""
        sms = InboundSms(source=source, destination=to, text=text, **kw)  # type: ignore[arg-type]
        if await self.events.on_deliver("main", sms) is Ack.OK:
            self.events.on_acked("main", sms, acked)
            await self.store.drain()

    def premium_mo(self) -> list[tuple[object, ...]]:
        return self.store.db.conn.execute(
            "SELECT state, service_id, password, number, parts, price, commission, text"
            " FROM premium_mo ORDER BY id"
        ).fetchall()

    def outbox(self, kind: str | None = None) -> list[tuple[str, str, str, EmailMessage]]:
        rows = self.store.db.conn.execute("SELECT kind, mail_from, rcpt, content FROM outbox ORDER BY id")
        out = [(k, f, r, email.message_from_bytes(c, policy=policy.default)) for k, f, r, c in rows]
        return [o for o in out if kind is None or o[0] == kind]  # type: ignore[misc]

    def token(self) -> str:
        return str(self.store.db.conn.execute("SELECT token FROM premium_mo ORDER BY id DESC").fetchone()[0])

    def answer(
        self, body: str, *, sender: str = CLIENT, token: str | None = None, **headers: str
    ) -> tuple[str, bool]:
        msg = EmailMessage()
        headers = {"From": sender or CLIENT, "Subject": "Re: KP123", **headers}
        for k, v in headers.items():
            msg[k.replace("_", "-")] = v
        msg.set_content(body)
        opts = IntakeOptions(subject_max=0, end_marker=None)
        try:
            mail: object = read_mail(msg.as_bytes(), opts, empty_sender=not sender)
        except IntakeRefused as exc:
            mail = exc
        author = sender or headers["From"]
        return answers.answer(self.store, self.config, token or self.token(), sender, author, mail)  # type: ignore[arg-type]


# ---- passwords ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("KP123 yes", ("KP123", "yes")),
        ("kp123yes", ("KP123", "yes")),
        (" Kp123, yes", ("KP123", "yes")),
        ("\tKPKPK: vote A", ("KPKPK", "vote A")),
        ("KP123", ("KP123", "")),  # only the password
        ("vote KP123", None),  # inside the text, not at the start
        ("\u041aP123 yes", None),  # Cyrillic К
        ("\uff2b\uff30123", None),  # fullwidth ＫＰ
        ("\u212aP123", None),  # Kelvin sign, which IGNORECASE alone would take for K
        ("KP12", None),
        ("", None),
        # Invisible characters a phone's keyboard or a pasted text put first (as the opt-out words
        # skip them): a BOM, a zero-width space, a left-to-right mark.
        ("\ufeffKP123 A", ("KP123", "A")),
        ("\u200b KP123 A", ("KP123", "A")),
        ("\u200eKP123 A", ("KP123", "A")),
        ("KP123\u00a0tak", ("KP123", "tak")),  # a no-break space after it is no part of the message
    ],
)
def test_the_password_is_the_first_five_ascii_characters(text: str, expected: object) -> None:
    assert passwords.split(text) == expected


@pytest.mark.parametrize("bad", ["KP12", "KP1234", "XP123", "KP12!", "\u041aP123", "KP１23"])
def test_a_malformed_password_is_refused_with_the_rule(bad: str) -> None:
    with pytest.raises(passwords.BadPassword, match="KP followed by three"):
        passwords.normalise(bad)


# ---- config and money --------------------------------------------------------------------------


def test_prices_come_from_the_operator_list_in_grosze() -> None:
    c = cfg('[[premium.number]]\nnumber = "7955"\ncommission = "3.50"\n[[premium.number]]\nnumber = "8011"\n'
            'price = "0.50"\ncommission = "0.10"')  # fmt: skip
    t = c.premium.tariffs  # type: ignore[attr-defined]
    assert (t["7155"].price, t["7155"].commission) == (100, 32)
    assert (t["7355"].price, t["7355"].commission) == (300, 110)
    assert (t["7955"].price, t["7955"].commission) == (900, 350)  # override of the commission only
    assert (t["8011"].price, t["8011"].commission) == (50, 10)


@pytest.mark.parametrize(
    ("premium", "message"),
    [
        ('numbers = ["7455"]', "7455: its price cannot be derived"),
        ('numbers = ["71555"]', "71555: its price cannot be derived"),
        ('[[premium.number]]\nnumber = "7355"\nprice = 3.0', "give money as a string"),
        ('[[premium.number]]\nnumber = "7355"\nprice = "3.001"', "amount in PLN"),
        ('[[premium.number]]\nnumber = "7355"\nprice = "-3"', "amount in PLN"),
        ('[[premium.number]]\nnumber = "7355"\ncommission = "4.00"', "commission is more than the price"),
        ('numbers = ["73x5"]', "3 to 8 digits"),
        ("answers = 1", r"\[premium\] answers: unknown key"),
    ],
)
def test_check_config_refuses_a_number_without_a_price(premium: str, message: str) -> None:
    text = BASE.replace('numbers = ["7155", "7355", "7955"]\n', "") + premium
    with pytest.raises(ConfigError, match=message):
        parse_config(text, source="test")


def test_a_premium_number_priced_twice_is_refused_naming_it() -> None:
    # The last table silently set the price: the operator's invoice and ours would then differ.
    twice = (
        '[[premium.number]]\nnumber = "7955"\ncommission = "3.50"\n'
        '[[premium.number]]\nnumber = "8011"\nprice = "0.50"\ncommission = "0.10"\n'
        '[[premium.number]]\nnumber = "7955"\ncommission = "2.00"\n'
    )
    with pytest.raises(ConfigError, match=r"\[\[premium\.number\]\]: number 7955 is given more than once"):
        cfg(twice)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from(["7155", "7355", "7955"]), st.integers(1, 4)), min_size=1, max_size=30)
)
def test_money_sums_are_exact_in_grosze(
    tmp_path_factory: pytest.TempPathFactory, mos: list[tuple[str, int]]
) -> None:
    # Any mix of numbers and part counts: the stats are the operator list times the parts, exactly.
    w = World(tmp_path_factory.mktemp("money"))
    w.service()
    for i, (number, parts) in enumerate(mos):
        w.now += 1
        w.store.mo.record_mo("main", f"+4860112{i:04d}", number, f"KP123 vote {i}", 0, None)
        mo_id = w.store.db.conn.execute("SELECT MAX(id) FROM mo").fetchone()[0]
        w.store.db.conn.execute("UPDATE mo SET concat_total = ? WHERE id = ?", (parts, mo_id))
        handlers.on_whole_mo(w.store, w.config, mo_id, earlier=w.store.mo.redelivery_of(mo_id))  # type: ignore[arg-type]
    rows = [
        (f.password, f.number, f.sms, f.parts, f.price, f.commission)
        for f in PremiumStats(w.store.db, w.store.clock).traffic(T0, T0 + 10_000)
    ]
    list_price = {"7155": (100, 32), "7355": (300, 110), "7955": (900, 340)}
    for number in {n for n, _ in mos}:
        count = sum(1 for n, _ in mos if n == number)
        price = sum(list_price[n][0] * p for n, p in mos if n == number)
        commission = sum(list_price[n][1] * p for n, p in mos if n == number)
        assert ("KP123", number, count, sum(p for n, p in mos if n == number), price, commission) in rows
    assert all(isinstance(v, int) for row in rows for v in row[2:])


# ---- routing an MO -----------------------------------------------------------------------------


async def test_an_mo_with_a_password_is_mailed_in_the_write_that_stores_it(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("  Kp123, vote A")
    assert w.premium_mo() == [("mailed", 1, "KP123", "7355", 1, 300, 110, "vote A")]
    ((kind, mail_from, rcpt, mail),) = w.outbox()
    token = w.token()
    assert (kind, rcpt) == ("premium", CLIENT)
    assert mail_from == f"premium-{token}@sms.example.com"  # auto-responders answer the Return-Path
    assert mail["Subject"] == "KP123 · 7355 · +48 601 123 456"
    assert mail["Reply-To"] == f"premium-{token}@sms.example.com"
    assert "Auto-Submitted" not in mail
    assert mail.get_content().startswith("vote A\n")
    assert w.store.db.conn.execute("SELECT state FROM mo").fetchone()[0] == "premium"


async def test_a_redelivered_mo_is_one_mail_and_one_charge(tmp_path: Path) -> None:
    # The SMSC sends the MO again (our OK was lost in a crash): recognised, not mailed or charged twice.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += 5
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == 1 and len(w.outbox()) == 1
    assert [r[0] for r in w.store.db.conn.execute("SELECT state FROM mo ORDER BY id")] == [
        "premium",
        "duplicate",
    ]
    w.now += 600  # the same vote much later is a new SMS the phone paid for again
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == 2 and len(w.outbox()) == 2


@pytest.mark.parametrize(("later", "charged"), [(130.0, 1), (23 * 3600.0, 1), (86400.0 + 60, 2)])
async def test_a_vote_never_acknowledged_is_the_same_sms_however_late_it_comes_again(
    tmp_path: Path, later: float, charged: int
) -> None:
    # Killed before the SMSC had the acknowledgement (or its connection dropped first): the SMSC
    # delivers it again after the outage, however long; one charge. Looked back on for a day.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += later
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == charged and len(w.outbox()) == charged


@pytest.mark.parametrize(("later", "charged"), [(1.0, 1), (3.0, 2), (600.0, 2)])
async def test_the_same_vote_after_its_acknowledgement_reached_the_smsc_is_a_new_sms(
    tmp_path: Path, later: float, charged: int
) -> None:
    # The phone sent the same vote again and paid again: charged again, unless within 2 s of the
    # first one's acknowledgement (an SMSC that had stopped waiting for it may have repeated it).
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    w.now += later
    await w.mo("KP123 vote A")
    assert len(w.premium_mo()) == charged and len(w.outbox()) == charged


async def test_once_a_copy_delivered_again_is_acknowledged_the_next_identical_vote_is_new(
    tmp_path: Path,
) -> None:
    # Copy 1 never acknowledged, copy 2 (the SMSC again) acknowledged: the SMSC has stopped
    # delivering that SMS, so the same text a minute later is a new vote.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A", acked=False)
    w.now += 300
    await w.mo("KP123 vote A")
    w.now += 60
    await w.mo("KP123 vote A")
    states = [r[0] for r in w.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
    assert states == ["premium", "duplicate", "premium"] and len(w.premium_mo()) == 2


async def test_a_long_vote_sent_twice_is_charged_twice_and_its_segment_delivered_again_once(
    tmp_path: Path,
) -> None:
    # Segments keep their own rule (a segment of a set already joined is the SMSC again); the whole
    # text of a second long SMS with the same words is a new vote once the first was acknowledged.
    w = World(tmp_path)
    w.service()
    for ref in (7, 8):
        for seq, piece in ((1, "KP123 first half, "), (2, "second half")):
            await w.mo(piece, concat=Concat(ref=ref, total=2, seq=seq))
        w.now += 30
    await w.mo("second half", concat=Concat(ref=8, total=2, seq=2), acked=False)
    assert [r[4:6] for r in w.premium_mo()] == [(2, 600), (2, 600)] and len(w.outbox()) == 2


@pytest.mark.parametrize(
    ("text", "source", "reason"),
    [
        ("KP999 vote", PHONE, "no premium service has the password KP999"),
        ("vote KP123", PHONE, "does not start with a premium password"),
        ("\u041aP123 vote", PHONE, "does not start with a premium password"),
        ("KP123 vote", "ACME", "not a phone number"),
    ],
)
async def test_an_unknown_password_goes_to_the_fallback_recorded(
    tmp_path: Path, text: str, source: str, reason: str
) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo(text, source=source)
    ((state, service, _pw, number, parts, price, commission, _text),) = w.premium_mo()
    assert (state, service, number, parts, price, commission) == ("fallback", None, "7355", 1, 300, 110)
    ((kind, _from, rcpt, mail),) = w.outbox()
    assert (kind, rcpt) == ("premium-fallback", FALLBACK) and "Reply-To" not in mail
    assert reason in mail.get_content() and text.strip() in mail.get_content()


async def test_a_vote_from_a_sender_id_of_digits_is_not_the_phone_it_looks_like(tmp_path: Path) -> None:
    # "601123456" with TON 5 is a name (alphanumeric sender ID), not PHONE in its national form:
    # no service gets it, and no charge is recorded against PHONE.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote", source="601123456", raw={"source_ton": "5"})
    ((state, service, *_),) = w.premium_mo()
    assert (state, service) == ("fallback", None)
    assert w.store.db.conn.execute("SELECT phone FROM premium_mo").fetchone() == ("601123456",)
    ((kind, _from, rcpt, mail),) = w.outbox()
    assert (kind, rcpt) == ("premium-fallback", FALLBACK)
    assert "not a phone number" in mail.get_content()


async def test_without_a_fallback_address_an_unknown_password_goes_to_the_admin(tmp_path: Path) -> None:
    # With neither [premium] nor [replies] fallback_address the paid SMS was recorded and mailed to
    # nobody (R-4.4: "mailed to the operator's fallback address"), and check-config said nothing.
    w = World(tmp_path, premium='[mail]\nadmin_address = "ops@example.com"')
    await w.mo("KP999 vote")
    await w.mo("no password at all")
    assert [r[0] for r in w.premium_mo()] == ["fallback", "fallback"]
    assert [(o[0], o[2]) for o in w.outbox()] == [("premium-fallback", "ops@example.com")] * 2
    assert "no premium service has the password KP999" in w.outbox()[0][3].get_content()


async def test_the_fallback_defaults_to_the_replies_one(tmp_path: Path) -> None:
    w = World(tmp_path, premium='[replies]\nfallback_address = "replies@example.com"')
    await w.mo("KP999 vote")
    assert w.outbox()[0][2] == "replies@example.com"


async def test_a_password_sent_to_another_premium_number_is_unknown(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service(numbers=("7355",))
    await w.mo("KP123 vote", to="7955")
    assert w.premium_mo()[0][:2] == ("fallback", None)
    assert "does not run on 7955" in w.outbox()[0][3].get_content()
    await w.mo("KP123 vote", to="7355")
    assert w.premium_mo()[1][:2] == ("mailed", 1)


async def test_the_password_matches_in_any_case(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service("KPKPK")
    await w.mo("kpkpk yes")
    await w.mo("KpKpKyes", source="+48601123457")
    assert [r[:3] for r in w.premium_mo()] == [("mailed", 1, "KPKPK")] * 2


async def test_a_multipart_premium_mo_is_one_mail_charged_per_part(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    for seq, piece in ((2, "second half"), (1, "KP123 first half, ")):
        await w.mo(piece, concat=Concat(ref=7, total=2, seq=seq))
    ((state, _s, _p, _n, parts, price, commission, text),) = w.premium_mo()
    assert (state, parts, price, commission, text) == ("mailed", 2, 600, 220, "first half, second half")
    assert len(w.outbox()) == 1


@pytest.mark.parametrize("to", ["7355", "+487355", "487355", "00487355"])
async def test_a_premium_number_is_found_in_every_form_an_smsc_writes_it(tmp_path: Path, to: str) -> None:
    # With the country code (SMPP TON 1 or 0, CIMD2's "00") the vote went to the conversations as an
    # unmatched MO: no money record, no mail to the client nor to the fallback.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote", to=to)
    assert [r[:6] for r in w.premium_mo()] == [("mailed", 1, "KP123", "7355", 1, 300)]
    assert [o[2] for o in w.outbox()] == [CLIENT]


async def test_mos_to_other_numbers_stay_with_the_conversations(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 hello", to="+48100200300")
    assert w.premium_mo() == []


# ---- verification ------------------------------------------------------------------------------


async def test_mos_wait_for_the_address_then_go_in_order_once_confirmed(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    ((kind, _f, rcpt, ask),) = w.outbox()
    assert (kind, rcpt) == ("premium-verify", CLIENT)
    confirm = passwords.target(ask["Reply-To"].addresses[0].username)
    assert confirm is not None and confirm.kind == "confirm" and confirm.token in ask.get_content()
    for vote in ("A", "B", "C"):
        w.now += 1
        await w.mo(f"KP123 {vote}")
    assert [r[0] for r in w.premium_mo()] == ["awaiting"] * 3 and len(w.outbox()) == 1
    reply = read_mail(b"From: konkurs@acme.pl\r\nSubject: Re: confirm\r\n\r\nyes\r\n")
    assert answers.confirm(w.store, w.config, confirm.token, reply) == replies.PREMIUM_CONFIRMED.format(
        "KP123", 3
    )  # type: ignore[arg-type]
    assert [m.get_content().split("\n")[0] for *_, m in w.outbox("premium")] == ["A", "B", "C"]
    assert [r[0] for r in w.premium_mo()] == ["mailed"] * 3
    # Single use: the client's server sending the confirmation again changes nothing.
    again = answers.confirm(w.store, w.config, confirm.token, reply)  # type: ignore[arg-type]
    assert again == replies.PREMIUM_ALREADY_CONFIRMED.format("KP123") and len(w.outbox("premium")) == 3
    assert w.r.service(sid).verified_at is not None


async def test_a_bounce_or_an_expired_token_does_not_confirm(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    token = passwords.target(w.outbox()[0][3]["Reply-To"].addresses[0].username).token  # type: ignore[union-attr]
    bounce = read_mail(b"From: MAILER-DAEMON@acme.pl\r\nSubject: Undelivered\r\n\r\nx\r\n", empty_sender=True)
    assert answers.confirm(w.store, w.config, token, bounce).startswith("250 2.0.0 OK: recorded, not sent")  # type: ignore[arg-type]
    assert w.r.service(sid).verified_at is None
    w.now += 8 * 86400
    person = read_mail(b"From: konkurs@acme.pl\r\n\r\nyes\r\n")
    assert answers.confirm(w.store, w.config, token, person) == replies.PREMIUM_CONFIRM_EXPIRED  # type: ignore[arg-type]
    assert w.r.service(sid).verified_at is None


async def test_a_service_removed_while_mos_wait_sends_them_to_the_fallback(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service(verified=False)
    await w.mo("KP123 vote")
    handlers.release_awaiting(w.store, w.config, w.r.service(sid), "removed")  # type: ignore[arg-type]
    assert w.premium_mo()[0][0] == "fallback"
    assert w.outbox()[-1][2] == FALLBACK and "vote" in w.outbox()[-1][3].get_content()


# ---- answers -----------------------------------------------------------------------------------


def answers_rows(w: World) -> list[tuple[object, ...]]:
    return w.store.db.conn.execute(
        "SELECT state, reason, mail_from, cut FROM premium_answers ORDER BY id"
    ).fetchall()


def sms(w: World) -> list[tuple[object, ...]]:
    return w.store.db.conn.execute("SELECT recipient, source, text, parts_total FROM messages").fetchall()


async def test_an_answer_becomes_one_free_sms_from_the_premium_number(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Thanks, vote counted!\n\n-- \nACME contests\n> KP123 vote A")
    assert queued and reply.startswith("250 2.0.0 OK: queued")
    assert sms(w) == [(PHONE, "7355", "Thanks, vote counted!", 1)]
    assert answers_rows(w) == [("sent", None, CLIENT, 0)]
    assert w.store.accounts.usage(f"account:{w.account.id}", "2027-01") == 0  # free: no limit charged


async def test_an_answer_to_a_phone_that_opted_out_since_is_refused(tmp_path: Path) -> None:
    # The vote, then a STOP from the same phone: the client's free answer went out all the same.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    w.store.policy.add_optout(PHONE, word="STOP", source="mo")
    reply, queued = w.answer("Thanks, vote counted!")
    assert not queued and reply.startswith("550 5.7.1") and "opted out" in reply
    assert sms(w) == [] and [r[0] for r in answers_rows(w)] == ["refused"]


async def test_an_answer_to_a_phone_that_opted_out_before_its_vote_is_sent(tmp_path: Path) -> None:
    # A STOP months ago, then a paid vote: the client's answer is what the phone paid for.
    w = World(tmp_path)
    w.service()
    w.store.policy.add_optout(PHONE, word="STOP", source="mo")
    w.now += 90 * 86400
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Thanks, vote counted!")
    assert queued and reply.startswith("250"), reply
    assert [(r[0], r[2]) for r in sms(w)] == [(PHONE, "Thanks, vote counted!")]
    assert [r[0] for r in answers_rows(w)] == ["sent"]
    assert w.store.policy.is_opted_out(PHONE)  # still opted out of everything else


async def test_answers_beyond_the_limit_are_refused_and_recorded(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("first")[1]
    reply, queued = w.answer("second", Message_ID="<second@acme.pl>")
    assert (reply, queued) == (replies.PREMIUM_ANSWERED.format(1), False)
    assert len(sms(w)) == 1 and [r[0] for r in answers_rows(w)] == ["sent", "refused"]


async def test_the_same_answer_mail_twice_is_one_sms(tmp_path: Path) -> None:
    w = World(tmp_path, premium="answers_per_mo = 2")
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("ok", Message_ID="<a1@acme.pl>")[1]
    assert w.answer("ok", Message_ID="<a1@acme.pl>") == (replies.OK_DUPLICATE, False)
    assert w.answer("and more", Message_ID="<a2@acme.pl>")[1]
    assert len(sms(w)) == 2


async def test_an_answer_from_outside_the_acl_is_refused_and_uses_nothing(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("free SMS for me", sender="eve@evil.example")
    assert (reply, queued) == (replies.PREMIUM_NOT_ON_ACL.format("eve@evil.example"), False)
    assert answers_rows(w) == [("refused", "sender not on the reply ACL", "eve@evil.example", 0)]
    assert w.answer("the real answer")[1]  # the refusal used up nothing
    assert [r[2] for r in sms(w)] == ["the real answer"]


async def test_bounces_and_receipts_are_not_answers(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("Delivery failed", sender="", From="MAILER-DAEMON@acme.pl")
    assert reply.startswith("250 2.0.0 OK: recorded, not sent") and not queued
    assert sms(w) == [] and answers_rows(w)[0][0] == "refused"


async def test_an_auto_reply_that_quotes_the_original_answers_once(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    body = "Dziekujemy za glos!\n\nOn Mon, SMS gateway wrote:\n> vote A\n> \n> -- \n> Premium SMS to 7355"
    assert w.answer(body, sender="", Auto_Submitted="auto-replied")[1]  # null Return-Path: From decides
    assert sms(w)[0][2] == "Dziekujemy za glos!"
    assert not w.answer(body, sender="", Auto_Submitted="auto-replied", Message_ID="<x@y.z>")[1]


async def test_a_long_answer_is_cut_to_one_sms_and_the_sender_told(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("x" * 150 + " and the rest that does not fit")[1]
    ((_to, _src, text, parts),) = sms(w)
    assert parts == 1 and text == "x" * 150 + " and the " and answers_rows(w)[0][3] == 1  # cut at a word
    ((_k, _f, rcpt, notice),) = w.outbox("premium-cut")
    assert rcpt == CLIENT and "does not fit" in notice.get_content()
    assert w.answer("ą" * 100, token=None) == (replies.PREMIUM_ANSWERED.format(1), False)


async def test_a_polish_answer_is_cut_at_70(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("ą" * 100)[1]
    assert len(str(sms(w)[0][2])) == 70


async def test_an_html_only_answer_is_read(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    raw = (b"From: konkurs@acme.pl\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<html><body><p>Wygra\xc5\x82e\xc5\x9b!</p></body></html>\r\n")  # fmt: skip
    mail = read_mail(raw, IntakeOptions(subject_max=0, end_marker=None))
    assert answers.answer(w.store, w.config, w.token(), CLIENT, CLIENT, mail)[1]  # type: ignore[arg-type]
    assert sms(w)[0][2] == "Wygrałeś!"


async def test_an_answer_after_the_window_or_to_a_removed_service_is_refused(tmp_path: Path) -> None:
    w = World(tmp_path)
    sid = w.service()
    await w.mo("KP123 vote A")
    w.now += 8 * 86400
    assert w.answer("late") == (replies.PREMIUM_TOO_OLD.format(7), False)
    w.now = T0
    w.r.update_service(sid, removed_at=T0)
    assert w.answer("gone") == (replies.PREMIUM_SERVICE_GONE.format("KP123"), False)
    assert sms(w) == []


async def test_a_quote_only_answer_is_refused(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    reply, queued = w.answer("> vote A")
    assert reply == replies.ONLY_QUOTE and not queued


def test_only_the_token_names_an_answer() -> None:
    assert passwords.target("premium-" + "a" * 24) == passwords.Target("premium", "a" * 24)
    assert passwords.target("CONFIRM-" + "A2" * 12) == passwords.Target("confirm", "a2" * 12)
    for bad in ("premium-" + "a" * 23, "premium-" + "1" * 24, "info", "48601123456"):
        assert passwords.target(bad) is None


# ---- retention and the command line ------------------------------------------------------------


async def test_retention_blanks_old_texts_and_keeps_the_money(tmp_path: Path) -> None:
    from gateway.store.retention import purge_before

    w = World(tmp_path)
    w.service()
    sid = w.service("KP777", verified=False)
    await w.mo("KP123 vote A")
    assert w.answer("thanks")[1]
    await w.mo("KP777 waiting")
    w.now += 91 * 86400
    await purge_before(w.store, w.now - 90 * 86400)
    assert [(r[0], r[5], r[7]) for r in w.premium_mo()] == [("mailed", 300, ""), ("awaiting", 300, "waiting")]
    assert w.store.db.conn.execute("SELECT state, text FROM premium_answers").fetchall() == [("sent", None)]
    assert w.r.count_awaiting(sid) == 1


def run_cli(tmp_path: Path, *args: str, premium: str = "") -> int:
    from gateway.cli.main import main

    conf = tmp_path / "config.toml"
    text = BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"') + premium
    conf.write_text(text + '\n[[account]]\nname = "acme"\n')
    return main(["-c", str(conf), *args])


def test_premium_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli.common import open_store

    add = ["premium", "add", "KPkpk", "--account", "acme", "--email", CLIENT]
    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, *add, "--number", "7355", "--reply-acl", "bot@acme.pl") == 0
    out = capsys.readouterr().out
    assert "premium service KPKPK added" in out and "confirmation was mailed to konkurs@acme.pl" in out
    # Taken whatever the case; malformed; a number that is not configured; an unknown account.
    assert run_cli(tmp_path, "premium", "add", "KPKPK", "--account", "acme", "--email", CLIENT) == 1
    assert "taken" in capsys.readouterr().err
    assert run_cli(tmp_path, "premium", "add", "KP12", "--account", "acme", "--email", CLIENT) == 2
    assert "KP followed by three letters or digits" in capsys.readouterr().err
    assert run_cli(tmp_path, *add[:2], "KP124", *add[3:], "--number", "7455") == 2
    assert "not a configured premium number" in capsys.readouterr().err
    assert run_cli(tmp_path, "premium", "add", "KP125", "--account", "nope", "--email", CLIENT) == 1
    capsys.readouterr()
    assert run_cli(tmp_path, "premium", "list") == 0
    out = capsys.readouterr().out
    assert "KPKPK  account acme  → konkurs@acme.pl  numbers 7355  reply ACL bot@acme.pl  UNCONFIRMED" in out
    assert run_cli(tmp_path, "premium", "verify", "kpkpk", "--resend") == 0
    store = open_store(_cfg_at(tmp_path))  # type: ignore[arg-type]
    (first, second) = store.db.conn.execute(
        "SELECT created_at, expires_at FROM premium_verifications ORDER BY created_at"
    ).fetchall()
    assert first[1] <= second[0] and second[1] - second[0] == 7 * 86400  # the old token stopped working
    kinds = [r[0] for r in store.db.conn.execute("SELECT kind FROM outbox")]
    assert kinds == ["premium-verify", "premium-verify"]
    assert run_cli(tmp_path, "premium", "set", "KPKPK", "--email", "new@acme.pl", "--all-numbers") == 0
    assert "confirmation was mailed to new@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "remove", "KPKPK") == 0
    assert run_cli(tmp_path, "premium", "list") == 0
    assert "no premium services" in capsys.readouterr().out
    assert run_cli(tmp_path, *add) == 0  # a removed service's password is free again


def test_a_new_destination_takes_the_old_ones_place_on_the_reply_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `add` puts the destination on the reply list; `set --email` left the old address there, so
    # every answer from the new destination was refused ("not on the service's reply list").
    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, "premium", "add", "KP123", "--account", "acme", "--email", "old@acme.pl") == 0
    add_bot = ["premium", "add", "KP124", "--account", "acme", "--email", "old@acme.pl", "--reply-acl"]
    assert run_cli(tmp_path, *add_bot, "bot@acme.pl") == 0
    assert run_cli(tmp_path, "premium", "set", "KP123", "--email", "New@acme.pl") == 0
    assert "reply list: New@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "set", "KP124", "--email", "new@acme.pl") == 0  # a list of its own
    assert "reply list: bot@acme.pl" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "list") == 0
    out = capsys.readouterr().out
    assert "KP123  account acme  → New@acme.pl  numbers" in out and "reply ACL New@acme.pl" in out
    assert "reply ACL bot@acme.pl" in out


def test_verify_without_resend_says_whether_the_address_confirmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli.common import open_store

    assert run_cli(tmp_path, "account", "add", "acme") == 0
    assert run_cli(tmp_path, "premium", "add", "KP123", "--account", "acme", "--email", CLIENT) == 0
    capsys.readouterr()
    # Only a look: the token mailed to the client keeps working (a resend would replace it).
    assert run_cli(tmp_path, "premium", "verify", "kp123") == 0
    out = capsys.readouterr().out
    assert f"premium service KP123: {CLIENT} has not confirmed; 0 SMS kept until it does" in out
    assert "`smsgw premium verify KP123 --resend` mails a new confirmation" in out
    store = open_store(_cfg_at(tmp_path))  # type: ignore[arg-type]
    live = "SELECT COUNT(*) FROM premium_verifications WHERE expires_at > ?"
    assert store.db.conn.execute(live, (store.clock(),)).fetchone()[0] == 1
    assert [r[0] for r in store.db.conn.execute("SELECT kind FROM outbox")] == ["premium-verify"]
    service = handlers.repo(store).active_service("KP123")
    assert service is not None
    handlers.repo(store).update_service(service.id, verified_at=store.clock())
    assert run_cli(tmp_path, "premium", "verify", "KP123") == 0
    assert f"premium service KP123: {CLIENT} confirmed 20" in capsys.readouterr().out
    assert run_cli(tmp_path, "premium", "verify", "KP123", "--resend") == 1  # nothing to confirm
    assert run_cli(tmp_path, "premium", "verify", "KP999") == 1
    assert "no premium service KP999" in capsys.readouterr().err


def _cfg_at(tmp_path: Path) -> object:
    return parse_config(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'), source="t")


async def test_premium_stats_in_pln(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    w = World(tmp_path)
    w.service()
    w.now = datetime(2027, 3, 31, 23, 30, tzinfo=ZoneInfo("Europe/Warsaw")).timestamp()
    await w.mo("KP123 A")
    await w.mo("KP123 A", to="7955", source="+48601123457")
    await w.mo("KP999 A", source="+48601123458")
    w.now += 3600  # April in Warsaw: not counted in March
    await w.mo("KP123 B")
    w.store.close()
    conf = tmp_path / "config.toml"
    conf.write_text(BASE.replace("[gateway]", f'[gateway]\nstate_dir = "{tmp_path}"'))
    (tmp_path / "db.sqlite").rename(tmp_path / "smsgw.db")
    from gateway.cli.main import main

    assert main(["-c", str(conf), "premium", "stats", "--month", "2027-03"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("20")]  # log lines
    assert lines[2].split() == ["KP123", "7355", "1", "1", "3.00", "1.10"]
    assert lines[3].split() == ["KP123", "7955", "1", "1", "9.00", "3.40"]
    # No client took it: no commission is owed for it (as the monthly summary says).
    assert lines[4].split() == ["(none)", "7355", "1", "1", "3.00", "0.00"]
    assert lines[5].split() == ["total", "3", "3", "15.00", "4.50"]


async def test_an_answer_to_a_phone_no_link_serves_whose_votes_link_is_gone_is_refused(
    tmp_path: Path,
) -> None:
    # The vote came by a link since removed from the config, and no link serves the (German) phone:
    # queued, the free answer waited unsent until it expired and the client was never told.
    w = World(tmp_path)
    routes = BASE.replace("port = 2775", 'port = 2775\nprefixes = ["+48"]')
    w.config = parse_config(routes + f'fallback_address = "{FALLBACK}"', source="t")
    w.service()
    german = "+4915112345678"
    vote = InboundSms(source=german, destination="7355", text="KP123 vote A")
    assert await w.events.on_deliver("gone", vote) is Ack.OK
    w.events.on_acked("gone", vote, True)
    await w.store.drain()
    reply, queued = w.answer("Danke!")
    assert (reply, queued) == (replies.PREMIUM_NO_ROUTE.format("+49 1511 2345678"), False)
    assert sms(w) == [] and answers_rows(w) == [("refused", "no SMSC link serves the phone", CLIENT, 0)]
    # By a link still configured, the same phone's vote is answered by it (`via`).
    await w.mo("KP123 vote B", source=german)
    assert w.answer("Danke!")[1]
    assert w.store.db.conn.execute("SELECT destination, via FROM parts").fetchall() == [(german, "main")]


async def test_an_answer_no_smsc_took_uses_up_no_free_answer(tmp_path: Path) -> None:
    # The SMSC refused the answer at submit (an invalid source, say): the client could not answer
    # the phone again ("answered 1 time(s) already"), and the phone never got a word.
    w = World(tmp_path)
    w.service()
    await w.mo("KP123 vote A")
    assert w.answer("first")[1]

    def last_part() -> int:
        return int(w.store.db.conn.execute("SELECT MAX(id) FROM parts").fetchone()[0])

    w.store.queue.mark_part_final(last_part(), "failed", "ESME_RINVSRCADR (0x0A)", link="main")
    reply, queued = w.answer("second", Message_ID="<second@acme.pl>")
    assert queued, reply
    w.store.queue.mark_submitted(last_part(), "main", "4711")  # this one the SMSC took
    reply, queued = w.answer("third", Message_ID="<third@acme.pl>")
    assert (reply, queued) == (replies.PREMIUM_ANSWERED.format(1), False)
    assert [r[0] for r in answers_rows(w)] == ["sent", "sent", "refused"]
