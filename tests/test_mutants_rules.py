"""Pure decisions whose rule no test held: the narrowest relay network whatever the order its account
listed its networks in, an unlock that forgets the doubling of the lockouts before it, and a long
SMS's operator expiry read from any of its parts.

Unit-level: each is a function of the values handed in (acl/, the bounce's status), with no peer."""

from __future__ import annotations

import pytest

from acl.accounts import holding_networks
from acl.counters import Counters
from gateway.bounce import _status
from gateway.relaynets import relay_owners

ACME, RIVAL = 1, 2
HOST = "10.1.2.3"


@pytest.mark.parametrize(
    "networks",
    [
        # acme's host carved out of its own wide range, rival's middle-width range between them
        [(ACME, "10.1.2.0/24"), (RIVAL, "10.1.0.0/16"), (ACME, "10.0.0.0/8")],
        [(ACME, "10.0.0.0/8"), (RIVAL, "10.1.0.0/16"), (ACME, "10.1.2.0/24")],
    ],
    ids=["narrowest-first", "narrowest-last"],
)
def test_a_host_in_an_accounts_narrowest_network_is_that_accounts_in_either_order(
    networks: list[tuple[int, str]],
) -> None:
    assert holding_networks(HOST, networks) == {ACME: 24, RIVAL: 16}
    assert relay_owners(HOST, networks) == {ACME}
    # outside acme's /24, rival's /16 is the narrowest that holds the address
    assert relay_owners("10.1.9.9", networks) == {RIVAL}


def counters() -> Counters:
    return Counters({"login": 2}, 60.0, lockout=10.0, max_lockout=1000.0, forget_after=3600.0, max_keys=100)


KEY = ("login", "", "anna@acme.example")


def lock(c: Counters, at: float) -> float:
    """Two failures in a row: the second starts a lockout, returned."""
    assert c.fail(KEY, at, True, lambda: 100.0) == 0.0
    return c.fail(KEY, at + 1, True, lambda: 100.0)


def test_an_unlock_forgets_the_strikes_so_the_next_lockout_has_the_base_duration() -> None:
    c = counters()
    assert lock(c, 0.0) == 10.0
    assert c.unlock("anna@acme.example", requested_at=200.0, now=2.0) == 1
    assert c.locked_for(KEY, 2.0) == 0.0
    # The same person mistyping again after the admin's unlock: the base lockout, not a doubled one.
    assert lock(c, 3.0) == 10.0


def test_without_an_unlock_a_repeat_lockout_doubles() -> None:
    # The rule the unlock resets: the test above proves the reset, not a lockout that never doubles.
    c = counters()
    assert lock(c, 0.0) == 10.0
    assert lock(c, 20.0) == 20.0


@pytest.mark.parametrize(
    "reason",
    [
        "part 1 of 2: EXPIRED err:000; part 2 of 2: UNDELIV err:001",
        "part 1 of 2: UNDELIV err:001; part 2 of 2: EXPIRED err:000",
    ],
    ids=["first-part", "second-part"],
)
def test_an_operators_expired_report_on_any_part_is_delivery_time_expired(reason: str) -> None:
    assert _status("failed", reason) == "5.4.7"


def test_a_long_sms_failed_without_an_expiry_stays_a_plain_failure() -> None:
    assert _status("failed", "part 1 of 2: UNDELIV err:001; part 2 of 2: UNDELIV err:001") == "5.0.0"
