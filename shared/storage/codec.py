"""The snapshot codec (pure): the versioned gzip envelope, journal members, and the blob index tags.

A snapshot blob holds the envelope (schema version, ids, times, lineage, the Agent Framework state besides
history, and every entry); each journal member holds one entry with the state after it. Readers accept every
schema version ever written (`SUPPORTED_SCHEMA_VERSIONS`).

Envelope schema 1 keeps the session state under `agent_session` with the outer keys of
`AgentSession.to_dict()` (`type`, `session_id`, `service_session_id`, `state`) and `messages_in` naming where
the history is (`entries[].af`), so a person reading a raw blob recognises it. That layout is this schema's,
fixed for as long as version 1 is read; the payload Agent Framework itself restores from is built by
`shared.agents.session` alone.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import metadata
from typing import Any

import orjson

from shared.domain.clock import parse_iso
from shared.domain.context_summary import ContextSummary
from shared.domain.errors import SnapshotCorrupt
from shared.domain.feedback import Feedback
from shared.domain.records import Entry
from shared.domain.sessions import Snapshot

logger = logging.getLogger(__name__)

# 2: feedback on turns (the envelope's `feedback`, journal members of kind `feedback`). A build that reads only
# version 1 refuses version 2 rather than silently dropping what it does not know and losing it at compaction.
# 3: summaries of older turns (the envelope's `context_summaries`; a turn member's `context_summary`).
# 4: one journal blob per session (`journal.jsonl.gz`, its generation in the blob's metadata) instead of one per
# generation (`journal-<generation>.jsonl.gz`), so a reader can fetch it beside the snapshot. A session written
# before is read as it is and rewritten in the new layout by its next save; a build that reads only up to
# version 3 refuses the new layout rather than reading a journal that is no longer written.
SCHEMA_VERSION = 4
SUPPORTED_SCHEMA_VERSIONS = frozenset({1, 2, 3, 4})
AGENT_FRAMEWORK_VERSION = metadata.version("agent-framework-core")


def _gzip(document: Mapping[str, Any]) -> bytes:
    # orjson: compact UTF-8 JSON, as json.dumps(ensure_ascii=False, separators=(",", ":")) writes it, in a
    # twentieth of the time (1 ms for a 500-turn conversation instead of 19).
    return gzip.compress(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) + b"\n", compresslevel=6, mtime=0)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return _gzip(
        {
            "schema_version": SCHEMA_VERSION,
            "kind": "snapshot",
            "session_id": snapshot.session_id,
            "owner": snapshot.owner,
            "created_at": snapshot.created_at,
            "updated_at": snapshot.updated_at,
            "agent_framework_version": AGENT_FRAMEWORK_VERSION,
            "journal_generation": snapshot.generation,
            "lineage": snapshot.lineage,
            "agent_session": {
                "type": "session",
                "session_id": snapshot.session_id,
                "service_session_id": None,
                "state": dict(snapshot.agent_state),
                "messages_in": "entries[].af",
            },
            "entries": [entry.to_dict() for entry in snapshot.entries],
            "feedback": {str(turn): feedback.to_dict() for turn, feedback in sorted(snapshot.feedback.items())},
            "context_summaries": [summary.to_dict() for summary in snapshot.summaries],
        }
    )


def encode_journal_member(
    entry: Entry, updated_at: str, agent_state: Mapping[str, Any], summary: ContextSummary | None = None
) -> bytes:
    member = {
        "schema_version": SCHEMA_VERSION,
        "kind": "turn",
        "updated_at": updated_at,
        "agent_framework_version": AGENT_FRAMEWORK_VERSION,
        "agent_state": dict(agent_state),
        **entry.to_dict(),
    }
    if summary is not None:
        member["context_summary"] = summary.to_dict()
    return _gzip(member)


def encode_feedback_member(turn: int, feedback: Feedback) -> bytes:
    return _gzip({"schema_version": SCHEMA_VERSION, "kind": "feedback", "turn": turn, "feedback": feedback.to_dict()})


def _check_version(document: Mapping[str, Any], what: str) -> None:
    version = document.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise SnapshotCorrupt(
            f"{what} has schema version {version!r}; this build reads {sorted(SUPPORTED_SCHEMA_VERSIONS)}"
        )


def decode_snapshot(data: bytes) -> Snapshot:
    try:
        document = orjson.loads(gzip.decompress(data))
    except (OSError, EOFError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise SnapshotCorrupt(f"snapshot is not gzip JSON: {type(exc).__name__}") from None
    _check_version(document, "snapshot")
    entries = tuple(Entry.from_dict(item) for item in document["entries"])
    _check_sequence(entries, start=1)
    agent_session = document.get("agent_session") or {}
    return Snapshot(
        session_id=document["session_id"],
        owner=document["owner"],
        created_at=document["created_at"],
        updated_at=document["updated_at"],
        entries=entries,
        agent_state=dict(agent_session.get("state") or {}),
        lineage=document.get("lineage"),
        feedback=_feedback(document.get("feedback") or {}),
        summaries=tuple(ContextSummary.from_dict(item) for item in document.get("context_summaries") or ()),
        generation=int(document["journal_generation"]),
        snapshot_turns=len(entries),
        snapshot_bytes=len(data),
        named_journal=document["schema_version"] < 4,
    )


def decode_journal(data: bytes) -> list[dict[str, Any]]:
    """Every member of a journal, oldest first. A torn final member (a crash mid-append) is ignored."""
    members: list[dict[str, Any]] = []
    if not data:
        return members
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError):
        # Append Block is atomic, so a torn member should never exist; decode member by member to keep
        # every complete one if it ever does.
        text = _decompress_members(data)
    for line in text.splitlines():
        if line.strip():
            document = orjson.loads(line)
            _check_version(document, "journal member")
            members.append(document)
    return members


def _decompress_members(data: bytes) -> bytes:
    import zlib

    out: list[bytes] = []
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out.append(decompressor.decompress(data))
        except zlib.error:
            logger.error("journal has an unreadable member; %d bytes ignored", len(data))
            break
        if not decompressor.eof:
            logger.error("journal ends with a torn member; %d bytes ignored", len(data))
            out.pop()
            break
        data = decompressor.unused_data
    return b"".join(out)


def _check_sequence(entries: Sequence[Entry], start: int) -> None:
    for offset, entry in enumerate(entries):
        if entry.turn != start + offset:
            raise SnapshotCorrupt(f"turn {entry.turn} found where turn {start + offset} was expected")


def _feedback(stored: Mapping[str, Any]) -> dict[int, Feedback]:
    return {int(turn): Feedback.from_dict(item) for turn, item in stored.items()}


def apply_journal(snapshot: Snapshot, members: Sequence[Mapping[str, Any]], journal_bytes: int) -> Snapshot:
    entries = list(snapshot.entries)
    updated_at = snapshot.updated_at
    agent_state: Mapping[str, Any] = snapshot.agent_state
    feedback = dict(snapshot.feedback)
    summaries = list(snapshot.summaries)
    for member in members:
        if member.get("kind") == "feedback":
            feedback[int(member["turn"])] = Feedback.from_dict(member["feedback"])
            continue
        entry = Entry.from_dict(member)
        if entry.turn <= len(entries):
            continue  # already folded into the snapshot by a compaction
        if entry.turn != len(entries) + 1:
            raise SnapshotCorrupt(f"journal turn {entry.turn} found where turn {len(entries) + 1} was expected")
        entries.append(entry)
        if member.get("context_summary") is not None:
            summaries.append(ContextSummary.from_dict(member["context_summary"]))
        updated_at = member.get("updated_at", updated_at)
        agent_state = member.get("agent_state", agent_state)
    return replace(
        snapshot,
        entries=tuple(entries),
        updated_at=updated_at,
        agent_state=agent_state,
        feedback=feedback,
        summaries=tuple(summaries),
        journal_bytes=journal_bytes,
    )


def index_tags(snapshot: Snapshot) -> dict[str, str]:
    """Blob index tags on the snapshot: retention and erasure find sessions by these, without listing."""
    return {
        "owner": snapshot.owner,
        "session": snapshot.session_id,
        "lastActiveDay": parse_iso(snapshot.updated_at).strftime("%Y-%m-%d"),
        "schema": str(SCHEMA_VERSION),
    }
