"""What `/v1/chat/completions` spends comparing a resent conversation with the stored one, at 500 turns.

    python -m bench.prefix [--turns 500] [--runs 30]

An OpenAI client sends the whole conversation on every call. The service validates every message (the rules an
import applies) and compares the conversation so far with the session's stored transcript, on the snapshot the
turn loads anyway (`tests/test_round_trips.py` asserts that a `/v1` turn makes a turn's round trips). This times
the in-process part on a seeded conversation of `--turns` exchanges: `ChatCompletions._checked` (validation,
masking when `PII_REDACTION` is on) and the comparison with `said_turns(snapshot)`, `--runs` times each, and
prints the sizes involved: the request body, and the stored snapshot compacted (gzip) and as JSON. No emulator
is needed; nothing is written. Times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from bench import prose
from bench.seed import make_entries
from bench.stack import MODELS
from shared.config import Settings
from shared.domain.sessions import Snapshot, said_turns
from shared.domain.transcripts import flat
from shared.services.completions import ChatCompletions, Completion
from shared.storage.codec import encode_snapshot

SETTINGS = {
    "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "COSMOS_ENDPOINT": "https://localhost:8081",
    "COSMOS_KEY": "a2V5",
    "LOCAL_MODEL_ENDPOINT": "http://localhost:11434/v1",
    "LOCAL_MODEL_NAME": "llama3.2",
    "IMPORT_MAX_MESSAGES": "5000",
}


def measure(turns: int, runs: int) -> dict[str, Any]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    entries = make_entries(prose.exchanges(4242, turns), tuple(MODELS), MODELS, start)
    snapshot = Snapshot(
        session_id="bench",
        owner="bench",
        created_at=start.isoformat(),
        updated_at=entries[-1].record.completed_at,
        entries=tuple(entries),
        generation=1,
    )
    sent = snapshot.openai_messages()
    completion = Completion("local", [*sent, {"role": "user", "content": "and next?"}], session_id="bench")
    completions = ChatCompletions(
        Settings.from_env(SETTINGS),
        conversations=SimpleNamespace(configured=("local",)),  # type: ignore[arg-type]  # only `models` reads it
        transfer=None,  # type: ignore[arg-type]
        metadata=None,  # type: ignore[arg-type]
    )
    validate, compare = [], []
    for _ in range(runs):
        began = time.perf_counter()
        prior, _message, _text = completions._checked(completion)
        checked = time.perf_counter()
        same = prior == flat(said_turns(snapshot))
        compare.append((time.perf_counter() - checked) * 1000)
        validate.append((checked - began) * 1000)
        assert same, "the resent conversation should equal the stored one"
    stored = encode_snapshot(snapshot)
    return {
        "turns": turns,
        "messages": len(sent),
        "request_body_bytes": len(json.dumps({"model": "local", "messages": completion.messages}).encode()),
        "snapshot_gzip_bytes": len(stored),
        "snapshot_json_bytes": len(gzip.decompress(stored)),
        "validate_ms": {"min": min(validate), "p50": statistics.median(validate)},
        "compare_ms": {"min": min(compare), "p50": statistics.median(compare)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    result = measure(args.turns, args.runs)
    r, kib = result, 1024
    print(
        f"{r['turns']} turns, {r['messages']} messages; request body {r['request_body_bytes'] / kib:.0f} KiB; "
        f"stored snapshot {r['snapshot_gzip_bytes'] / kib:.0f} KiB gzip "
        f"({r['snapshot_json_bytes'] / kib:.0f} KiB JSON)\n"
        f"validate: min {r['validate_ms']['min']:.1f} ms, p50 {r['validate_ms']['p50']:.1f} ms; "
        f"compare: min {r['compare_ms']['min']:.1f} ms, p50 {r['compare_ms']['p50']:.1f} ms"
    )


if __name__ == "__main__":
    main()
