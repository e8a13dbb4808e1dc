"""What `check-config` warns of and `run` logs at start: choices the config may make, that work,
and that hurt (the refusals are `gateway.configcheck`'s)."""

from __future__ import annotations

from gateway.config import Config, GatewaySection
from gateway.configcheck import on_loopback

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


def setup_doubts(cfg: Config) -> list[tuple[str, str]]:
    """(event, text) for each doubt: `run` logs the event, `check-config` prints the text."""
    return [
        *[("config.no_default_route", doubt) for doubt in route_doubts(cfg)],
        *[("config.demo_sender", doubt) for doubt in demo_sender_doubts(cfg)],
    ]
