"""PII redaction: what is masked, the look-alikes that are not, and that nothing personal is stored when it is on."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient

from shared.config import Settings, SettingsError
from shared.domain.redaction import Redactor, iban_valid, luhn_valid, parse_extra_patterns
from tools.fake_model import Behaviour, FakeModelServer

MINIMAL = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "COSMOS_ENDPOINT": "https://127.0.0.1:8081/"}
EXTRA = json.dumps([{"name": "EMPLOYEE_ID", "pattern": r"EMP-\d{6}"}])
REDACTOR = Redactor(parse_extra_patterns(EXTRA))

EMAIL, PHONE, IBAN = "jane.doe@contoso.com", "+1 (425) 555-0199", "DE89 3704 0044 0532 0130 00"
CARD, IP, EMPLOYEE = "4111 1111 1111 1111", "10.20.30.40", "EMP-204518"
PERSONAL = (EMAIL, PHONE, IBAN, CARD, IP, EMPLOYEE)
MESSAGE = (
    f"Hi, I'm Jane ({EMAIL}, {PHONE}). Refund to {IBAN}, not card {CARD}. "
    f"My laptop is {IP}, badge {EMPLOYEE}. Order #123-456-7890 from 2024-03-15."
)
MASKED = (
    "Hi, I'm Jane ([EMAIL], [PHONE]). Refund to [IBAN], not card [CARD]. "
    "My laptop is [IP], badge [EMPLOYEE_ID]. Order #123-456-7890 from 2024-03-15."
)
ALL_KINDS = ["CARD", "EMAIL", "EMPLOYEE_ID", "IBAN", "IP", "PHONE"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe+billing@mail.contoso.co.uk today", "write to [EMAIL] today"),
        ("call +44 20 7946 0958 or +1 (425) 555-0199", "call [PHONE] or [PHONE]"),
        ("my cell is 425-555-0199.", "my cell is [PHONE]."),
        ("office (030) 1234 5678", "office [PHONE]"),
        ("Phone: 030 1234567, thanks", "Phone: [PHONE], thanks"),
        ("visa 4111111111111111 ok", "visa [CARD] ok"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("card 4111 1111 1111 1111 exp 12/26", "card [CARD] exp 12/26"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("GB82 WEST 1234 5698 7654 32", "[IBAN]"),
        ("ssh to 10.0.0.1.", "ssh to [IP]."),
        ("gateway 192.168.1.254/24", "gateway [IP]/24"),
        ("bare 1.2.3.4 is an address", "bare [IP] is an address"),
        ("v6 2001:db8::8a2e:370:7334 and ::1", "v6 [IP] and [IP]"),
        ("link-local fe80::1%eth0", "link-local [IP]"),
        ("mapped ::ffff:192.168.1.1", "mapped [IP]"),
        ("badge EMP-204518", "badge [EMPLOYEE_ID]"),
    ],
)
def test_personal_data_is_masked_by_kind(text: str, masked: str) -> None:
    assert REDACTOR.redact(text)[0] == masked


@pytest.mark.parametrize(
    "text",
    [
        "Order #123-456-7890 shipped",  # '#' makes it an identifier, not a phone
        "order 123-456-7890 shipped",
        "invoice no. 555-123-4567",
        "on 2024-03-15 and 15/03/2024 and 03/15/2024",
        "at 12:30:45 or 12:30",
        "ISBN 978-3-16-148410-0",
        "see 978-3-16-148410-0",
        "release v1.2.3 and 1.2.3 and v1.2.3.4",
        "version 1.2.3.4 and build 10.0.19045.1",
        "dotted 1.2.3.4.5 and 256.1.1.1 and 192.168.001.1",
        "4111 1111 1111 1112",  # fails Luhn
        "4111111111111112",
        "DE89 3704 0044 0532 0130 01",  # fails mod-97
        "DE89370400440532013001",
        "XX00 1234 5678 9012 3456",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "id 12345678-1234-1234-1234-123456789012",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "mac 00:1A:2B:3C:4D:5E and std::vector and dead::beef",
        "pi 3.14159265358979323846 and $1,234,567.89",
        "EMP-12345 is too short for the pattern",
        "no digits or at signs here at all",
    ],
)
def test_look_alikes_are_not_masked(text: str) -> None:
    assert REDACTOR.redact(text) == (text, frozenset())


def test_masking_keeps_the_shape_reports_the_kinds_and_is_idempotent() -> None:
    masked, kinds = REDACTOR.redact(MESSAGE)
    assert masked == MASKED
    assert sorted(kinds) == ALL_KINDS
    assert REDACTOR.redact(masked) == (masked, frozenset())


def test_an_extra_pattern_wins_where_it_overlaps_a_built_in_kind() -> None:
    redactor = Redactor(parse_extra_patterns(json.dumps([{"name": "TICKET", "pattern": r"T-\d{3}-\d{3}-\d{4}"}])))
    assert redactor.redact("see T-425-555-0199") == ("see [TICKET]", frozenset({"TICKET"}))


def test_checksums_are_the_published_algorithms() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82WEST12345698765432") and iban_valid("NO9386011117947")
    assert not iban_valid("GB82WEST1234569876543")  # one character short for GB
    assert not iban_valid("GB83WEST12345698765432")


def test_messages_are_masked_in_copies_and_ids_and_roles_are_kept() -> None:
    messages = [
        {
            "type": "message",
            "role": "user",
            "message_id": "msg-4111111111111111",
            "contents": [{"type": "text", "text": f"mail {EMAIL}", "additional_properties": {}}],
        }
    ]
    original = copy.deepcopy(messages)
    masked, kinds = REDACTOR.redact_messages(messages)
    assert masked[0]["contents"][0]["text"] == "mail [EMAIL]"
    assert masked[0]["message_id"] == "msg-4111111111111111" and masked[0]["role"] == "user"
    assert kinds == {"EMAIL"} and messages == original


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "X", "pattern": "x"}', "JSON list"),
        ('[{"name": "employee", "pattern": "EMP"}]', r"\[0\]\.name must match"),
        ('[{"name": "EMAIL", "pattern": "x"}]', "already taken"),
        ('[{"name": "A", "pattern": "a"}, {"name": "A", "pattern": "b"}]', r"\[1\]\.name 'A' is already taken"),
        ('[{"name": "A", "pattern": "(unclosed"}]', r"\[0\]\.pattern is not a valid regular expression"),
        ('[{"name": "A", "pattern": "x*"}]', "matches the empty string"),
        ('[{"name": "A"}]', 'exactly "name" and "pattern"'),
    ],
)
def test_malformed_extra_patterns_fail_at_settings_load_saying_why(value: str, named: str) -> None:
    with pytest.raises(SettingsError, match="PII_EXTRA_PATTERNS") as raised:
        Settings.from_env({**MINIMAL, "PII_EXTRA_PATTERNS": value})
    assert raised.match(named)


def test_masking_what_the_model_sees_requires_masking_what_is_stored() -> None:
    with pytest.raises(SettingsError, match="PII_REDACT_BEFORE_MODEL=true needs PII_REDACTION=true"):
        Settings.from_env({**MINIMAL, "PII_REDACT_BEFORE_MODEL": "true"})
    settings = Settings.from_env({**MINIMAL, "PII_REDACTION": "true", "PII_EXTRA_PATTERNS": EXTRA})
    assert settings.pii_redaction and not settings.pii_redact_before_model
    assert [pattern.name for pattern in settings.pii_extra_patterns] == ["EMPLOYEE_ID"]


def without_context(extra: Mapping[str, Any]) -> dict[str, Any]:
    """A turn record's extra without its context note, which must hold no text of the conversation."""
    note = extra.get("context", {})
    assert all(isinstance(value, int | float | str | bool | list | dict | None) for value in note.values())
    assert not [value for value in PERSONAL if value in json.dumps(note)]
    return {key: value for key, value in extra.items() if key != "context"}


