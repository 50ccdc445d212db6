"""A conversation as plain values: the snapshot as loaded, and the summary Cosmos keeps per session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.domain.clock import utc_iso
from shared.domain.context_summary import ContextSummary
from shared.domain.errors import SessionConflict
from shared.domain.feedback import Feedback
from shared.domain.records import Entry, TurnRecord
from shared.domain.transcripts import Said, TranscriptKeys, extended, keys_of, said


@dataclass(frozen=True)
class Snapshot:
    """A whole conversation as loaded: the envelope's fields and every entry, oldest first.

    `agent_state` is the Agent Framework session state besides its history (the history is the entries'
    messages). The last fields say where the stored form stands, so the next save knows how to append; only
    the storage layer reads them.
    """

    session_id: str
    owner: str
    created_at: str
    updated_at: str
    entries: tuple[Entry, ...]
    agent_state: Mapping[str, Any] = field(default_factory=dict)
    lineage: Mapping[str, Any] | None = None
    feedback: Mapping[int, Feedback] = field(default_factory=dict)  # by turn number
    # Summaries of older turns for models with small windows (shared.domain.context), oldest first.
    summaries: tuple[ContextSummary, ...] = ()
    generation: int = 1
    snapshot_turns: int = 0
    snapshot_bytes: int = 0
    journal_bytes: int = 0
    etag: str | None = None  # of the snapshot blob as read: a compaction rewrites it only if unchanged
    # The journal blob as last read or written: its ETag (None: there was none) and the generation its metadata
    # names (0: none). A journal of an older generation than the snapshot's was left by a compaction.
    journal_etag: str | None = None
    journal_generation: int = 0
    named_journal: bool = False  # schema < 4: the journal's name carries the generation (rewritten at next save)
    # The transcript keys of the first N entries, (N, keys): carried from turn to turn so a turn hashes only its
    # own messages; recomputed whenever the entries are not those N.
    known_keys: tuple[int, TranscriptKeys] | None = field(default=None, compare=False, repr=False)

    @property
    def turns(self) -> int:
        return len(self.entries)

    @property
    def journal_turns(self) -> int:
        return self.turns - self.snapshot_turns

    @property
    def records(self) -> list[TurnRecord]:
        return [entry.record for entry in self.entries]

    def openai_messages(self) -> list[dict[str, Any]]:
        return [dict(message) for entry in self.entries for message in entry.openai_messages]

    def af_messages(self) -> list[dict[str, Any]]:
        return [dict(message) for entry in self.entries for message in entry.af_messages]

    def with_feedback(self, turn: int, feedback: Feedback) -> Snapshot:
        if not 1 <= turn <= self.turns:
            raise SessionConflict(f"feedback on turn {turn} of a session of {self.turns} turns")
        return replace(self, feedback={**self.feedback, turn: feedback})

    def with_entry(
        self, entry: Entry, updated_at: str, agent_state: Mapping[str, Any], summary: ContextSummary | None = None
    ) -> Snapshot:
        """The session after a turn: its entry and, when the turn made one, a new summary of older turns."""
        if entry.turn != self.turns + 1:
            raise SessionConflict(f"turn {entry.turn} does not follow turn {self.turns}")
        summaries = self.summaries if summary is None else (*self.summaries, summary)
        keys = extended(self.transcript_keys().transcript, [said(message) for message in entry.openai_messages])
        return replace(
            self,
            entries=(*self.entries, entry),
            updated_at=updated_at,
            agent_state=dict(agent_state),
            summaries=summaries,
            known_keys=(self.turns + 1, keys),
        )

    def transcript_keys(self) -> TranscriptKeys:
        """How an OpenAI client's request finds this session (see `shared.domain.transcripts`)."""
        if self.known_keys is not None and self.known_keys[0] == self.turns:
            return self.known_keys[1]
        return keys_of(said_turns(self))


def new_snapshot(session_id: str, owner: str, now: datetime, lineage: Mapping[str, Any] | None = None) -> Snapshot:
    stamp = utc_iso(now)
    return Snapshot(
        session_id=session_id,
        owner=owner,
        created_at=stamp,
        updated_at=stamp,
        entries=(),
        lineage=lineage,
        generation=1,
    )


@dataclass(frozen=True)
class SessionSummary:
    """What Cosmos keeps per session (partition /userId); always derivable from the turn records."""

    session_id: str
    owner: str
    created_at: str
    last_active: str
    turns: int
    backends: Mapping[str, int]
    switches: int
    fallbacks: int
    input_tokens: int
    output_tokens: int
    cost: float
    title: str | None = None
    transcript_hash: str | None = None  # see shared.domain.transcripts: how OpenAI clients' requests find a session
    replay_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backends"] = dict(self.backends)
        return data


def summarize(session_id: str, owner: str, created_at: str, records: Sequence[TurnRecord]) -> SessionSummary:
    backends: dict[str, int] = {}
    for record in records:
        if record.backend:
            backends[record.backend] = backends.get(record.backend, 0) + 1
    return SessionSummary(
        session_id=session_id,
        owner=owner,
        created_at=created_at,
        last_active=records[-1].completed_at if records else created_at,
        turns=len(records),
        backends=backends,
        switches=sum(1 for record in records if record.switched_from),
        fallbacks=sum(1 for record in records if record.fallback_chain),
        input_tokens=sum(record.input_tokens for record in records),
        output_tokens=sum(record.output_tokens for record in records),
        cost=round(sum(record.cost + record.summary_cost for record in records), 8),
    )


def said_turns(snapshot: Snapshot) -> list[list[Said]]:
    """The stored transcript turn by turn, as OpenAI clients' requests are compared with it."""
    return [[said(message) for message in entry.openai_messages] for entry in snapshot.entries]


def summary_of(snapshot: Snapshot) -> SessionSummary:
    keys = snapshot.transcript_keys()
    summary = summarize(snapshot.session_id, snapshot.owner, snapshot.created_at, snapshot.records)
    return replace(summary, transcript_hash=keys.transcript, replay_hash=keys.replay)
