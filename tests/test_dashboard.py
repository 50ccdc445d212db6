"""The dashboard (GET /api/dashboard): its static files as served, the API additions it uses (GET /api/analytics over
a period of UTC days, with `period`, `sessions` and `daily`), who may call the API (function keys, or App Service
Authentication), and the page itself in a real headless Chromium (Debian's `chromium`, driven by Playwright) against
the dev server's app on the emulators, with the fake models answering.

Data is seeded through the real API (POST /api/chat with the route forced, the fake models answering; feedback through
POST .../feedback); only turns dated in the past (which the API cannot make) and the 2,000 turns of the timing run are
written through the stores. Each browser test browses as a principal of its own (the headers App Service
Authentication would add; the live server trusts them), so the page shows exactly that caller's data. Screenshots,
axe reports, sizes and timings go to test-artifacts/dashboard/ (git-ignored).

Without /usr/bin/chromium (`make setup` installs it as root or with sudo) the browser tests skip and say so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.app import build_services
from shared.config import Settings
from shared.domain.clock import utc_iso
from shared.domain.feedback import Feedback
from shared.domain.records import Attempt, TurnRecord
from shared.domain.sessions import summarize
from shared.http import static
from tests.api_helpers import client, principal
from tests.fixtures_app import LiveServer
from tools.fake_model import Behaviour, FakeModelServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
PRICES = {"cloud": {"input": 0.15, "output": 0.6}, "local": {"input": 0, "output": 0}}
HARD = "Compare token bucket and sliding window rate limiting and analyze the trade-offs step by step, with code."
UNAVAILABLE = {"error": {"code": "storage_unavailable", "message": "Storage is unavailable; retry shortly."}}
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


def write_through_stores(
    env: dict[str, str], owner: str, sessions: dict[str, list[TurnRecord]], rated: float = 0.0
) -> None:
    """Turn records and summaries written straight to Cosmos DB (what the API cannot make: turns in the past), a
    share `rated` of the turns with feedback (two up for each down)."""
    rng = random.Random(len(sessions))

    async def write() -> None:
        services = await build_services(Settings.from_env(env))
        try:
            gate = asyncio.Semaphore(8)  # sessions at once; each writes a few turns at once too

            async def one(session_id: str, records: list[TurnRecord]) -> None:
                async with gate:
                    summary = summarize(session_id, owner, records[0].started_at, records)
                    feedback = {
                        record.turn: Feedback(rng.choice(("up", "up", "down")), record.completed_at)
                        for record in records
                        if rng.random() < rated
                    }
                    await services.metadata.record_session(summary, records, feedback)

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


# ---- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make setup installs Debian's chromium as root or with sudo)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: run make setup (requirements-dev.txt)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run make setup (npm ci installs axe-core)")
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


class Tab:
    """One page of a fresh browser context for one principal, recording console errors and failed requests."""

    def __init__(self, browser: Any, server: LiveServer, user: str | None, viewport: dict[str, int]) -> None:
        headers = principal(user) if user else {}
        self.context = browser.new_context(viewport=viewport, extra_http_headers=headers, accept_downloads=True)
        self.page = self.context.new_page()
        self.url = f"{server.url}/dashboard"
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def open(self, fragment: str, ready: str) -> Any:
        self.page.goto(f"{self.url}#{fragment}")
        self.page.wait_for_selector(ready)
        return self.page

    def go(self, fragment: str, ready: str) -> Any:
        self.page.evaluate("fragment => { window.location.hash = fragment; }", fragment)
        self.page.wait_for_selector(ready)
        return self.page

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def no_horizontal_scroll(self) -> None:
        width = self.page.evaluate("document.scrollingElement.scrollWidth")
        viewport = self.page.viewport_size["width"]
        assert width <= viewport, f"the page scrolls sideways: {width} px in a {viewport} px window"

    def axe(self, name: str) -> list[dict[str, Any]]:
        """axe-core's violations of impact serious or critical (all of them are written to the artifacts)."""
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8"))  # CDP evaluation: not an inline script for the CSP
        result = self.page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
        violations = [
            {"id": item["id"], "impact": item["impact"], "help": item["help"], "nodes": len(item["nodes"])}
            for item in result["violations"]
        ]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=2) + "\n")
        return [item for item in violations if item["impact"] in ("serious", "critical")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Any) -> Iterator[Callable[..., Tab]]:
    opened: list[Tab] = []

    def make(server: LiveServer, user: str | None = None, viewport: dict[str, int] = DESKTOP) -> Tab:
        tab = Tab(browser, server, user, viewport)
        opened.append(tab)
        return tab

    yield make
    for tab in opened:
        tab.close()


