"""Refusals a person can act on say what to do, in their one line (Outlook shows only the reply's text).

A limit says when its count starts again (in the configured time zone) and that an admin can raise it;
an opt-out says the phone can answer START or an admin remove it; a suspension, that an admin resumes
it.

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
            "5.7.1 Daily limit of account acme: 1 parts, used 1, this email needs 1; the count starts again"
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
        await gw.store.write(lambda: gw.store.policy.add_optout("+48601123456", word=None, source="admin"))
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
