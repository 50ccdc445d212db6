"""learned-v1: the shipped weights' integrity and recorded dev scores, its features, calibration.

Pure: no fixtures, no I/O beyond reading the weights file and the corpus' dev split. Timing is not asserted
(see ``python -m bench.routing_eval``).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import pytest

from shared.domain.routing import learned, learned_features, learned_model

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"


def _load(name: str) -> list[dict]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _doc() -> dict:
    return json.loads(learned.WEIGHTS_PATH.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------------------
# The weights file
# --------------------------------------------------------------------------------------------------------------


def test_weights_file_matches_its_checksum() -> None:
    doc = _doc()
    assert doc["version"] == learned.MODEL_VERSION == "learned-v1"
    assert learned.verify_checksum(doc)
    tampered = dict(doc, threshold=doc["threshold"] + 0.01)
    assert not learned.verify_checksum(tampered)


def test_checksum_pair_reads_as_the_secrets_scan_waiver_expects() -> None:
    text = learned.WEIGHTS_PATH.read_text(encoding="utf-8")
    assert len(re.findall(r'"sha256": ?"[0-9a-f]{64}"', text)) == 1


def test_weights_file_has_what_the_runtime_and_the_record_need() -> None:
    doc = _doc()
    assert 0.0 < doc["threshold"] < 1.0
    assert 0.0 < doc["conversation"]["decay"] <= 1.0
    q = doc["calibration"]["quantiles"]
    assert len(q) == 101 and q == sorted(q) and q[0] >= 0.0 and q[-1] <= 1.0
    weights = learned_model.decode_weights(doc["weights"])
    assert len(weights) > 100 and all(isinstance(w, float) for w in weights.values())
    assert weights == learned._model().weights
    assert {"single_turn_agreement", "follow_up_agreement", "cloud_share"} <= set(doc["dev_scores"])


def test_weights_are_checked_when_read() -> None:
    assert learned_model.decode_weights({"w:explain": 1.2345, "len:3": -2.0}) == {"w:explain": 1.2345, "len:3": -2.0}
    with pytest.raises(ValueError, match="finite"):
        learned_model.decode_weights({"w:explain": math.inf})
    with pytest.raises(TypeError):
        learned_model.decode_weights({"w:explain": "1.5"})


def test_nothing_in_the_weights_file_looks_like_a_secret_but_its_checksum() -> None:
    """Long base64 or hex strings would trip the secrets scan; only the sha256 line is waived."""
    for number, line in enumerate(learned.WEIGHTS_PATH.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith('"sha256"'):
            assert not re.search(r'"[A-Za-z0-9+/=]{40,}"', line), number


def test_shipped_vocabulary_is_the_toml_source() -> None:
    """learned-v1.toml is edited by hand; the weights file carries the copy the model was trained with."""
    with learned_model.VOCABULARY_PATH.open("rb") as fh:
        source = tomllib.load(fh)
    shipped = _doc()["vocabulary"]
    assert {k: shipped[k] for k in source} == source, "learned-v1.toml changed: retrain (python -m tools.train_router)"
    common = learned_features.decode_word_hashes(shipped["common_words"])
    assert shipped["common_words"]["words"] >= len(common) > 10_000  # (crc32 may merge a pair or two)
    assert learned_features.word_hash("which") in common and learned_features.word_hash("hyperloglog") not in common


def test_recorded_dev_scores_are_reproduced() -> None:
    """Recompute on the dev split exactly as tools/train_router.py records it."""
    recorded = _doc()["dev_scores"]
    dev = _load("single_dev.jsonl")
    decisions = [learned.route(r["text"]).cloud for r in dev]
    labels = [r["label"] == "cloud" for r in dev]
    assert recorded["single_turn_items"] == len(dev)
    assert recorded["single_turn_agreement"] == round(
        sum(d == y for d, y in zip(decisions, labels, strict=True)) / len(dev), 4
    )
    assert recorded["cloud_share"] == round(sum(decisions) / len(dev), 4)
    assert recorded["label_cloud_share"] == round(sum(labels) / len(dev), 4)
    follow = ok = 0
    for conv in _load("conversations_dev.jsonl"):
        routed = learned.route_conversation([t["text"] for t in conv["turns"]])
        for turn, r in list(zip(conv["turns"], routed, strict=True))[1:]:
            follow += 1
            ok += r.cloud == (turn["label"] == "cloud")
    assert recorded["follow_ups"] == follow
    assert recorded["follow_up_agreement"] == round(ok / follow, 4)


def test_dev_split_is_disjoint_from_train() -> None:
    train = {r["id"] for r in _load("single_train.jsonl")}
    dev = {r["id"] for r in _load("single_dev.jsonl")}
    assert train and dev and not train & dev
    train_c = {c["id"] for c in _load("conversations_train.jsonl")}
    dev_c = {c["id"] for c in _load("conversations_dev.jsonl")}
    assert not train_c & dev_c


# --------------------------------------------------------------------------------------------------------------
# Single turns
# --------------------------------------------------------------------------------------------------------------

GSM8K_STYLE = (
    "A bakery sells muffins for $3 each and cookies for $1.25 each. On Monday it sold 48 muffins and three times "
    "as many cookies. On Tuesday it sold 20% fewer muffins and half as many cookies as on Monday. How much more "
    "money did the bakery make on Monday than on Tuesday?"
)


@pytest.mark.parametrize(
    ("text", "cloud"),
    [
        ("What is the capital of Peru?", False),
        ("thanks!", False),
        ("Write a haiku about autumn.", False),
        ("Translate 'good night' into Spanish.", False),
        (GSM8K_STYLE, True),
        ("Compare token bucket and sliding window rate limiting and analyze the trade-offs step by step", True),
        ("Prove that there are infinitely many primes of the form 6k + 5.", True),
    ],
)
def test_single_turns(text: str, cloud: bool) -> None:
    assert learned.route(text).cloud is cloud, learned.route(text).reason


def test_probability_is_the_logistic_of_the_feature_weights() -> None:
    model = learned._model()
    for text in (GSM8K_STYLE, "hi", "Write a Rust B+ tree with range scans and explain the node split."):
        z = model.bias + math.fsum(model.weights.get(f, 0.0) for f in learned.features(text))
        assert learned.probability(text) == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-12)


def test_words_are_read_from_the_head_and_the_tail_of_a_long_message() -> None:
    passage = "The quick brown fox jumps over the lazy dog. " * 200
    text = "Proofread the following text:\n" + passage + "\nThen translate the last sentence into Welsh."
    seen = learned_features.window(text)
    assert len(seen) == learned_features.HEAD_CHARS + learned_features.TAIL_CHARS + 1
    feats = learned.features(text)
    assert {"w:proofread", "w:welsh", "first:proofread"} <= feats
    assert "len:5" in feats


def test_probability_is_deterministic_and_bounded() -> None:
    text = "Design a multi-region database failover plan with RPO under 5 seconds."
    first = learned.probability(text)
    assert first == learned.probability(text)
    assert learned.features(text) == learned.features(text)
    assert 0.0 < first < 1.0
    assert learned.probability("") < learned._model().threshold


def test_prior_shifts_the_probability_monotonically() -> None:
    text = "Explain how a hash map handles collisions."
    low, high = learned.probability(text, prior=0.1), learned.probability(text, prior=0.9)
    assert low < learned.probability(text, prior=0.5) < high


def test_explanation_names_contributing_features() -> None:
    scored = learned.score(GSM8K_STYLE)
    assert scored.top and all(name in learned.features(GSM8K_STYLE) for name, _ in scored.top)
    assert "p=" in scored.explain()
    assert learned.route(GSM8K_STYLE).reason.startswith("learned-v1 strong")


# --------------------------------------------------------------------------------------------------------------
# Conversations (the table of cases is tests/test_router_conversations.py)
# --------------------------------------------------------------------------------------------------------------


def test_imported_turn_without_complexity_is_handled() -> None:
    history = [learned.PriorTurn(complexity=None, backend=None, user_chars=5000)]
    assert 0.0 <= learned.conversation_difficulty(history) <= 0.5
    assert learned.route("Can you parallelize it?", history).complexity <= 0.5
    nan = [learned.PriorTurn(backend=None, complexity=math.nan)]
    assert learned.conversation_difficulty(nan) == 0.0


def test_inherited_difficulty_looks_back_a_few_turns_only() -> None:
    hard_then_easy = [learned.PriorTurn(None, 0.95)] + [learned.PriorTurn(None, 0.01)] * 5
    assert learned.conversation_difficulty(hard_then_easy) < 0.05


def test_inherited_difficulty_decays_with_distance() -> None:
    decay = learned._model().decay
    recent = learned.conversation_difficulty([learned.PriorTurn(None, 0.1), learned.PriorTurn(None, 0.9)])
    older = learned.conversation_difficulty([learned.PriorTurn(None, 0.9), learned.PriorTurn(None, 0.1)])
    assert recent == pytest.approx(0.9)
    assert older == pytest.approx(0.9 * decay)


# --------------------------------------------------------------------------------------------------------------
# Calibration: threshold_for_share
# --------------------------------------------------------------------------------------------------------------


def test_threshold_for_share_reads_the_shipped_quantiles() -> None:
    q = _doc()["calibration"]["quantiles"]
    assert learned.threshold_for_share(0.5) == pytest.approx(q[50])
    assert learned.threshold_for_share(0.25) == pytest.approx(q[75])
    assert learned.threshold_for_share(1.0) == pytest.approx(q[0])
    # halfway between two percentiles interpolates linearly
    assert learned.threshold_for_share(0.495) == pytest.approx((q[50] + q[51]) / 2)
    assert learned.threshold_for_share(0.0) > q[-1]


def test_threshold_for_share_is_monotone_and_validated() -> None:
    values = [learned.threshold_for_share(s / 20) for s in range(21)]
    assert values == sorted(values, reverse=True)
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError):
            learned.threshold_for_share(bad)


def test_threshold_for_share_gives_about_that_share_on_dev() -> None:
    dev = _load("single_dev.jsonl")
    probs = [learned.probability(r["text"]) for r in dev]
    for target in (0.3, 0.5):
        t = learned.threshold_for_share(target)
        share = sum(p >= t for p in probs) / len(probs)
        assert abs(share - target) < 0.1, (target, share)
