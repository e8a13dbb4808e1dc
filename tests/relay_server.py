"""A real mail relay for the relay login tests: aiosmtpd's server, with the test's own protocol class
(how it answers AUTH, when it hangs up) and authenticator, on 127.0.0.1, collecting what it takes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from tests.conftest import Sink


def _context(pair: tuple[Path, Path] | None) -> ssl.SSLContext | None:
    if pair is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*pair)
    return context


@asynccontextmanager
async def relay_server(
    port: int,
    protocol: type[SMTP],
    authenticator: Any,
    *,
    excluded: Sequence[str] = (),
    starttls: tuple[Path, Path] | None = None,
    implicit: tuple[Path, Path] | None = None,
) -> AsyncIterator[Sink]:
    """`protocol` on 127.0.0.1:`port`, taking AUTH in clear, `authenticator` answering it; offering
    every mechanism but those `excluded`, as they are when a connection begins (a test may change
    them meanwhile). `starttls`, `implicit`: the certificate and key it offers STARTTLS with, or
    speaks TLS with from the first byte (SMTPS)."""
    sink = Sink()
    context = _context(starttls)
    server = await asyncio.get_running_loop().create_server(
        lambda: protocol(
            sink,
            hostname="relay.test",
            authenticator=authenticator,
            auth_require_tls=False,
            auth_exclude_mechanism=list(excluded),
            tls_context=context,
        ),
        "127.0.0.1",
        port,
        ssl=_context(implicit),
    )
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()
