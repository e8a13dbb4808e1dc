"""How a link writes validity_period, and what an ESME_RINVEXPIRY (0x62) to it says (`ValidityForm`):
kept apart from `smsc.smpp.submits`, whose answers it reads, as the link's own state across its
connections.
"""

from __future__ import annotations

import dataclasses
import json

import structlog

from smsc.settings import LinkSettings

log = structlog.get_logger(__name__)

# A part whose relative validity was refused goes again after this wait (uncounted), in the absolute form.
VALIDITY_AGAIN_SECONDS = 0.05


class ValidityForm:
    """The form a link writes validity_period in, and the reading of ESME_RINVEXPIRY (0x62) to it.

    Relative (the default since 0.2.37) unless `validity_format = "absolute"`. An SMSC taking only the
    absolute form answers every relative one 0x62: read as a refusal for good, after an upgrade every
    SMS failed and bounced, those queued before it too, until the admin found the log line. A 0x62 to
    a relative validity now turns the link to the absolute form on trial, and its part goes again, no
    attempt counted; so do those written in the other form before a turn and refused after it. The
    first absolute submit accepted keeps the link absolute for the rest of its run (said once, at
    WARNING, with the key that makes it so for good); a 0x62 to an absolute validity is then the
    refusal it says. But 0x62 is also an SMSC's refusal of the value (a 30-day validity where it keeps
    SMS 3 days): kept absolute at once, every later SMS went absolute and, at an SMSC taking only
    relative ones, bounced. So while on trial, a 0x62 to an absolute validity turns the link back to
    relative: the part whose refusal made the turn fails for its value, any other goes again. The
    link's, kept across its connections (`smsc.smpp.link`)."""

    def __init__(self, cfg: LinkSettings) -> None:
        self.own = cfg  # the link's own settings
        self.cfg = cfg  # what submits are encoded with: the link's own, or absolute since a 0x62
        self.relative = cfg.validity_format == "relative"
        # Submits written in the other form before the last turn, not answered then: seq numbers.
        self.before: set[int] = set()
        # On trial since a relative validity was refused: the part whose refusal turned the link absolute.
        self.trial: int | None = None

    def refused(self, seq: int, part: int, outstanding: list[int]) -> bool:
        """A 0x62 to submit `seq` of `part`, `outstanding` the others of its connection not yet
        answered: True when its part goes again, no attempt counted, in the form the link now writes."""
        if seq in self.before:
            self.before.discard(seq)
            return True
        if self.relative:
            self.trial = part
            self._turn(dataclasses.replace(self.own, validity_format="absolute"), seq, outstanding)
            log.info("smpp.validity_trying_absolute", link=self.cfg.name, part=part)
            return True
        if self.trial is None:  # absolute for good: a refusal of this validity
            return False
        turned_by, self.trial = self.trial, None
        self._turn(self.own, seq, outstanding)
        log.info("smpp.validity_back_to_relative", link=self.cfg.name, part=part, turned_by=turned_by)
        return part != turned_by  # the part that turned it is refused its value in either form

    def accepted(self, seq: int) -> None:
        """Submit `seq` accepted: the first absolute one keeps the link absolute."""
        if seq in self.before:
            self.before.discard(seq)
            return
        if self.trial is None or self.relative:
            return
        self.trial = None
        link = json.dumps(self.cfg.name, ensure_ascii=False)  # as TOML quotes it
        log.warning(
            "smpp.validity_refused", link=self.cfg.name, switched_to="absolute",
            hint=f"the SMSC refused a relative validity (ESME_RINVEXPIRY): this link sends absolute ones"
            f' until the daemon restarts; set validity_format = "absolute" in [[smsc]] {link} to keep it so',
        )  # fmt: skip

    def _turn(self, cfg: LinkSettings, seq: int, outstanding: list[int]) -> None:
        self.cfg, self.relative = cfg, cfg.validity_format == "relative"
        self.before = {s for s in outstanding if s != seq}
