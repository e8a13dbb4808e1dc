"""What `check-config` warns of and `run` logs at start: choices the config may make, that work,
and that hurt (the refusals are `gateway.configcheck`'s)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable

from gateway.config import Config
from gateway.configbase import ConfigError, at, link_place, quoted
from gateway.configcheck import goes_to_simulator, tls_doubts
from gateway.configgateway import MAX_PARTS, GatewaySection
from gateway.configlinks import SmscSection
from gateway.configloops import endpoints, is_this_machine, on_loopback
from gateway.configservices import SMTPS_PORT
from gateway.linkdoubts import sender_prefix_doubts, shared_exclusive_doubts
from gateway.relaynets import wide_network_doubt
from gateway.smscaccount import account_doubts

# The walkthrough's made-up number, the model's default: no operator gives it to anyone.
DEMO_SENDER: str = GatewaySection.model_fields["default_sender"].default
# The [[smsc]] host `smsgw install-service` writes (gateway/cli/servicefiles.py), for the admin to replace.
TEMPLATE_SMSC_HOST = "smsc.operator.example"
# How long check-config and the start wait for DNS at most, all names together: a dead name server
# must not hold up either for minutes (getaddrinfo's own retries).
RESOLVE_SECONDS = 3.0


def route_doubts(cfg: Config) -> list[str]:
    """A config with prefix links only.

    Not refused (a gateway for one operator's numbers is a fair choice), but said: without a link
    that has no prefixes, a number outside every prefix is refused at RCPT (550 5.1.2), where it
    was once taken and retried until it expired."""
    if not cfg.smsc or any(not s.prefixes for s in cfg.smsc):
        return []
    prefixes = sorted({p for s in cfg.smsc for p in s.prefixes})
    return [
        f"[[smsc]] prefixes: every link has some (no default route): mail to numbers outside"
        f" {', '.join(prefixes)} is refused at RCPT (550 5.1.2); give a link prefixes = [] to send"
        " them by it"
    ]


def demo_sender_doubts(cfg: Config) -> list[str]:
    """A default_sender left at the demo number with an operator's link: every SMS of every account
    made without --sender goes out from a number the company does not own, so phones' answers go
    elsewhere, or the operator's SMSC refuses the source and every SMS fails. The built-in
    simulator takes any sender; a link on loopback that is not it may be a tunnel to an operator."""
    if cfg.gateway.default_sender != DEMO_SENDER or not operator_links(cfg):
        return []
    return [
        f'[gateway] default_sender: "{DEMO_SENDER}" is the walkthrough\'s made-up number, and the links go'
        " to an operator: every account without its own sender sends from it; set default_sender to the"
        " number your operator gave you"
    ]


def unresolved(hosts: Iterable[str], timeout: float = RESOLVE_SECONDS) -> dict[str, str]:
    """Why each of the host names that do not resolve does not, looked up as the links and the
    mailer will (getaddrinfo); addresses and `localhost` are not looked up.

    Each name in a thread of its own, all within `timeout`: a name left unanswered then counts as
    not resolving, and its thread (a daemon thread) ends when the resolver gives up."""
    names = sorted({h for h in hosts if all(isinstance(e, str) for e in endpoints(h))})
    answers: dict[str, str] = {}

    def look_up(name: str) -> None:
        try:
            socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            answers[name] = exc.strerror or str(exc)
        except (OSError, UnicodeError) as exc:
            answers[name] = str(exc)
        else:
            answers[name] = ""

    threads = [threading.Thread(target=look_up, args=(n,), daemon=True) for n in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = f"no answer from DNS within {timeout:g} s"
    return {n: why for n in names if (why := answers.get(n, late))}


def _placeholder(link: SmscSection) -> bool:
    return link.host.strip().lower().rstrip(".") == TEMPLATE_SMSC_HOST


def host_doubts(cfg: Config) -> list[tuple[str, str]]:
    """(event, text) for an [[smsc]] host or [mail] relay host that does not resolve, and for a link
    still at the install template's placeholder host.

    check-config passed such a config, and the daemon then said only "connect ...: Unknown error -2"
    on every retry: the SMS waited, and the outbox's mail (bounces, answers, notices) with them."""
    doubts: list[tuple[str, str]] = []
    for link in filter(_placeholder, cfg.smsc):
        doubts.append(
            (
                "config.smsc_host_placeholder",
                f'{link_place(link.name, "host")}: "{link.host}" is still the placeholder'
                " `smsgw install-service` wrote: set host, port, system_id and the password to those your"
                " operator gave you",
            )
        )
    relay = cfg.mail.relay_addr[0] if cfg.mail.capture_dir is None else None
    hosts = [link.host for link in cfg.smsc if not _placeholder(link)]
    failed = unresolved([*hosts, *([relay] if relay else [])])
    for link in cfg.smsc:
        if (why := failed.get(link.host)) is not None and not _placeholder(link):
            doubts.append(
                (
                    "config.smsc_host_unresolved",
                    f'{link_place(link.name, "host")}: "{link.host}" does not resolve ({why}): the link'
                    " cannot connect, and its SMS wait; check the name, or give the SMSC's IP address",
                )
            )
    if relay is not None and (why := failed.get(relay)) is not None:
        doubts.append(
            (
                "config.relay_host_unresolved",
                f'[mail] relay: host "{relay}" does not resolve ({why}): bounces,'
                " answers from phones and notices wait in the outbox; check the name of your mail server",
            )
        )
    return doubts


def operator_links(cfg: Config) -> list[str]:
    """The names of the links that go to an operator: every link but one to the enabled built-in
    simulator (`goes_to_simulator`). Loopback was taken for the simulator, and a link through an
    stunnel or ssh tunnel (127.0.0.1:3700) to the operator kept the walkthrough's demo account,
    sender, domain and maildir without a word."""
    return [link.name for link in cfg.smsc if not goes_to_simulator(cfg, link)]


def maildir_doubts(cfg: Config) -> list[str]:
    """A "maildir:" relay while a link goes to an operator: `install-service` writes one when the
    gateway takes port 25 itself, and nothing said that every bounce, answer from a phone, notice
    and billing mail of the production gateway then lands in files on it, which nobody reads. The
    walkthrough's maildir beside the simulator is the try-out it is meant for."""
    real = operator_links(cfg)
    if cfg.mail.capture_dir is None or not real:
        return []
    return [
        f'[mail] relay: "{cfg.mail.relay}" keeps every outgoing mail on this machine (bounces, answers'
        f" from phones, notices, billing mail), while {link_place(real[0])} goes to an operator: nothing"
        ' reaches anyone; set relay to your mail server, e.g. relay = "mail.example.com:25"'
    ]


def relay_password_doubts(cfg: Config) -> list[str]:
    """A relay login sent in clear to a relay off this machine because `relay_starttls = false` says
    so: allowed (a relay across a trusted network may have no TLS), but said, since anyone on the
    path reads the password at every login. "when-offered" never sends it in clear there
    (`gateway.relaylogin`); the password file is not read here, only whether one is set."""
    mail = cfg.mail
    has_password = mail.relay_password is not None or mail.relay_password_file is not None
    if mail.capture_dir is not None or not (mail.relay_username and has_password):
        return []
    host = mail.relay_addr[0]
    if mail.relay_starttls is not False or on_loopback(host):
        return []
    return [
        f'[mail] relay_starttls: false sends the relay password to "{host}" in clear text at every login,'
        ' readable to anyone on the network between; set relay_starttls = true (or "when-offered", which'
        " holds the mail rather than send the password in clear), or keep false only for a relay reached"
        " over a network you trust"
    ]


def relay_tls_doubts(cfg: Config) -> list[str]:
    """A relay on port 465 (SMTPS) without `relay_implicit_tls`: it waits for a TLS handshake that
    never comes, and every mail was deferred after 30 s of silence, for five days; and the opposite,
    TLS at the connection to a port that greets in plain text (25, 587)."""
    mail = cfg.mail
    if mail.capture_dir is not None:
        return []
    port = mail.relay_addr[1]
    if port == SMTPS_PORT and not mail.relay_implicit_tls:
        return [
            f"[mail] relay: port {SMTPS_PORT} is SMTPS, where the relay waits for TLS from the connection"
            " on and never greets a plain client: every mail would wait in the outbox; set"
            " relay_implicit_tls = true (or relay to its STARTTLS port, 587 or 25)"
        ]
    if port in (25, 587) and mail.relay_implicit_tls:
        return [
            f"[mail] relay_implicit_tls: true to port {port}, which greets in plain text and offers"
            f" STARTTLS: the handshake fails; leave relay_implicit_tls out (or relay to port {SMTPS_PORT})"
        ]
    return []


def panel_doubts(cfg: Config) -> list[str]:
    """A panel on more than loopback: without TLS (and no proxy in front, `trusted_proxies`) its
    passwords, which are the users' SMTP AUTH passwords too, and its session cookie travel in
    clear; without `metrics_token` its /metrics tells anyone who reaches it every account's name
    and traffic."""
    web = cfg.web
    if not web.enabled or on_loopback(web.listen_addr[0]):
        return []
    doubts = []
    if web.tls_cert_file is None and not web.trusted_proxies:
        doubts.append(
            f'[web] listen: "{web.listen}" is reachable from other machines without TLS: panel logins'
            " (the users' SMTP passwords too) travel in clear; set [web] tls_cert_file and tls_key_file,"
            ' or listen on "127.0.0.1:PORT" behind a TLS proxy'
        )
    if not web.metrics_token:
        doubts.append(
            f'[web] listen: "{web.listen}" is reachable from other machines and /metrics wants no token:'
            " it names every account and its traffic to anyone there; set [web] metrics_token"
        )
    return doubts


def simulator_doubts(cfg: Config) -> list[str]:
    """A simulator on more than loopback: its control port has no login by design, so anyone who
    reaches it sends MO as any phone (a STOP opts a customer out, a premium vote is billed) and
    delivery reports for any SMS."""
    sim = cfg.simulator
    if not sim.enabled or on_loopback(sim.host):
        return []
    return [
        f'[simulator] host: "{sim.host}" is reachable from other machines: its control port'
        f" ({sim.control_port}) takes no login, and anyone there can send SMS as any phone (a STOP"
        " opts the phone out, a premium vote is billed) and delivery reports; keep it on 127.0.0.1"
    ]


def simulator_link_doubts(cfg: Config) -> list[str]:
    """The built-in simulator enabled while no link goes to its port for the link's protocol: a
    port changed in one of the two places only (`[[smsc]] port` and `[simulator] smpp_port`), and
    the link knocks on the control port or on nothing, retrying for ever, while check-config said OK."""
    sim = cfg.simulator
    if not sim.enabled or not cfg.smsc:
        return []
    own = {"smpp": sim.smpp_port, "cimd2": sim.cimd2_port}

    listens = endpoints(sim.host)
    wildcard = any(not isinstance(e, str) and e.is_unspecified for e in listens)

    def here(host: str) -> bool:
        """Whether a link to `host` reaches the simulator's listener: on 0.0.0.0 or :: it takes this
        machine by any of its names; else the link's address must be one it listens on (::1 does
        not reach a listener on 127.0.0.1)."""
        if wildcard:
            return is_this_machine(host, cfg.gateway.hostname.lower())
        return bool(endpoints(host) & listens)

    if any(here(link.host) and link.port == own[link.type] for link in cfg.smsc):
        return []
    names = {sim.smpp_port: "smpp_port", sim.cimd2_port: "cimd2_port", sim.control_port: "control_port"}
    wrong = [
        f"{link_place(link.name)} ({link.type}) goes to port {link.port}, the simulator's {names[link.port]}"
        for link in cfg.smsc
        if here(link.host) and link.port in names
    ]
    return [
        "[simulator] enabled: true, but no [[smsc]] link goes to it (it takes SMPP on"
        f" {sim.smpp_port}, CIMD2 on {sim.cimd2_port}){': ' if wrong else ''}{'; '.join(wrong)};"
        " set the link's port to the simulator's port for its type, or [simulator] enabled = false"
    ]


def simulator_login_doubts(cfg: Config) -> list[str]:
    """A link to the built-in simulator with a login of its own (a second link, say): the simulator
    takes [simulator] system_id and password alone, and the bind failed for ever with "check
    [[smsc]] system_id and password", which the link's own were. Neither password is said."""
    sim, found = cfg.simulator, []
    for link in (link for link in cfg.smsc if goes_to_simulator(cfg, link)):
        try:
            same = link.system_id == sim.system_id and link.secret(cfg.base_dir) == sim.password
        except ConfigError:
            continue  # an unreadable password file is refused on its own
        if not same:
            found.append(
                f"{link_place(link.name)} goes to the built-in simulator (port {link.port}), which takes only"
                f' [simulator] system_id ("{sim.system_id}") and password: the link\'s system_id'
                f' ("{link.system_id}") or password differs, and every bind is refused; give the link'
                " those of [simulator]"
            )
    return found


def parts_doubts(cfg: Config) -> list[str]:
    """A max_parts above R-1.4's 10, taken before 0.2.4: the config still starts, with 10."""
    if cfg.gateway.max_parts <= MAX_PARTS:
        return []
    return [
        f"[gateway] max_parts: {cfg.gateway.max_parts} is above the {MAX_PARTS} parts a message may"
        f" become (R-1.4): {MAX_PARTS} is used; set it to {MAX_PARTS} or less"
    ]


def cimd2_window_doubts(cfg: Config) -> list[str]:
    """A CIMD2 link to an operator given `window` above 1. Not refused (some operators allow a
    window), but said: CIMD2 is stop-and-wait unless agreed, and such a link left as the shipped
    config's SMPP one (`window = 10`, its type changed alone) pipelined ten submits at an SMSC that
    may answer the extra ones with errors or drop the session."""
    return [
        f"{link_place(link.name, 'window')}: {link.window} submits at once on a CIMD2 link; CIMD2 waits for"
        " each answer (1) unless the operator allows a window: take the line out for 1, or keep it if the"
        f" operator agreed to {link.window}"
        for link in cfg.smsc
        if link.type == "cimd2" and "window" in link.model_fields_set and link.window > 1
        if not on_loopback(link.host)
    ]


def tls_verify_doubts(cfg: Config) -> list[str]:
    """A TLS link that checks no certificate: encrypted, yet anyone on the path can pose as the SMSC
    and read every SMS and the link's password. Allowed for an SMSC whose CA cannot be had, and said
    at every start: its own certificate pinned as tls_ca_file is the way out."""
    return [
        f"{link_place(link.name, 'tls_verify')}: false: the SMSC's certificate is not checked, so anyone on"
        " the path can pose as it and read every SMS and the password; pin it instead: tls_ca_file = its"
        " certificate (or its CA) and no tls_verify"
        for link in cfg.smsc
        if link.tls and not link.tls_verify
    ]


def password_doubts(cfg: Config) -> list[str]:
    """An operator's link with no password at all binds with an empty one: check-config passed it and
    only `smsgw status` said, later, that the SMSC refused the login. A link to the built-in
    simulator is not said (`operator_links`); one on loopback may be a tunnel to the operator."""
    return [
        f"{link_place(link.name, 'password')}: neither password nor password_file is set, so the link"
        " logs in with an empty password, which an operator's SMSC refuses; set password_file (or"
        " password) to the one your operator gave you"
        for link in cfg.smsc
        if link.password is None and link.password_file is None and not goes_to_simulator(cfg, link)
    ]


def simulator_log_doubts(cfg: Config) -> list[str]:
    """A simulator log the daemon cannot write (a read-only mount, another user's directory): it
    passed check-config, and the simulator ran without its log and without keeping the reports it
    owes (`sim.log_write_failed`, `sim.owed_not_kept`). Said, not refused: the SMS still go. A file
    standing in the way is `write_path_problems`' (refused before any doubt is said)."""
    from gateway.configcheck import maildir_problem

    log = cfg.path(cfg.simulator.log)
    if not cfg.simulator.enabled or log.is_dir():  # a directory, or a file in the way: refused before
        return []
    why = maildir_problem(log.parent, cfg.state_dir, what="the simulator's log")
    if why is None and log.exists() and not os.access(log, os.W_OK):
        why = f"{log} is not writable by this user"
    if why is None:
        return []
    return [
        f"[simulator] log: {why}; the simulator then logs no SMS (`smsgw simulator send-report` and"
        " send-mo --reply-to-last find none after a restart) and keeps no report it owes across one"
    ]


def setup_doubts(cfg: Config) -> list[tuple[str, str]]:
    """(event, text) for each doubt: `run` logs the event, `check-config` prints the text."""
    wide = [
        f"{at(f'[[account]] {quoted(seed.name)}', 'relay_networks')}: {doubt}"
        for seed in cfg.account
        for cidr in seed.relay_networks
        if (doubt := wide_network_doubt(cidr)) is not None
    ]
    return [
        *[("config.no_default_route", doubt) for doubt in route_doubts(cfg)],
        *[("config.exclusive_prefix_shared", doubt) for doubt in shared_exclusive_doubts(cfg)],
        *[("config.smsc_account_logins", doubt) for doubt in account_doubts(cfg.smsc)],
        *[("config.demo_sender", doubt) for doubt in demo_sender_doubts(cfg)],
        *host_doubts(cfg),
        *[("config.relay_maildir", doubt) for doubt in maildir_doubts(cfg)],
        *[("config.relay_network_wide", doubt) for doubt in wide],
        *[("config.relay_password_clear", doubt) for doubt in relay_password_doubts(cfg)],
        *[("config.relay_tls_port", doubt) for doubt in relay_tls_doubts(cfg)],
        *[("config.panel_exposed", doubt) for doubt in panel_doubts(cfg)],
        *[("config.simulator_exposed", doubt) for doubt in simulator_doubts(cfg)],
        *[("config.simulator_unused", doubt) for doubt in simulator_link_doubts(cfg)],
        *[("config.simulator_login", doubt) for doubt in simulator_login_doubts(cfg)],
        *[("config.max_parts_above_spec", doubt) for doubt in parts_doubts(cfg)],
        *[("config.cimd2_window", doubt) for doubt in cimd2_window_doubts(cfg)],
        *[("config.premium_sender_prefix", doubt) for doubt in _premium_doubts(cfg)],
        *[("config.sender_outside_prefix", doubt) for doubt in sender_prefix_doubts(cfg)],
        *[("tls.certificate_doubt", doubt) for doubt in tls_doubts(cfg)],
        *[("config.smsc_tls_unverified", doubt) for doubt in tls_verify_doubts(cfg)],
        *[("config.smsc_no_password", doubt) for doubt in password_doubts(cfg)],
        *[("config.simulator_log_unwritable", doubt) for doubt in simulator_log_doubts(cfg)],
    ]


def _premium_doubts(cfg: Config) -> list[str]:
    """Imported when asked: `smsgw status` reads this module, and nothing of premium's is its to say."""
    from gateway.premium.shortcode import shortcode_doubts

    return shortcode_doubts(cfg)
