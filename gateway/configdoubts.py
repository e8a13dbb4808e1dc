"""What `check-config` warns of and `run` logs at start: choices the config may make, that work,
and that hurt (the refusals are `gateway.configcheck`'s)."""

from __future__ import annotations

from gateway.config import MAX_PARTS, Config, GatewaySection
from gateway.configcheck import on_loopback
from gateway.relaynets import wide_network_doubt

# The walkthrough's made-up number, the model's default: no operator gives it to anyone.
DEMO_SENDER: str = GatewaySection.model_fields["default_sender"].default


def route_doubts(cfg: Config) -> list[str]:
    """A config with prefix links only.

    Not refused (a gateway for one operator's numbers is a fair choice), but said: without a link
    that has no prefixes, a number outside every prefix is refused at RCPT (550 5.1.2), where it
    was once taken and retried until it expired."""
    if not cfg.smsc or any(not s.prefixes for s in cfg.smsc):
        return []
    prefixes = sorted({p for s in cfg.smsc for p in s.prefixes})
    return [
        f"no [[smsc]] link is without prefixes (no default route): mail to numbers outside"
        f" {', '.join(prefixes)} is refused at RCPT (550 5.1.2); give a link prefixes = [] to send"
        " them by it"
    ]


def demo_sender_doubts(cfg: Config) -> list[str]:
    """A default_sender left at the demo number with an operator's link: every SMS of every account
    made without --sender goes out from a number the company does not own, so phones' answers go
    elsewhere, or the operator's SMSC refuses the source and every SMS fails. Links on loopback
    only are a simulator or a test SMSC, which take any sender."""
    real_link = any(not on_loopback(link.host) for link in cfg.smsc)
    if cfg.gateway.default_sender != DEMO_SENDER or cfg.simulator.enabled or not real_link:
        return []
    return [
        f'[gateway] default_sender is the walkthrough\'s made-up "{DEMO_SENDER}", and the links go to an'
        " operator: every account without its own sender sends from it; set default_sender to the number"
        " your operator gave you"
    ]


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
            f'[web] listen "{web.listen}" is reachable from other machines without TLS: panel logins'
            " (the users' SMTP passwords too) travel in clear; set [web] tls_cert_file and tls_key_file,"
            ' or listen on "127.0.0.1:PORT" behind a TLS proxy'
        )
    if not web.metrics_token:
        doubts.append(
            f'[web] listen "{web.listen}" is reachable from other machines and /metrics wants no token:'
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
        f'[simulator] host "{sim.host}" is reachable from other machines: its control port'
        f" ({sim.control_port}) takes no login, and anyone there can send SMS as any phone (a STOP"
        " opts the phone out, a premium vote is billed) and delivery reports; keep it on 127.0.0.1"
    ]


def parts_doubts(cfg: Config) -> list[str]:
    """A max_parts above R-1.4's 10, taken before 0.2.4: the config still starts, with 10."""
    if cfg.gateway.max_parts <= MAX_PARTS:
        return []
    return [
        f"[gateway] max_parts = {cfg.gateway.max_parts} is above the {MAX_PARTS} parts a message may"
        f" become (R-1.4): {MAX_PARTS} is used; set it to {MAX_PARTS} or less"
    ]


def setup_doubts(cfg: Config) -> list[tuple[str, str]]:
    """(event, text) for each doubt: `run` logs the event, `check-config` prints the text."""
    wide = [
        f"[[account]] {seed.name!r}: {doubt}"
        for seed in cfg.account
        for cidr in seed.relay_networks
        if (doubt := wide_network_doubt(cidr)) is not None
    ]
    return [
        *[("config.no_default_route", doubt) for doubt in route_doubts(cfg)],
        *[("config.demo_sender", doubt) for doubt in demo_sender_doubts(cfg)],
        *[("config.relay_network_wide", doubt) for doubt in wide],
        *[("config.panel_exposed", doubt) for doubt in panel_doubts(cfg)],
        *[("config.simulator_exposed", doubt) for doubt in simulator_doubts(cfg)],
        *[("config.max_parts_above_spec", doubt) for doubt in parts_doubts(cfg)],
    ]
