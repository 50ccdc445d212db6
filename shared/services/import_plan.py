"""Import, export and fork as pure plans: plain values in, the new session's entries out (`now` passed in).

Import accepts four formats and turns each into the same thing, a new session's entries:

    openai               a list of Chat Completions messages ({"role", "content"}, text parts, tool calls)
    agent_session        an `AgentSession.to_dict()` payload (agent-framework-core 1.x)
    agent_thread_legacy  a pre-1.0 `AgentThread` serialization ({"type": "agent_thread_state",
                         "chat_message_store_state": {"messages": [{"type": "chat_message", ...}]}}), which
                         today's `AgentSession.from_dict` cannot read; its messages are rewritten as 1.x dicts
    export               our own export document (below), for a lossless round trip

Everything is validated before the first write, and a refusal names the exact place, so a bad import
creates nothing (the message checks are `shared.agents.formats`).

Turns. Messages are grouped into turns the way a live session stores them: a user message and every message
up to the next user message form one turn; messages before the first user message (system instructions,
an assistant greeting) belong to turn 1. An export keeps its own grouping (each exported turn says how many
messages it holds). System messages are stored in the history like any other message, and the turn sends
them to the model on every later turn (`shared.domain.context` pins them when it fits older turns to a window).

Carried turns. A turn that did not run in this session (imported, or copied by a fork) is stored with
`imported=True` and no routing of its own (`shared.domain.records.carried_record`), so a session's analytics
and an owner's totals count only exchanges that really ran there and nothing is counted twice.

Export is one JSON document: `schema`/`schema_version`, the session envelope (ids, times, Agent Framework
version, lineage), the OpenAI-format messages, the native `AgentSession` payload, every turn record
(each with its `message_count`) and the summaries of older turns (`context_summaries`). Importing it gives the
same transcript and the same summaries.

With PII_REDACTION on, imported messages are masked before they are stored, like a live turn's.

Fork copies turns 1..n of a session into a new session of the same owner, with its lineage
(`{"kind": "fork", "source_session_id", "source_turn"}`) in the snapshot envelope, and the summaries that
cover nothing after turn n; the source is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.agents.formats import ImportLimits, af_messages, openai_messages_to_af
from shared.agents.session import check_restorable, history_path, parse_payload, payload_of
from shared.domain.clock import utc_iso
from shared.domain.context_summary import ContextSummary, covering
from shared.domain.errors import InvalidFork, InvalidImport
from shared.domain.feedback import Feedback
from shared.domain.messages import openai_of
from shared.domain.records import Entry, TurnRecord, carried_record, imported_record
from shared.domain.redaction import Redactor, redaction_note
from shared.domain.sessions import Snapshot, new_snapshot
from shared.domain.shapes import as_list, as_object, kind_of, shown
from shared.storage.codec import AGENT_FRAMEWORK_VERSION

FORMATS = ("openai", "agent_session", "agent_thread_legacy", "export")
EXPORT_SCHEMA = "hybrid-llm-router.export"
EXPORT_SCHEMA_VERSION = 1
SUPPORTED_EXPORT_VERSIONS = frozenset({1})
_SOURCE_ID_MAX = 128


@dataclass(frozen=True)
class ImportPlan:
    """A validated import: the new session's entries, its Agent Framework state and its lineage."""

    entries: tuple[Entry, ...]
    agent_state: Mapping[str, Any]
    lineage: Mapping[str, Any]
    feedback: Mapping[int, Feedback] = field(default_factory=dict)  # an export's, by turn
    summaries: tuple[ContextSummary, ...] = ()  # an export's summaries of older turns


def group_turns(roles: Sequence[str], where: str) -> list[tuple[int, int]]:
    """(start, end) of each turn: a user message and what follows it up to the next user message; anything
    before the first user message (system instructions, a greeting) joins turn 1."""
    starts = [index for index, role in enumerate(roles) if role == "user"]
    if not starts:
        raise InvalidImport(where, "has no user message; a conversation needs at least one")
    starts[0] = 0
    return [(start, end) for start, end in zip(starts, [*starts[1:], len(roles)], strict=True)]


