"""check-config on routing prefixes and pool numbers written as people write numbers, other than with
spaces: "+48-60", "+48(60)", "0048", "4860" and a national pool range got "must look like +48 or
+4860" (or "must be an E.164 number") with no form to write. Each now names it, a national form read
by `[gateway] default_region`. The shipped config, changed, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_config_checks import EXIT_CONFIG, shipped, smsgw, write

CASES = [
    ('prefixes = ["+48-60"] ', "prefix '+48-60' must look like +48 or +4860: write '+4860'"),
    ('prefixes = ["+48(60)"] ', "prefix '+48(60)' must look like +48 or +4860: write '+4860'"),
    ('prefixes = ["0048"] ', "prefix '0048' must look like +48 or +4860: write '+48'"),
    (
        'prefixes = ["4860"] ',
        "prefix '4860' must look like +48 or +4860: write '+4860' if it begins with its country code,"
        " '+484860' if it is national ([gateway] default_region PL)",
    ),
    (
        'pool = ["500100300..500100399"] ',
        "pool range '500100300..500100399' is not written in the international form: write"
        " +48500100300..+48500100399",
    ),
    (
        'pool = ["0048500100300"] ',
        "pool number '0048500100300' is not written in the international form: write +48500100300",
    ),
    # The trunk 0 in brackets after the country code is not dialled from abroad, and E.164 numbers never
    # carry it: '+48060' matched no number (a dead route).
    ('prefixes = ["+48 (0) 60"] ', "prefix '+48 (0) 60' must look like +48 or +4860: write '+4860'"),
    # A national form with its trunk 0 is no country code: '+060' and '+0' are refused forms themselves.
    (
        'prefixes = ["060"] ',
        "prefix '060' must look like +48 or +4860: write '+4860' if it is national ([gateway]"
        " default_region PL)",
    ),
]


@pytest.mark.parametrize(("typed", "said"), CASES, ids=[c[0].split("=")[1].strip() for c in CASES])
def test_a_number_written_another_way_is_said_with_the_form_to_write(
    tmp_path: Path, typed: str, said: str
) -> None:
    key = typed.split(" =")[0]
    res = smsgw("--config", str(write(tmp_path, shipped((f"{key} = [] ", typed)))), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert said in " ".join(res.stderr.split()), res.stderr


@pytest.mark.parametrize("typed", ["060", "(0)60", "0"])
def test_no_form_offered_is_one_the_check_refuses(tmp_path: Path, typed: str) -> None:
    res = smsgw(
        "--config",
        str(write(tmp_path, shipped(("prefixes = [] ", f'prefixes = ["{typed}"] ')))),
        "check-config",
    )
    assert res.returncode == EXIT_CONFIG, res.stderr
    said = " ".join(res.stderr.split())
    assert "'+0" not in said and "if it begins with its country code" not in said, said