def seed_conversation(api: httpx.Client, models: dict[str, FakeModelServer]) -> str:
    """Four turns: local, cloud (a switch), a cloud failure answered by local (a fallback), local."""
    first = chat(api, "hi! what is the capital of France?")
    session_id = str(first["session_id"])
    chat(api, HARD, session_id, route="cloud")
    models["cloud"].script(Behaviour.error(503))
    fallback = chat(api, "and now in French, please?", session_id, route="cloud")
    assert fallback["route"]["fallback_from"] == "cloud" and fallback["route"]["backend"] == "local"
    chat(api, "thanks!", session_id)
    return session_id


def analytics_for(api: httpx.Client, section: Any) -> dict[str, Any]:
    query = {key: section.get_attribute(f"data-{key}") for key in ("from", "to")}
    answer = api.get("/analytics", params={key: value for key, value in query.items() if value})
    assert answer.status_code == 200
    return dict(answer.json())


def shown_value(page: Any, testid: str) -> float | None:
    raw = page.get_by_test_id(testid).get_attribute("data-value")
    return None if raw in (None, "") else float(raw)


# ---- overview ----------------------------------------------------------------------------------------------------


def test_the_overview_shows_what_get_analytics_answers_for_each_period(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    tabs: Callable[..., Tab],
) -> None:
    env = make_env(PRICE_TABLE=json.dumps(PRICES))
    server = live_server(env)
    with client(server.url, principal("olivia")) as api:
        seed_conversation(api, models)
        chat(api, HARD, route="cloud")
        # Turns 3 to 80 days old, so each period shows something else.
        write_through_stores(env, "olivia", past_sessions(count=8, turns_each=3, max_days_ago=80, seed=7))

        tab = tabs(server, "olivia")
        page = tab.open("/overview?period=7", "section.overview[data-period='7'] [data-testid=total-turns]")
        seen = {}
        for period in ("7", "30", "90", "all"):
            if period != "7":
                page.get_by_text({"30": "30 days", "90": "90 days", "all": "All"}[period], exact=True).click()
            section = page.wait_for_selector(f"section.overview[data-period='{period}']")
            expected = analytics_for(api, section)
            shown = page.get_by_test_id("total-turns").inner_text()
            assert shown == str(expected["total_exchanges"])  # a plain integer, text only
            assert page.get_by_test_id("total-sessions").inner_text() == str(expected["sessions"])
            assert page.get_by_test_id("model-switches").inner_text() == str(expected["model_switches"])
            assert page.get_by_test_id("fallbacks").inner_text() == str(expected["fallbacks"])
            assert shown_value(page, "total-cost") == pytest.approx(expected["total_cost"])
            assert shown_value(page, "saved-vs-all-cloud") == pytest.approx(expected["saved_vs_all_cloud"])
            assert page.get_by_test_id("all-cloud-basis").inner_text() == expected["all_cloud_basis"]
            rows = page.get_by_test_id("backend-row")
            assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.backend)")) == sorted(expected["tokens"])
            for backend, count in expected["routing_distribution"].items():
                row = page.locator(f"[data-testid=backend-row][data-backend='{backend}']")

                def cell(field: str, row: Any = row) -> float:
                    return float(row.locator(f"[data-field='{field}']").get_attribute("data-value"))

                assert cell("turns") == count
                assert cell("latency-mean") == pytest.approx(expected["latency_ms"][backend]["mean"])
                assert cell("latency-p95") == pytest.approx(expected["latency_ms"][backend]["p95"])
                assert cell("input-tokens") == expected["tokens"][backend]["input"]
                assert cell("output-tokens") == expected["tokens"][backend]["output"]
                assert cell("cost") == pytest.approx(expected["cost"][backend])
            chart = page.get_by_test_id("routing-chart")
            assert chart.evaluate("node => node.tagName") == "svg" and chart.get_attribute("role") == "img"
            assert chart.locator("rect").count() == len(expected["routing_distribution"])
            # The table behind the per-day chart adds up to the turns of the period.
            per_day = page.get_by_test_id("turns-chart").locator("xpath=..").locator("details tbody tr")
            totals = per_day.evaluate_all("rows => rows.map(r => Number(r.lastElementChild.textContent))")
            assert sum(totals) == expected["total_exchanges"]
            seen[period] = expected["total_exchanges"]
        assert seen["7"] < seen["30"] < seen["90"] <= seen["all"], seen
        # By keyboard: the arrow keys move through the periods and the focus stays on them.
        page.focus("input[name=period]:checked")
        page.keyboard.press("ArrowLeft")
        page.wait_for_selector("section.overview[data-period='90'] [data-testid=total-turns]")
        assert page.evaluate("document.activeElement.value") == "90"
        assert page.get_by_test_id("total-turns").inner_text() == str(seen["90"])
        tab.shot("overview-desktop")
        assert tab.axe("overview-desktop") == []
        assert tab.errors == []
        # The gate can fail: a button without a name is a critical violation axe reports.
        page.evaluate("document.querySelector('main').append(document.createElement('button'))")
        assert [item["id"] for item in tab.axe("gate-check")] == ["button-name"]


# ---- sessions, a transcript, identity ----------------------------------------------------------------------------


def test_sessions_page_newest_first_and_a_transcript_shows_each_turns_backend_and_model(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    tabs: Callable[..., Tab],
) -> None:
    server = live_server(make_env(PRICE_TABLE=json.dumps(PRICES)))
    with client(server.url, principal("sam")) as api, client(server.url, principal("bob")) as bob:
        conversation = seed_conversation(api, models)
        for number in range(21):  # two pages of 20
            chat(api, f"quick question number {number}")
        bobs = chat(bob, "bob's own conversation")["session_id"]
        newest_first = [item["session_id"] for item in api.get("/sessions", params={"limit": 100}).json()["sessions"]]
        assert len(newest_first) == 22
        record = api.get(f"/sessions/{conversation}").json()

    tab = tabs(server, "sam")
    page = tab.open("/sessions", "[data-testid=session-list] [data-testid=session-row]")
    first = page.get_by_test_id("session-row").evaluate_all("rows => rows.map(r => r.dataset.sessionId)")
    assert first == newest_first[:20]
    page.get_by_role("button", name="Older →").click()
    page.wait_for_selector("text=Page 2")
    second = page.get_by_test_id("session-row").evaluate_all("rows => rows.map(r => r.dataset.sessionId)")
    assert second == newest_first[20:] and bobs not in first + second  # sam sees only sam's sessions

    # By keyboard: the session's link is reached with Tab and opened with Enter.
    link = page.locator(f"[data-session-id='{conversation}'] a")
    page.keyboard.press("Tab")
    for _ in range(40):
        if page.evaluate("document.activeElement?.closest('[data-session-id]')?.dataset.sessionId") == conversation:
            break
        page.keyboard.press("Tab")
    assert link.evaluate("node => node === document.activeElement")
    tab.shot("sessions-desktop")
    assert tab.axe("sessions-desktop") == []
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=transcript] [data-testid=turn]")
    assert page.evaluate("document.activeElement.id") == "session-h"

    turns = page.get_by_test_id("transcript").get_by_test_id("turn")
    assert turns.count() == len(record["turns"]) == 4
    for index, expected in enumerate(record["turns"]):
        shown = turns.nth(index)
        assert shown.get_by_test_id("backend-badge").inner_text() == expected["backend"]
        assert shown.get_by_test_id("model-badge").inner_text() == expected["model"]
        assert shown.get_attribute("data-backend") == expected["backend"]
        assert (shown.get_by_test_id("switch-marker").count() == 1) is bool(expected["switched_from"])
        assert (shown.get_by_test_id("fallback-marker").count() == 1) is bool(expected["fallback_chain"])
        assert expected["reason"] in shown.inner_text()
    assert [turns.nth(i).get_attribute("data-backend") for i in range(4)] == ["local", "cloud", "local", "local"]
    assert "hi! what is the capital of France?" in turns.nth(0).inner_text()
    tab.shot("transcript-desktop")
    assert tab.axe("transcript-desktop") == []
    assert tab.errors == []


