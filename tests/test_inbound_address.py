"""`smsgw account set --inbound-address`: an SMS to the account's own number that answers no
conversation (a customer texting the company first) is mailed to the company, from the phone, so
that a Reply answers it; it went to the operator's `[replies] fallback_address`. A number other
accounts or the gateway's default sender share stays the operator's: the SMS may be another
company's.

A real daemon with its built-in SMSC simulator, real SMTP in, a real relay sink out, the real CLI.
Which senders an account is remembered to have sent from (and the upgrade that remembers them) has a
module of its own (test_inbound_address_senders.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway import housekeeping as housekeeping_module
from gateway.cli.main import main
from gateway.config import Config, parse_config
from gateway.retentionpurge import purge_before
from smsc.simulator.control import send_command
from tests.conftest import Sink, free_port, running_gateway, smtp_sink
from tests.test_answers_context import OPS, PHONE, answers_config, mails, texted
from tests.test_two_way import answer_to, e164, parsed
from tests.web_helpers import ADMIN, as_user, csrf_of, panel_store, web_context

OWN = "+48500600700"  # acme's own number (the default sender is +48100200300)
RECEPTION = "recepcja@acme.example"
OTHER = 'name = "other"\nrelay_networks = ["10.9.0.0/16"]\nusers = ["bob@other.example"]\n'


def own_config(tmp_path: Path, relay: int, number: str, accounts: str = "") -> Config:
    """`answers_config` (fallback address OPS) with acme sending from `number`."""
    answers_config(tmp_path, relay, accounts=accounts)
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace('sender = "+48100200300"', f'sender = "{number}"', 1))
    return parse_config(config.read_text(), source=str(config), base_dir=tmp_path)


def cli(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    code = main(["-c", str(config), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.splitlines()


async def first_contact(gw: object, to: str, text: str) -> None:
    command = {"op": "mo", "source": PHONE, "destination": to, "text": text}
    sent = await send_command("127.0.0.1", gw.daemon.simulator.control_port, command)  # type: ignore[attr-defined]
    assert sent["ok"]


async def test_a_first_contact_sms_to_the_own_number_reaches_the_inbound_address_and_a_reply_answers_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = free_port()
    cfg = own_config(tmp_path, relay, OWN)
    config = tmp_path / "config.toml"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        said = cli(config, capsys, "account", "set", "acme", "--inbound-address", RECEPTION)
        # Said where it is set: its Reply would be refused, as it is no user of the account.
        assert any(f"{RECEPTION} is not a user of account acme" in line for line in said)
        cli(config, capsys, "user", "add", RECEPTION, "--account", "acme")
        assert f"inbound-address: {RECEPTION}" in cli(config, capsys, "account", "show", "acme")

        await first_contact(gw, OWN, "Dzień dobry, czy jest wolny termin w piątek?")
        await sink.wait(1)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [RECEPTION]  # not the operator's fallback address
        msg = parsed(raw)
        assert msg["From"].addresses[0].addr_spec == f"{PHONE}@sms.example.com"
        assert msg["Subject"] == f"SMS from {PHONE} to {OWN} (no conversation)"
        body = " ".join(msg.get_content().split())
        assert body.startswith("Dzień dobry, czy jest wolny termin w piątek?")
        assert f"no SMS was sent to {PHONE} from {OWN} within the reply window" in body
        assert mails(gw) == [("reply", RECEPTION)]
        state, note = gw.store.db.conn.execute("SELECT state, note FROM mo").fetchone()
        assert state == "fallback" and note.startswith(f"sent to {RECEPTION}, account acme's inbound address")

        # The reception presses Reply: an SMS to the phone from acme's number, and a conversation.
        core = gw.daemon.simulator.core
        reply = answer_to(msg, "Tak, piątek 10:00 jest wolny", sender=RECEPTION)
        assert (await gw.send(reply, sender=RECEPTION)).error is None
        await gw.until(lambda: len(core.records) == 1)
        sms = core.records[0]
        assert (sms["destination"], e164(sms["source"])) == (PHONE, OWN)
        assert "Tak, piątek 10:00 jest wolny" in str(sms["text"]) and "> " not in str(sms["text"])
        # The phone's answer to it is the conversation's: mailed to the reception as its answer.
        await gw.until(
            lambda: (
                gw.store.db.conn.execute("SELECT COUNT(*) FROM parts WHERE state = 'queued'").fetchone()[0]
                == 0
            )
        )
        await first_contact(gw, OWN, "Dziękuję, będę")
        await sink.wait(2)
        assert sink.messages[1][1] == [RECEPTION]
        assert mails(gw) == [("reply", RECEPTION), ("reply", RECEPTION)]
        states = [r[0] for r in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
        assert states == ["fallback", "mailed"]


@pytest.mark.parametrize("shared", ["another account", "the default sender"])
async def test_an_sms_to_a_shared_number_still_goes_to_the_fallback_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared: str
) -> None:
    # A number two accounts send from, or the gateway's default sender: whose customer texted it
    # cannot be told, and one company's inbound address must not get another's SMS.
    relay = free_port()
    number = OWN if shared == "another account" else "+48100200300"
    other = f'\n[[account]]\n{OTHER}sender = "{OWN}"\n'
    cfg = own_config(tmp_path, relay, number, other if shared == "another account" else "")
    config = tmp_path / "config.toml"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        said = cli(config, capsys, "account", "set", "acme", "--inbound-address", RECEPTION)
        assert any("has no sender number of its own" in line for line in said)
        await first_contact(gw, number, "Dzień dobry")
        await sink.wait(1)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [OPS]
        assert parsed(raw)["Subject"] == f"SMS from {PHONE} to {number} (no conversation)"
        assert mails(gw) == [("reply-fallback", OPS)]


def test_the_inbound_address_is_checked_and_cleared_as_the_notify_address_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers_config(tmp_path, free_port())
    config = tmp_path / "config.toml"
    (tmp_path / "state").mkdir()
    cli(config, capsys, "account", "add", "beta")
    capsys.readouterr()
    # An address on the gateway's own domain comes back to the gateway and is refused: usage error.
    assert main(["-c", str(config), "account", "set", "beta", "--inbound-address", "x@sms.example.com"]) == 2
    assert "--inbound-address" in capsys.readouterr().err
    cli(config, capsys, "account", "set", "beta", "--inbound-address", RECEPTION)
    assert f"inbound-address: {RECEPTION}" in cli(config, capsys, "account", "show", "beta")
    cli(config, capsys, "account", "set", "beta", "--inbound-address", "none")
    assert "inbound-address: none" in cli(config, capsys, "account", "show", "beta")


async def test_the_company_admin_sets_the_inbound_address_on_the_account_page(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    form = {"split_mode": "concatenated", "dlr_mail": "failed", "overflow": "truncate"}
    try:
        async with as_user(web, ADMIN) as c:
            page = (await c.get("/account")).text
            assert 'name="inbound_address"' in page
            token = csrf_of(page)
            bad = {**form, "csrf": token, "inbound_address": "desk@sms.example.com"}
            r = await c.post("/account", data=bad)
            assert r.status_code == 400 and "would loop" in r.text
            assert store.accounts.get_account("acme").inbound_address is None
            r = await c.post("/account", data={**form, "csrf": token, "inbound_address": RECEPTION})
            assert r.status_code in (200, 303)
            assert store.accounts.get_account("acme").inbound_address == RECEPTION
            assert f'value="{RECEPTION}"' in (await c.get("/account")).text
    finally:
        web.counts.close()
        store.close()


async def test_a_phone_texting_the_own_number_in_a_loop_is_held_to_the_hourly_limit_without_a_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With no [replies] fallback_address the hourly limit counted no first-contact SMS: a phone in a
    # loop (an auto-responder) mailed the company's inbound address once per SMS, without end.
    relay = free_port()
    answers_config(tmp_path, relay, replies="mails_per_phone_per_hour = 3")
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace('sender = "+48100200300"', f'sender = "{OWN}"', 1))
    cfg = parse_config(config.read_text(), source=str(config), base_dir=tmp_path)
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        cli(config, capsys, "account", "set", "acme", "--inbound-address", RECEPTION)
        for n in range(5):
            await first_contact(gw, OWN, f"Automatyczna odpowiedź {n}")
        await gw.until(lambda: len(gw.store.db.conn.execute("SELECT 1 FROM mo").fetchall()) == 5)
        await sink.wait(3)
        states = [r[0] for r in gw.store.db.conn.execute("SELECT state FROM mo ORDER BY id")]
    assert states == ["fallback"] * 3 + ["throttled"] * 2
    assert [rcpts for _, rcpts, _ in sink.messages] == [[RECEPTION]] * 3


@pytest.mark.parametrize(
    ("acme", "other", "dest"),
    [
        ("48100200300", "", "48100200300"),  # the default sender (+48100200300) written without "+"
        ("48100200300", "", "+48100200300"),
        ("48100200301", "+48100200301", "48100200301"),  # two accounts' one number in two forms
        ("48100200301", "+48100200301", "+48100200301"),
    ],
)
async def test_a_number_written_in_two_forms_is_one_number_and_stays_the_operators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], acme: str, other: str, dest: str
) -> None:
    # A number the plan does not know stays as written: "+48100200300" and "48100200300" were two
    # numbers, and acme, sending from the gateway's default number written without "+", got every
    # first contact to it (another company's customers' SMS among them).
    relay = free_port()
    accounts = f'\n[[account]]\n{OTHER}sender = "{other}"\n' if other else ""
    cfg = own_config(tmp_path, relay, acme, accounts)
    config = tmp_path / "config.toml"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        said = cli(config, capsys, "account", "set", "acme", "--inbound-address", RECEPTION)
        assert any("has no sender number of its own" in line for line in said), said
        await first_contact(gw, dest, "Dzień dobry, tu klient innej firmy")
        await sink.wait(1)
        [(_, rcpts, _raw)] = sink.messages
    assert rcpts == [OPS]


class RefusingSink(Sink):
    """A relay whose server refuses `refused` for good (its mailbox gone) once `refusing` is set."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused, self.refusing = refused, False

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.refusing and address == self.refused:
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


