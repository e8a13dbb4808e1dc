"""The submission port takes the logged-in user's own address behind a BATV tag, as the relay port does.

A company's outbound server that signs its senders (`prvs=0123abcdef=anna@acme.example`, Barracuda's
`btv1==…==`) and logs in on the submission port had every mail refused as "not the logged-in user's
address", while the relay port read the same sender as Anna. Another user's address behind a tag is
still that user's, and still refused. Real smtplib clients over STARTTLS against a running gateway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.smtp import replies
from tests.certs import make_cert_pair
from tests.conftest import STAFF, mail, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_submission import (
    COLLEAGUE,
    PASSWORD,
    RCPT,
    blocking,
    reply,
    secure,
    submission_config,
    with_password,
)

PRVS = f"prvs=0123abcdef={STAFF}"
BTV1 = f"btv1==0a1b2c3d4e5=={STAFF}"


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert_pair(tmp_path_factory.mktemp("tls"))


async def test_own_address_with_a_batv_tag_is_taken_and_recorded_as_the_user(
    tmp_path: Path, tls_pair: Any
) -> None:
    async with HappySMSC() as smsc, running_gateway(submission_config(tmp_path, smsc.port, tls_pair)) as gw:
        await with_password(gw)
        await gw.store.write(lambda: gw.store.accounts.add_user(COLLEAGUE, "acme"))

        def session() -> list[str]:
            with secure(gw.daemon.submission_port, tls_pair) as c:
                c.login(STAFF, PASSWORD)
                answers = []
                for sender in (BTV1, f"prvs=0123abcdef={COLLEAGUE}", PRVS):
                    answers.append(reply(c.docmd("MAIL", f"FROM:<{sender}>")))
                    c.rset()
                c.send_message(mail(RCPT, "Signed by the company's server"), PRVS, [RCPT])
                return answers

        answers = await blocking(session)
        await smsc.wait_for(1)
        row = gw.store.db.conn.execute("SELECT mail_from, envelope, user_id FROM emails").fetchone()
        anna = gw.store.accounts.find_user(STAFF).id
    assert answers == [replies.OK_SENDER, replies.NOT_OWNED.format(STAFF), replies.OK_SENDER], answers
    # Recorded as Anna's (her usage, answers, `queue list --user`); reports go to the tagged address.
    assert row == (STAFF, PRVS, anna), row