def test_every_view_holds_at_375_px_and_axe_finds_nothing_serious(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    tabs: Callable[..., Tab],
) -> None:
    env = make_env(PRICE_TABLE=json.dumps(PRICES))
    server = live_server(env)
    with client(server.url, principal("pia")) as api:
        conversation = seed_conversation(api, models)
        long_word = "x" * 300  # a word longer than the screen is wide
        chat(api, f"Please explain this identifier: {long_word}", conversation, route="cloud")
        forked = api.post(f"/sessions/{conversation}/fork", json={"at_turn": 2}).json()["session_id"]
    write_through_stores(env, "pia", past_sessions(count=3, turns_each=4, max_days_ago=25, seed=3))

    for scheme in ("light", "dark"):
        tab = tabs(server, "pia", PHONE)
        tab.page.emulate_media(color_scheme=scheme)
        views = [
            ("overview", "/overview?period=30", "[data-testid=routing-chart]"),
            ("sessions", "/sessions", "[data-testid=session-row]"),
            ("transcript", f"/session/{conversation}", "[data-testid=turn]"),
            ("fork", f"/session/{forked}", "[data-testid=lineage]"),
        ]
        for name, fragment, ready in views:
            tab.open(fragment, ready)
            tab.no_horizontal_scroll()
            if scheme == "light" or name != "fork":
                tab.shot(f"{name}-phone{'' if scheme == 'light' else '-dark'}")
            assert tab.axe(f"{name}-phone-{scheme}") == [], (name, scheme)
        assert tab.errors == []


# ---- actions: delete, export, feedback ---------------------------------------------------------------------------