def _entries(
    messages: Sequence[dict[str, Any]], spans: Sequence[tuple[int, int]], now: datetime, fmt: str
) -> tuple[Entry, ...]:
    entries: list[Entry] = []
    for number, (start, end) in enumerate(spans, start=1):
        group = messages[start:end]
        entries.append(Entry(imported_record(number, group, now, fmt), tuple(group), tuple(map(openai_of, group))))
    return tuple(entries)


def _source_id(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= _SOURCE_ID_MAX and value.isprintable() else None


# ---- the four formats (pure) -------------------------------------------------------------------------------------


def _from_openai(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    if not isinstance(data, list):
        raise InvalidImport("data", f"must be a list of messages for format openai, got {kind_of(data)}")
    messages = openai_messages_to_af(data, "data", limits)
    check_restorable({}, messages, "data")
    spans = group_turns([message["role"] for message in messages], "data")
    return ImportPlan(_entries(messages, spans, now, "openai"), {}, {"kind": "import", "format": "openai"})


def _from_agent_session(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    payload = as_object(data, "data")
    agent_state, messages = parse_payload(payload, "data", limits)
    spans = group_turns([message["role"] for message in messages], history_path("data"))
    lineage = {"kind": "import", "format": "agent_session", "source_session_id": _source_id(payload.get("session_id"))}
    return ImportPlan(_entries(messages, spans, now, "agent_session"), agent_state, lineage)


def _from_legacy_thread(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    payload = as_object(data, "data")
    if payload.get("type") not in ("agent_thread_state", None):
        raise InvalidImport("data.type", f"must be 'agent_thread_state', got {shown(payload.get('type'))}")
    if payload.get("service_thread_id") is not None:
        raise InvalidImport("data.service_thread_id", "must be null: history kept by a service is not in the payload")
    store = as_object(payload.get("chat_message_store_state"), "data.chat_message_store_state")
    where = "data.chat_message_store_state.messages"
    messages = af_messages(store.get("messages"), where, limits, legacy=True)
    check_restorable({}, messages, "data.chat_message_store_state")
    spans = group_turns([message["role"] for message in messages], where)
    return ImportPlan(
        _entries(messages, spans, now, "agent_thread_legacy"), {}, {"kind": "import", "format": "agent_thread_legacy"}
    )


def _from_export(data: object, now: datetime, limits: ImportLimits) -> ImportPlan:
    document = as_object(data, "data")
    if document.get("schema") != EXPORT_SCHEMA:
        raise InvalidImport("data.schema", f"must be {EXPORT_SCHEMA!r}, got {shown(document.get('schema'))}")
    version = document.get("schema_version")
    if version not in SUPPORTED_EXPORT_VERSIONS or isinstance(version, bool):
        raise InvalidImport("data.schema_version", f"must be one of {sorted(SUPPORTED_EXPORT_VERSIONS)}")
    envelope = as_object(document.get("session", {}), "data.session")
    agent_state, af = parse_payload(
        as_object(document.get("agent_session"), "data.agent_session"), "data.agent_session", limits
    )
    # The OpenAI form must be the same conversation: checked message by message against the native one.
    openai = openai_messages_to_af(document.get("messages"), "data.messages", limits)
    if len(openai) != len(af):
        raise InvalidImport("data.messages", f"has {len(openai)} messages but data.agent_session has {len(af)}")
    for index, (ours, theirs) in enumerate(zip(af, openai, strict=True)):
        if openai_of(ours) != openai_of(theirs):
            raise InvalidImport(f"data.messages[{index}]", "differs from the same message in data.agent_session")
    turns = as_list(document.get("turns"), "data.turns")
    records, spans = _export_turns(turns, len(af))
    source = _source_id(envelope.get("session_id"))
    extra = {"import_format": "export", **({"source_session_id": source} if source else {})}
    entries = tuple(
        Entry(
            carried_record(record, turn=record.turn, now=now, reason="imported (export)", extra=extra),
            tuple(af[begin:end]),
            tuple(map(openai_of, af[begin:end])),
        )
        for record, (begin, end) in zip(records, spans, strict=True)
    )
    lineage = {"kind": "import", "format": "export", "source_session_id": source}
    summaries = _export_summaries(document.get("context_summaries"), len(entries))
    return ImportPlan(entries, agent_state, lineage, _export_feedback(turns), summaries)


def _export_summaries(stored: object, turns: int) -> tuple[ContextSummary, ...]:
    """An export's summaries of older turns (optional), each within the exported turns, oldest first."""
    if stored is None:
        return ()
    found: list[ContextSummary] = []
    for index, item in enumerate(as_list(stored, "data.context_summaries")):
        where = f"data.context_summaries[{index}]"
        try:
            summary = ContextSummary.from_dict(as_object(item, where))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidImport(where, f"is not a valid summary ({type(exc).__name__})") from None
        if summary.made_in_turn > turns:
            raise InvalidImport(f"{where}.made_in_turn", f"must be at most {turns}, the exported turns")
        found.append(summary)
    return tuple(sorted(found, key=lambda summary: (summary.through_turn, summary.made_in_turn)))


def _export_feedback(turns: list[Any]) -> dict[int, Feedback]:
    """The feedback an export's turns carry (already checked to be objects by `_export_turns`)."""
    found: dict[int, Feedback] = {}
    for index, item in enumerate(turns):
        stored = item.get("feedback")
        if stored is None:
            continue
        where = f"data.turns[{index}].feedback"
        try:
            found[index + 1] = Feedback.from_dict(as_object(stored, where))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidImport(where, f"is not valid feedback ({type(exc).__name__})") from None
    return found


def _export_turns(turns: list[Any], messages: int) -> tuple[list[TurnRecord], list[tuple[int, int]]]:
    """An export's turn records, each with the span of messages it says it holds (which must add up)."""
    records: list[TurnRecord] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for index, raw in enumerate(turns):
        where = f"data.turns[{index}]"
        item = as_object(raw, where)
        for key in ("turn", "started_at", "completed_at"):
            if key not in item:
                raise InvalidImport(f"{where}.{key}", "is required")
        try:
            record = TurnRecord.from_dict(item)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidImport(where, f"is not a valid turn record ({type(exc).__name__})") from None
        if record.turn != index + 1:
            raise InvalidImport(f"{where}.turn", f"must be {index + 1}, got {record.turn}")
        count = item.get("message_count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidImport(f"{where}.message_count", f"must be a positive integer, got {kind_of(count)}")
        if start + count > messages:
            raise InvalidImport(f"{where}.message_count", f"runs past the last of the {messages} messages")
        records.append(record)
        spans.append((start, start + count))
        start += count
    if not records:
        raise InvalidImport("data.turns", "has no turns")
    if start != messages:
        raise InvalidImport("data.turns", f"account for {start} of the {messages} messages")
    return records, spans


_PARSERS: Mapping[str, Callable[[object, datetime, ImportLimits], ImportPlan]] = {
    "openai": _from_openai,
    "agent_session": _from_agent_session,
    "agent_thread_legacy": _from_legacy_thread,
    "export": _from_export,
}


def plan_import(fmt: str, data: object, *, limits: ImportLimits, now: datetime) -> ImportPlan:
    """Validate `data` in format `fmt` and return what the new session will hold. Raises InvalidImport."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise InvalidImport("format", f"must be one of {', '.join(FORMATS)}, got {shown(fmt)}")
    return parser(data, now, limits)


def redacted(plan: ImportPlan, redactor: Redactor) -> ImportPlan:
    """The plan with personal data masked, as a live turn stores its messages when PII_REDACTION is on: an
    import must not be a way around it. Each record notes the kinds found (never the values)."""
    entries: list[Entry] = []
    for entry in plan.entries:
        messages, kinds = redactor.redact_messages(entry.af_messages)
        record = replace(entry.record, extra={**entry.record.extra, "redaction": redaction_note(kinds)})
        entries.append(Entry(record, tuple(messages), tuple(map(openai_of, messages))))
    feedback = {
        turn: replace(item, comment=redactor.redact(item.comment)[0]) if item.comment else item
        for turn, item in plan.feedback.items()
    }
    summaries = tuple(replace(item, text=redactor.redact(item.text)[0]) for item in plan.summaries)
    return replace(plan, entries=tuple(entries), feedback=feedback, summaries=summaries)


def imported_snapshot(plan: ImportPlan, session_id: str, owner: str, now: datetime) -> Snapshot:
    snapshot = new_snapshot(session_id, owner, now, lineage=dict(plan.lineage))
    return replace(
        snapshot,
        entries=plan.entries,
        agent_state=dict(plan.agent_state),
        feedback=dict(plan.feedback),
        summaries=plan.summaries,
    )


# ---- export and fork (pure) --------------------------------------------------------------------------------------


def export_document(snapshot: Snapshot, now: datetime) -> dict[str, Any]:
    """The whole session as one versioned JSON document (see the module docstring)."""
    return {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": utc_iso(now),
        "session": {
            "session_id": snapshot.session_id,
            "created_at": snapshot.created_at,
            "updated_at": snapshot.updated_at,
            "agent_framework_version": AGENT_FRAMEWORK_VERSION,
            "lineage": dict(snapshot.lineage) if snapshot.lineage else None,
            "turns": snapshot.turns,
        },
        "messages": snapshot.openai_messages(),
        "agent_session": payload_of(snapshot),
        "turns": [_exported_turn(entry, snapshot.feedback.get(entry.turn)) for entry in snapshot.entries],
        "context_summaries": [summary.to_dict() for summary in snapshot.summaries],
    }


def _exported_turn(entry: Entry, feedback: Feedback | None) -> dict[str, Any]:
    exported = {**entry.record.to_dict(), "message_count": len(entry.af_messages)}
    if feedback is not None:
        exported["feedback"] = feedback.to_dict()
    return exported


def fork_with(
    source: Snapshot,
    at_turn: int,
    then: ImportPlan | None,
    session_id: str,
    now: datetime,
) -> Snapshot:
    """Turns 1..at_turn of `source` (none when 0), then the turns of `then` (an import of what followed them in a
    client's version of the conversation), as a new session whose lineage points at `source` and `at_turn`."""
    base = _forked(source, at_turn, session_id, now)
    if then is None:
        return base
    carried = tuple(replace(entry, record=replace(entry.record, turn=at_turn + entry.turn)) for entry in then.entries)
    return replace(base, entries=(*base.entries, *carried))


def fork_snapshot(source: Snapshot, at_turn: int, session_id: str, now: datetime) -> Snapshot:
    """Turns 1..at_turn of `source` as a new session of the same owner, its lineage pointing back."""
    if isinstance(at_turn, bool) or not isinstance(at_turn, int) or not 1 <= at_turn <= source.turns:
        raise InvalidFork("at_turn", f"must be between 1 and {source.turns}, the session's turns")
    return _forked(source, at_turn, session_id, now)


def _forked(source: Snapshot, at_turn: int, session_id: str, now: datetime) -> Snapshot:
    """Turns 1..at_turn of `source` (none for 0), with their feedback and the summaries covering them."""
    extra = {"forked_from": source.session_id}
    entries = tuple(
        replace(
            entry,
            record=carried_record(
                entry.record, turn=entry.turn, now=now, reason=f"forked from turn {entry.turn}", extra=extra
            ),
        )
        for entry in source.entries[:at_turn]
    )
    lineage = {"kind": "fork", "source_session_id": source.session_id, "source_turn": at_turn}
    # The Agent Framework state besides history is only kept as of the latest turn; our agents keep none.
    return replace(
        new_snapshot(session_id, source.owner, now, lineage=lineage),
        entries=entries,
        agent_state=dict(source.agent_state),
        feedback={turn: feedback for turn, feedback in source.feedback.items() if turn <= at_turn},
        summaries=covering(source.summaries, at_turn),
    )
