"""A relay mail's reading options are made once for each set of values (`intake.intake_options`), not
for every mail: the options made so are the ones IntakeOptions itself makes of the same values, field
by field, and a change of any value (an account's end marker or cut-from phrases) makes new ones."""

from __future__ import annotations

import dataclasses

from gateway.smtp.intake import IntakeOptions, intake_options

VARIANTS = [
    IntakeOptions(),
    IntakeOptions(subject_max=0, separator=" - ", end_marker=None),
    IntakeOptions(cut_from=("Od:", "From:"), charset_fallbacks=("iso-8859-2",), own_address="sms@gw.example"),
    IntakeOptions(zone="UTC", end_marker="KONIEC"),
]


def test_the_options_are_those_of_the_values() -> None:
    for expected in VARIANTS:
        made = intake_options(*dataclasses.astuple(expected))
        assert made == expected
        assert dataclasses.asdict(made) == dataclasses.asdict(expected)


def test_made_once_for_each_set_of_values() -> None:
    first = [intake_options(*dataclasses.astuple(o)) for o in VARIANTS]
    again = [intake_options(*dataclasses.astuple(o)) for o in VARIANTS]
    assert all(a is b for a, b in zip(first, again, strict=True))
    assert len({id(o) for o in first}) == len(VARIANTS)
