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
]


@pytest.mark.parametrize(("typed", "said"), CASES, ids=[c[0].split("=")[1].strip() for c in CASES])
def test_a_number_written_another_way_is_said_with_the_form_to_write(
    tmp_path: Path, typed: str, said: str
) -> None:
    key = typed.split(" =")[0]
    res = smsgw("--config", str(write(tmp_path, shipped((f"{key} = [] ", typed)))), "check-config")
    assert res.returncode == EXIT_CONFIG and "Traceback" not in res.stderr, res.stderr
    assert said in " ".join(res.stderr.split()), res.stderr
