"""A connection's count key (`acl.logins.client_key`, kept per address) is what the address gives when worked
out afresh."""

from __future__ import annotations

from acl.logins import client_key

_afresh = client_key.__wrapped__

ADDRESSES = [
    None,
    "",
    "127.0.0.1",
    "192.0.2.7",
    "::ffff:192.0.2.7",
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8:0:1::1",
    "fe80::1%eth0",
    "fe80::2%eth1",
    "not an address",
    "300.1.1.1",
    "::1",
]


def test_count_key_as_client_key() -> None:
    for _ in range(2):  # the second time from what was kept
        for address in ADDRESSES:
            assert client_key(address) == _afresh(address), address
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8::1") == client_key("2001:db8::2") == "2001:db8::/64"


def test_count_keys_kept_are_bounded() -> None:
    for i in range(3000):
        address = f"10.{i // 256 % 256}.{i % 256}.1"
        assert client_key(address) == address
    info = client_key.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize
