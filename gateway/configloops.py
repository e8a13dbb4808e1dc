"""Settings that would send the gateway's own mail back into it, and the host tests they rest on.

A fallback or admin address on the gateway's own domains, or an outgoing relay that is the gateway's
own listener, makes a loop no single section can see: each setting is valid alone (and a listen
address no socket takes, `listen_problems`, is said with them). `check-config` and
`run` refuse such a config (`gateway.configcheck.check_files`); `configdoubts`, the CLI's `service`
and `stored` and the admin rules ask the same questions of a host or an address, so they live apart
from the checks of files and directories.
"""

from __future__ import annotations

import ipaddress
import socket

from gateway.config import Config
from gateway.configbase import joined

LOCALHOST = frozenset({ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")})
SMTP_PORT = 25  # where other servers deliver mail for a domain (its MX)


# What mail to each address the gateway sends to would become back in the gateway.
_FORWARDS = "a forwarded bounce as a new bounce, a number's mailbox as an SMS"
_ADMIN = "billing summaries and suspension notices refused there, read by nobody"


def mail_loop_problems(cfg: Config) -> list[str]:
    """Settings that send the gateway's own mail back into it, each naming its key.

    A fallback or admin address on one of the gateway's domains comes back through the relay port
    (the domains' MX): a bounce forward returns as a bounce, a phone number's mailbox as an SMS, and
    the admin's billing summaries and suspension notices, from the gateway's own From address, are
    refused there, so the admin never gets them. Checked whatever the relay, as for the fallbacks: a
    "maildir:" relay is the try-out that is later pointed at the company's server. An outgoing relay
    that is the gateway's own listener takes every bounce, notice and answer back in instead.
    """
    problems = listen_problems(cfg)  # first: the loop check reads the listeners as they are bound
    name = cfg.gateway.hostname.lower().rstrip(".")
    checked = (
        ("[replies] fallback_address", cfg.replies.fallback_address, _FORWARDS),
        ("[premium] fallback_address", cfg.premium.fallback_address, _FORWARDS),
        ("[mail] admin_address", cfg.mail.admin_address, _ADMIN),
    )
    for key, addr, becomes in checked:
        why = loop_reason(cfg, addr)
        if why is not None:
            problems.append(
                f'{key}: "{addr}" would loop: {why}, so mail to it comes back to the gateway ({becomes});'
                " use a mailbox elsewhere"
            )
    if cfg.mail.capture_dir is None:
        relay_host, relay_port = cfg.mail.relay_addr
        for key, host, port in _smtp_listeners(cfg):
            if port == relay_port and same_host(relay_host, host, name):
                own_listener = f'{key} ("{joined(host, port)}")'
                problems.append(
                    f'[mail] relay: "{cfg.mail.relay}" is the gateway\'s own {own_listener}: every bounce,'
                    " notice and answer would come back to the gateway instead of leaving; give your mail"
                    ' server (e.g. "mail.example.com:25") or "maildir:DIR"'
                )
                break
    return problems


def listen_problems(cfg: Config) -> list[str]:
    """Listen addresses that pass as HOST:PORT but that no socket takes: an IPv4-mapped IPv6 address
    (::ffff:127.0.0.1) on an IPv6-only socket, as every IPv6 listener is (`gateway.peeraddr`), failed
    only at the start (EINVAL)."""
    problems = []
    for key, host, port in cfg.listeners():
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            problems.append(
                f'{key}: "{joined(host, port)}" is an IPv4 address written as IPv6, which cannot be'
                f' listened on: write "{joined(str(ip.ipv4_mapped), port)}" (or "[::]:{port}" for every'
                " address of both stacks)"
            )
    return problems


def loop_reason(cfg: Config, addr: str | None) -> str | None:
    """Why mail to `addr` would reach this gateway rather than a mailbox, or None.

    Its domain is one of gateway.domains, or the gateway's host name while the gateway takes port 25
    on more than loopback (mail for the host's name then reaches it too)."""
    domain = (addr or "").rpartition("@")[2].lower().rstrip(".")
    if not domain:
        return None
    if domain in {d.lower().rstrip(".") for d in cfg.gateway.domains}:
        return f"{domain} is one of [gateway] domains"
    delivered_here = any(
        port == SMTP_PORT and not endpoints(host) <= LOCALHOST for _, host, port in _smtp_listeners(cfg)
    )
    if domain == cfg.gateway.hostname.lower().rstrip(".") and delivered_here:
        return f"{domain} is [gateway] hostname and the gateway takes its mail (port {SMTP_PORT})"
    return None


def _smtp_listeners(cfg: Config) -> list[tuple[str, str, int]]:
    """The gateway's SMTP listeners as (key, host, port); port 0 (picked at start) is none."""
    return [(k, h, p) for k, h, p in cfg.listeners() if k.startswith("[smtp] ") and p != 0]


def same_host(relay: str, listen: str, hostname: str) -> bool:
    """Whether a connection to `relay` reaches a listener on `listen` (same port assumed).

    A wildcard listener takes every address of this machine, "::" those of both stacks as it is
    bound (`gateway.peeraddr.listen_hosts`); `localhost` is 127.0.0.1 and ::1; other names are
    compared as names (no DNS lookup at a config check).
    """
    if _wildcard(listen):
        return is_this_machine(relay, hostname)
    if _wildcard(relay):  # connect() to a wildcard address reaches loopback
        relay = "127.0.0.1" if ":" not in relay else "::1"
    ours, theirs = endpoints(relay), endpoints(listen)
    return bool(ours & theirs)


def _wildcard(host: str) -> bool:
    """0.0.0.0 or :: however written ("::0" is "::")."""
    return any(
        isinstance(e, ipaddress.IPv4Address | ipaddress.IPv6Address) and e.is_unspecified
        for e in endpoints(host)
    )


def endpoints(host: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address | str]:
    """What a host setting stands for: its address, localhost's two, or else its name."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return set(LOCALHOST)
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        return {name}


def on_loopback(host: str) -> bool:
    """Whether `host` reaches this machine's loopback only (127.0.0.0/8, ::1, `localhost`)."""
    return all(not isinstance(e, str) and e.is_loopback for e in endpoints(host))


def is_this_machine(host: str, hostname: str) -> bool:
    """Whether `host` names this machine: a loopback or wildcard address, one of its interfaces'
    addresses (which it may bind), `localhost`, or its own name (`gateway.hostname`, the system's)."""
    name = host.lower().rstrip(".")
    if name in ("localhost", hostname, socket.gethostname().lower()) or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(ip), 0))  # only an address of this machine can be bound
    except OSError:
        return False
    return True