def test_delete_asks_first_then_removes_the_session(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    server = live_server()
    with client(server.url, principal("dora")) as api:
        keep = chat(api, "keep me")["session_id"]
        gone = chat(api, "delete me")["session_id"]
        tab = tabs(server, "dora")
        page = tab.open(f"/session/{gone}", "[data-testid=turn]")

        page.get_by_test_id("delete").click()
        dialog = page.get_by_test_id("confirm-delete")
        assert dialog.is_visible() and gone in dialog.inner_text()
        page.get_by_test_id("cancel-delete").click()
        page.wait_for_selector("[data-testid=confirm-delete]", state="detached")  # removed on its close event
        assert api.get(f"/sessions/{gone}").status_code == 200  # cancelled: nothing happened

        page.get_by_test_id("delete").click()
        page.keyboard.press("Escape")  # the dialog closes by keyboard too
        page.wait_for_selector("[data-testid=confirm-delete]", state="detached")
        assert api.get(f"/sessions/{gone}").status_code == 200

        page.get_by_test_id("delete").click()
        page.get_by_test_id("confirm-delete-button").click()
        page.wait_for_selector(f"[data-testid=session-row][data-session-id='{keep}']")
        shown = page.get_by_test_id("session-row").evaluate_all("rows => rows.map(r => r.dataset.sessionId)")
        assert shown == [keep]
        assert api.get(f"/sessions/{gone}").status_code == 404
        assert tab.errors == []


def test_export_downloads_the_session_as_a_json_file(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    server = live_server()
    with client(server.url, principal("eve")) as api:
        session_id = chat(api, "export me")["session_id"]
        chat(api, HARD, session_id, route="cloud")
        tab = tabs(server, "eve")
        page = tab.open(f"/session/{session_id}", "[data-testid=turn]")
        with page.expect_download() as info:
            page.get_by_test_id("export").click()
        download = info.value
        assert download.suggested_filename == f"session-{session_id}.json"
        saved = json.loads(Path(download.path()).read_text(encoding="utf-8"))
        expected = api.get(f"/sessions/{session_id}/export").json()
        for document in (saved, expected):
            document.pop("exported_at")
        assert saved == expected and saved["schema"] == "hybrid-llm-router.export"
        assert tab.errors == []


def test_feedback_buttons_rate_turns_through_the_api_and_change_the_analytics(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    server = live_server()
    with client(server.url, principal("fay")) as api:
        session_id = chat(api, "rate me")["session_id"]
        chat(api, "and me too", session_id, route="cloud")
        stored = api.post(f"/sessions/{session_id}/turns/1/feedback", json={"rating": "up"})
        assert stored.status_code == 200 and stored.json()["rating"] == "up"
        before = api.get("/analytics").json()["feedback"]
        assert before == {"up": 1, "down": 0, "by_backend": {"local": {"up": 1, "down": 0}}}

        tab = tabs(server, "fay")
        page = tab.page
        posted: list[tuple[str, Any]] = []
        page.on(
            "request",
            lambda request: request.method == "POST" and posted.append((request.url, request.post_data_json)),
        )
        tab.open("/overview?period=all", "[data-testid=rated-good]")
        assert (page.get_by_test_id("rated-good").inner_text(), page.get_by_test_id("rated-bad").inner_text()) == (
            "1",
            "0",
        )
        tab.go(f"/session/{session_id}", "[data-testid=turn] [data-testid=feedback]")
        first, second = page.get_by_test_id("turn").nth(0), page.get_by_test_id("turn").nth(1)
        assert first.get_by_test_id("feedback-up").get_attribute("aria-pressed") == "true"  # the stored rating
        assert second.get_by_test_id("feedback-up").get_attribute("aria-pressed") == "false"
        assert second.get_by_test_id("feedback-down").get_attribute("aria-pressed") == "false"
        second.get_by_test_id("feedback-down").click()
        page.wait_for_selector("[data-testid=turn] >> nth=1 >> [data-testid=feedback-down][aria-pressed=true]")
        first.get_by_test_id("feedback-down").focus()
        page.keyboard.press("Enter")  # by keyboard too; a repeat replaces: up becomes down
        page.wait_for_selector("[data-testid=turn] >> nth=0 >> [data-testid=feedback-down][aria-pressed=true]")
        assert first.get_by_test_id("feedback-up").get_attribute("aria-pressed") == "false"
        assert page.evaluate("document.activeElement.dataset.testid") == "feedback-down"  # the focus stays
        base = f"{server.url}/sessions/{session_id}/turns"
        assert posted == [(f"{base}/2/feedback", {"rating": "down"}), (f"{base}/1/feedback", {"rating": "down"})]
        assert tab.axe("transcript-feedback") == []

        after = api.get("/analytics").json()["feedback"]
        assert after == {
            "up": 0,
            "down": 2,
            "by_backend": {"local": {"up": 0, "down": 1}, "cloud": {"up": 0, "down": 1}},
        }
        turns = api.get(f"/sessions/{session_id}").json()["turns"]
        assert [turn["feedback"]["rating"] for turn in turns] == ["down", "down"]
        tab.go("/overview?period=all", "section.overview[data-period='all'] [data-testid=rated-good]")
        assert (page.get_by_test_id("rated-good").inner_text(), page.get_by_test_id("rated-bad").inner_text()) == (
            "0",
            "2",
        )

        # A rating that fails says so beside the buttons, as the API words it, and changes nothing.
        tab.go(f"/session/{session_id}", "[data-testid=turn] [data-testid=feedback]")
        page.route("**/feedback", lambda route: route.fulfill(status=503, json=UNAVAILABLE))
        page.get_by_test_id("turn").nth(1).get_by_test_id("feedback-up").click()
        assert "Storage is unavailable" in page.get_by_test_id("feedback-error").inner_text()
        assert (
            page.get_by_test_id("turn").nth(1).get_by_test_id("feedback-down").get_attribute("aria-pressed") == "true"
        )
        assert all("503" in error for error in tab.errors)  # only the browser's own log line of the failed request


# ---- errors and identity -----------------------------------------------------------------------------------------


def test_api_errors_are_shown_as_the_api_words_them(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    server = live_server()
    tab = tabs(server, "gus")
    page = tab.open("/session/doesnotexist", "[data-testid=error]")
    expected = httpx.get(f"{server.url}/sessions/doesnotexist", headers=principal("gus"), timeout=30).json()["error"]
    assert page.get_by_test_id("error-message").inner_text() == expected["message"]
    assert expected["code"] in page.get_by_test_id("error").inner_text() and "404" in page.inner_text("main")
    assert all("404" in error for error in tab.errors)  # only the browser's own log line of the failed request
    tab.shot("error-desktop")

    # The API unreachable: still words, never a blank page; "Try again" recovers.
    tab.errors.clear()
    page.route("**/api/analytics*", lambda route: route.abort("connectionrefused"))
    tab.go("/overview?period=7", "text=The API could not be reached")  # not the 404 still on the page
    assert "could not be reached" in page.get_by_test_id("error-message").inner_text()
    page.unroute("**/api/analytics*")
    page.get_by_role("button", name="Try again").click()
    page.wait_for_selector("[data-testid=total-turns]")
    assert page.get_by_test_id("total-turns").inner_text() == "0"


def test_without_app_service_authentication_the_page_asks_for_a_function_key_and_keeps_it_in_the_tab(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    """The Functions host's answer without a key (401, empty body) is played by the browser's router: the local
    server checks no keys. /.auth/me answers 404, as it does where App Service Authentication is off."""
    server = live_server()
    key = "dashboard-test-" + uuid.uuid4().hex[:8]
    sent: list[str | None] = []

    def host(route: Any) -> None:
        given = route.request.headers.get("x-functions-key")
        sent.append(given)
        if given != key:
            route.fulfill(status=401, body="")
        else:
            route.continue_()

    tab = tabs(server)
    page = tab.page
    page.route(re.compile(r".*/api/(analytics|sessions).*"), host)
    page.route("**/.auth/me", lambda route: route.fulfill(status=404, body=""))
    page.goto(f"{tab.url}#/overview")
    page.wait_for_selector("[data-testid=key-form]")
    assert page.evaluate("sessionStorage.length") == 0
    page.get_by_role("textbox", name="Function key").fill("wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=The API refused the function key")
    page.get_by_role("textbox", name="Function key").fill(key)
    page.get_by_role("button", name="Use this key").click()
    page.wait_for_selector("[data-testid=total-turns]")
    assert sent[-1] == key and page.evaluate("Object.values(sessionStorage)") == [key]
    assert page.evaluate("document.cookie") == "" and page.evaluate("localStorage.length") == 0

    other = tabs(server)  # another tab has its own sessionStorage: the key is not there
    other.page.route(re.compile(r".*/api/(analytics|sessions).*"), host)
    other.page.route("**/.auth/me", lambda route: route.fulfill(status=404, body=""))
    other.open("/overview", "[data-testid=key-form]")

    page.get_by_role("button", name="Forget function key").click()
    page.wait_for_selector("[data-testid=key-form]")
    assert page.evaluate("sessionStorage.length") == 0


def test_behind_app_service_authentication_a_signed_out_browser_is_sent_to_sign_in(
    live_server: Callable[..., LiveServer], models: dict[str, FakeModelServer], tabs: Callable[..., Tab]
) -> None:
    server = live_server()
    tab = tabs(server)
    page = tab.page
    page.route(re.compile(r".*/api/(analytics|sessions).*"), lambda route: route.fulfill(status=401, body=""))
    page.route("**/.auth/me", lambda route: route.fulfill(status=401, body=""))
    page.goto(f"{tab.url}#/overview")
    link = page.wait_for_selector("a:has-text('Sign in with Microsoft Entra ID')")
    assert link.get_attribute("href").startswith("/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fdashboard")
    assert page.get_by_test_id("key-form").count() == 0  # no key to paste


# ---- timing (reported, not asserted) -----------------------------------------------------------------------------


def test_first_render_with_200_sessions_and_2000_turns_is_measured(
    live_server: Callable[..., LiveServer],
    make_env: Callable[..., dict[str, str]],
    models: dict[str, FakeModelServer],
    tabs: Callable[..., Tab],
) -> None:
    env = make_env(PRICE_TABLE=json.dumps(PRICES))
    server = live_server(env)
    started = time.perf_counter()
    write_through_stores(env, "perf", past_sessions(count=200, turns_each=10, max_days_ago=90, seed=11), rated=0.1)
    seeded = time.perf_counter() - started
    report: dict[str, Any] = {"sessions": 200, "turns": 2000, "seed_seconds": round(seeded, 2), "views": {}}
    with client(server.url, principal("perf")) as api:
        api_started = time.perf_counter()
        everything = api.get("/analytics").json()
        report["api_analytics_all_ms"] = round(1000 * (time.perf_counter() - api_started), 1)
    assert everything["total_exchanges"] == 2000 and everything["sessions"] == 200
    assert 100 < everything["feedback"]["up"] + everything["feedback"]["down"] < 300  # about a tenth rated

    for view, fragment, ready in (
        ("overview_all", "/overview?period=all", "[data-testid=routing-chart]"),
        ("overview_90", "/overview?period=90", "[data-testid=routing-chart]"),
        ("sessions", "/sessions", "[data-testid=session-row]"),
    ):
        tab = tabs(server, "perf")
        page = tab.open(fragment, ready)
        page.wait_for_function("performance.getEntriesByName('dashboard:first-render').length > 0")
        timings = page.evaluate(
            """() => {
              const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
              const nav = performance.getEntriesByType('navigation')[0];
              return {
                first_render_ms: performance.getEntriesByName('dashboard:first-render')[0].duration,
                script_start_ms: at('dashboard:start'),
                first_api_answer_ms: at('dashboard:data'),
                rendered_ms: at('dashboard:rendered'),
                dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
                nodes: document.getElementsByTagName('*').length,
              };
            }"""
        )
        report["views"][view] = {k: round(v, 1) if isinstance(v, float) else v for k, v in timings.items()}
        if view == "overview_all":
            assert page.get_by_test_id("total-turns").inner_text() == "2000"
            tab.shot("overview-2000-turns")
        assert tab.errors == []
        tab.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "performance.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\ndashboard first render:", json.dumps(report))
