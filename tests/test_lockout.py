"""The failed-login counters on their own (acl/lockout.py), with a clock the test moves."""

from __future__ import annotations

from acl.lockout import Attempt, AuthGuard, Refused


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(guard: AuthGuard, ip: str, login: str = "anna@acme.example") -> float:
    attempt = guard.begin(ip, login)
    assert isinstance(attempt, Attempt), attempt
    lockout = guard.settle(attempt, False)
    return lockout.seconds if lockout else 0


def test_lockout_doubles_on_each_repeat_up_to_the_cap() -> None:
    # 5 min, 10, 20, 40, then capped at 1 h; each lockout ends when its time is up.
    clock = FakeClock()
    guard = AuthGuard(3, 300, clock=clock)
    seen = []
    for _ in range(6):
        assert fail(guard, "192.0.2.1") == 0 and fail(guard, "192.0.2.1") == 0
        seen.append(fail(guard, "192.0.2.1"))
        assert guard.address_locked_for("192.0.2.1") == seen[-1]
        assert guard.login_locked_for("ANNA@acme.example") == seen[-1]
        clock.now += seen[-1]
        assert guard.address_locked_for("192.0.2.1") == 0
    assert seen == [300, 600, 1200, 2400, 3600, 3600]


def test_failures_outside_the_window_do_not_add_up() -> None:
    # Three typos spread over more than the window are not an attack.
    clock = FakeClock()
    guard = AuthGuard(3, 300, clock=clock)
    for _ in range(5):
        assert fail(guard, "192.0.2.1") == 0
        clock.now += 200
    assert guard.address_locked_for("192.0.2.1") == 0


def test_strikes_are_forgotten_after_a_quiet_day() -> None:
    # A lockout long ago does not make today's first lockout longer.
    clock = FakeClock()
    guard = AuthGuard(1, 300, clock=clock)
    assert fail(guard, "192.0.2.1") == 300
    clock.now += 86400 + 1
    assert fail(guard, "192.0.2.1") == 300


def test_ipv6_counts_per_64_and_the_table_is_bounded() -> None:
    # Hopping within one /64 does not escape; many distinct clients do not grow memory without limit.
    clock = FakeClock()
    guard = AuthGuard(2, 300, clock=clock, max_keys=3)
    fail(guard, "2001:db8:1:2::1", "a@x.example")
    assert fail(guard, "2001:db8:1:2::ffff", "b@x.example") == 300
    assert guard.address_locked_for("2001:db8:1:2:abcd::1") == 300
    assert guard.address_locked_for("::ffff:192.0.2.9") == 0
    for i in range(10):
        fail(guard, f"192.0.2.{i}", f"u{i}@x.example")
    assert len(guard._keys) == 3
    assert guard.address_locked_for("2001:db8:1:2::1") == 0  # the oldest entry was dropped


def test_guesses_in_flight_count_against_the_limit() -> None:
    # Parallel sessions: once failures plus unanswered checks reach the limit, the next is refused unchecked.
    guard = AuthGuard(3, 300, clock=FakeClock())
    started = [guard.begin("192.0.2.1", "anna@acme.example") for _ in range(5)]
    assert [isinstance(a, Attempt) for a in started] == [True, True, True, False, False]
    assert started[3] is Refused.ADDRESS


def test_the_login_is_counted_across_addresses() -> None:
    # Rotating addresses: each address stays under its limit, the login does not.
    guard = AuthGuard(3, 300, clock=FakeClock())
    for i in range(3):
        fail(guard, f"192.0.2.{i}")
    assert guard.begin("198.51.100.7", "Anna@Acme.example") is Refused.LOGIN
    assert isinstance(guard.begin("198.51.100.7", "ben@acme.example"), Attempt)


def test_a_success_clears_the_login_not_the_address() -> None:
    # Two typos then the right password: the user starts afresh; an attacker's own login resets nothing.
    guard = AuthGuard(3, 300, clock=FakeClock())
    fail(guard, "192.0.2.1")
    fail(guard, "192.0.2.1")
    ok = guard.begin("192.0.2.1", "anna@acme.example")
    assert isinstance(ok, Attempt) and guard.settle(ok, True) is None
    assert guard.login_locked_for("anna@acme.example") == 0
    assert fail(guard, "192.0.2.1", "eve@evil.example") == 300  # the address had 2 already


def test_overall_failures_are_capped() -> None:
    # Many addresses and many logins: past the overall rate, attempts wait for the window to pass.
    clock = FakeClock()
    guard = AuthGuard(3, 300, overall_max_failures=10, overall_window_seconds=60, clock=clock)
    for i in range(10):
        fail(guard, f"192.0.2.{i}", f"user{i}@x.example")
    assert guard.begin("198.51.100.1", "anna@acme.example") is Refused.OVERALL
    clock.now += 61
    assert isinstance(guard.begin("198.51.100.1", "anna@acme.example"), Attempt)


def test_a_check_that_failed_on_our_side_gives_the_slot_back() -> None:
    guard = AuthGuard(1, 300, clock=FakeClock())
    attempt = guard.begin("192.0.2.1", "anna@acme.example")
    assert isinstance(attempt, Attempt)
    guard.cancel(attempt)
    assert isinstance(guard.begin("192.0.2.1", "anna@acme.example"), Attempt)