async def flood_own_number(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    replies: str,
    sink: Sink,
) -> list[tuple[str, str]]:
    """A phone texts acme's own number 5 times in 5 minutes (3 mailed an hour), then is quiet for an
    hour; (state, note) of each of its SMS once the kept ones' mail went."""
    monkeypatch.setattr(housekeeping_module, "KEPT_INTERVAL", 0.05, raising=False)
    monkeypatch.setattr(housekeeping_module, "STATUS_INTERVAL", 0.05)
    now = [1_800_000_000.0]
    relay = free_port()
    answers_config(tmp_path, relay, replies=f"mails_per_phone_per_hour = 3\n{replies}")
    config = tmp_path / "config.toml"
    config.write_text(config.read_text().replace('sender = "+48100200300"', f'sender = "{OWN}"', 1))
    cfg = parse_config(config.read_text(), source=str(config), base_dir=tmp_path)
    async with smtp_sink(relay, sink), running_gateway(cfg, lambda: now[0]) as gw:
        db = gw.store.db.conn
        cli(config, capsys, "account", "set", "acme", "--inbound-address", RECEPTION)
        for n in range(5):
            now[0] += 60
            await first_contact(gw, OWN, f"Pytanie {n}")
            await gw.until(lambda n=n: len(db.execute("SELECT 1 FROM mo").fetchall()) == n + 1)
        await sink.wait(3)
        firsts = [" ".join(parsed(raw).get_content().split()) for _, _, raw in sink.messages]
        assert any("come together in one mail once an hour passes" in body for body in firsts)
        if isinstance(sink, RefusingSink):
            sink.refusing = True
        now[0] += 1800
        await asyncio.sleep(0.5)
        assert len(sink.messages) == 3  # the phone is not quiet for an hour yet
        now[0] += 1900
        await sink.wait(4)
        await gw.until(lambda: db.execute("SELECT 1 FROM mo WHERE state = 'throttled'").fetchone() is None)
        await asyncio.sleep(0.3)
        return db.execute("SELECT state, note FROM mo ORDER BY id").fetchall()


