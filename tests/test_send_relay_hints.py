"""`smsgw send` with several accounts, as a new admin met it: without --as it suggested the first
user by name, whose account the relay port refuses from 127.0.0.1; its `--add-network 127.0.0.1/32`
lacked the `--shared` the log's `smtp.sender_refused` fix carries where another account holds that
network (and `account set` refuses it without); and a user whose own account's network holds the
address, outranked by another account's narrower one, got a bare 550. The daemon and the CLI run as
real processes on a real database; each fix said is run and the same send is then accepted."""

from __future__ import annotations

import asyncio
import shlex
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gateway.cli.common import EXIT_FAILURE, EXIT_USAGE
from tests.conftest import config_text, free_port
from tests.test_cli_errors import one_line, run, write_config
from tests.test_process import start_daemon

# acme (the tests' config): anna@acme.example on 127.0.0.0/8; gamma's 127.0.0.1/32 is narrower and
# takes 127.0.0.1, where `send` mails from; beta relays from elsewhere only.
EXTRA = """
[[account]]
name = "beta"
relay_networks = ["192.0.2.0/24"]
users = ["carl@beta.example"]

[[account]]
name = "gamma"
relay_networks = ["127.0.0.1/32"]
users = ["gus@gamma.example"]
"""


def hint_of(res: subprocess.CompletedProcess[str]) -> list[str]:
    assert res.returncode == EXIT_FAILURE, (res.stdout, res.stderr)
    lines = one_line(res).splitlines()
    assert lines[0].startswith("smsgw: refused: 550 5.7.1"), lines
    return lines[1:]


def apply(config: Path, hint: str) -> None:
    fix = hint.split("allow it with `", 1)[1].split("`", 1)[0]
    words = shlex.split(fix)
    assert words[:2] == ["smsgw", "account"], fix
    res = run(config, *words[1:])
    assert res.returncode == 0, (fix, res.stderr)


@asynccontextmanager
async def gateway(tmp_path: Path) -> AsyncIterator[Path]:
    smtp_port = free_port()
    config = write_config(
        tmp_path, config_text(tmp_path, smsc_port=free_port(), smtp_port=smtp_port, extra=EXTRA)
    )
    proc = await start_daemon(config, smtp_port)
    try:
        yield config
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


async def send(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, config, "send", "601123456", "x", *args)


async def test_without_as_a_user_who_may_send_from_here_is_suggested(tmp_path: Path) -> None:
    async with gateway(tmp_path) as config:
        res = await send(config)
    assert res.returncode == EXIT_USAGE, res.stderr
    said = one_line(res)
    assert "3 users exist (anna@acme.example, carl@beta.example, gus@gamma.example)" in said, said
    assert "e.g. smsgw send --as gus@gamma.example NUMBER TEXT (of account gamma, which relays from" in said


async def test_a_network_another_account_holds_is_shared_as_the_logs_fix_says(tmp_path: Path) -> None:
    async with gateway(tmp_path) as config:
        [hint, note] = hint_of(await send(config, "--as", "carl@beta.example"))
        assert "account beta, whose relay networks (192.0.2.0/24) do not include 127.0.0.1" in hint, hint
        assert hint.endswith("allow it with `smsgw account set beta --add-network 127.0.0.1/32 --shared`")
        assert "`smsgw account set beta --remove-network 127.0.0.1/32`" in note, note
        apply(config, hint)
        res = await send(config, "--as", "carl@beta.example")
        assert res.returncode == 0 and "accepted: 250" in res.stdout, res.stderr


async def test_an_outranked_network_gets_the_reason_and_fix_not_a_bare_550(tmp_path: Path) -> None:
    # acme's own 127.0.0.0/8 holds the address, gamma's narrower network takes it.
    async with gateway(tmp_path) as config:
        [hint, _] = hint_of(await send(config, "--as", "anna@acme.example"))
        assert "the narrower relay network 127.0.0.1/32 of account gamma takes it" in hint, hint
        assert hint.endswith("allow it with `smsgw account set acme --add-network 127.0.0.1/32 --shared`")
        apply(config, hint)
        res = await send(config, "--as", "anna@acme.example")
        assert res.returncode == 0 and "accepted: 250" in res.stdout, res.stderr
