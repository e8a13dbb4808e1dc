"""What a bounce sent to the gateway makes: its copy to the fallback address (R-1.7), and where it
returns one of the gateway's answer mails, that mail failed as a refusal at the relay would fail it.

The answer mail's failure does not wait on a fallback address. Without one (the shipped config) the
bounce was recorded and nothing else: the answer stayed `mailed` though the user never had it, while
a refusal at the relay's own session ended the phone's answer `failed`, "no other address to send it
to". A bounce after the relay took the answer is the same refusal, told later.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial
from typing import TYPE_CHECKING

from gateway import answerbounce, bouncetriage, forwarded
from gateway.config import Config
from gateway.smtp.accept import Notice
from gateway.store.db import Store

if TYPE_CHECKING:
    from gateway.smtp.gate import Sender


def notices(
    cfg: Config,
    store: Store,
    raw: bytes,
    reason: str,
    *,
    sender: Sender,
    subject: str | None,
    numbers: Sequence[str],
    client_ip: str | None,
    relay_ips: Collection[str],
    now: float,
) -> list[Notice]:
    """The notices a recorded bounce queues: none for what is no bounce worth a look; the copy to the
    fallback address, carrying the answer mail it fails if it returns one. A delay warning fails
    nothing (its copy says so). With no fallback address, an answer mail's bounce still fails it: a
    notice with no recipient, whose write does that alone (`accept.write_acceptance`)."""
    if not bouncetriage.worth_forwarding(reason, raw):
        return []
    answer = answerbounce.find(
        store,
        raw,
        relay_ips=relay_ips,
        client_ip=client_ip,
        mail_from=sender.mail_from,
        by_user=sender.user is not None,
    )
    fallback = cfg.replies.fallback_address
    if fallback is None:
        if answer is None or answer.delayed:
            return []
        return [Notice("bounce-forward", "", "", b"", False, answer.mail_id, answer.why)]
    # The empty envelope sender means that nothing, not even a bounce of this mail, answers it.
    written = partial(
        forwarded.bounce_forward,
        sender=cfg.mail.from_address,
        rcpt=fallback,
        domain=cfg.gateway.hostname,
        subject=subject,
        reason=reason,
        mail_from=sender.mail_from,
        client_ip=client_ip,
        numbers=list(numbers),
        raw=raw,
        lang=cfg.gateway.language,
        now=now,
    )
    # A delay warning fails nothing: its forward says so, under its own name in the Subject and the
    # reason's line too (it came as "Bounce received…", "Why it is a bounce: …").
    what = "delay warning" if answer is not None and answer.delayed else "bounce"
    forward = written(answer=partial(answerbounce.intro, answer) if answer is not None else None, what=what)
    if answer is None or answer.delayed:
        return [Notice("bounce-forward", "", fallback, forward)]
    # Another bounce of the answer may settle it first: its write queues this one instead.
    later = written(answer=partial(answerbounce.intro, answer._replace(first=False))) if answer.first else b""
    return [Notice("bounce-forward", "", fallback, forward, False, answer.mail_id, answer.why, later)]
