"""Refusals a person can act on say what to do, in their one line (Outlook shows only the reply's text).

A limit says when its count starts again (in the configured time zone) and that an admin can raise it;
the identical-text rule says to change the text or send it tomorrow, and counts only SMS an SMSC took;
an opt-out says the phone can answer START or an admin remove it; a suspension, that an admin resumes
it; the gateway's own premium number is said to be one, not a phone number missing a digit.

All through real SMTP sessions against a running gateway and a fake SMPP SMSC over TCP.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import STAFF, mail, make_config, running_gateway
from tests.fakes.smsc import HappySMSC
from tests.test_policy import code, error_text, to

TOKYO = ZoneInfo("Asia/Tokyo")


async def test_a_daily_limit_says_when_it_starts_again_and_who_can_raise_it(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 21, 15, 0, tzinfo=TOKYO).timestamp()]
    async with (
        HappySMSC() as smsc,
        running_gateway(
            make_config(tmp_path, smsc_port=smsc.port, timezone="Asia/Tokyo"), lambda: now[0]
        ) as gw,
    ):
        await gw.store.write(lambda: gw.store.accounts.update_account("acme", daily_limit=1))
        assert (await gw.send(mail(to("601123451"), "First"))).error is None
        res = await gw.send(mail(to("601123452"), "Second"))
        assert code(res) == 550
        said = error_text(res)
        assert said == (
            "5.7.1 Daily limit of account acme: 1 part, used 1, this email needs 1; the count starts again"
            " at midnight (Asia/Tokyo), or the gateway's admin can raise the limit"
            " (smsgw account set acme --daily-limit)"
        )
        assert "\n" not in said


async def test_a_monthly_limit_names_the_next_months_first_day(tmp_path: Path) -> None:
    # December's count starts again on the first of January of the next year.
    now = [datetime(2026, 12, 31, 23, 0, tzinfo=TOKYO).timestamp()]
    async with (
        HappySMSC() as smsc,
        running_gateway(
            make_config(tmp_path, smsc_port=smsc.port, timezone="Asia/Tokyo"), lambda: now[0]
        ) as gw,
    ):
        await gw.store.write(lambda: gw.store.accounts.set_user(STAFF, monthly_limit=2))
        assert (await gw.send(mail(to("601123451"), "First"))).error is None
        two = [to("601123452"), to("601123453")]
        said = error_text(await gw.send(mail(two, "Second"), two))
        assert said.endswith(
            f"this email needs 2; the count starts again on 2027-01-01 (Asia/Tokyo), or the gateway's admin"
            f" can raise the limit (smsgw user set {STAFF} --monthly-limit)"
        ), said
        # A mail needing more than the whole limit never fits: waiting is not offered.
        three = [*two, to("601123454")]
        said = error_text(await gw.send(mail(three, "Third"), three))
        assert said.endswith(
            f"this email needs 3, more than the whole limit; the gateway's admin can raise it"
            f" (smsgw user set {STAFF} --monthly-limit)"
        ), said


async def test_opted_out_and_suspended_say_how_they_are_lifted(tmp_path: Path) -> None:
    async with HappySMSC() as smsc, running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw:
        await gw.store.write(lambda: gw.store.policy.add_optout("+48601123456", word="STOP", source="mo"))
        res = await gw.send(mail(to("601123456"), "Offer"))
        assert code(res) == 550
        said = error_text(res)
        assert "opted out" in said and "the phone can answer START" in said, said
        assert said.endswith("the gateway's admin can remove it from the list (smsgw optout remove)"), said
        acme = gw.store.accounts.get_account("acme").id
        await gw.store.write(lambda: gw.store.policy.suspend_account(acme, "unpaid invoice"))
        res = await gw.send(mail(to("601123457"), "Hello"))
        assert code(res) == 550
        assert error_text(res) == (
            "5.7.1 Account acme is suspended: unpaid invoice; ask the gateway's admin to resume it"
            " (smsgw account resume)"
        )


async def test_the_opt_out_refusal_names_the_configured_opt_in_word(tmp_path: Path) -> None:
    # The word the phone answers is the config's, not always START; with none, only an admin lifts it.
    for words, told in ((["TAK", "START"], "the phone can answer TAK, or the gateway's admin"), ([], None)):
        async with HappySMSC() as smsc:
            base = make_config(tmp_path / str(len(words)), smsc_port=smsc.port)
            gateway = base.gateway.model_copy(update={"optin_words": words})
            cfg = base.model_copy(update={"gateway": gateway})
            async with running_gateway(cfg) as gw:
                await gw.store.write(
                    lambda g=gw: g.store.policy.add_optout("+48601123456", word="STOP", source="mo")
                )
                said = error_text(await gw.send(mail(to("601123456"), "Offer")))
        if told is None:
            assert "the phone can answer" not in said and "; the gateway's admin can remove it" in said, said
        else:
            assert told in said, said


async def test_identical_text_counts_only_sms_an_smsc_took_and_says_what_to_do(tmp_path: Path) -> None:
    # Three SMS refused at submit never left: a fourth mail with the same text is taken. Three an SMSC
    # took, that then failed (the phone's report), count: the fourth is refused, saying what to do.
    async with (
        HappySMSC(reject_suffixes=["0000"], fail_suffixes=["13"]) as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port)) as gw,
    ):
        for i in range(3):
            assert (
                await gw.send(mail(to("601120000"), "Same text", Message_ID=f"<r{i}@a.example>"))
            ).error is None
            await gw.until(lambda n=i: gw.states() == ["failed"] * (n + 1))
        assert (await gw.send(mail(to("601120000"), "Same text", Message_ID="<r3@a.example>"))).error is None
        for i in range(3):
            assert (
                await gw.send(mail(to("601123413"), "Same text", Message_ID=f"<f{i}@a.example>"))
            ).error is None
        await gw.until(lambda: gw.states() == ["failed"] * 7)
        res = await gw.send(mail(to("601123413"), "Same text", Message_ID="<f3@a.example>"))
        assert code(res) == 550
        assert error_text(res) == (
            "5.7.1 More than 3 identical SMS to +48601123413 today are not allowed (operator anti-spam rule);"
            " change the text or send it tomorrow"
        )
        # The count stays short ranges of one number's parts by when they went (each message then read
        # by id) and of its messages, the parts of a failed one read by their index.
        conn, said_sql = gw.store.db.conn, []
        conn.set_trace_callback(said_sql.append)
        try:
            assert gw.store.policy.identical_count("+48601123413", "Same text", 0.0) == 3
        finally:
            conn.set_trace_callback(None)
        (sql,) = [s for s in said_sql if "COUNT(*)" in s]
        details = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        assert any("COVERING INDEX parts_sent (destination=? AND submitted_at>?)" in d for d in details)
        assert any("USING INTEGER PRIMARY KEY (rowid=?)" in d for d in details), details
        assert any("USING INDEX messages_recipient (recipient=? AND created_at>?)" in d for d in details)
        assert any("USING INDEX parts_message" in d for d in details), details
        assert not any(d.startswith("SCAN") for d in details), details


async def test_the_gateways_premium_number_is_named_as_one_not_a_short_phone_number(tmp_path: Path) -> None:
    extra = '\n[premium]\nnumbers = ["7355"]\nfallback_address = "ops@example.com"\n'
    async with (
        HappySMSC() as smsc,
        running_gateway(make_config(tmp_path, smsc_port=smsc.port, extra=extra)) as gw,
    ):
        res = await gw.send(mail(to("7355"), "Hello"))
        assert code(res) == 550
        said = error_text(res)
        assert "premium short number" in said and "digit missing" not in said, said
        assert said == (
            f"5.1.1 <{to('7355')}>: 7355 is this gateway's premium short number, which takes SMS from phones;"
            " the gateway sends no SMS to it"
        )
        # Another short number (a mistyped phone number, maybe) keeps the length hint.
        said = error_text(await gw.send(mail(to("7356"), "Hello")))
        assert "too short for a phone number of PL" in said, said
