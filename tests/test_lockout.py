"""The failed-login counters on their own (acl/lockout.py, acl/counters.py), with a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

import acl.logins
from acl.lockout import Attempt, AuthGuard, Refused
from acl.logins import ALL, unlock_target


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


def succeed(guard: AuthGuard, ip: str, login: str) -> None:
    attempt = guard.begin(ip, login)
    assert isinstance(attempt, Attempt), attempt
    assert guard.settle(attempt, True) is None


def test_lockout_doubles_on_each_repeat_up_to_the_cap() -> None:
    # 5 min, 10, 20, 40, then capped at 1 h; each lockout ends when its time is up.
    clock = FakeClock()
    guard = AuthGuard(3, 300, clock=clock)
    seen = []
    for _ in range(6):
        assert fail(guard, "192.0.2.1") == 0 and fail(guard, "192.0.2.1") == 0
        seen.append(fail(guard, "192.0.2.1"))
        assert guard.pair_locked_for("192.0.2.1", "ANNA@acme.example") == seen[-1]
        clock.now += seen[-1]
        assert guard.pair_locked_for("192.0.2.1", "anna@acme.example") == 0
    assert seen == [300, 600, 1200, 2400, 3600, 3600]


def test_one_person_mistyping_locks_only_themselves_at_that_address() -> None:
    # An office behind one NAT: Anna's third typo locks Anna there, not the address, not Anna elsewhere.
    guard = AuthGuard(3, 300, clock=FakeClock())
    for _ in range(3):
        fail(guard, "192.0.2.1")
    assert guard.begin("192.0.2.1", "anna@acme.example") is Refused.PAIR
    assert guard.address_locked_for("192.0.2.1") == 0
    assert guard.login_locked_for("anna@acme.example") == 0
    assert isinstance(guard.begin("192.0.2.1", "ben@acme.example"), Attempt)
    assert isinstance(guard.begin("198.51.100.7", "anna@acme.example"), Attempt)


def test_many_logins_from_one_address_lock_the_address() -> None:
    # One address trying logins one after another: two each stay under the pair cap, not the address's.
    guard = AuthGuard(3, 300, address_max_failures=20, clock=FakeClock())
    for i in range(10):
        assert fail(guard, "192.0.2.1", f"u{i}@x.example") == 0
        seconds = fail(guard, "192.0.2.1", f"u{i}@x.example")
    assert seconds == 300
    assert guard.address_locked_for("192.0.2.1") == 300
    assert guard.begin("192.0.2.1", "new@x.example") is Refused.ADDRESS


def test_failures_outside_the_window_do_not_add_up() -> None:
    # Three typos spread over more than the window are not an attack.
    clock = FakeClock()
    guard = AuthGuard(3, 300, clock=clock)
    for _ in range(5):
        assert fail(guard, "192.0.2.1") == 0
        clock.now += 200
    assert guard.pair_locked_for("192.0.2.1", "anna@acme.example") == 0


def test_strikes_are_forgotten_after_a_quiet_day() -> None:
    # A lockout long ago does not make today's first lockout longer.
    clock = FakeClock()
    guard = AuthGuard(1, 300, clock=clock)
    assert fail(guard, "192.0.2.1") == 300
    clock.now += 86400 + 1
    assert fail(guard, "192.0.2.1") == 300


def test_ipv6_counts_per_64_and_the_table_is_bounded() -> None:
    # Hopping within one /64 does not escape; many distinct clients do not grow memory without
    # limit; the oldest entries go first, but not one that still holds a lock.
    clock = FakeClock()
    guard = AuthGuard(5, 300, address_max_failures=2, clock=clock, max_keys=3)
    fail(guard, "2001:db8:1:2::1", "a@x.example")
    assert fail(guard, "2001:db8:1:2::ffff", "b@x.example") == 300
    assert guard.address_locked_for("2001:db8:1:2:abcd::1") == 300
    assert guard.address_locked_for("::ffff:192.0.2.9") == 0
    for i in range(10):
        fail(guard, f"192.0.2.{i}", f"u{i}@x.example")
    assert len(guard._keys) == 3
    assert guard.address_locked_for("2001:db8:1:2::1") == 300  # kept: dropping it would lift the lock
    assert guard.address_locked_for("192.0.2.0") == 0  # an older unlocked entry went instead
    clock.now += 301
    fail(guard, "192.0.2.99", "v@x.example")
    assert ("address", "2001:db8:1:2::/64", "") not in guard._keys  # once unlocked, it may go


def test_guesses_in_flight_count_against_the_limit() -> None:
    # Parallel sessions: once failures plus unanswered checks reach the limit, the next is not
    # checked; it is told the slots are busy (not locked), and locked once those failed.
    guard = AuthGuard(3, 300, clock=FakeClock())
    started = [guard.begin("192.0.2.1", "anna@acme.example") for _ in range(5)]
    assert [isinstance(a, Attempt) for a in started] == [True, True, True, False, False]
    assert started[3] is Refused.BUSY
    # Other logins in flight from one address count against the address's cap as well.
    others = [guard.begin("192.0.2.1", f"u{i}@x.example") for i in range(20)]
    assert sum(isinstance(a, Attempt) for a in others) == 17
    assert others[-1] is Refused.BUSY
    for attempt in started[:3]:
        assert isinstance(attempt, Attempt)
        guard.settle(attempt, False)
    assert guard.begin("192.0.2.1", "anna@acme.example") is Refused.PAIR


def test_attempts_in_flight_are_not_failures() -> None:
    # Three right passwords in flight fill the pair's slots; once they succeed, nobody is locked.
    guard = AuthGuard(3, 300, clock=FakeClock())
    started = [guard.begin("192.0.2.1", "anna@acme.example") for _ in range(3)]
    assert guard.begin("192.0.2.1", "anna@acme.example") is Refused.BUSY
    assert guard.locks() == []
    for attempt in started:
        assert isinstance(attempt, Attempt)
        guard.settle(attempt, True)
    assert isinstance(guard.begin("192.0.2.1", "anna@acme.example"), Attempt)


async def parallel(guard: AuthGuard, n: int, right: bool) -> list[Attempt | Refused]:
    """`n` sessions of one login at one address at once, each check taking a moment."""

    async def one() -> Attempt | Refused:
        attempt = await guard.begin_waiting("192.0.2.1", "anna@acme.example")
        if isinstance(attempt, Attempt):
            await asyncio.sleep(0.01)  # the hash, off the loop
            guard.settle(attempt, right)
        return attempt

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_parallel_right_passwords_wait_their_turn_and_all_get_in() -> None:
    # A connection pool of ten logging in at once: none is turned away, nothing is locked.
    guard = AuthGuard(3, 300, clock=FakeClock())
    results = await parallel(guard, 10, right=True)
    assert all(isinstance(r, Attempt) for r in results)
    assert guard.locks() == [] and guard._pending == {}


async def test_parallel_wrong_passwords_still_get_no_more_checks_than_the_cap() -> None:
    # Forty guesses at once: three are checked, the rest wait for them and are then locked out.
    guard = AuthGuard(3, 300, clock=FakeClock())
    results = await parallel(guard, 40, right=False)
    assert sum(isinstance(r, Attempt) for r in results) == 3
    assert [r for r in results if not isinstance(r, Attempt)] == [Refused.PAIR] * 37
    assert guard.pair_locked_for("192.0.2.1", "anna@acme.example") == 300


async def test_waiting_for_checks_in_flight_ends_busy_not_locked() -> None:
    # Checks that never settle (a stuck pool) do not hold the next one for ever, nor lock it.
    guard = AuthGuard(3, 300, busy_wait_seconds=0.05, clock=FakeClock())
    held = [guard.begin("192.0.2.1", "anna@acme.example") for _ in range(3)]
    assert all(isinstance(a, Attempt) for a in held)
    assert await guard.begin_waiting("192.0.2.1", "anna@acme.example") is Refused.BUSY
    assert guard._settled == []


def test_the_login_is_counted_across_addresses() -> None:
    # Rotating addresses: each address stays under every cap of its own, the login does not.
    guard = AuthGuard(3, 300, login_max_failures=10, clock=FakeClock())
    for i in range(10):
        fail(guard, f"192.0.2.{i}")
    assert guard.login_locked_for("anna@acme.example") == 300
    assert guard.begin("198.51.100.7", "Anna@Acme.example") is Refused.LOGIN
    assert isinstance(guard.begin("198.51.100.7", "ben@acme.example"), Attempt)


def test_a_success_clears_the_login_not_the_address() -> None:
    # Two typos then the right password: the user starts afresh; an attacker's own login resets nothing.
    guard = AuthGuard(3, 300, address_max_failures=3, clock=FakeClock())
    fail(guard, "192.0.2.1")
    fail(guard, "192.0.2.1")
    succeed(guard, "192.0.2.1", "anna@acme.example")
    assert isinstance(guard.begin("192.0.2.2", "anna@acme.example"), Attempt)
    assert fail(guard, "192.0.2.1", "eve@evil.example") == 300  # the address had 2 already


def test_overall_failures_are_capped() -> None:
    # Many addresses and many logins: past the overall rate, the addresses that failed are told
    # to wait for the window to pass, and fresh ones queue for one check each 60/10 s, up to 10 s.
    clock = FakeClock()
    guard = AuthGuard(3, 300, overall_max_failures=10, overall_window_seconds=60, clock=clock)
    for i in range(10):
        fail(guard, f"192.0.2.{i}", f"user{i}@x.example")
    assert guard.begin("192.0.2.3", "anna@acme.example") is Refused.OVERALL
    queued = [guard.begin(f"198.51.100.{i}", "anna@acme.example") for i in range(3)]
    assert [a.delay for a in queued if isinstance(a, Attempt)] == [0, 6]
    assert queued[2] is Refused.OVERALL  # its turn would be 12 s away
    for attempt in queued[:2]:
        assert isinstance(attempt, Attempt)
        guard.cancel(attempt)
    clock.now += 61
    assert isinstance(guard.begin("192.0.2.3", "anna@acme.example"), Attempt)


def test_the_overall_cap_spares_a_pair_that_logged_in_lately() -> None:
    # A few addresses guessing at random fill the overall rate; Anna, who logged in from her
    # office this month, is not made to wait, and neither is Ben at an address that never failed.
    clock = FakeClock()
    guard = AuthGuard(3, 300, overall_max_failures=10, overall_window_seconds=60, clock=clock)
    succeed(guard, "192.0.2.50", "anna@acme.example")
    clock.now += 29 * 86400
    for i in range(12):
        attempt = guard.begin(f"198.51.100.{i % 4}", f"nobody{i}@x.example")
        if isinstance(attempt, Attempt):
            guard.settle(attempt, False)
    anna = guard.begin("192.0.2.50", "Anna@acme.example")
    assert isinstance(anna, Attempt) and anna.delay == 0 and not anna.overall
    assert guard.settle(anna, True) is None
    assert guard.begin("198.51.100.1", "nobody99@x.example") is Refused.OVERALL  # it failed lately
    ben = guard.begin("203.0.113.7", "ben@acme.example")
    assert isinstance(ben, Attempt) and ben.delay == 0
    guard.cancel(ben)
    # Anna elsewhere, or at her office after a month without a login, is like anyone else.
    assert guard.begin("198.51.100.2", "anna@acme.example") is Refused.OVERALL
    clock.now += 30 * 86400 + 1
    late = guard.begin("192.0.2.50", "anna@acme.example")
    assert isinstance(late, Attempt) and late.overall


def test_a_locked_login_still_opens_where_its_owner_logs_in() -> None:
    # 3 guesses from each of 4 addresses lock Anna's login; from her usual address she still
    # gets in, from anywhere else she is locked; her address's own caps hold as before.
    guard = AuthGuard(3, 300, login_max_failures=10, clock=FakeClock())
    succeed(guard, "192.0.2.1", "anna@acme.example")
    seconds = [fail(guard, f"198.51.100.{i // 3}") for i in range(10)]
    assert seconds[-1] == 300 and guard.login_locked_for("anna@acme.example") == 300
    assert guard.begin("203.0.113.9", "anna@acme.example") is Refused.LOGIN
    succeed(guard, "192.0.2.1", "ANNA@acme.example")
    assert guard.login_locked_for("anna@acme.example") == 300  # still locked for everyone else
    assert fail(guard, "192.0.2.1") == 0 and fail(guard, "192.0.2.1") == 0
    assert fail(guard, "192.0.2.1") == 300
    assert guard.begin("192.0.2.1", "anna@acme.example") is Refused.PAIR


def test_logging_in_from_many_addresses_cannot_push_out_anyone_known_good() -> None:
    # A login of one's own used from many /64s fills only that login's share of the table.
    guard = AuthGuard(3, 300, known_good_per_login=10, max_known_good_logins=5, clock=FakeClock())
    succeed(guard, "192.0.2.1", "anna@acme.example")
    for n in range(500):
        succeed(guard, f"2001:db8:{n:x}::1", "mallory@evil.example")

    def spared(ip: str, login: str) -> bool:
        attempt = guard.begin(ip, login)
        assert isinstance(attempt, Attempt)
        guard.cancel(attempt)
        return not attempt.overall

    assert spared("192.0.2.1", "anna@acme.example")
    assert spared("2001:db8:1f3::1", "mallory@evil.example")
    assert not spared("2001:db8:0::1", "mallory@evil.example")  # only the 10 latest are kept
    for i in range(5):  # five more logins push the least recent (Anna's) out of the table
        succeed(guard, "198.51.100.1", f"u{i}@x.example")
    assert not spared("192.0.2.1", "anna@acme.example")


def test_successful_logins_cannot_push_a_lock_out_of_the_table() -> None:
    # Scaled down: someone with any valid login logs in from many /64s.
    clock = FakeClock()
    guard = AuthGuard(3, 300, max_keys=100, clock=clock)
    for i in range(10):
        fail(guard, f"198.51.100.{i // 3}", "victim@acme.example")
    assert guard.login_locked_for("victim@acme.example") == 300
    for n in range(1000):
        succeed(guard, f"2001:db8:{n:x}::1", "mallory@evil.example")
    assert guard.login_locked_for("victim@acme.example") == 300
    assert guard.begin("203.0.113.9", "victim@acme.example") is Refused.LOGIN


def test_failures_elsewhere_cannot_push_a_lock_out_of_the_table() -> None:
    # New failing keys evict old unlocked ones, never one still locked (nor its doubling).
    clock = FakeClock()
    guard = AuthGuard(3, 300, max_keys=30, overall_max_failures=1000, clock=clock)
    for i in range(10):
        fail(guard, f"198.51.100.{i // 3}", "victim@acme.example")
    for n in range(200):
        fail(guard, f"2001:db8:{n:x}::1", f"u{n}@x.example")
    assert len(guard._keys) <= 30
    assert guard.login_locked_for("victim@acme.example") == 300
    clock.now += 301
    for i in range(10):
        fail(guard, f"198.51.100.{i // 3}", "victim@acme.example")
    assert guard.login_locked_for("victim@acme.example") == 600  # the second lock doubles


def test_attempts_in_flight_make_no_counters() -> None:
    # Only failures make entries; a reservation lives apart and goes when it is settled.
    guard = AuthGuard(3, 300, clock=FakeClock())
    for n in range(50):
        attempt = guard.begin(f"2001:db8:{n:x}::1", "mallory@evil.example")
        assert isinstance(attempt, Attempt)
        guard.settle(attempt, True) if n % 2 else guard.cancel(attempt)
    assert guard._keys == {} and guard._pending == {} and guard._overall_pending == 0


def test_locks_show_only_logins_that_name_a_user() -> None:
    # A password typed as the user name (with its `@`) is masked in the lock list; the same
    # text gives the same mask within a run, so attempts can still be told apart.
    mask = acl.logins.masked_login  # looked up here: a module without it fails this test alone
    guard = AuthGuard(1, 300, clock=FakeClock())
    typed = "Tr0ub4dor&3@home"
    for login, known in ((typed, False), ("anna@acme.example", True)):
        attempt = guard.begin("192.0.2.1", login)
        assert isinstance(attempt, Attempt)
        guard.settle(attempt, False, known=known)
    shown = {lock["login"] for lock in guard.locks() if lock["login"]}
    assert shown == {"anna@acme.example", mask(typed)}
    assert typed.casefold() not in repr(guard.locks()).casefold()
    assert mask(typed) == mask(" tr0ub4dor&3@HOME") != mask("Tr0ub4dor&3@home2")
    assert mask(typed).startswith("[unknown login #")


def test_a_check_that_failed_on_our_side_gives_the_slot_back() -> None:
    guard = AuthGuard(1, 300, clock=FakeClock())
    attempt = guard.begin("192.0.2.1", "anna@acme.example")
    assert isinstance(attempt, Attempt)
    guard.cancel(attempt)
    assert isinstance(guard.begin("192.0.2.1", "anna@acme.example"), Attempt)


def test_unlock_requests_are_read_when_someone_is_refused() -> None:
    # The CLI's rows: read only when a counter blocks; a lock that began after a request keeps holding.
    clock, wall = FakeClock(), FakeClock()
    rows: list[tuple[int, str, float]] = []
    reads: list[int] = []

    def unlocks(after: int) -> list[tuple[int, str, float]]:
        reads.append(after)
        return [r for r in rows if r[0] > after]

    guard = AuthGuard(3, 300, clock=clock, wall=wall, unlocks=unlocks)
    succeed(guard, "192.0.2.1", "anna@acme.example")
    assert reads == []  # nobody was refused: no read at all
    for _ in range(3):
        fail(guard, "192.0.2.1")
    rows.append((1, unlock_target("Anna@Acme.example"), wall.now + 1))
    wall.now += 2
    assert isinstance(guard.begin("192.0.2.1", "anna@acme.example"), Attempt)
    # A request made before the lock does not lift it.
    for _ in range(3):
        fail(guard, "192.0.2.9", "ben@acme.example")
    rows.append((2, unlock_target("192.0.2.9"), wall.now - 5))
    assert guard.begin("192.0.2.9", "ben@acme.example") is Refused.PAIR
    assert reads[-1] == 1
    rows.append((3, ALL, wall.now + 1))
    assert isinstance(guard.begin("192.0.2.9", "ben@acme.example"), Attempt)


def test_a_failing_unlock_read_keeps_the_lock() -> None:
    def broken(_after: int) -> list[tuple[int, str, float]]:
        raise OSError("disk I/O error")

    guard = AuthGuard(1, 300, clock=FakeClock(), unlocks=broken)
    fail(guard, "192.0.2.1")
    assert guard.begin("192.0.2.1", "anna@acme.example") is Refused.PAIR


def test_unlock_targets_are_checked() -> None:
    assert unlock_target(" Anna@Acme.example ") == "anna@acme.example"
    assert unlock_target("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert unlock_target("192.0.2.7") == "192.0.2.7"
    with pytest.raises(ValueError, match="neither an IP address nor a login"):
        unlock_target("192.0.2")