@pytest.mark.parametrize("replies", ["", f'fallback_address = "{OPS}"'])
async def test_a_floods_kept_first_contacts_reach_the_inbound_address_after_a_quiet_hour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, replies: str
) -> None:
    # The third mail told the company the rest "come together in one mail once an hour passes": they
    # were marked unmatched and never mailed, or mailed to the operator's fallback address instead.
    sink = Sink()
    rows = await flood_own_number(tmp_path, capsys, monkeypatch, replies, sink)
    assert [rcpts for _, rcpts, _ in sink.messages] == [[RECEPTION]] * 4
    msg = parsed(sink.messages[3][2])
    assert msg["From"].addresses[0].addr_spec == f"{PHONE}@sms.example.com"  # a Reply answers the phone
    body = msg.get_content()
    assert body.startswith("2 answers from +48 601 123 456 kept during a flood")
    assert "\nPytanie 3\n" in body and "\nPytanie 4\n" in body and "Pytanie 2" not in body
    assert [state for state, _ in rows] == ["fallback"] * 5
    assert all(f"sent to {RECEPTION}, account acme's inbound address" in note for _, note in rows[3:])


async def test_a_refused_mail_of_kept_first_contacts_goes_on_to_the_fallback_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The company's server refuses the reception's address for good: as a single inbound mail, the
    # kept ones' mail goes on to the operator, and each SMS says so.
    sink = RefusingSink(RECEPTION)
    rows = await flood_own_number(tmp_path, capsys, monkeypatch, f'fallback_address = "{OPS}"', sink)
    assert [rcpts for _, rcpts, _ in sink.messages] == [[RECEPTION]] * 3 + [[OPS]]
    body = parsed(sink.messages[3][2]).get_content()
    assert "\nPytanie 3\n" in body and "\nPytanie 4\n" in body
    assert f"Not delivered to {RECEPTION}" in " ".join(body.split())
    assert [state for state, _ in rows[3:]] == ["fallback"] * 2
    assert all("550 5.1.1 User unknown" in note and f"sent to {OPS}" in note for _, note in rows[3:])