async def stored_bytes(env: dict[str, str]) -> bytes:
    """Every blob of the test's container, decompressed: what is really at rest."""
    found = b""
    async with ContainerClient.from_connection_string(
        env["STORAGE_CONNECTION_STRING"], env["SNAPSHOT_CONTAINER"]
    ) as container:
        async for blob in container.list_blobs():
            data = await (await container.download_blob(blob.name)).readall()
            found += gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    return found


async def test_with_redaction_on_nothing_personal_is_stored_but_the_client_gets_the_real_reply(
    make_env: Callable[..., dict[str, str]], make_services: Callable[..., Any]
) -> None:
    env = make_env(PII_REDACTION="true", PII_EXTRA_PATTERNS=EXTRA)
    services = await make_services(env)
    result = await services.conversations.chat("alice", MESSAGE, route="local")
    again = await services.conversations.chat("alice", f"also {EMAIL}?", result.session_id, route="local")

    assert EMAIL in result.reply  # the fake model echoes the prompt; the client sees the model's words
    snapshot = await services.snapshots.load("alice", result.session_id)
    assert snapshot.openai_messages()[0] == {"role": "user", "content": MASKED}
    assert "[EMAIL]" in snapshot.openai_messages()[1]["content"]
    assert snapshot.af_messages()[0]["contents"][0]["text"] == MASKED
    stored_text = json.dumps([snapshot.openai_messages(), snapshot.af_messages()])
    assert not [value for value in PERSONAL if value in stored_text]
    # Besides the redaction note, a record holds only the context note (numbers: no text of the conversation).
    assert without_context(result.record.extra) == {"redaction": {"applied": True, "kinds": ALL_KINDS}}
    assert without_context(again.record.extra) == {"redaction": {"applied": True, "kinds": ["EMAIL"]}}
    cosmos = await services.metadata.session_turns("alice", result.session_id)
    # Cosmos keeps of the notes only what analytics read: the context's mode and token estimate (no redaction note).
    kept = ("mode", "estimated_tokens")
    expected = [{"context": {key: r.extra["context"][key] for key in kept}} for r in (result.record, again.record)]
    assert [record.extra for record in cosmos] == expected
    at_rest = await stored_bytes(env)
    assert b"[EMAIL]" in at_rest and not [value for value in PERSONAL if value.encode() in at_rest]


