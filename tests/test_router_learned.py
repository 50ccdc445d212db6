"""learned-v1: the shipped weights' integrity and recorded dev scores, conversation-aware routing, calibration.

Pure: no fixtures, no I/O beyond reading the weights file and the corpus' dev split. Timing is not asserted
(see ``python -m bench.routing_eval``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from shared.domain.routing import learned

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"


def _load(name: str) -> list[dict]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _doc() -> dict:
    return json.loads(learned.WEIGHTS_PATH.read_text(encoding="utf-8"))


def _conversation(texts: list[str]) -> list[learned.Routed]:
    history: list[learned.PriorTurn] = []
    out = []
    for text in texts:
        routed = learned.route(text, history)
        out.append(routed)
        history.append(
            learned.PriorTurn(
                complexity=routed.complexity, backend="cloud" if routed.cloud else "local", user_chars=len(text)
            )
        )
    return out


# --------------------------------------------------------------------------------------------------------------
# The weights file
# --------------------------------------------------------------------------------------------------------------


def test_weights_file_matches_its_checksum() -> None:
    doc = _doc()
    assert doc["version"] == learned.MODEL_VERSION == "learned-v1"
    assert learned.verify_checksum(doc)
    tampered = dict(doc, threshold=doc["threshold"] + 0.01)
    assert not learned.verify_checksum(tampered)


def test_weights_file_has_what_the_runtime_and_the_record_need() -> None:
    doc = _doc()
    assert 0.0 < doc["threshold"] < 1.0
    assert 0.0 < doc["conversation"]["decay"] <= 1.0
    q = doc["calibration"]["quantiles"]
    assert len(q) == 101 and q == sorted(q) and q[0] >= 0.0 and q[-1] <= 1.0
    assert doc["weights"] and all(isinstance(w, float | int) for w in doc["weights"].values())
    assert {"single_turn_agreement", "follow_up_agreement", "cloud_share"} <= set(doc["dev_scores"])


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
        routed = _conversation([t["text"] for t in conv["turns"]])
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
# Conversations: (earlier turns, new message, expected cloud?)
# --------------------------------------------------------------------------------------------------------------

HARD_TREE = (
    "Write a function that returns the maximum path sum in a binary tree, where a path can start and end at any node."
)
HARD_CODE = (
    "My Python function is too slow for 1 million items:\n```python\ndef pairs(nums, t):\n"
    "    for i in range(len(nums)):\n"
    "        for j in range(i + 1, len(nums)):\n            if nums[i] + nums[j] == t:\n                return True\n"
    "    return False\n```\nMake it fast and explain the complexity."
)
HARD_DESIGN = (
    "Design a multi-region active-active architecture for an order service that must tolerate the loss of a region, "
    "keep p99 latency under 200 ms and never lose an acknowledged write. Analyse the consistency trade-offs."
)
HARD_NEW = (
    "Design a sharded counter service that supports 1 million increments per second with eventually consistent "
    "reads, and analyse the trade-offs between accuracy and cost."
)

CONVERSATIONS = [
    pytest.param(
        [HARD_TREE], "What if the problem changed from a binary tree to a ternary tree?", True, id="what-if-after-hard"
    ),
    pytest.param([HARD_TREE], "thanks!", False, id="thanks-after-hard"),
    pytest.param([HARD_DESIGN], "Translate your answer to French", False, id="translate-after-hard"),
    pytest.param(["hi there", "I'm fine, how are you?"], HARD_NEW, True, id="hard-after-small-talk"),
    pytest.param([HARD_CODE], "Can you parallelize it?", True, id="parallelize-it"),
    pytest.param([HARD_CODE], "Now make it return all such pairs without duplicates.", True, id="now-make-it"),
    pytest.param([HARD_CODE], "Perfect, that works. Thanks a lot!", False, id="closer-after-code"),
    pytest.param([HARD_DESIGN], "great, bye", False, id="bye-after-hard"),
    pytest.param([HARD_DESIGN], "Summarize that in three bullet points.", False, id="summarize-after-hard"),
    pytest.param([HARD_DESIGN], "Can you shorten that to one paragraph?", False, id="shorten-after-hard"),
    pytest.param(
        [HARD_DESIGN], "How would the design change if reads must be strongly consistent?", True, id="design-change"
    ),
    pytest.param([HARD_DESIGN], "By the way, what's the capital of Australia?", False, id="easy-new-after-hard"),
    pytest.param([HARD_DESIGN], "What is the capital of Peru?", False, id="capital-after-hard"),
    pytest.param([HARD_TREE], "Why did you need recursion there?", True, id="why-after-hard"),
    pytest.param([HARD_TREE], "Can you also handle negative values in the code?", True, id="also-handle"),
    pytest.param([HARD_TREE], "Instead, could it be done iteratively?", True, id="instead"),
    pytest.param(
        [HARD_DESIGN, "Make it shorter."],
        "What if we also need to support a third region in Asia?",
        True,
        id="builds-on-hard-after-reformat",
    ),
    pytest.param(["What is the capital of Peru?"], "And what's its population?", False, id="follow-up-on-easy"),
    pytest.param(["Write a short poem about the sea."], "Make it rhyme.", False, id="edit-easy-poem"),
    pytest.param(
        ["Write a short poem about the sea.", "Make it rhyme."], "Now make it shorter.", False, id="shorter-poem"
    ),
    pytest.param(
        ["hello"],
        "Compare token bucket and sliding window rate limiting and analyze the trade-offs step by step",
        True,
        id="token-bucket-after-hello",
    ),
    pytest.param(["What is 12 times 12?"], GSM8K_STYLE, True, id="word-problem-after-arithmetic"),
    pytest.param([HARD_CODE], "Add comments to the code.", False, id="add-comments"),
    pytest.param([HARD_DESIGN], "Put the recommendation in a table.", False, id="table"),
    pytest.param([GSM8K_STYLE], "What if the cookies cost $1.50 instead?", True, id="what-if-word-problem"),
    pytest.param(["Translate 'I love books' into Spanish."], "And into Italian?", False, id="translate-chain"),
    pytest.param(["Good evening!", "Can you give me a synonym for quick?"], HARD_NEW, True, id="hard-after-easy-turns"),
]


@pytest.mark.parametrize(("earlier", "message", "cloud"), CONVERSATIONS)
def test_conversation_routing(earlier: list[str], message: str, cloud: bool) -> None:
    routed = _conversation([*earlier, message])[-1]
    assert routed.cloud is cloud, routed.reason


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("thanks!", "social"),
        ("great, bye", "social"),
        ("Translate your answer to French", "reformat"),
        ("Summarize that in three bullet points.", "reformat"),
        ("What if the problem changed from a binary tree to a ternary tree?", "reference"),
        ("Can you parallelize it?", "reference"),
        ("Unrelated: what time zone is London in?", "new_topic"),
        (HARD_NEW, "none"),
    ],
)
def test_follow_up_kind(message: str, kind: str) -> None:
    assert learned.follow_up_kind(message) == kind


def test_imported_turn_without_complexity_is_handled() -> None:
    history = [learned.PriorTurn(complexity=None, backend=None, user_chars=5000)]
    assert 0.0 <= learned.conversation_difficulty(history) <= 0.5
    assert learned.route("Can you parallelize it?", history).complexity <= 0.5
    nan = [learned.PriorTurn(backend=None, complexity=math.nan)]
    assert learned.conversation_difficulty(nan) == 0.0


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