async def test_a_moved_number_stays_the_operators_after_the_purge_took_its_old_conversations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The old company's customers were kept from the new company's inbound address only by their
    # conversations with the old one, which the retention purge deletes: after it, a customer's SMS
    # to the number that had moved reached another company's reception.
    relay = free_port()
    cfg = own_config(tmp_path, relay, OWN, f"\n[[account]]\n{OTHER}")
    config = tmp_path / "config.toml"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        db = gw.store.db.conn
        await texted(gw, "Przypominamy o wizycie jutro o 10:00")  # acme's customer, from OWN
        cli(config, capsys, "account", "set", "acme", "--sender", "default")
        # The purge as it would run once acme's SMS are older than the retention (its cutoff ahead).
        await purge_before(gw.store, time.time() + 60, reply_window=0)
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
        said = cli(config, capsys, "account", "set", "other", "--sender", OWN, "--inbound-address", RECEPTION)
        assert any(f"another account sent from {OWN} lately" in line for line in said), said
        assert not any("no sender number of its own" in line for line in said)

        await first_contact(gw, OWN, "Dzień dobry, czy mogę przełożyć wizytę?")
        await sink.wait(1)
        [(_, rcpts, raw)] = sink.messages
        assert rcpts == [OPS]  # the operator's, who forwards it: not the other company's reception
        assert parsed(raw)["Subject"] == f"SMS from {PHONE} to {OWN} (no conversation)"
        assert mails(gw) == [("reply-fallback", OPS)]

        # Once the retention and acme's reply window (90 + 7 days) have passed since acme stopped
        # sending from it, the number is the other account's like any number of its own.
        db.execute("UPDATE account_senders SET until = until - 98 * 86400 WHERE until IS NOT NULL")
        db.commit()
        await first_contact(gw, OWN, "Dzień dobry, pierwszy raz piszę")
        await sink.wait(2)
        assert sink.messages[1][1] == [RECEPTION]


async def test_a_number_no_other_account_sent_from_reaches_the_inbound_address_while_others_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the number that moved is refused: acme left OWN a moment ago; the other account's number
    # and acme's new one were never another account's.
    relay = free_port()
    cfg = own_config(tmp_path, relay, OWN, f"\n[[account]]\n{OTHER}")
    config = tmp_path / "config.toml"
    theirs, acme_new = "+48500600702", "+48500600701"
    async with smtp_sink(relay) as sink, running_gateway(cfg) as gw:
        cli(
            config,
            capsys,
            "account",
            "set",
            "acme",
            "--sender",
            acme_new,
            "--inbound-address",
            "biuro@acme.example",
        )
        said = cli(
            config, capsys, "account", "set", "other", "--sender", theirs, "--inbound-address", RECEPTION
        )
        assert not any("lately" in line for line in said), said
        await first_contact(gw, theirs, "Dzień dobry")
        await sink.wait(1)
        await first_contact(gw, acme_new, "Dzień dobry")
        await sink.wait(2)
        assert [rcpts for _, rcpts, _ in sink.messages] == [[RECEPTION], ["biuro@acme.example"]]
