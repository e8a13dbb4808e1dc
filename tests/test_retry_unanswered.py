"""`smsgw outbox retry` of a mail given up as most likely arrived (the relay took it whole, three
times, without answering): sent again only when named, and then logged as a possible duplicate.
`--all` after an incident swept such mails up with the really failed ones, and the copy it sent
was logged as an ordinary `mail.sent`."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest
from structlog.testing import capture_logs

from gateway import outboxworker
from gateway.config import parse_config
from gateway.store.db import Store
from tests.conftest import STAFF, config_text, free_port, running_gateway
from tests.test_account_show import CLI
from tests.test_mailer import outbox_rows, relay_running
from tests.test_relay_slow_dot import RETRY, DropsAfterDot, ScaledClient


@pytest.fixture
def scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay session's waits and the back-off between tries cut short (`test_relay_slow_dot`)."""
    monkeypatch.setattr(aiosmtplib, "SMTP", ScaledClient)
    monkeypatch.setattr(outboxworker, "mail_retry_delay", lambda attempts: RETRY)


async def test_a_mail_that_most_likely_arrived_goes_again_only_when_named_and_as_a_possible_duplicate(
    tmp_path: Path, scaled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    relay = DropsAfterDot(drops=3)  # then the admin mends it: the fourth send is answered
    with relay_running(relay) as port:
        path = tmp_path / "config.toml"
        path.write_text(config_text(tmp_path, smsc_port=free_port(), relay_port=port))
        cli = CLI(path, capsys)
        cfg = parse_config(path.read_text(), source="test", base_dir=tmp_path)
        async with running_gateway(cfg) as gw:
            outbox = gw.store.outbox

            def refused() -> None:  # a mail the relay refused: failed, and not likely to have arrived
                outbox.finish_mail(outbox.enqueue_mail("notice", "", STAFF, b"y\r\n"), "failed", "550 Nope")

            await gw.store.write(refused)
            mail_id = await gw.store.write(lambda: outbox.enqueue_mail("notice", "", STAFF, b"x\r\n"))
            await gw.until(lambda: outbox_rows(cfg)[1][1] == "failed", timeout=20)
        assert len(relay.taken) == 3

        out = cli.ok("outbox", "retry", "--all")
        assert out[0].startswith("1 mail(s) will be sent again")  # the refused one only
        assert out[1].startswith("1 failed mail(s) not sent again")
        assert f"(ids {mail_id})" in out[1] and "most likely arrived" in out[1]
        assert [state for _id, state, _n in outbox_rows(cfg)] == ["queued", "failed"]

        assert cli.ok("outbox", "retry", str(mail_id))[0].startswith("1 mail(s)")
        with capture_logs() as logs:
            async with running_gateway(cfg) as gw:
                await gw.until(lambda: outbox_rows(cfg)[1][1] == "sent", timeout=20)
    assert relay.taken.count(b"x\r\n") == 4
    dups = [(e["mail"], e["note"]) for e in logs if e["event"] == "outbox.possible_duplicate"]
    assert dups == [(mail_id, "sent again: the relay took it 3 time(s) without answering")]


def test_a_retried_mail_that_most_likely_arrived_is_given_up_after_one_more_unanswered_send(
    tmp_path: Path,
) -> None:
    # Its count is kept: the retry sends it once more, as its error promised, not three times.
    store = Store.open(tmp_path / "smsgw.db")
    try:
        mail_id = store.outbox.enqueue_mail("reply", "", STAFF, b"Subject: hi\r\n\r\nhi\r\n")
        for _ in range(2):
            store.outbox.claim_mail(4)
            store.outbox.finish_mail(mail_id, "queued", "no answer", retry_in=0.0, unanswered=True)
        store.outbox.claim_mail(4)
        store.outbox.finish_mail(mail_id, "failed", "given up, most likely arrived", unanswered=True)
        assert store.admin.retry_outbox() == 0  # `--all`
        assert store.admin.outbox_most_likely_arrived() == [mail_id]
        assert store.admin.retry_outbox(mail_id) == 1
        [again] = store.outbox.claim_mail(4)
        assert (again.maybe_sent, again.unanswered, again.attempts) == (True, 3, 1)
    finally:
        store.close()
