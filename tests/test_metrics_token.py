"""`[web] metrics_token`: what /metrics takes as its bearer token, and secrets compared whatever
bytes a client sends (through the panel's ASGI app)."""

from __future__ import annotations

from pathlib import Path

from tests.web_helpers import ADMIN, client, panel_store, web_context

TOKEN = "t0ken-t0ken-t0ken-t0ken"


async def test_the_bearer_scheme_is_matched_without_regard_to_case(tmp_path: Path) -> None:
    # RFC 9110 11.1: "bearer", "BEARER" and "Bearer" name one scheme; only "Bearer" was taken.
    # A header with non-ASCII bytes got a 500 (compare_digest refuses such a str), not a 401.
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store, f'metrics_token = "{TOKEN}"\n')
    codes: dict[str, int] = {}
    try:
        async with client(web) as c:
            for header in (
                f"Bearer {TOKEN}",
                f"bearer {TOKEN}",
                f"BEARER  {TOKEN} ",
                "Bearer wrong",
                f"Basic {TOKEN}",
                f"Bearer{TOKEN}",
                "",
            ):
                codes[header] = (await c.get("/metrics", headers={"Authorization": header})).status_code
            codes["latin-1"] = (
                await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}\xe9".encode("latin-1")})
            ).status_code
    finally:
        web.counts.close()
        store.close()
    assert list(codes.values()) == [200, 200, 200, 401, 401, 401, 401, 401], codes


async def test_a_forged_non_ascii_csrf_token_is_refused_not_a_crash(tmp_path: Path) -> None:
    store = panel_store(tmp_path)
    web = web_context(tmp_path, store)
    try:
        async with client(web) as c:
            await c.get("/login")
            r = await c.post("/login", data={"email": ADMIN, "password": "x", "csrf": "żółw"})
    finally:
        web.counts.close()
        store.close()
    assert r.status_code == 403 and "the form expired" in r.text
