"""Routing rules: tiers by complexity, follow-up stability, overrides, configuration, fallback order.

The router is pure, so every test calls it directly; no fixtures, no I/O. Timing is deliberately not asserted.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest

from shared.domain.routing import (
    BACKENDS,
    ROUTER_VERSION,
    ROUTES,
    BackendNotConfigured,
    Decision,
    NoBackendConfigured,
    PriorTurn,
    RouterConfig,
    UnknownRoute,
    decide,
    fallback_chain,
    score,
)

# These tables pin down the hand-written router, rules-v1 (learned-v1 has its own: tests/test_router_learned.py).
RULES = "rules-v1"
CONFIG = RouterConfig(version=RULES)
THRESHOLD = CONFIG.threshold()  # rules-v1: 0.45
# "By a clear margin": easy prompts stay this far below the threshold, hard ones this far above it.
MARGIN = 0.05
ALL = frozenset(BACKENDS)
LOCAL_AND_CLOUD = ("local", "cloud")
KNOWN_SIGNALS = {"code", "math", "reasoning", "domain", "multi_step", "constraints", "length"}

LONG_NOTE = (
    "Can you fix the spelling in this note for my neighbour? "
    + "Hi Sarah, just wanted to let you know that the package you ordered arived at our house yesterday "
    "afternoon while you were at work, so we kept it for you and you can pick it up whenever it suits you. " * 6
)
LONG_STORY = (
    "Yesterday I went to the market with my sister and we bought apples, bread, cheese and some flowers for our "
    "mother, then we walked home through the park and watched the ducks on the pond. " * 8
)
CODE_REVIEW = """Can you review this function for bugs and performance issues?
```python
def avg(xs):
    total = 0
    for x in xs:
        total += x
    return total / len(xs)
```"""
STACK_TRACE = """I'm getting this error, what's wrong?
Traceback (most recent call last):
  File "app.py", line 12, in <module>
    main()
