"""The dashboard (GET /api/dashboard): its static files as served, and the API additions it uses (GET /api/analytics
over a period of UTC days, with `period`, `sessions` and `daily`).

Turns dated in the past, which the API cannot make, are written through the stores. Sizes go to
test-artifacts/dashboard/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.app import build_services
from shared.config import Settings
from shared.domain.clock import utc_iso
from shared.domain.records import Attempt, TurnRecord
from shared.domain.sessions import summarize
from shared.http import static
from tests.api_helpers import client, principal
from tests.fixtures_app import LiveServer
from tools.fake_model import FakeModelServer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
PRICES = {"cloud": {"input": 0.15, "output": 0.6}, "local": {"input": 0, "output": 0}}
BUDGET_BYTES = 150 * 1024

pytestmark = pytest.mark.timeout(240)


# ---- the static files (no browser) -------------------------------------------------------------------------------


class _Markup(HTMLParser):
    """What could run or style inline: script elements without src, style elements, style and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.references: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and not named.get("src"):
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag}[{name}]" for name in named if name == "style" or name.startswith("on")]
        self.references += [value for name, value in attrs if name in ("src", "href") and value]


def test_only_packaged_files_are_served_typed_and_locked_down(live_server: Callable[..., LiveServer]) -> None:
    folder = {path.name for path in static.FOLDER.iterdir()}
    assert folder == {static.PAGE, *static.ASSETS}, "every packaged file is whitelisted, and nothing else"
    markup = _Markup()
    markup.feed((static.FOLDER / static.PAGE).read_text(encoding="utf-8"))
    assert markup.inline == []
    for reference in markup.references:
        assert not re.match(r"^(https?:)?//", reference), f"{reference}: nothing from another origin"
    csp = static.CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp

    server = live_server()
    with client(server.url) as api:  # every answer is checked against the OpenAPI document too
        for name in (None, *static.ASSETS):
            path = "/dashboard" if name is None else f"/dashboard/assets/{name}"
            plain = api.get(path, headers={"Accept-Encoding": "identity"})
            assert plain.status_code == 200, path
            assert plain.headers["content-type"] == static.CONTENT_TYPES[name or static.PAGE]
            assert plain.headers["x-content-type-options"] == "nosniff"
            assert plain.headers["content-security-policy"] == csp
            assert plain.headers["cache-control"] == "no-cache"
            assert "content-encoding" not in plain.headers
            assert plain.content == (static.FOLDER / (name or static.PAGE)).read_bytes()
            zipped = api.get(path, headers={"Accept-Encoding": "gzip, deflate"})
            assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
            # What the size test counts is what goes over the wire.
            assert int(zipped.headers["content-length"]) == len(static.static_file(name or static.PAGE).gzipped)
            again = api.get(path, headers={"If-None-Match": plain.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        for bad in ("index.html", "nope.js", "APP.JS", "..%2Fdashboard.py", "%2E%2E%2F%2E%2E%2Fapi.py"):
            missing = api.get(f"/dashboard/assets/{bad}")
            assert missing.status_code == 404, bad
            assert missing.json()["error"]["code"] == "not_found", bad
        assert api.get("/dashboard/assets/.hidden").status_code == 422  # not even the shape of a file name
    with httpx.Client(timeout=30, follow_redirects=False) as raw:
        slash = raw.get(f"{server.url}/dashboard/")
        assert slash.status_code in (307, 308) and slash.headers["location"].endswith("/api/dashboard")


def test_the_page_and_its_assets_gzipped_fit_in_150_kb() -> None:
    sizes = {}
    for name in (static.PAGE, *static.ASSETS):
        served = static.static_file(name)  # the bytes the route sends to a client that accepts gzip
        sizes[name] = {"raw": len(served.body), "gzip": len(served.gzipped)}
    total = {"raw": sum(size["raw"] for size in sizes.values()), "gzip": sum(size["gzip"] for size in sizes.values())}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sizes.json").write_text(json.dumps({"files": sizes, "total": total}, indent=2) + "\n")
    print(f"\ndashboard: {total['raw']} bytes raw, {total['gzip']} gzipped ({len(sizes)} files)")
    assert total["gzip"] <= BUDGET_BYTES


# ---- seeding -----------------------------------------------------------------------------------------------------


def chat(api: httpx.Client, message: str, session_id: str | None = None, route: str = "local") -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "route": route}
    if session_id:
        body["session_id"] = session_id
    answer = api.post("/chat", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def write_through_stores(env: dict[str, str], owner: str, sessions: dict[str, list[TurnRecord]]) -> None:
    """Turn records and summaries written straight to Cosmos DB (what the API cannot make: turns in the past)."""

    async def write() -> None:
        services = await build_services(Settings.from_env(env))
        try:
            gate = asyncio.Semaphore(8)  # sessions at once; each writes a few turns at once too

            async def one(session_id: str, records: list[TurnRecord]) -> None:
                async with gate:
                    summary = summarize(session_id, owner, records[0].started_at, records)
                    await services.metadata.record_session(summary, records, {})

            await asyncio.gather(*(one(session_id, records) for session_id, records in sessions.items()))
        finally:
            await services.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop, away from pytest's
        pool.submit(asyncio.run, write()).result(timeout=180)


def past_record(
    turn: int, when: datetime, backend: str | None, rng: random.Random, switched: str | None = None
) -> TurnRecord:
    """A turn completed at `when` (None as the backend: an imported turn, with no routing or cost of its own)."""
    latency = rng.uniform(40, 400) if backend == "local" else rng.uniform(300, 2500)
    tokens_in, tokens_out = (rng.randint(20, 900), rng.randint(10, 400)) if backend else (0, 0)
    price = PRICES.get(backend or "", {"input": 0, "output": 0})
    failed = (Attempt("cloud", "gpt-4o-mini", "timeout", 5000.0),) if backend == "local" and rng.random() < 0.05 else ()
    return TurnRecord(
        turn=turn,
        backend=backend,
        model=None if backend is None else "llama3.2" if backend == "local" else "gpt-4o-mini",
        complexity=round(rng.random(), 3),
        reason="seeded for the dashboard tests",
        router_version="seed" if backend else None,
        route_requested="auto",
        switched_from=switched,
        fallback_chain=failed,
        latency_ms=round(latency, 3) if backend else None,
        turn_ms=round(latency + 15, 3) if backend else None,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=round((tokens_in * price["input"] + tokens_out * price["output"]) / 1_000_000, 8),
        started_at=utc_iso(when - timedelta(milliseconds=latency + 15)),
        completed_at=utc_iso(when),
        user_chars=tokens_in * 4,
        reply_chars=tokens_out * 4,
        imported=backend is None,
    )


def past_sessions(count: int, turns_each: int, max_days_ago: int, seed: int) -> dict[str, list[TurnRecord]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    sessions: dict[str, list[TurnRecord]] = {}
    for _ in range(count):
        start = now - timedelta(days=rng.uniform(1.5, max_days_ago), hours=rng.uniform(0, 3))
        records: list[TurnRecord] = []
        previous = None
        for turn in range(1, turns_each + 1):
            backend = "cloud" if rng.random() < 0.3 else "local"
            when = start + timedelta(minutes=3 * turn)
            switched = previous if previous and previous != backend else None
            records.append(past_record(turn, when, backend, rng, switched))
            previous = backend
        sessions[uuid.uuid4().hex] = records
    return sessions


# ---- the API the page uses ---------------------------------------------------------------------------------------


def test_owner_analytics_count_the_turns_completed_in_a_period_of_utc_days(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    env = make_env(PRICE_TABLE=json.dumps(PRICES))
    server = live_server(env)
    rng = random.Random(5)
    day = datetime(2025, 3, 30, 23, 59, 59, 999_000, tzinfo=UTC)  # the last millisecond of a UTC day
    one, two, three = (uuid.uuid4().hex for _ in range(3))
    sessions = {
        one: [past_record(1, day - timedelta(days=2), "local", rng), past_record(2, day, "cloud", rng, "local")],
        two: [past_record(1, day + timedelta(milliseconds=1), "local", rng)],  # the next day's first moment
        three: [past_record(1, day, None, rng)],  # imported: counted in turns_total, in no backend
    }
    write_through_stores(env, "ann", sessions)
    with client(server.url, principal("ann")) as api:
        everything = api.get("/analytics").json()
        assert everything["period"] == {"from": None, "to": None}
        assert everything["total_exchanges"] == 4 and everything["sessions"] == 3
        assert [entry["day"] for entry in everything["daily"]] == ["2025-03-28", "2025-03-30", "2025-03-31"]

        period = api.get("/analytics", params={"from": "2025-03-29", "to": "2025-03-30"}).json()
        assert period["period"] == {"from": "2025-03-29", "to": "2025-03-30"}
        assert period["total_exchanges"] == 2 and period["sessions"] == 2  # one's 2nd turn, three's imported one
        assert period["routing_distribution"] == {"cloud": 1} and period["model_switches"] == 1
        cloud = sessions[one][1]
        assert period["daily"] == [{"day": "2025-03-30", "turns": {"cloud": 1}, "cost": cloud.cost, "turns_total": 2}]
        assert period["total_cost"] == pytest.approx(cloud.cost)

        since = api.get("/analytics", params={"from": "2025-03-31"}).json()  # either end may stay open
        assert since["total_exchanges"] == 1 and since["period"] == {"from": "2025-03-31", "to": None}
        until = api.get("/analytics", params={"to": "2025-03-28"}).json()
        assert until["total_exchanges"] == 1 and until["sessions"] == 1
        empty = api.get("/analytics", params={"from": "2024-01-01", "to": "2024-12-31"}).json()
        assert (empty["total_exchanges"], empty["sessions"], empty["daily"]) == (0, 0, [])

    with client(server.url, principal("bob")) as bob:  # someone else's turns never count
        assert bob.get("/analytics", params={"from": "2025-03-01"}).json()["total_exchanges"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2025-02-30"}, "from"),
        ({"to": "20250301"}, "to"),
        ({"from": "2025-W01-1"}, "from"),
        ({"to": "2025-03-01T00:00:00Z"}, "to"),
        ({"from": "٢٠٢٥-٠٣-٠١"}, "from"),  # digits, but not ASCII ones
        ({"from": ""}, "from"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from"),
        ({"since": "2025-03-01"}, "since"),
    ],
)
def test_owner_analytics_refuse_a_malformed_reversed_or_unknown_parameter_naming_it(
    api: httpx.Client, query: dict[str, str], field: str
) -> None:
    answer = api.get("/analytics", params=query)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field and answer.json()["error"]["code"] == "invalid_request"


def test_session_analytics_answer_daily_but_neither_period_nor_sessions(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer]
) -> None:
    server = live_server()
    with client(server.url, principal("cid")) as api:
        session_id = chat(api, "hi")["session_id"]
        chat(api, "and again", session_id, route="cloud")
        answer = api.get(f"/sessions/{session_id}/analytics").json()
    today = datetime.now(UTC).date().isoformat()
    assert "period" not in answer and "sessions" not in answer
    assert [(entry["turns"], entry["turns_total"]) for entry in answer["daily"]] in (
        [({"local": 1, "cloud": 1}, 2)],  # both turns today (UTC)
        [({"local": 1}, 1), ({"cloud": 1}, 1)],  # run across midnight
    )
    assert answer["daily"][-1]["day"] == today


# ---- who may call: function keys, or App Service Authentication -------------------------------------------------

PUBLIC = {"health", "openapi.json", "dashboard", "dashboard/assets/{name}"}


@pytest.mark.parametrize(
    ("environ", "keyless"),
    [
        ({}, False),
        ({"TRUST_PRINCIPAL_HEADERS": "true"}, False),  # the dev server's setting, with nothing in front of it
        ({"WEBSITE_AUTH_ENABLED": "True"}, False),  # authentication on, its headers not trusted
        ({"WEBSITE_AUTH_ENABLED": "True", "TRUST_PRINCIPAL_HEADERS": "maybe"}, False),  # malformed: fail closed
        ({"WEBSITE_AUTH_ENABLED": "True", "TRUST_PRINCIPAL_HEADERS": "true"}, True),
    ],
)
def test_function_keys_are_required_unless_app_service_authentication_is_on(
    environ: dict[str, str], keyless: bool
) -> None:
    import azure.functions as func

    from shared.http.functions import register_routes

    async def no_services() -> Any:
        raise AssertionError("not reached")

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    register_routes(app, no_services, environ)
    triggers = [function.get_trigger() for function in app.get_functions()]
    levels = {trigger.route: str(getattr(trigger.auth_level, "value", trigger.auth_level)) for trigger in triggers}
    assert {route for route, level in levels.items() if level == "anonymous"} >= PUBLIC
    keyed = {route for route, level in levels.items() if level != "anonymous"}
    assert keyed == (set() if keyless else set(levels) - PUBLIC)


async def test_keyless_routes_refuse_a_request_without_app_service_authentications_principal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should a request reach a keyless route without a sign-in (authentication relaxed to "allow unauthenticated",
    or a path it did not cover), it gets the platform's own answer, not the shared anonymous owner's data."""
    from starlette.requests import Request

    from shared.config import reset_settings_cache
    from shared.http.functions import trigger
    from shared.http.routes import ROUTE_TABLE

    for name, value in {
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "COSMOS_ENDPOINT": "https://x/",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()

    async def no_services() -> Any:
        raise AssertionError("services are never reached here")

    def request(path: str, query: str, headers: dict[str, str]) -> Request:
        raw = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        return Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": raw})

    routes = {(route.method, route.path): route for route in ROUTE_TABLE}
    sessions = trigger(routes["get", "/sessions"], no_services, signed_in=True)
    try:
        for headers in ({}, {"X-MS-CLIENT-PRINCIPAL-ID": " "}):
            refused = await sessions(request("/api/sessions", "limit=0", headers))
            assert (refused.status_code, refused.body) == (401, b"")
        # Signed in: on to the handler (which refuses limit=0 before it needs any service).
        passed = await sessions(request("/api/sessions", "limit=0", principal("amy")))
        assert passed.status_code == 422 and json.loads(passed.body)["error"]["field"] == "limit"
        page = trigger(routes["get", "/dashboard"], no_services)  # public routes are never guarded
        assert (await page(request("/api/dashboard", "", {}))).status_code == 200
    finally:
        monkeypatch.undo()
        reset_settings_cache()
