"""Premium-rate services (issue 11) below the network: passwords, config, money, retention; and the
world (`World`, `run_cli`, the numbers and config) other test modules build on. Routing an MO and
verification, answers and the command line have modules of their own (test_premium_routing.py,
test_premium_answers.py, test_premium_cli.py).

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
from gateway.smtp.intake import IntakeOptions, IntakeRefused, read_mail
from gateway.store.db import Store
from smsc.base import Ack, InboundSms

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


# ---- retention and the command line ------------------------------------------------------------


async def test_retention_blanks_old_texts_and_keeps_the_money(tmp_path: Path) -> None:
    from gateway.retentionpurge import purge_before

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
