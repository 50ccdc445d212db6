"""Hostile input: a catalogue of bad requests against every route, sent to one live server holding real data.

Every request of the catalogue must get a 4xx with one of our JSON errors (never a 5xx), with the status the
OpenAPI document gives for its operation (the client checks each answer against the document), and the whole
catalogue must leave the stores as they were: every blob byte-identical, every Cosmos turn record and session
summary unchanged, no model called. The only writes allowed are audit events of refused attempts (outcome
`rejected`, `not_found`, `forbidden`), which are the audit trail doing its job; an `ok` event would mean a
hostile request did something.

tests/test_api_errors.py already covers the basic 400/404/405/413/415/422 answers of /chat and the session
routes; this catalogue extends it to the newer routes (import, export, fork, audit, users, manage/reconcile),
to identity headers, query injection, odd ids and encodings, and proves that nothing changed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from shared.domain.ids import ANONYMOUS_OWNER, owner_key
from tests.api_helpers import client, principal
from tests.consistency import store_state
from tests.fixtures_app import LiveServer
from tools.fake_model import FakeModelServer

REQUEST_MAX_BYTES = 16_384
IMPORT_MAX_BYTES = 65_536
MESSAGE_MAX_CHARS = 200
LIMITS = {
    "REQUEST_MAX_BYTES": str(REQUEST_MAX_BYTES),
    "IMPORT_MAX_BYTES": str(IMPORT_MAX_BYTES),
    "MESSAGE_MAX_CHARS": str(MESSAGE_MAX_CHARS),
}

ALICE = principal("alice")
BOB = principal("bob")
ADMIN = principal("root", roles=["admin"])
ANONYMOUS: dict[str, str] = {}
JSON = {"Content-Type": "application/json"}
INJECTION = "' OR 1=1 --"
HELLO = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Bad:
    """One hostile request. `path` may name `{alice}` or `{bob}` (their sessions' ids, known at run time)."""

    name: str
    method: str
    path: str
    status: int | frozenset[int]
    code: str | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    caller: dict[str, str] = field(default_factory=lambda: ALICE)
    allow: frozenset[str] | None = None  # for a 405: the methods its Allow header must name (HEAD aside)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def deep(depth: int, opening: bytes = b"[", closing: bytes = b"]", inner: bytes = b"") -> bytes:
    return opening * depth + inner + closing * depth


# Routes that take a JSON body, with a valid body and the caller allowed to send it.
BODY_ROUTES = [
    ("POST", "/chat", {"message": "hi"}, ALICE),
    ("POST", "/sessions/{alice}/resume", {"message": "hi"}, ALICE),
    ("POST", "/sessions/import", {"format": "openai", "data": [{"role": "user", "content": "hi"}]}, ALICE),
    ("POST", "/sessions/{alice}/fork", {"at_turn": 1}, ALICE),
    ("POST", "/manage/reconcile", {"owner": "alice"}, ADMIN),
]
MALFORMED = {
    "truncated JSON": (b'{"message": "hi"', 400, "malformed_request"),
    "trailing garbage": (b'{"message": "hi"} and more', 400, "malformed_request"),
    "raw control character in a string": (b'{"message": "a\x01b\x00c"}', 400, "malformed_request"),
    "invalid UTF-8": (b'{"message": "\xff\xfe\xfd"}', 400, "malformed_request"),
    "UTF-16": ('{"message": "hi"}'.encode("utf-16"), 400, "malformed_request"),
    "UTF-8 byte order mark": ("\ufeff".encode() + b'{"message": "hi"}', 400, "malformed_request"),
    "5000 nested arrays": (deep(5000), 400, "malformed_request"),
    "2500 nested objects": (deep(2500, b'{"a":', b"}", b"1"), 400, "malformed_request"),
    "100k nested arrays (too large as well)": (deep(100_000), 413, "body_too_large"),
    "a 5000-digit number": (b'{"message": "hi", "x": ' + b"9" * 5000 + b"}", 400, "malformed_request"),
    "an unpaired surrogate": (b'{"message": "hi \\ud800 there"}', 400, "malformed_request"),
    "a JSON array": (b'["hi"]', 400, "malformed_request"),
    "a JSON string": (b'"hi"', 400, "malformed_request"),
    "a JSON number": (b"42", 400, "malformed_request"),
    "a JSON boolean": (b"true", 400, "malformed_request"),
    "JSON null": (b"null", 400, "malformed_request"),
    "larger than REQUEST_MAX_BYTES": (
        b'{"message": "' + b"x" * (REQUEST_MAX_BYTES + 1) + b'"}',
        413,
        "body_too_large",
    ),
}
WRONG_CONTENT_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml")


def body_route_cases() -> Iterator[Bad]:
    for method, path, valid, caller in BODY_ROUTES:
        for name, (content, status, code) in MALFORMED.items():
            if path == "/sessions/import" and name == "larger than REQUEST_MAX_BYTES":
                content = b'{"format": "openai", "data": "' + b"x" * (IMPORT_MAX_BYTES + 1) + b'"}'
            yield Bad(f"{path}: {name}", method, path, status, code, content=content, headers=JSON, caller=caller)
        for content_type in WRONG_CONTENT_TYPES:
            yield Bad(
                f"{path}: sent as {content_type}",
                method,
                path,
                415,
                "unsupported_media_type",
                content=json.dumps(valid).encode(),
                headers={"Content-Type": content_type},
                caller=caller,
            )
        yield Bad(
            f"{path}: unknown field", method, path, 422, "invalid_request", {**valid, "colour": "blue"}, caller=caller
        )
        yield Bad(
            f"{path}: __proto__ field", method, path, 422, "invalid_request", {**valid, "__proto__": {}}, caller=caller
        )


ODD_IDS = {
    "encoded traversal": ("..%2F..%2Fetc%2Fpasswd", frozenset({404, 405})),
    "dot dot": ("%2e%2e", 422),
    "NUL inside": ("abc%00def", 422),
    "CRLF header injection": ("abc%0d%0aX-Injected:%201", 422),
    "Cyrillic lookalike": ("%D1%95ession", 422),
    "fullwidth lookalike": ("%EF%BD%81bc", 422),
    "emoji": ("%F0%9F%98%80", 422),
    "SQL-ish": ("'%20OR%201=1%20--", 422),
    "65 characters": ("a" * 65, 422),
    "5000 characters": ("b" * 5000, 422),
    "leading dash": ("-abc", 422),
    "a dot": ("abc.def", 422),
    "percent itself": ("abc%25", 422),
}
SESSION_ROUTES = [
    ("GET", "/sessions/{id}", None),
    ("DELETE", "/sessions/{id}", None),
    ("POST", "/sessions/{id}/resume", {"message": "hi"}),
    ("GET", "/sessions/{id}/analytics", None),
    ("GET", "/sessions/{id}/export", None),
    ("POST", "/sessions/{id}/fork", {"at_turn": 1}),
    ("GET", "/sessions/{id}/audit", None),
]


def id_cases() -> Iterator[Bad]:
    for method, template, body in SESSION_ROUTES:
        for name, (raw, status) in ODD_IDS.items():
            path = template.replace("{id}", raw)
            code = "invalid_id" if status == 422 else None
            yield Bad(f"{method} {template}: {name}", method, path, status, code, body)
        # Somebody else's session looks exactly like a missing one, whatever the route.
        path = template.replace("{id}", "{bob}")
        yield Bad(f"{method} {template}: another owner's session", method, path, 404, "session_not_found", body)


def field_cases() -> Iterator[Bad]:
    chat = [
        ("message a number", {"message": 42}),
        ("message a list", {"message": ["hi"]}),
        ("message an object", {"message": {"text": "hi"}}),
        ("message null", {"message": None}),
        ("message true", {"message": True}),
        ("message empty", {"message": ""}),
        ("session_id a number", {"message": "hi", "session_id": 123}),
        ("session_id traversal", {"message": "hi", "session_id": "../alice/x"}),
        ("session_id SQL-ish", {"message": "hi", "session_id": INJECTION}),
        ("session_id with NUL", {"message": "hi", "session_id": "abc\u0000"}),
        ("session_id lookalike", {"message": "hi", "session_id": "\u0455ession"}),
        ("route unknown", {"message": "hi", "route": "mars"}),
        ("route a number", {"message": "hi", "route": 5}),
        ("route null", {"message": "hi", "route": None}),
        ("stream a string", {"message": "hi", "stream": "true"}),
        ("stream a number", {"message": "hi", "stream": 1}),
    ]
    for name, body in chat:
        yield Bad(f"chat: {name}", "POST", "/chat", 422, None, body)
    yield Bad("chat: blank message", "POST", "/chat", 422, "invalid_message", {"message": " \n\t "})
    long = "y" * (MESSAGE_MAX_CHARS + 1)
    yield Bad("chat: message too long", "POST", "/chat", 413, "invalid_message", {"message": long})
    yield Bad(
        "chat: continue someone else's",
        "POST",
        "/chat",
        404,
        "session_not_found",
        {"message": "hi", "session_id": "{bob}"},
    )

    resume = "/sessions/{alice}/resume"
    yield Bad("resume: message a number", "POST", resume, 422, "invalid_request", {"message": 42})
    yield Bad("resume: message empty", "POST", resume, 422, "invalid_request", {"message": ""})
    yield Bad("resume: message blank", "POST", resume, 422, "invalid_message", {"message": "   "})
    yield Bad("resume: message too long", "POST", resume, 413, "invalid_message", {"message": long})
    yield Bad("resume: route unknown", "POST", resume, 422, "invalid_request", {"message": "hi", "route": "x"})

    fork = "/sessions/{alice}/fork"
    for name, value in [("0", 0), ("-1", -1), ("a string", "1"), ("a float", 1.5), ("true", True), ("null", None),
                        ("10**30", 10**30), ("past the end", 99)]:  # fmt: skip
        yield Bad(f"fork: at_turn {name}", "POST", fork, 422, None, {"at_turn": value})
    yield Bad("fork: no at_turn", "POST", fork, 422, "invalid_request", {})
    yield Bad("fork: no body", "POST", fork, 400, "malformed_request")

    imports = [
        ("format unknown", {"format": "csv", "data": []}, 422),
        ("format a number", {"format": 5, "data": []}, 422),
        ("no data", {"format": "openai"}, 422),
        ("openai data a string", {"format": "openai", "data": "hi"}, 422),
        ("openai data of numbers", {"format": "openai", "data": [1, 2]}, 422),
        ("openai role unknown", {"format": "openai", "data": [{"role": "hacker", "content": "hi"}]}, 422),
        ("openai content a number", {"format": "openai", "data": [{"role": "user", "content": 5}]}, 422),
        ("openai no user message", {"format": "openai", "data": []}, 422),
        ("agent_session a list", {"format": "agent_session", "data": []}, 422),
        ("agent_session deeply nested", {"format": "agent_session", "data": {"state": json.loads(deep(500))}}, 422),
        ("legacy thread empty", {"format": "agent_thread_legacy", "data": {}}, 422),
        ("export of another schema", {"format": "export", "data": {"schema": "x", "schema_version": 99}}, 422),
        ("session_id traversal", {"format": "openai", "data": HELLO, "session_id": "../x"}, 422),
        ("session_id SQL-ish", {"format": "openai", "data": HELLO, "session_id": INJECTION}, 422),
        ("session_id already mine", {"format": "openai", "data": HELLO, "session_id": "{alice}"}, 409),
        ("a message too long", {"format": "openai", "data": [{"role": "user", "content": long}]}, 422),
    ]  # fmt: skip
    for name, body, status in imports:
        yield Bad(f"import: {name}", "POST", "/sessions/import", status, None, body)

    reconcile = "/manage/reconcile"
    yield Bad("reconcile: not an admin", "POST", reconcile, 403, "forbidden", {"owner": "alice"})
    yield Bad("reconcile: anonymous", "POST", reconcile, 403, "forbidden", {}, caller=ANONYMOUS)
    for name, body in [("owner empty", {"owner": ""}), ("owner a number", {"owner": 5}), ("owner 300 characters",
                       {"owner": "o" * 300}), ("session_id traversal", {"session_id": "../x"}),
                       ("session_id SQL-ish", {"session_id": INJECTION})]:  # fmt: skip
        yield Bad(f"reconcile: {name}", "POST", reconcile, 422, "invalid_request", body, caller=ADMIN)


def identity_and_query_cases() -> Iterator[Bad]:
    users = [
        ("erase another user, not an admin", "/users/bob", 403, "forbidden", ALICE),
        ("erase an SQL-ish user, not an admin", "/users/'%20OR%201=1%20--", 403, "forbidden", ALICE),
        ("erase me, anonymous", "/users/me", 403, "forbidden", ANONYMOUS),
        ("erase a user id with NUL", "/users/a%00b", 422, "invalid_id", ADMIN),
        ("erase a user id with CRLF", "/users/a%0d%0ab", 422, "invalid_id", ADMIN),
        ("erase a user id of 300 characters", "/users/" + "u" * 300, 422, "invalid_id", ADMIN),
        ("erase a user id with a slash", "/users/a%2Fb", frozenset({404, 405}), None, ADMIN),
    ]
    for name, path, status, code, caller in users:
        yield Bad(name, "DELETE", path, status, code, caller=caller)

    for name, params in [
        ("continuation SQL-ish", {"continuation": INJECTION}),
        ("continuation base64 of an SQL-ish session", {"continuation": b64(f"2020-01-01|{INJECTION}".encode())}),
        ("continuation with NUL", {"continuation": "\x00"}),
        ("continuation 600 characters", {"continuation": "c" * 600}),
        ("continuation not base64", {"continuation": "%%%"}),
    ]:
        yield Bad(f"list: {name}", "GET", "/sessions", 400, None, params=params)
    for name, params in [
        ("limit SQL-ish", {"limit": "1 OR 1=1"}),
        ("limit negative", {"limit": "-1"}),
        ("limit exponent", {"limit": "1e3"}),
        ("limit empty", {"limit": ""}),
        ("limit 10**30", {"limit": "1" + "0" * 30}),
        ("unknown parameter", {"owner": "bob"}),
    ]:
        yield Bad(f"list: {name}", "GET", "/sessions", 422, "invalid_request", params=params)

    deep_principal = b64(deep(5000))
    headers = [
        ("principal id of 300 characters", {"X-MS-CLIENT-PRINCIPAL-ID": "p" * 300}),
        ("principal id with a tab", {"X-MS-CLIENT-PRINCIPAL-ID": "alice\tbob"}),
        ("claims not base64", {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL": "%%%"}),
        ("claims a JSON list", {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL": b64(b"[]")}),
        ("claims null", {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL": b64(b"null")}),
        ("claims a string", {"X-MS-CLIENT-PRINCIPAL-ID": "alice", "X-MS-CLIENT-PRINCIPAL": b64(b'{"claims": "x"}')}),
        ("claims 5000 levels deep", {"X-MS-CLIENT-PRINCIPAL-ID": "root", "X-MS-CLIENT-PRINCIPAL": deep_principal}),
    ]
    for name, header in headers:
        for method, path in (
            ("GET", "/sessions"),
            ("GET", "/analytics"),
            ("GET", "/sessions/{alice}/audit"),
            ("POST", "/manage/reconcile"),
            ("DELETE", "/users/bob"),
        ):
            yield Bad(f"{method} {path}: {name}", method, path, 400, "invalid_principal", caller=header)


WRONG_METHODS = [
    ("PUT", "/sessions/import"),
    ("GET", "/sessions/{alice}/fork"),
    ("PATCH", "/sessions/{alice}/fork"),
    ("PUT", "/sessions/{alice}/export"),
    ("POST", "/sessions/{alice}/audit"),
    ("DELETE", "/sessions/{alice}/analytics"),
    ("GET", "/manage/reconcile"),
    ("DELETE", "/manage/reconcile"),
    ("POST", "/users/me"),
    ("GET", "/users/bob"),
    ("PUT", "/analytics"),
    ("DELETE", "/openapi.json"),
    ("DELETE", "/chat"),
    ("POST", "/sessions"),
]


def catalogue() -> list[Bad]:
    cases = [*body_route_cases(), *id_cases(), *field_cases(), *identity_and_query_cases()]
    cases += [Bad(f"{method} {path}", method, path, 405, "method_not_allowed") for method, path in WRONG_METHODS]
    # A literal route under a template (`sessions/import` beside `sessions/{session_id}`) names its own methods.
    cases.append(Bad("OPTIONS /sessions/import", "OPTIONS", "/sessions/import", 405, allow=frozenset({"POST"})))
    names = [case.name for case in cases]
    assert len(names) == len(set(names)), "catalogue names must be unique"
    return cases


def send(api: httpx.Client, case: Bad, ids: dict[str, str]) -> httpx.Response:
    path = case.path.format(**ids) if "{" in case.path else case.path
    body: dict[str, Any] = {}
    if case.json is not None:
        body["content"] = json.dumps(case.json).replace('"{alice}"', f'"{ids["alice"]}"').encode()
        body["content"] = body["content"].replace(b'"{bob}"', f'"{ids["bob"]}"'.encode())
        body["headers"] = {**JSON, **case.caller, **case.headers}
    else:
        body["content"] = case.content
        body["headers"] = {**case.caller, **case.headers}
    return api.request(case.method, path, params=case.params, **body)


@pytest.fixture
def seeded(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> Iterator[tuple[httpx.Client, dict[str, str], dict[str, str]]]:
    """A server holding real data: alice's two-turn session, bob's session and an anonymous one."""
    env = make_env(**LIMITS)
    with client(live_server(env).url) as api:
        alice = api.post("/chat", json={"message": "hello"}, headers=ALICE).json()["session_id"]
        assert api.post("/chat", json={"message": "more", "session_id": alice}, headers=ALICE).status_code == 200
        bob = api.post("/chat", json={"message": "hi, I am bob"}, headers=BOB).json()["session_id"]
        assert api.post("/chat", json={"message": "anonymous hello"}).status_code == 200
        yield api, env, {"alice": alice, "bob": bob}


async def test_every_hostile_request_is_a_4xx_json_error_and_changes_no_stored_data(
    seeded: tuple[httpx.Client, dict[str, str], dict[str, str]], models: dict[str, FakeModelServer]
) -> None:
    api, env, ids = seeded
    before = await store_state(env)
    calls_before = sum(len(server.requests) for server in models.values())
    cases = catalogue()
    failures = []
    for case in cases:
        try:
            response = send(api, case, ids)
        except AssertionError as exc:  # the document check of the client
            failures.append(f"{case.name}: {exc}")
            continue
        expected = case.status if isinstance(case.status, frozenset) else frozenset({case.status})
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        problem = None
        if response.status_code >= 500 or response.status_code not in expected:
            problem = f"status {response.status_code}, expected {sorted(expected)}"
        elif body is None or set(body) != {"error"}:
            problem = f"not a JSON error: {response.text[:200]}"
        elif case.code is not None and body["error"]["code"] != case.code:
            problem = f"code {body['error']['code']}, expected {case.code}"
        elif response.status_code == 405:
            allow = {method.strip() for method in response.headers.get("allow", "").split(",")} - {"HEAD", ""}
            if case.method in allow or (case.allow is not None and allow != case.allow):
                problem = f"Allow: {sorted(allow)}"
        if problem:
            failures.append(f"{case.name}: {problem} ({response.text[:160]})")
    assert not failures, f"{len(failures)} of {len(cases)} hostile requests misbehaved:\n" + "\n".join(failures)

    after = await store_state(env)
    assert after["blobs"] == before["blobs"], "a hostile request changed Blob Storage"
    assert after["cosmos"]["turns"] == before["cosmos"]["turns"], "a hostile request changed turn records"
    assert after["cosmos"]["sessions"] == before["cosmos"]["sessions"], "a hostile request changed summaries"
    audit_before, audit_after = before["cosmos"]["audit"], after["cosmos"]["audit"]
    assert {key: audit_after.get(key) for key in audit_before} == audit_before, "an audit event was altered"
    added = [doc for key, doc in audit_after.items() if key not in audit_before]
    assert {doc["outcome"] for doc in added} <= {"rejected", "not_found", "forbidden"}, added
    assert sum(len(server.requests) for server in models.values()) == calls_before, "a hostile request reached a model"
    assert len(cases) > 300


async def test_spoofed_principal_headers_are_ignored_when_they_are_not_trusted(
    live_server: Callable[..., LiveServer], make_env: Callable[..., dict[str, str]]
) -> None:
    env = make_env(TRUST_PRINCIPAL_HEADERS="true")
    trusted = live_server(env)
    with client(trusted.url, ALICE) as api:
        alice = api.post("/chat", json={"message": "alice's secret plans"}).json()["session_id"]
    trusted.stop()
    before = await store_state(env)

    untrusted = live_server({**env, "TRUST_PRINCIPAL_HEADERS": "false"})
    spoofed_alice = {**ALICE, "X-MS-CLIENT-PRINCIPAL-NAME": "alice@example.com"}
    spoofed_admin = principal("alice", roles=["admin"])
    with client(untrusted.url) as api:
        responses = {
            "read": api.get(f"/sessions/{alice}", headers=spoofed_alice),
            "resume": api.post(f"/sessions/{alice}/resume", headers=spoofed_alice),
            "continue": api.post("/chat", json={"message": "mine now", "session_id": alice}, headers=spoofed_alice),
            "export": api.get(f"/sessions/{alice}/export", headers=spoofed_alice),
            "fork": api.post(f"/sessions/{alice}/fork", json={"at_turn": 1}, headers=spoofed_alice),
            "analytics": api.get(f"/sessions/{alice}/analytics", headers=spoofed_alice),
            "audit": api.get(f"/sessions/{alice}/audit", headers=spoofed_admin),
            "delete": api.delete(f"/sessions/{alice}", headers=spoofed_alice),
        }
        listing = api.get("/sessions", headers=spoofed_alice)
        erase_me = api.delete("/users/me", headers=spoofed_alice)
        erase_alice = api.delete("/users/alice", headers=spoofed_admin)
        reconcile = api.post("/manage/reconcile", json={}, headers=spoofed_admin)

    for action, response in responses.items():
        assert response.status_code == 404, (action, response.text)
        assert response.json()["error"]["code"] == "session_not_found", action
    assert listing.status_code == 200 and listing.json()["sessions"] == []
    for response in (erase_me, erase_alice, reconcile):
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden", response.text
    after = await store_state(env)
    assert after["blobs"] == before["blobs"]
    assert (after["cosmos"]["turns"], after["cosmos"]["sessions"]) == (
        before["cosmos"]["turns"],
        before["cosmos"]["sessions"],
    )
    # Whatever the headers claimed, every attempt is recorded as the anonymous caller's, and none succeeded.
    added = [doc for key, doc in after["cosmos"]["audit"].items() if key not in before["cosmos"]["audit"]]
    assert added and {(doc["actor"], doc["admin"]) for doc in added} == {(ANONYMOUS_OWNER, False)}
    assert {doc["outcome"] for doc in added} == {"not_found", "forbidden"}


async def test_injection_shaped_identities_and_tokens_that_are_well_formed_only_reach_the_callers_own_data(
    seeded: tuple[httpx.Client, dict[str, str], dict[str, str]],
) -> None:
    api, env, ids = seeded
    before = await store_state(env)
    sneaky = principal(INJECTION)
    # A token of the right shape whose time part is SQL-ish: it is a query parameter, never query text.
    crafted = base64.urlsafe_b64encode(f"{INJECTION} OR c.userId != ''|abc".encode()).decode().rstrip("=")
    own = api.get("/sessions", headers=sneaky)
    paged = api.get("/sessions", params={"continuation": crafted}, headers=ALICE)
    erased = api.delete(f"/users/{INJECTION}", headers=ADMIN)
    reconciled = api.post("/manage/reconcile", json={"owner": INJECTION}, headers=ADMIN)
    assert own.status_code == 200 and own.json()["sessions"] == []
    assert paged.status_code == 200
    assert {item["session_id"] for item in paged.json()["sessions"]} <= {ids["alice"]}
    assert erased.status_code == 200 and erased.json()["sessions_deleted"] == 0
    assert erased.json()["records_deleted"] == 0 and erased.json()["user_id"] == INJECTION
    assert reconciled.status_code == 200 and reconciled.json()["sessions_checked"] == 0
    after = await store_state(env)
    assert after["blobs"] == before["blobs"]
    assert (after["cosmos"]["turns"], after["cosmos"]["sessions"]) == (
        before["cosmos"]["turns"],
        before["cosmos"]["sessions"],
    )
    # The only new records are the erasure's proof, filed under the hashed key of the odd principal id.
    added = [doc for key, doc in after["cosmos"]["audit"].items() if key not in before["cosmos"]["audit"]]
    assert [(doc["action"], doc["userId"]) for doc in added] == [("erase_user", owner_key(INJECTION))]
