"""An email's limits made by plain stores are the `Limits` its dataclass __init__ makes.

`limits_for` runs for every mail in the intake worker. `Limits` is a frozen dataclass of 19 fields,
and its __init__ set each through `object.__setattr__`, some 1,000 instructions a field; the limits
are now filled on a twin class of the same slots and given the class `Limits`, and the settings they
carry are read once per loaded config (gateway.smtp.maillimits). Held here to what the old
`limits_for` made, over random users, accounts, numbers, clocks and configs (a changed config being
a new object, as a reload or a copy makes): the same type and fields, equal, of the same hash,
frozen, and the same after `replace`, `copy` and pickle.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from acl.limits import LimitRow, period_keys, zone_name
from gateway.config import Config
from gateway.smtp.identical import start_of_day
from gateway.smtp.maillimits import Limits, limits_for
from gateway.store.accountrecord import Account
from gateway.store.accounts import User
from tests.conftest import free_port, make_config

ZONES: list[Any] = [
    ZoneInfo("Europe/Warsaw"),
    ZoneInfo("America/St_Johns"),
    UTC,
    timezone(timedelta(hours=5)),
]
LIMITS = [None, None, 0, 1, 3, 500]


def limits_by_init(
    cfg: Config,
    *,
    account: Account,
    user: User | None,
    numbers: list[str],
    text: str,
    parts: int,
    now: datetime,
    text_with_subject: str | None = None,
    message_id: str | None = None,
    relay_client: str | None = None,
) -> Limits:
    """`limits_for` as it was: the dataclass's own __init__, the settings read from `cfg` each time."""
    keys = period_keys(now)
    account_scope = f"account:{account.id}"
    rows: tuple[LimitRow, ...] = (
        (f"account {account.name}", account_scope, account.monthly_limit, account.daily_limit),
    )
    scopes: tuple[str, ...] = (account_scope,)
    if user is not None:
        user_scope = f"user:{user.id}"
        rows = ((f"user {user.email}", user_scope, user.monthly_limit, user.daily_limit), *rows)
        scopes = (account_scope, user_scope)
    return Limits(
        numbers=tuple(numbers),
        text=text,
        text_with_subject=text_with_subject,
        needed=parts * len(numbers),
        per_number=(parts,) * len(numbers),
        limit_rows=rows,
        day_start=start_of_day(now),
        identical_per_day=cfg.gateway.identical_per_day,
        scopes=scopes,
        periods=(keys["monthly"], keys["daily"]),
        user_email=user.email if user else None,
        notice_from=cfg.mail.from_address,
        hostname=cfg.gateway.hostname,
        message_id=message_id,
        zone=now.tzinfo,
        language=cfg.gateway.language,
        relay_client=relay_client,
        optin_words=tuple(cfg.gateway.optin_words),
        zone_name=zone_name(now),
    )


def an_account(rng: random.Random) -> Account:
    return Account(
        rng.randrange(1, 5000), rng.choice(["acme", "żółw", "x"]), None, "concatenated", False, "split",
        None, "END", False, "none", None, rng.choice(LIMITS), rng.choice(LIMITS), False, None, None, None,
        None,
    )  # fmt: skip


def a_user(rng: random.Random, account: Account) -> User | None:
    if rng.random() < 0.2:
        return None
    email = rng.choice(["anna@acme.example", "Jan.Kowalski@Acme.Example"])
    return User(
        rng.randrange(1, 5000), email, account.id, account.name, None, rng.choice(LIMITS), rng.choice(LIMITS)
    )


def configs(tmp_path: Path) -> list[Config]:
    port = free_port()
    first = make_config(tmp_path, smsc_port=port)
    second = make_config(
        tmp_path, smsc_port=port, hostname="sms.acme.example", language="pl", optin_words=["TAK", "START"]
    )
    third = second.model_copy(update={"gateway": second.gateway.model_copy(update={"identical_per_day": 7})})
    return [first, second, third]


def test_the_limits_filled_by_stores_are_those_of_the_dataclass_init(tmp_path: Path) -> None:
    rng = random.Random(2026_12_06)
    cfgs = configs(tmp_path)
    for _ in range(500):
        cfg = rng.choice(cfgs)
        account = an_account(rng)
        zone = rng.choice(ZONES)
        now = datetime.fromtimestamp(rng.uniform(1.7e9, 1.9e9), zone)
        kw: dict[str, Any] = dict(
            account=account,
            user=a_user(rng, account),
            numbers=rng.sample(["+48601123456", "+48602000000", "+447700900123"], rng.randrange(0, 4)),
            text=rng.choice(["Hello", "Bench 7: moved to 10:00", ""]),
            parts=rng.randrange(1, 8),
            now=now,
            text_with_subject=rng.choice([None, "Hi: Hello"]),
            message_id=rng.choice([None, "<a@b>"]),
            relay_client=rng.choice([None, "127.0.0.1"]),
        )
        made, expected = limits_for(cfg, **kw), limits_by_init(cfg, **kw)
        assert type(made) is Limits
        for field in dataclasses.fields(Limits):
            assert getattr(made, field.name) == getattr(expected, field.name), field.name
            assert type(getattr(made, field.name)) is type(getattr(expected, field.name)), field.name
        assert made == expected and hash(made) == hash(expected)
        assert repr(made) == repr(expected)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.text = "changed"  # type: ignore[misc]
        assert dataclasses.replace(made, needed=99) == dataclasses.replace(expected, needed=99)
        assert copy.copy(made) == expected and copy.deepcopy(made) == expected
        assert pickle.loads(pickle.dumps(made)) == expected
        assert made.at(now.timestamp() + 86400 * 40) == expected.at(now.timestamp() + 86400 * 40)
