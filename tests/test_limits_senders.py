"""What a mail is charged and under which sender it is recorded, at the moment it is taken.

Real SMTP clients (the relay port, the submission port over STARTTLS) talk to a running daemon,
its SMS go to a fake SMSC over TCP, the suspension comes from the CLI as a process of its own, and
the assertions read the daemon's SQLite file.
"""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import DOMAIN, STAFF, Running, config_text, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_process import smsgw
from tests.test_submission import PASSWORD, blocking, reply, secure, submission_config, with_password

SUBJECT = "Weekly schedule change notice"  # with ": " and the body, past one part of 160
BODY = (  # 144 characters: one part alone
    "Please note that the Monday meeting is moved to Tuesday at ten in room four."
    " Bring the signed forms and your badge. Thanks and see you there ok."
)
PHONE = f"601500001@{DOMAIN}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


def daily_use(gw: Running, scope: str) -> int:
    """The parts charged to `scope` in its daily counters (a period key of ten characters)."""
    rows = gw.store.db.conn.execute("SELECT period, parts FROM usage WHERE scope = ?", (scope,)).fetchall()
    return sum(parts for period, parts in rows if len(period) == 10)


def parts_queued(gw: Running) -> int:
    return gw.store.db.conn.execute("SELECT COUNT(*) FROM parts").fetchone()[0]


def smtp_code(res: Any) -> int | None:
    err = res.error
    if getattr(err, "recipients", None):
        return next(iter(err.recipients.values()))[0]
    return getattr(err, "smtp_code", None)


async def test_a_retry_to_new_numbers_is_charged_each_numbers_own_parts(tmp_path: Path) -> None:
    # with: the conversation's phone gets the second mail without its subject (1 part),
    # new numbers get it whole (2 parts each). Its retry to that phone and four new numbers was
    # charged an even share of the sum (9 // 5 = 1 part each), so it passed a limit of 10 with 3
    # used and recorded 4 of the 8 parts sent. Each number keeps its own count: refused whole at
    # 10, and once the limit allows it, what is charged is what is queued.
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=10))
        user = f"user:{gw.store.accounts.find_user(STAFF).id}"
        first = mail(PHONE, BODY, subject=SUBJECT, Message_ID="<first@acme.example>")
        assert (await gw.send(first, [PHONE])).error is None
        second = mail(PHONE, BODY, subject=f"RE: {SUBJECT}", Message_ID="<second@acme.example>")
        assert (await gw.send(second, [PHONE])).error is None
        # The premise: 2 parts with the subject, then 1 as the conversation's answer (a Reply).
        assert daily_use(gw, user) == parts_queued(gw) == 3

        others = [f"6015000{i:02d}@{DOMAIN}" for i in range(10, 14)]
        del second["To"]
        second["To"] = ", ".join([PHONE, *others])
        refused = await gw.send(second, [PHONE, *others])
        assert smtp_code(refused) == 550, refused
        assert f"Daily limit of user {STAFF}: 10 parts, used 3, this email needs 8" in str(refused.error)
        assert daily_use(gw, user) == parts_queued(gw) == 3

        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, daily_limit=11))
        assert (await gw.send(second, [PHONE, *others])).error is None
        assert parts_queued(gw) == 11
        assert daily_use(gw, user) == 11
        await smsc.wait_for(11)


async def test_a_look_alike_of_the_login_is_not_its_address(tmp_path: Path, tls_pair: Any) -> None:
    # The login is kasia@acme.example; a MAIL FROM with the Kelvin sign (U+212A) for its K was taken
    # as the login's own (casefold() makes it a k) and the mail recorded under an address that is no
    # user's: `queue list --user` missed it, answers and notices went to the look-alike. Only ASCII
    # case differs between the two; the mail is recorded under the user's address as stored.
    kasia = "kasia@acme.example"
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await gw.store.write(lambda: gw.store.accounts.add_user(kasia, "acme"))
        await with_password(gw, kasia)
        rcpt = f"601123471@{DOMAIN}"

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.login(kasia, PASSWORD)
                c.command_encoding = "utf-8"  # the look-alike as a client sends it with SMTPUTF8
                answers = [reply(c.docmd("MAIL", "FROM:<\u212aasia@acme.example> SMTPUTF8"))]
                answers.append(reply(c.docmd("RSET")))
                answers.append(reply(c.docmd("MAIL", "FROM:<Kasia@acme.example>")))
                answers.append(reply(c.rcpt(rcpt)))
                c.data(mail(rcpt, "Sent as Kasia").as_bytes())
                return answers

        answers = await blocking(session)
        assert answers[0] == replies.NOT_OWNED.format(kasia)
        assert answers[2] == replies.OK_SENDER
        await smsc.wait_for(1)
        row = gw.store.db.conn.execute("SELECT mail_from, user_id FROM emails").fetchall()
        assert row == [(kasia, gw.store.accounts.find_user(kasia).id)]


async def test_a_suspension_between_rcpt_and_data_refuses_the_mail(tmp_path: Path) -> None:
    # MAIL and RCPT were taken, then `smsgw account suspend` (another process) ran, then DATA: the
    # mail got `250 queued`, its parts charged and held. The suspension promises new mail is refused
    # at SMTP: DATA answers the suspension, nothing is queued or charged.
    async with HappySMSC() as smsc:
        text = config_text(tmp_path, smsc_port=smsc.port)
        path = tmp_path / "config.toml"
        path.write_text(text)
        async with running_gateway(parse_config(text, source=str(path), base_dir=tmp_path)) as gw:
            rcpt = f"601123411@{DOMAIN}"
            acme = gw.store.accounts.get_account("acme").id

            def session() -> list[str]:
                with smtplib.SMTP("127.0.0.1", gw.port, timeout=60) as c:
                    c.ehlo("mail.acme.example")
                    answers = [reply(c.docmd("MAIL", f"FROM:<{STAFF}>")), reply(c.rcpt(rcpt))]
                    done = smsgw(path, "account", "suspend", "acme", "--reason", "billing")
                    assert done.returncode == 0, done.stderr
                    try:
                        answers.append(reply(c.data(mail(rcpt, "Sent after the suspension").as_bytes())))
                    except smtplib.SMTPDataError as exc:
                        answers.append(reply((exc.smtp_code, exc.smtp_error)))
                    return answers

            answers = await blocking(session)
            assert answers[0] == replies.OK_SENDER and answers[1].startswith("250"), answers
            assert answers[2] == replies.SUSPENDED.format("acme", "billing")
            assert gw.store.admin.count_messages() == 0
            assert daily_use(gw, f"account:{acme}") == 0
            await asyncio.sleep(0.2)
            assert smsc.received == []
