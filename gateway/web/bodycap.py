"""The most a request to the panel may send: its forms are a few fields each.

Starlette reads a form of up to 1,000 fields of 1 MB each into memory; a few connections posting
to /login, before any login, took the daemon to 1.5 GB. A body declared larger than the cap is
answered 413 before the app runs, without a byte of it read; one sent in chunks (no length
declared) is counted as it is read and answered 413 once it passes the cap. The connection is
closed after the answer: the rest of the body is not worth reading.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The biggest form, the account's settings with ten billing addresses, is under 4 KB.
MAX_BODY_BYTES = 64 * 1024
TOO_BIG = f"the request is too big: the panel takes at most {MAX_BODY_BYTES // 1024} KB\n".encode()


class BodyTooBig(Exception):
    """The body read so far has passed the cap."""


def declared_length(scope: Scope) -> int | None:
    """The body's Content-Length, None when not given (chunked); h11 has refused a malformed one."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            # Digits, checked by h11; their count bounds the int() (a 5,000-digit one costs a refusal).
            return int(value) if len(value) <= 18 else MAX_BODY_BYTES + 1
    return None


async def plain_answer(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    """A one-line text answer given before the app runs (the app would read the request first)."""
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of an oversized body is not read: the connection cannot serve another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def refuse(send: Send) -> None:
    await plain_answer(send, 413, TOO_BIG, close=True)


class BodyCap:
    """Answers 413 to a request body over `limit`, declared or counted."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            await refuse(send)
            return
        read = 0
        answered = False

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > self.limit:
                    raise BodyTooBig
            return message

        async def watched(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooBig:
            if not answered:
                await refuse(send)