async def test_with_redaction_off_the_conversation_is_stored_as_written(
    make_services: Callable[..., Any],
) -> None:
    services = await make_services()
    result = await services.conversations.chat("alice", MESSAGE, route="local")
    snapshot = await services.snapshots.load("alice", result.session_id)
    assert snapshot.openai_messages()[0]["content"] == MESSAGE
    assert without_context(result.record.extra) == {}


async def test_cloud_backends_are_sent_masked_text_and_the_local_backend_the_original(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(PII_REDACTION="true", PII_REDACT_BEFORE_MODEL="true", PII_EXTRA_PATTERNS=EXTRA)
    first = await services.conversations.chat("alice", MESSAGE, route="local")
    local_saw = models["local"].requests[-1]["json"]["messages"]
    assert local_saw[-1] == {"role": "user", "content": MESSAGE}

    second = await services.conversations.chat("alice", f"and my other mail {EMAIL}", first.session_id, route="cloud")
    cloud_saw = models["cloud"].requests[-1]["json"]["messages"]
    assert [message["content"] for message in cloud_saw if message["role"] == "user"] == [
        MASKED,
        "and my other mail [EMAIL]",
    ]
    assert not [value for value in PERSONAL if value in json.dumps(cloud_saw)]
    assert without_context(second.record.extra) == {"redaction": {"applied": True, "kinds": ["EMAIL"]}}


async def test_a_fallback_from_the_cloud_to_the_local_backend_sends_the_original_again(
    make_services: Callable[..., Any], models: dict[str, FakeModelServer]
) -> None:
    services = await make_services(PII_REDACTION="true", PII_REDACT_BEFORE_MODEL="true")
    models["cloud"].script(Behaviour.error(503))
    result = await services.conversations.chat("alice", f"mail {EMAIL}", route="cloud")
    assert result.record.backend == "local" and result.record.fallback_from == "cloud"
    assert models["cloud"].requests[-1]["json"]["messages"][-1]["content"] == "mail [EMAIL]"
    assert models["local"].requests[-1]["json"]["messages"][-1]["content"] == f"mail {EMAIL}"
