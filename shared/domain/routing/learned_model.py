"""learned-v1's weights file (``learned-v1.json``): its format, its checksum, and the model read from it.

One JSON document, written by ``python -m tools.train_router``: the vocabulary the features and the follow-up
classifier read (copied from ``learned-v1.toml``), the bias, the weights, the decision threshold, the
conversation decay, the calibration quantiles and the record of how it was trained and how it scored on dev.
Everything is plain JSON that the C parser reads in a few milliseconds: the weights one object (feature name:
weight, 4 decimals), the common-word list a sorted array of crc32 hashes (``learned_features.word_hash``).
Nothing is base64 or hex but the checksum, so the secrets scan has nothing to waive but that one line.
``sha256`` covers the canonical JSON of everything else.

The file is read once, on first use (the first routed turn of a process), not at import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from shared.domain.routing.learned_features import FeatureSpec
from shared.domain.routing.learned_followups import FollowUpCues

MODEL_VERSION = "learned-v1"
WEIGHTS_PATH = Path(__file__).with_name("learned-v1.json")
VOCABULARY_PATH = Path(__file__).with_name("learned-v1.toml")


class Model(NamedTuple):
    bias: float
    weights: dict[str, float]
    threshold: float
    decay: float
    lookback: int
    rewrite_discount: float  # a social or reformat follow-up's own complexity is multiplied by this
    quantiles: tuple[float, ...]  # probability quantiles at 0%, 1%, ..., 100% of the calibration sample
    cloud_share: float  # of the training corpus, for ``prior``
    spec: FeatureSpec
    cues: FollowUpCues
    info: dict[str, Any]


def decode_weights(block: Mapping[str, Any]) -> dict[str, float]:
    """The weights as parsed, checked in one C-level pass (fsum fails on a non-number, is inf or nan on a bad one)."""
    weights = dict(block)
    if not math.isfinite(math.fsum(weights.values())):
        raise ValueError("a weight is not a finite number")
    return weights


def canonical_payload(doc: Mapping[str, Any]) -> bytes:
    """The bytes the checksum covers: everything but the checksum itself, canonical JSON (strict: no NaN or
    infinity, which the app's reader, orjson, refuses)."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def checksum(doc: Mapping[str, Any]) -> str:
    import hashlib  # only the trainer and the tests check it: not paid at import

    return hashlib.sha256(canonical_payload(doc)).hexdigest()


def verify_checksum(doc: Mapping[str, Any]) -> bool:
    return checksum(doc) == doc.get("sha256")


def from_document(doc: Mapping[str, Any]) -> Model:
    if doc.get("version") != MODEL_VERSION:
        raise RuntimeError(f"{WEIGHTS_PATH.name}: version {doc.get('version')!r}, expected {MODEL_VERSION}")
    vocabulary = doc["vocabulary"]
    return Model(
        bias=float(doc["bias"]),
        weights=decode_weights(doc["weights"]),
        threshold=float(doc["threshold"]),
        decay=float(doc["conversation"]["decay"]),
        lookback=int(doc["conversation"]["lookback"]),
        rewrite_discount=float(doc["conversation"].get("rewrite_discount", 1.0)),
        quantiles=tuple(float(q) for q in doc["calibration"]["quantiles"]),
        cloud_share=float(doc.get("trained_on", {}).get("cloud_share", 0.5)),
        spec=FeatureSpec.from_vocabulary(vocabulary),
        cues=FollowUpCues.from_vocabulary(vocabulary),
        info={k: doc[k] for k in ("version", "trained_on", "dev_scores", "sha256") if k in doc},
    )


def read(path: Path = WEIGHTS_PATH) -> Model:
    return from_document(orjson.loads(path.read_bytes()))  # 12,000 weights: a third of json's time, same floats