KeyError: 'user'"""
REACT_LOOP = """Why does my React component re-render forever?
```js
useEffect(() => { setCount(count + 1); });
```"""
THREAD_SAFE = """Refactor this to be thread safe:
```java
public class Counter {
  private int n;
  public void inc() { n++; }
}
```"""
CAR_QUESTIONS = """I'm deciding between leasing and buying a car for my business.
1. What are the total costs over 5 years?
2. How do interest rates affect it?
3. Which is better for tax purposes, and why?"""
A_CODE_BLOCK = "\n```python\nimport sys\n\nprint(sys.argv[1:])\n```\n"

EASY = [
    pytest.param("hi", id="greeting"),
    pytest.param("thanks!", id="thanks"),
    pytest.param("good morning", id="good-morning"),
    pytest.param("What's the capital of France?", id="capital"),
    pytest.param("translate 'cat' to Spanish", id="translate-word"),
    pytest.param("what's 2+2?", id="arithmetic"),
    pytest.param("Write a haiku about autumn.", id="haiku"),
    pytest.param("Who wrote Pride and Prejudice?", id="trivia"),
    pytest.param("Tell me a joke about cats.", id="joke"),
    pytest.param("Convert 5 miles to kilometers.", id="unit-conversion"),
    pytest.param("Give me three synonyms for happy.", id="synonyms"),
    pytest.param("Summarize the plot of Romeo and Juliet in two sentences.", id="short-summary"),
    pytest.param("Fix the grammar: me and him goes to the store yesterday.", id="grammar"),
    pytest.param("How do I center a div in CSS?", id="css-howto"),
    pytest.param("What's the difference between a list and a tuple in Python?", id="list-vs-tuple"),
    pytest.param("Why is the sky blue?", id="why-sky"),
    # near misses: a word that sounds hard in a question that is not
    pytest.param("What does the word 'code' mean in Morse code?", id="near-miss-word-code"),
    pytest.param("Can you explain what an API is in one sentence?", id="near-miss-explain"),
    pytest.param("Explain recursion like I'm five.", id="near-miss-explain-eli5"),
    pytest.param("Can you explain step by step how to boil an egg?", id="near-miss-step-by-step"),
    pytest.param("Can you review my grocery list? eggs, milk, bread", id="near-miss-review"),
    pytest.param("What is a contract?", id="near-miss-legal-word"),
    pytest.param("Write a Python function that checks whether a string is a palindrome.", id="near-miss-function"),
    pytest.param("What is the derivative of x^2?", id="near-miss-derivative"),
    # long but trivial
    pytest.param(LONG_NOTE, id="long-trivial-note"),
    pytest.param(LONG_STORY, id="long-trivial-story"),
]

HARD = [
    pytest.param(
        "Design a URL shortener that handles 10k requests per second with p99 latency under 50 ms. It must survive "
        "a region outage. What are the trade-offs of your storage choice?",
        id="design-with-constraints",
    ),
    pytest.param(
        "Design a rate limiter for a public API: it must allow 100 requests per minute per key, work across 20 "
        "instances without a single point of failure, and degrade gracefully. Explain the algorithm and its edge "
        "cases.",
        id="design-rate-limiter",
    ),
    pytest.param("Prove that the square root of 2 is irrational.", id="proof-sqrt2"),
    pytest.param("Prove that there are infinitely many primes.", id="proof-primes"),
    pytest.param(
        "Let f(x) = x^3 - 3x + 1. Find all real roots, prove there are exactly three, and sketch the derivative.",
        id="calculus-proof",
    ),
    pytest.param(r"Compute $\int_0^\pi x^2 \sin(x)\,dx$ and show each step.", id="latex-integral"),
    pytest.param(CODE_REVIEW, id="code-review-block"),
    pytest.param(STACK_TRACE, id="stack-trace"),
    pytest.param(REACT_LOOP, id="debug-react"),
    pytest.param(THREAD_SAFE, id="refactor-thread-safe"),
    pytest.param(
        "Compare PostgreSQL and MongoDB for an e-commerce backend. What are the trade-offs in consistency, "
        "scalability and operational cost? Which would you pick and why?",
        id="compare-databases",
    ),
    pytest.param(
        "Compare REST and gRPC for internal microservice communication. Consider latency, schema evolution and "
        "debugging. Which would you recommend and why?",
        id="compare-protocols",
    ),
    pytest.param(
        "Explain the trade-offs between eventual and strong consistency in a multi-region database, with examples "
        "of when each is appropriate.",
        id="consistency-tradeoffs",
    ),
    pytest.param(CAR_QUESTIONS, id="multi-part-finance"),
    pytest.param(
        "My father takes warfarin and was just prescribed amiodarone. What interactions and dosage adjustments "
        "should his doctor consider, and what symptoms would indicate a problem?",
        id="medical-interactions",
    ),
    pytest.param(
        "Our SaaS contract has an uncapped indemnification clause and a GDPR data processing addendum. What "
        "liability risks do we face and how should we negotiate them?",
        id="legal-liability",
    ),
    pytest.param(
        "Analyze the security of this login flow: the client sends the password hashed with MD5, the server "
        "compares it to the stored hash and issues a JWT without expiry. What vulnerabilities exist and how would "
        "you fix them?",
        id="security-analysis",
    ),
    pytest.param(
        "First, read the CSV and group by customer. Then compute the monthly churn rate. Finally, write a short "
        "report explaining the drivers.",
        id="multi-step-analysis",
    ),
]

EVERYTHING = [*EASY, *HARD]
HARD_TEXTS = [str(p.values[0]) for p in HARD]


# ---- scoring and tiers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", EASY)
def test_easy_prompts_go_local_by_a_margin(prompt: str) -> None:
    complexity, _ = score(prompt)
    assert complexity <= THRESHOLD - MARGIN
    decision = decide(prompt, [], ALL, CONFIG)
    assert decision.backend == "local"
    assert decision.reason.endswith(f"< {THRESHOLD}: local backend")


@pytest.mark.parametrize("prompt", HARD)
def test_hard_prompts_go_strong_by_a_margin(prompt: str) -> None:
    complexity, signals = score(prompt)
    assert complexity >= THRESHOLD + MARGIN
    assert len(signals) >= 1
    decision = decide(prompt, [], ALL, CONFIG)
    assert decision.backend == "cloud"  # first in the default strong order
    assert decision.reason.endswith(f">= {THRESHOLD}: strong backend cloud")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param(CODE_REVIEW, "code", id="code-block"),
        pytest.param(STACK_TRACE, "code", id="stack-trace"),
        pytest.param("Prove that there are infinitely many primes.", "math", id="proof"),
        pytest.param(r"Simplify $\frac{a^2 - b^2}{a - b}$", "math", id="latex"),
        pytest.param("Compare Rust and Go and explain the trade-offs.", "reasoning", id="reasoning"),
        pytest.param(CAR_QUESTIONS, "multi_step", id="numbered-list"),
        pytest.param("Is this GDPR compliant? What liability do we have under the contract?", "domain", id="legal"),
        pytest.param("It must handle 10k rps with p99 under 20 ms.", "constraints", id="constraints"),
        pytest.param(LONG_STORY, "length", id="length"),
    ],
)
def test_signal_fires(prompt: str, expected: str) -> None:
    _, signals = score(prompt)
    assert expected in signals


@pytest.mark.parametrize("prompt", EVERYTHING)
def test_score_is_a_rounded_unit_value_with_known_signals(prompt: str) -> None:
    complexity, signals = score(prompt)
    assert 0.0 <= complexity <= 1.0
    assert complexity == round(complexity, 3)
    assert set(signals) <= KNOWN_SIGNALS
    assert len(set(signals)) == len(signals)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t ", id="whitespace"),
        pytest.param("🙂🙂🙂", id="emoji"),
        pytest.param("a" * 40_000, id="one-huge-word"),
        pytest.param("?" * 5_000, id="question-marks"),
        pytest.param(A_CODE_BLOCK * 2_000, id="huge-code"),
        pytest.param(
            " ".join(HARD_TEXTS) * 20 + r" $\int x\,dx$ ∑ ∀ ≤ " + STACK_TRACE + CAR_QUESTIONS,
            id="every-signal-at-once",
        ),
    ],
)
def test_score_stays_in_unit_interval_for_odd_input(prompt: str) -> None:
    complexity, _ = score(prompt)
    assert 0.0 <= complexity <= 1.0


def test_score_saturates_below_one_for_everything_at_once() -> None:
    everything = " ".join(HARD_TEXTS) + CAR_QUESTIONS
    complexity, signals = score(everything)
    assert 0.9 <= complexity <= 1.0
    assert set(signals) == KNOWN_SIGNALS


@pytest.mark.parametrize("prompt", EVERYTHING)
def test_adding_a_code_block_never_lowers_the_score(prompt: str) -> None:
    before, _ = score(prompt)
    assert score(prompt + A_CODE_BLOCK)[0] >= before
    assert score(A_CODE_BLOCK + prompt)[0] >= before
    assert "code" in score(prompt + A_CODE_BLOCK)[1]


@pytest.mark.parametrize("prompt", EVERYTHING)
@pytest.mark.parametrize(
    "addition",
    [
        pytest.param(" Explain the trade-offs step by step.", id="reasoning"),
        pytest.param(" It must stay under 50 ms at p99.", id="constraints"),
        pytest.param("\n1. first part\n2. second part\n3. third part", id="list"),
        pytest.param(" Consider GDPR and the liability clause.", id="domain"),
    ],
)
def test_adding_a_signal_never_lowers_the_score(prompt: str, addition: str) -> None:
    assert score(prompt + addition)[0] >= score(prompt)[0]


def test_length_alone_stays_local() -> None:
    complexity, signals = score("word " * 5_000)
    assert signals == ("length",)
    assert complexity < THRESHOLD - MARGIN


# ---- follow-ups -------------------------------------------------------------------------------------------------

HARD_ON_CLOUD = (PriorTurn(backend="cloud", complexity=0.72, user_chars=240),)


@pytest.mark.parametrize(
    ("prompt", "backend", "follow_up"),
    [
        pytest.param("now make it faster", "cloud", True, id="now-make-it-faster"),
        pytest.param("and in French?", "cloud", True, id="and-in-french"),
        pytest.param("prove it", "cloud", True, id="prove-it"),
        pytest.param("why?", "cloud", True, id="why"),
        pytest.param("can you shorten that", "cloud", True, id="shorten-that"),
        pytest.param("what about the second one", "cloud", True, id="what-about"),
        pytest.param("do the same for the orders table", "cloud", True, id="do-the-same"),
        pytest.param("ok, now add unit tests", "cloud", True, id="ok-now"),
        pytest.param("yes please", "cloud", True, id="confirmation"),
        pytest.param("thanks!", "local", False, id="thanks"),
        pytest.param("great, thanks!", "local", False, id="great-thanks"),
        pytest.param("ok", "local", False, id="ok"),
        pytest.param("hi", "local", False, id="greeting"),
        pytest.param("what's 2+2?", "local", False, id="unrelated-arithmetic"),
        pytest.param("What's the capital of France?", "local", False, id="unrelated-question"),
        pytest.param("Write a function that reverses a string", "local", False, id="relative-that-is-no-reference"),
    ],
)
def test_follow_up_stability_after_a_hard_cloud_turn(prompt: str, backend: str, follow_up: bool) -> None:
    decision = decide(prompt, HARD_ON_CLOUD, ALL, CONFIG)
    assert decision.backend == backend
    assert decision.follow_up is follow_up
    assert ("follow_up" in decision.signals) is follow_up
    if backend == "cloud":
        assert decision.switched_from is None
        assert decision.complexity >= round(0.72 * CONFIG.follow_up_decay, 3)
        assert decision.reason.startswith("follow-up to a turn on cloud")
        assert "stays on the previous turn's backend" in decision.reason
    else:
        assert decision.switched_from == "cloud"
        assert decision.reason.endswith("; switched from cloud")


def test_small_talk_reason_says_it_needs_no_context() -> None:
    decision = decide("thanks!", HARD_ON_CLOUD, ALL, CONFIG)
    assert "small talk needs no context" in decision.reason


def test_follow_up_stays_on_the_previous_strong_backend_not_the_preferred_one() -> None:
    history = [PriorTurn(backend="foundry", complexity=0.8)]
    assert decide("and in French?", history, ALL, CONFIG).backend == "foundry"
    standalone = decide("Prove that there are infinitely many primes.", history, ALL, CONFIG)
    assert standalone.backend == "cloud"
    assert standalone.switched_from == "foundry"


def test_follow_up_own_complexity_wins_when_higher() -> None:
    history = [PriorTurn(backend="local", complexity=0.1)]
    decision = decide("and now prove it rigorously, step by step, using induction", history, ALL, CONFIG)
    assert decision.follow_up
    assert decision.backend == "cloud"
    assert decision.switched_from == "local"
    assert decision.complexity == score("and now prove it rigorously, step by step, using induction")[0]


def test_follow_up_to_a_local_turn_stays_local() -> None:
    decision = decide("and in French?", [PriorTurn(backend="local", complexity=0.1)], ALL, CONFIG)
    assert (decision.backend, decision.switched_from, decision.follow_up) == ("local", None, True)


def test_inherited_complexity_decays_so_trivial_chains_return_local() -> None:
    # 0.5 * 0.9 = 0.45 stays strong; 0.46 * 0.9 = 0.414 does not.
    assert decide("shorter please", [PriorTurn("cloud", 0.5)], ALL, CONFIG).backend == "cloud"
    decision = decide("shorter please", [PriorTurn("cloud", 0.46)], ALL, CONFIG)
    assert decision.backend == "local"
    assert decision.complexity == 0.414
    assert decision.switched_from == "cloud"


def test_follow_up_decay_is_configurable() -> None:
    sticky = RouterConfig(version=RULES, follow_up_decay=1.0)
    assert decide("shorter please", [PriorTurn("cloud", 0.46)], ALL, sticky).backend == "cloud"


def test_previous_backend_no_longer_configured() -> None:
    decision = decide("and in French?", [PriorTurn("foundry", 0.8)], LOCAL_AND_CLOUD, CONFIG)
    assert decision.backend == "cloud"
    assert decision.switched_from == "foundry"
    assert "switched from foundry, which is no longer configured" in decision.reason


def test_only_the_newest_turn_is_built_on() -> None:
    history = [PriorTurn("cloud", 0.9), PriorTurn("local", 0.1)]
    decision = decide("and in French?", history, ALL, CONFIG)
    assert (decision.backend, decision.switched_from) == ("local", None)


def test_long_messages_need_an_explicit_reference_to_be_follow_ups() -> None:
    prose = (
        "I usually take the bus to work, but the tickets went up again this year and I am thinking of cycling "
        "instead. The route is about eight kilometres with one hill. What is a good commuter bike?"
    )
    assert not decide(prose, HARD_ON_CLOUD, ALL, CONFIG).follow_up
    explicit = (
        "Looking at your code once more, I would like the retry loop to log each attempt with its delay and the "
        "exception type, and to give up after the fifth attempt with a clear message for the operator."
    )
    decision = decide(explicit, HARD_ON_CLOUD, ALL, CONFIG)
    assert (decision.follow_up, decision.backend) == (True, "cloud")
    assert '("your code")' in decision.reason


@pytest.mark.parametrize("prompt", ["no thanks", "how are you?", "thanks, that helps", "bye"])
def test_small_talk_is_never_a_follow_up(prompt: str) -> None:
    decision = decide(prompt, HARD_ON_CLOUD, ALL, CONFIG)
    assert (decision.follow_up, decision.backend) == (False, "local")


def test_without_history_nothing_is_a_follow_up() -> None:
    decision = decide("and in French?", [], ALL, CONFIG)
    assert (decision.follow_up, decision.switched_from) == (False, None)
    assert "follow_up" not in decision.signals


# ---- imported turns ---------------------------------------------------------------------------------------------


def test_imported_turn_is_not_a_previous_backend() -> None:
    imported = [PriorTurn(backend=None, complexity=None, user_chars=120)]
    decision = decide("Prove that there are infinitely many primes.", imported, ALL, CONFIG)
    assert (decision.backend, decision.switched_from) == ("cloud", None)
    decision = decide("thanks!", imported, ALL, CONFIG)
    assert (decision.backend, decision.switched_from) == ("local", None)


def test_follow_up_to_an_imported_turn() -> None:
    short = decide("and in French?", [PriorTurn(None, None, 40)], ALL, CONFIG)
    assert (short.backend, short.follow_up, short.switched_from) == ("local", True, None)
    assert short.reason.startswith("follow-up to an imported turn")
    known = decide("and in French?", [PriorTurn(None, 0.8, 400)], ALL, CONFIG)
    assert (known.backend, known.switched_from) == ("cloud", None)
    assert known.complexity == 0.72


def test_imported_turns_are_skipped_when_looking_for_the_previous_backend() -> None:
    history = [PriorTurn("foundry", 0.8), PriorTurn(None, None, 50)]
    decision = decide("thanks!", history, ALL, CONFIG)
    assert (decision.backend, decision.switched_from) == ("local", "foundry")


# ---- overrides and errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", BACKENDS)
@pytest.mark.parametrize("prompt", [pytest.param("hi", id="easy"), pytest.param(CODE_REVIEW, id="hard")])
def test_override_to_a_configured_backend(route: str, prompt: str) -> None:
    decision = decide(prompt, [], ALL, CONFIG, route=route)
    assert decision.backend == route
    assert decision.reason.startswith(f"user override: {route}")


def test_override_reason_says_what_auto_would_have_done() -> None:
    assert "auto would choose local" in decide("hi", [], ALL, CONFIG, route="apim").reason
    assert "auto agrees" in decide("hi", [], ALL, CONFIG, route="local").reason


def test_override_sets_switched_from() -> None:
    decision = decide("and in French?", HARD_ON_CLOUD, ALL, CONFIG, route="foundry")
    assert (decision.backend, decision.switched_from, decision.follow_up) == ("foundry", "cloud", True)


@pytest.mark.parametrize("route", ["foundry", "apim", "local"])
def test_override_to_an_unconfigured_backend_raises(route: str) -> None:
    configured = ("cloud",) if route == "local" else LOCAL_AND_CLOUD
    with pytest.raises(BackendNotConfigured) as caught:
        decide("hi", [], configured, CONFIG, route=route)
    assert isinstance(caught.value, ValueError)
    assert caught.value.route == route
    assert caught.value.configured == tuple(b for b in BACKENDS if b in configured)
    for name in configured:
        assert name in str(caught.value)


@pytest.mark.parametrize("route", ["gpt-4o", "", "AUTO", "Cloud", " cloud", "strong"])
def test_unknown_route_raises(route: str) -> None:
    with pytest.raises(UnknownRoute) as caught:
        decide("hi", [], ALL, CONFIG, route=route)
    assert isinstance(caught.value, ValueError)
    assert caught.value.allowed == ROUTES
    for allowed in ROUTES:
        assert allowed in str(caught.value)


@pytest.mark.parametrize(
    "configured",
    [pytest.param((), id="empty"), pytest.param({"gemini"}, id="only-unknown-names")],
)
def test_no_backend_configured_raises(configured: tuple[str, ...] | set[str]) -> None:
    with pytest.raises(NoBackendConfigured) as caught:
        decide("hi", [], configured, CONFIG)
    assert not isinstance(caught.value, ValueError)  # a deployment fault, not the client's


def test_routes_are_auto_plus_backends() -> None:
    assert ROUTES == ("auto", "local", "cloud", "foundry", "apim")


# ---- configured backends ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("only", BACKENDS)
@pytest.mark.parametrize("prompt", [pytest.param("hi", id="easy"), pytest.param(CODE_REVIEW, id="hard")])
def test_one_configured_backend_takes_everything(only: str, prompt: str) -> None:
    decision = decide(prompt, [], {only}, CONFIG)
    assert decision.backend == only
    assert decision.reason.startswith(f"only backend configured: {only}")


def test_one_configured_backend_still_reports_a_switch() -> None:
    decision = decide("hi", HARD_ON_CLOUD, {"local"}, CONFIG)
    assert (decision.backend, decision.switched_from) == ("local", "cloud")


def test_without_local_the_simple_tier_goes_to_the_first_strong_backend() -> None:
    decision = decide("hi", [], ("foundry", "apim"), CONFIG)
    assert decision.backend == "foundry"
    assert "no local backend is configured" in decision.reason
    reordered = RouterConfig(version=RULES, strong_order=("apim", "foundry", "cloud"))
    assert decide("hi", [], ("foundry", "apim"), reordered).backend == "apim"


def test_strong_order_picks_among_configured_strong_backends() -> None:
    config = RouterConfig(version=RULES, strong_order=("apim", "foundry", "cloud"))
    assert decide(CODE_REVIEW, [], ALL, config).backend == "apim"
    assert decide(CODE_REVIEW, [], {"local", "cloud", "foundry"}, config).backend == "foundry"
    partial = RouterConfig(
        version=RULES, strong_order=("foundry",)
    )  # unlisted strong backends still serve, after the listed
    assert decide(CODE_REVIEW, [], {"local", "cloud", "apim"}, partial).backend == "cloud"


@pytest.mark.parametrize(
    ("threshold", "backend"),
    [pytest.param(0.0, "cloud", id="all-strong"), pytest.param(1.0, "local", id="all-local")],
)
def test_threshold_extremes(threshold: float, backend: str) -> None:
    config = RouterConfig(version=RULES, local_threshold=threshold)
    assert decide("hi", [], ALL, config).backend == backend
    assert decide(CODE_REVIEW, [], ALL, config).backend == backend


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"local_threshold": 1.5}, id="threshold-above-one"),
        pytest.param({"local_threshold": -0.1}, id="threshold-negative"),
        pytest.param({"local_threshold": float("nan")}, id="threshold-nan"),
        pytest.param({"strong_order": ("cloud", "local")}, id="local-is-not-strong"),
        pytest.param({"strong_order": ("cloud", "cloud")}, id="strong-duplicate"),
        pytest.param({"fallback_order": ("cloud", "gemini")}, id="fallback-unknown"),
        pytest.param({"follow_up_decay": 2.0}, id="decay-above-one"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RouterConfig(**kwargs)  # type: ignore[arg-type]


# ---- fallback chain ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chosen", "configured", "config", "expected"),
    [
        pytest.param("cloud", ALL, CONFIG, ("foundry", "apim", "local"), id="cloud-failed"),
        pytest.param("local", ALL, CONFIG, ("cloud", "foundry", "apim"), id="local-failed"),
        pytest.param("apim", ALL, CONFIG, ("cloud", "foundry", "local"), id="apim-failed"),
        pytest.param("foundry", {"local", "foundry"}, CONFIG, ("local",), id="two-configured"),
        pytest.param("cloud", {"cloud"}, CONFIG, (), id="nothing-left"),
        pytest.param("cloud", {"local", "apim"}, CONFIG, ("apim", "local"), id="chosen-not-configured"),
        pytest.param(
            "cloud",
            ["apim", "local", "foundry", "cloud"],
            RouterConfig(version=RULES, fallback_order=("local", "cloud")),
            ("local", "foundry", "apim"),
            id="unlisted-appended-in-canonical-order",
        ),
        pytest.param(
            "local",
            ALL,
            RouterConfig(version=RULES, fallback_order=("apim", "local", "foundry", "cloud")),
            ("apim", "foundry", "cloud"),
            id="custom-order",
        ),
        pytest.param("local", {"local", "gemini", "cloud"}, CONFIG, ("cloud",), id="unknown-names-ignored"),
    ],
)
def test_fallback_chain(
    chosen: str, configured: frozenset[str] | set[str] | list[str], config: RouterConfig, expected: tuple[str, ...]
) -> None:
    assert fallback_chain(chosen, configured, config) == expected


def test_fallback_chain_does_not_depend_on_the_order_of_configured() -> None:
    forward = fallback_chain("local", list(BACKENDS), CONFIG)
    assert fallback_chain("local", list(reversed(BACKENDS)), CONFIG) == forward
    assert fallback_chain("local", set(BACKENDS), CONFIG) == forward


# ---- determinism, purity, record shape --------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", EVERYTHING)
def test_decide_is_deterministic(prompt: str) -> None:
    first = decide(prompt, HARD_ON_CLOUD, ALL, CONFIG)
    assert decide(prompt, HARD_ON_CLOUD, ALL, CONFIG) == first
    assert decide(prompt, list(HARD_ON_CLOUD), list(reversed(BACKENDS)), RouterConfig(version=RULES)) == first
    assert score(prompt) == score(prompt)


def test_decide_does_not_mutate_its_inputs() -> None:
    history = [PriorTurn("foundry", 0.8, 300), PriorTurn(None, None, 50), PriorTurn("cloud", 0.7, 200)]
    configured = {"local", "cloud", "foundry"}
    config = RouterConfig(version=RULES, strong_order=("foundry", "cloud"))
    history_before, configured_before, config_before = copy.deepcopy((history, configured, config))
    items_before = [id(turn) for turn in history]
    for prompt in ("and in French?", "thanks!", CODE_REVIEW):
        decide(prompt, history, configured, config)
        decide(prompt, history, configured, config, route="local")
    assert history == history_before
    assert [id(turn) for turn in history] == items_before
    assert configured == configured_before
    assert config == config_before


def test_decision_record_shape() -> None:
    decision = decide(CODE_REVIEW, HARD_ON_CLOUD, ALL, CONFIG)
    assert isinstance(decision, Decision)
    assert decision.router_version == ROUTER_VERSION != ""
    assert decision.complexity == round(decision.complexity, 3)
    assert isinstance(decision.signals, tuple)
    assert "code" in decision.signals
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.backend = "local"  # type: ignore[misc]


def test_reason_is_readable() -> None:
    decision = decide(CODE_REVIEW, [], ALL, CONFIG)
    complexity = f"{decision.complexity:.3f}".rstrip("0")
    assert decision.reason.startswith(f"complexity {complexity} (code block")
    assert decision.reason.endswith(">= 0.45: strong backend cloud")
    follow_up = decide("now make it faster", HARD_ON_CLOUD, ALL, CONFIG)
    assert follow_up.reason == (
        'follow-up to a turn on cloud (starts with "now"): complexity 0.648 = max(own '
        f"{_fmt(score('now make it faster')[0])} (no complexity signals), previous 0.72 * 0.9) >= 0.45: "
        "strong backend cloud (stays on the previous turn's backend)"
    )


def _fmt(value: float) -> str:
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
