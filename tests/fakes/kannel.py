"""Kannel's bearerbox + smsbox (Debian package `kannel`) as an independent SMPP / CIMD2 client of the
simulator, and `HttpSink`, the local HTTP listener its dlr-url and get-url call.

Kannel runs from a config generated in the test's directory with loopback ports, its own logs and
message store there, and is killed when the block ends. Under `CI=true` missing binaries fail the
test instead of skipping it, as `tests.fakes.cimd2` does for test_cimd2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.cimd2 import _listening
from tests.fakes.ports import free_port  # re-exported for the Kannel tests

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
USER, PASSWORD = "smsgw", "secret"  # the simulator's default login


def _established(port: int) -> bool:
    """A connection to our listening `port` is up (read from the kernel's table, as `_listening`)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def require_kannel() -> None:
    missing = [str(p) for p in (BEARERBOX, SMSBOX) if not p.exists()]
    if missing:
        message = f"{', '.join(missing)} not installed (Debian package kannel)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Request:
    path: str
    params: dict[str, bytes]  # raw bytes: Kannel sends UCS-2 text as UTF-16BE octets

    def text(self, name: str = "text") -> str:
        """A text parameter decoded by Kannel's coding parameter (`coding`: 2 is UCS-2)."""
        raw = self.params.get(name, b"")
        return raw.decode("utf-16-be") if self.params.get("coding") == b"2" else raw.decode("utf-8")


@dataclass
class HttpSink:
    """Answers every GET with 200 and an empty body, and keeps it for the test to wait on."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, query: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?{query}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("latin-1")
            path, _, query = target.partition("?")
            params = {
                k: v.encode("latin-1")
                for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True, encoding="latin-1")
            }
            self.requests.append(Request(path, params))
            self._changed.set()
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(
        self, predicate: Callable[[list[Request]], bool], within: float = 15.0
    ) -> list[Request]:
        """Wait until `predicate(requests)` holds (`within` only guards against a hang)."""
        async with asyncio.timeout(within):
            while not predicate(self.requests):
                self._changed.clear()
                await self._changed.wait()
        return self.requests

    def matching(self, path: str, **params: str) -> list[Request]:
        return [
            r
            for r in self.requests
            if r.path == path and all(r.params.get(k) == v.encode() for k, v in params.items())
        ]


@contextlib.asynccontextmanager
async def http_sink() -> AsyncIterator[HttpSink]:
    sink = HttpSink()
    server = await asyncio.start_server(sink.serve, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


def smsc_group(link: str, port: int) -> str:
    """The [smsc] group: "trx" (one transceiver bind), "tx+rx" (transmitter and receiver binds on
    one port) or "cimd2"."""
    common = f"smsc-id = sim\nhost = 127.0.0.1\nsmsc-username = {USER}\nsmsc-password = {PASSWORD}\n"
    common += "reconnect-delay = 1\n"
    if link == "cimd2":
        return f"group = smsc\nsmsc = cimd2\nport = {port}\nkeepalive = 30\n{common}"
    smpp = f'group = smsc\nsmsc = smpp\nsystem-type = ""\nenquire-link-interval = 30\n{common}'
    if link == "trx":
        return f"{smpp}port = {port}\ntransceiver-mode = true\n"
    # Kannel takes either port (transmitter) or receive-port per group: two groups, one smsc-id.
    return f"{smpp}port = {port}\n\n{smpp}port = 0\nreceive-port = {port}\n"


@dataclass
class Kannel:
    sendsms_port: int
    directory: Path
    processes: list[asyncio.subprocess.Process]

    async def sendsms(self, **params: str) -> str:
        """GET smsbox's sendsms with these parameters; the answer body (it fails unless 2xx)."""
        query = urllib.parse.urlencode({"username": "tester", "password": "pw", "charset": "UTF-8", **params})
        reader, writer = await asyncio.open_connection("127.0.0.1", self.sendsms_port)
        try:
            writer.write(f"GET /cgi-bin/sendsms?{query} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            answer = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
        status_line, _, rest = answer.partition(b"\r\n")
        body = rest.partition(b"\r\n\r\n")[2].decode(errors="replace")
        assert status_line.split(b" ")[1].startswith(b"2"), (status_line, body)
        return body

    def logs(self) -> str:
        """The boxes' logs, for a failing assertion's message."""
        out = []
        for name in ("bearerbox.log", "smsbox.log"):
            with contextlib.suppress(OSError):
                out.append(f"--- {name}\n" + (self.directory / name).read_text(errors="replace")[-4000:])
        return "\n".join(out)


def write_config(directory: Path, *, link: str, smsc_port: int, get_url: str) -> tuple[Path, int, int]:
    """kannel.conf in `directory`: (its path, bearerbox's smsbox port, smsbox's sendsms port)."""
    directory.mkdir(parents=True, exist_ok=True)
    admin, box, sendsms = free_port(), free_port(), free_port()
    conf = directory / "kannel.conf"
    conf.write_text(
        f"group = core\nadmin-port = {admin}\nadmin-password = admin\nadmin-interface = 127.0.0.1\n"
        f"smsbox-port = {box}\nsmsbox-interface = 127.0.0.1\nbox-allow-ip = 127.0.0.1\n"
        f'log-file = "{directory / "bearerbox.log"}"\nlog-level = 0\n'
        f'store-type = file\nstore-location = "{directory / "kannel.store"}"\n'
        f"dlr-storage = internal\nsms-resend-freq = 1\n\n"
        f"{smsc_group(link, smsc_port)}\n"
        f"group = smsbox\nbearerbox-host = 127.0.0.1\nbearerbox-port = {box}\n"
        f"sendsms-port = {sendsms}\nsendsms-interface = 127.0.0.1\n"
        f'log-file = "{directory / "smsbox.log"}"\nlog-level = 0\nmo-recode = false\n\n'
        f"group = sendsms-user\nusername = tester\npassword = pw\nmax-messages = 5\nconcatenation = true\n\n"
        f"group = sms-service\nkeyword = default\ncatch-all = true\nmax-messages = 0\n"
        f'get-url = "{get_url}"\n'
    )
    return conf, box, sendsms


@contextlib.asynccontextmanager
async def kannel(directory: Path, *, link: str, smsc_port: int, get_url: str) -> AsyncIterator[Kannel]:
    """bearerbox + smsbox with one SMSC link to the simulator and one catch-all service calling
    `get_url`, until the block ends (then killed). Their logs are in `directory`."""
    require_kannel()
    conf, box, sendsms = write_config(directory, link=link, smsc_port=smsc_port, get_url=get_url)
    quiet = asyncio.subprocess.DEVNULL
    processes: list[asyncio.subprocess.Process] = []
    k = Kannel(sendsms, directory, processes)
    try:
        # smsbox gives up at once without a bearerbox to connect to, and opens its sendsms port
        # before it has connected: ready is when bearerbox has the box connection.
        for binary, port in ((BEARERBOX, box), (SMSBOX, sendsms)):
            processes.append(
                await asyncio.create_subprocess_exec(
                    str(binary), str(conf), stdin=quiet, stdout=quiet, stderr=quiet
                )
            )
            async with asyncio.timeout(15):
                while not _listening(port) or (binary is SMSBOX and not _established(box)):
                    assert processes[-1].returncode is None, f"{binary.name} exited\n{k.logs()}"
                    await asyncio.sleep(0.02)
        yield k
    finally:
        for p in reversed(processes):
            if p.returncode is None:
                p.kill()
            await p.wait()
