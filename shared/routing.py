"""Complexity-based routing of one chat turn to a model backend.

Why a hand-written scorer instead of a classifier model: the decision runs on every turn, must cost far less
than a millisecond, must be explainable in analytics ("why did this go to the expensive model?") and must be
deterministic so that a stored turn record can be reproduced from its prompt and ``ROUTER_VERSION``.

Everything here is pure: no I/O, no clock, no randomness, no module state that changes. ``decide()`` only reads
its arguments.

Scoring
-------
``score()`` looks for seven families of signals. Each family collects *points* from the cues it finds (every
distinct cue counts once, so repeating a word does not inflate the score). Points become a strength in [0, 1]
with the saturating curve ``1 - 0.5 ** points`` (each point halves the distance left to 1), and the strength is
scaled by the family's weight, which is therefore the most that family can add on its own:

=========== ====== ==================================================================================
signal      weight cues (points)
=========== ====== ==================================================================================
code        0.60   fenced block (3), stack trace (3), code-like lines and operators (0.5-1.5 each),
                   programming vocabulary such as "refactor", "race condition" (0.5-1.5)
math        0.55   LaTeX (2), math symbols (1 each, up to 3), equations (0.75), arithmetic (0.5),
                   vocabulary such as "prove" (2), "integral" (1.5), "derivative" (1), "compute" (0.5)
reasoning   0.45   "trade-offs" (2), "analyze", "step by step", "justify" (1.5), "explain", "compare",
                   "design" (1), "why", "how does" (0.5) ...
domain      0.45   legal, medical, financial, analytics, architecture and security terms (0.5-1 each)
multi_step  0.35   list items beyond the first (0.75 each), questions beyond the first (0.75 each),
                   "first ... then" (1.5), "and what ..." (0.75), sequencing words (0.5)
constraints 0.30   "must not", "at most", "requirements", SLOs, quantities with units (0.5-1 each)
length      0.20   max(words / 150, chars / 1000) points: half strength at 150 words
=========== ====== ==================================================================================

The families are combined like independent pieces of evidence (a "noisy OR"):
``complexity = 1 - prod(1 - weight * strength)``. That keeps the result in [0, 1], makes every added cue raise
the score (never lower it) and needs agreement between families to get close to 1. The weights are chosen so
that length or domain vocabulary alone never crosses the default threshold of 0.45 (a long e-mail to
proofread is still easy), while a real code block, a proof or a question that combines reasoning with
constraints or domain terms does. Patterns are looked for in the first 4,000 characters (the question nearly
always comes first, and it bounds the cost of a huge paste); length counts the whole prompt.

Follow-ups
----------
"and in French?" is trivial on its own but builds on the previous answer, which a weaker model would have to
understand. A follow-up therefore inherits ``max(own complexity, previous complexity * follow_up_decay)`` and
stays on the previous turn's backend when that backend serves the resulting tier. The decay lets a long chain
of trivial follow-ups eventually drift back to the cheap tier. Small talk ("thanks!", "ok", "hi") needs no
context and is always routed on its own merits.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "BACKENDS",
    "ROUTER_VERSION",
    "ROUTES",
    "STRONG_BACKENDS",
    "BackendNotConfigured",
    "Decision",
    "NoBackendConfigured",
    "PriorTurn",
    "RouterConfig",
    "RoutingError",
    "WEIGHTS",
    "UnknownRoute",
    "decide",
    "fallback_chain",
    "score",
]

# Bump whenever a cue, weight or rule changes: every turn record stores it, so analytics can tell decisions
# made by different rule sets apart and a decision can be reproduced.
ROUTER_VERSION = "rules-v1"

BACKENDS: tuple[str, ...] = ("local", "cloud", "foundry", "apim")
STRONG_BACKENDS: tuple[str, ...] = ("cloud", "foundry", "apim")
ROUTES: tuple[str, ...] = ("auto", *BACKENDS)


# --------------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------------


class RoutingError(Exception):
    """Base class, so callers can catch every routing failure in one place."""


class UnknownRoute(RoutingError, ValueError):
    """The client asked for a route that does not exist: a client error (HTTP 422), not a server fault."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.allowed: tuple[str, ...] = ROUTES
        super().__init__(f"unknown route {route!r}; allowed routes: {', '.join(ROUTES)}")


class BackendNotConfigured(RoutingError, ValueError):
    """The client overrode the route to a backend this deployment does not have.

    It carries the configured backends so that the HTTP layer can tell the user what they may choose instead.
    """

    def __init__(self, route: str, configured: Collection[str]) -> None:
        self.route = route
        self.configured: tuple[str, ...] = _known(configured)
        names = ", ".join(self.configured) or "none"
        super().__init__(f"backend {route!r} is not configured; configured backends: {names}")


class NoBackendConfigured(RoutingError, RuntimeError):
    """No backend at all is configured: a deployment fault (HTTP 503), not something the user can fix."""

    def __init__(self) -> None:
        super().__init__(
            "no model backend is configured; set at least one of LOCAL_, CLOUD_, FOUNDRY_ or APIM_MODEL_ENDPOINT"
        )


# --------------------------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouterConfig:
    """Tunables, read from settings once; validated here so a typo in an app setting fails at start-up."""

    local_threshold: float = 0.45
    strong_order: tuple[str, ...] = ("cloud", "foundry", "apim")
    fallback_order: tuple[str, ...] = ("cloud", "foundry", "apim", "local")
    # How much of the previous turn's complexity a follow-up inherits. Below 1 so that a long chain of trivial
    # follow-ups ("shorter", "and in French?", ...) eventually returns to the cheap tier.
    follow_up_decay: float = 0.9

    def __post_init__(self) -> None:
        if not _is_unit(self.local_threshold):
            raise ValueError(f"local_threshold must be within [0, 1], got {self.local_threshold!r}")
        if not _is_unit(self.follow_up_decay):
            raise ValueError(f"follow_up_decay must be within [0, 1], got {self.follow_up_decay!r}")
        _check_order("strong_order", self.strong_order, STRONG_BACKENDS)
        _check_order("fallback_order", self.fallback_order, BACKENDS)


@dataclass(frozen=True)
class PriorTurn:
    """What the router needs from one earlier turn record of the session (history is ordered newest last)."""

    backend: str | None  # None for turns imported from elsewhere: nobody routed them
    complexity: float | None  # None when unknown (imported turns)
    user_chars: int = 0  # length of that turn's user message; a lower bound for an unknown complexity


@dataclass(frozen=True)
class Decision:
    """The routing outcome, stored with the turn record and shown in analytics."""

    backend: str
    complexity: float  # in [0, 1], rounded to 3 decimals; for follow-ups the inherited value
    reason: str
    router_version: str
    signals: tuple[str, ...]
    switched_from: str | None
    follow_up: bool


# --------------------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------------------

# Signal weights: the most each family can contribute on its own (see the module docstring). Read-only, so
# nothing can retune the router behind ROUTER_VERSION's back.
WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "code": 0.60,
        "math": 0.55,
        "reasoning": 0.45,
        "domain": 0.45,
        "multi_step": 0.35,
        "constraints": 0.30,
        "length": 0.20,
    }
)
_SIGNAL_ORDER: tuple[str, ...] = ("code", "math", "reasoning", "domain", "multi_step", "constraints", "length")

# A signal is reported as "fired" only when it adds at least this much; otherwise every prompt would list
# "length" and one stray "why" in a long e-mail would clutter analytics.
_FIRE_MIN = 0.05

# Patterns are matched in this prefix only, which bounds the cost of a huge paste (the question almost always
# comes first; length still counts in full). A prefix, not head-plus-tail, so that appending text can only add
# signals, never push one out of view.
_SCAN_CHARS = 4_000
# Follow-up cues only matter in short messages or in the opening of a long one.
_FOLLOW_UP_SCAN_CHARS = 600

_LENGTH_WORDS_HALF = 150.0
_LENGTH_CHARS_HALF = 1000.0


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


@dataclass(frozen=True)
class _Cues:
    """A table of cues, indexed so that matching costs a set intersection plus one substring test per phrase."""

    labels: tuple[str, ...]
    points: tuple[float, ...]
    by_word: dict[str, tuple[int, ...]]  # whole single words -> indexes of the cues they belong to
    # phrases and prefixes, normalised and padded (" step by step ", " analy"), each with the whole words it
    # needs: a phrase is only searched for when all of them occur, which keeps long prompts cheap.
    needles: tuple[tuple[str, int, frozenset[str]], ...]


def _cues(*entries: tuple[str, str, float]) -> _Cues:
    """Compile ``(label, "alt one|alt two*", points)``: words match whole, a trailing ``*`` makes a prefix."""
    by_word: dict[str, list[int]] = {}
    needles: list[tuple[str, int, frozenset[str]]] = []
    for index, (_, alternatives, _) in enumerate(entries):
        for alt in (a.strip() for a in alternatives.split("|")):
            if alt.endswith("*"):
                needles.append((f" {alt[:-1]}", index, frozenset(alt[:-1].split()[:-1])))
            elif " " in alt:
                needles.append((f" {alt} ", index, frozenset(alt.split())))
            else:
                by_word.setdefault(alt, []).append(index)
    return _Cues(
        labels=tuple(label for label, _, _ in entries),
        points=tuple(points for _, _, points in entries),
        by_word={word: tuple(indexes) for word, indexes in by_word.items()},
        needles=tuple(needles),
    )


_CODE_WORDS = _cues(
    ("refactor", "refactor*", 1.5),
    ("debug", "debug*", 1.0),
    ("implement", "implement*", 1.0),
    ("algorithm", "algorithm*", 1.0),
    ("race condition", "race condition*|deadlock*|thread safe*|concurren*|mutex*", 1.5),
    ("memory leak", "memory leak*|segfault*|segmentation fault*", 1.5),
    ("time complexity", "time complexity|space complexity|big o", 1.0),
    ("regex", "regex*|regular expression*", 1.0),
    ("unit test", "unit test*|integration test*|test coverage", 1.0),
    ("performance", "profil*|bottleneck*|performance", 0.5),
    ("function", "function|functions|method|methods", 0.5),
    ("bug", "bug|bugs|stack trace|exception|compile error*|compiler", 0.5),
)

_MATH_WORDS = _cues(
    ("prove", "prove|proves|proof|proofs|proving", 2.0),
    ("theorem", "theorem*|lemma*|corollar*|axiom*", 1.5),
    ("integral", "integral*|integrate", 1.5),
    ("differential equation", "differential equation*|ode|pde", 1.5),
    ("eigenvalue", "eigen*", 1.5),
    ("derivative", "derivative*|differentiate", 1.0),
    ("matrix", "matrix|matrices|linear algebra|determinant*", 1.0),
    ("probability", "probabilit*|expected value|variance|standard deviation|bayes*|distribution*", 1.0),
    ("convergence", "converge*|divergen*|asymptot*|limit of", 1.0),
    ("induction", "induction|contradiction", 1.0),
    ("polynomial", "polynomial*|logarithm*|exponential*|calculus|gradient*", 1.0),
    ("equation", "equation*|solve for|inequalit*", 1.0),
    ("number theory", "irrational|infinitely many|modular arithmetic|modulo|combinatori*", 1.0),
    ("statistics", "regression|hypothesis test*|p value*|confidence interval*", 1.0),
    ("primes", "prime|primes|permutation*|factorial", 0.5),
    ("compute", "compute|calculate", 0.5),
)

_REASONING_WORDS = _cues(
    ("trade-offs", "trade off*|tradeoff*", 2.0),
    ("analyze", "analy*", 1.5),
    ("step by step", "step by step|show your work|each step|show the steps", 1.5),
    ("pros and cons", "pros and cons|advantages and disadvantages", 1.5),
    ("justify", "justify|justification*|critique*|critici*", 1.5),
    ("root cause", "root cause*", 1.5),
    ("explain", "explain*|explanation*", 1.0),
    ("compare", "compare*|comparing|comparison*|contrast", 1.0),
    ("design", "design|designing|redesign*|architect a", 1.0),
    ("evaluate", "evaluat*|assess*", 1.0),
    ("review", "review|reviewing", 1.0),
    ("in depth", "in depth|in detail|detailed|thorough*|rigorous*", 1.0),
    ("implications", "implication*|consequence*|what would happen|what happens if", 1.0),
    ("strategy", "strateg*|optimal|optimi*", 1.0),
    ("prove", "prove|proof|derive|derivation", 1.0),
    ("reasoning", "reason about|reasoning|argue|argument*|hypothes*|walk me through|think through", 1.0),
    ("why", "why", 0.5),
    ("how ...", "how does|how do|how would|how can|how should", 0.5),
    ("difference", "difference between|differences between|versus|vs", 0.5),
    ("recommend", "recommend*|which is better|best approach|best way|should i|should we|consider*", 0.5),
)

_DOMAIN_WORDS = _cues(
    # legal
    ("liability", "liabilit*|indemni*|litigation|lawsuit*|tort", 1.0),
    ("compliance", "complian*|gdpr|hipaa|sox|pci|regulat*", 1.0),
    ("contract", "contract|contracts|clause*|statut*|jurisdiction*|intellectual property|patent*", 1.0),
    # medical
    ("diagnosis", "diagnos*|prognos*|differential|comorbid*|patholog*", 1.0),
    ("symptoms", "symptom*|side effect*|adverse", 1.0),
    ("dosage", "dosage*|dose|doses|prescri*|contraindicat*|pharmaco*", 1.0),
    ("clinical", "clinical*|interaction*|chronic", 1.0),
    ("treatment", "treatment*|therapy|medication*", 0.5),
    # financial
    ("valuation", "valuation*|discounted cash flow|dcf|ebitda|amortiz*|amortis*", 1.0),
    ("portfolio", "portfolio*|hedg*|liquidity|arbitrage|derivatives", 1.0),
    ("interest rate", "interest rate*|capital gains|depreciation|cash flow*", 1.0),
    ("tax", "tax|taxes|inflation|mortgage*|equity", 0.5),
    # analytics
    ("churn", "churn*|cohort*|forecast*|retention rate*|conversion rate*|a b test*|statistical significance", 1.0),
    # software architecture
    ("scalability", "scalab*|scale out|horizontal scaling|high availability|failover|fail over", 1.0),
    ("latency", "latenc*|throughput", 1.0),
    ("distributed", "distributed|microservice*|event driven|message queue*|kubernetes", 1.0),
    ("consistency", "consisten*|idempoten*|replicat*|shard*|partition*|eventual", 1.0),
    ("caching", "cach*|load balanc*|multi region|cdn", 0.5),
    # security
    ("threat model", "threat model*|attack surface|privilege escalation|zero trust|penetration test*", 1.0),
    ("vulnerability", "vulnerab*|exploit*|xss|csrf|sql injection|injection|cve", 1.0),
    ("encryption", "encrypt*|decrypt*|cryptograph*|key rotation|tls", 1.0),
    ("authentication", "authenticat*|authori*|oauth*|rbac|least privilege", 0.5),
)

_CONSTRAINT_WORDS = _cues(
    ("must not", "must not|mustn t|should not|shouldn t|cannot use|can t use|without using|never", 1.0),
    ("at most", "at most|no more than|at least|no less than|maximum|minimum", 0.75),
    ("requirements", "requirement*|constraint*", 1.0),
    ("SLO", "sla|slo|slas|slos|p99|p95|uptime", 1.0),
    ("edge cases", "edge case*|corner case*", 1.0),
    ("compatibility", "backward compat*|backwards compat*|zero downtime|without downtime", 1.0),
    ("must", "must", 0.5),
    ("budget", "budget*|deadline*|real time", 0.5),
    ("assumptions", "given that|assume|assuming", 0.5),
)

_SEQUENCE_WORDS = _cues(
    ("step 1", "step 1|step one", 1.0),
    ("finally", "finally|after that|afterwards|and then|lastly", 0.5),
    ("additionally", "additionally|in addition|furthermore|moreover", 0.5),
    ("and what", "and what|and how|and why|and which|and when|and where", 0.75),
)

_FENCE = "```"
# Line-oriented patterns start with a literal "\n" and run on the window framed by newlines (``_Text.lines``):
# a literal first character lets the regex engine skip ahead quickly, which MULTILINE "^" does not.
_TRACE_MARKERS = ("Traceback (most recent call last)", "\nException in thread ", "\npanic: ")
_TRACE_RE = re.compile(r"\n[ \t]*File \"[^\"\n]+\", line \d+|\n[ \t]*at [\w$.<>]+\([^()\n]*:\d+(?::\d+)?\)")
_ERROR_NAME_RE = re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b")
_CODE_LINE_START_RE = re.compile(
    r"\n[ \t]*(?:def |async def |class \w|import [\w.]+|from [\w.]+ import |fn \w|func \w|function\b|"
    r"public |private |protected |static |const \w|let \w|var \w|#include|package \w|using \w|"
    r"return\b|if ?\(|for ?\(|while ?\(|try:|try \{|except\b|catch ?\(|SELECT |INSERT INTO|UPDATE \w|CREATE TABLE)"
)
_CODE_LINE_END_RE = re.compile(r"[;{}][ \t]*\n")
_CODE_OPERATOR_RE = re.compile(r"=>|->|::|==|!=|&&|\|\||\+=|-=|:=|\+\+")
_CALL_ARGS_RE = re.compile(r"\((?:[^()\n]{2,80})?\)")  # a call when preceded by a name: f(a, b), main()
_INLINE_CODE_RE = re.compile(r"`[^`\n]+`")
_SQL_RE = re.compile(r"\bSELECT\b[^;]{1,200}?\bFROM\b")
_MARKUP_RE = re.compile(r"</[A-Za-z][\w-]*>")

_LATEX_RE = re.compile(
    r"\\(?:frac|int|iint|sum|prod|sqrt|lim|infty|partial|nabla|alpha|beta|gamma|delta|epsilon|theta|lambda|"
    r"sigma|mu|pi|cdot|times|leq|geq|neq|approx|mathbb|mathrm|mathcal|begin|left|right|ln|log|sin|cos|vec|hat|"
    r"binom|forall|exists|in|subseteq)\b"
    r"|\$[^$\n]*[\\^_][^$\n]*\$"
)
_MATH_SYMBOLS = frozenset("∫∑∏√∞≤≥≠≈∀∃∈∉⊂⊆∪∩∂∇±÷⇒⇔ℝℕℤℚ")
# (pattern, substrings of which at least one must occur for the pattern to possibly match: a cheap pre-check)
_EQUATIONS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"[a-zA-Z]\s*\^\s*[\d{(a-z]"), ("^",)),  # x^2
    (re.compile(r"\b[a-z]\([a-z]\)\s*="), ("=",)),  # f(x) =
    (re.compile(r"\bd[a-z]\s*/\s*d[a-z]\b"), ("/",)),  # dy/dx
    (re.compile(r"\b\d+[a-z]\s*[-+=]"), ("+", "=", "-")),  # 3x + 1
    (re.compile(r"\b[a-z]\s*=\s*-?\d"), ("=",)),  # x = 5
)
_ARITHMETIC_RE = re.compile(r"\d[ \t]*(?:[+*/×÷^][ \t]*|[ \t]-[ \t]+)\d")
_ARITHMETIC_HINTS = ("+", "*", "/", "×", "÷", "^", " - ")

_LIST_ITEM_RE = re.compile(r"\n[ \t]*(?:\d{1,2}[.)]|[-*•])[ \t]+\S")
_QUANTITY_RE = re.compile(
    r"\d[\d,.]*[ \t]*[kKmM]?[ \t]*(?:ms|milliseconds?|seconds?|rps|qps|tps|req/s|requests? per (?:second|minute)|"
    r"users|concurrent|[GMT]B|%)(?!\w)"
)
# Splits text into words: punctuation (ASCII and the typographic kind phones insert) becomes a space.
_WORD_BREAKS = str.maketrans(dict.fromkeys(string.punctuation + string.whitespace + "‘’“”«»¿¡–—…•·", " "))

# Words sizing a requirement ("10k rps", "under 50 ms", "99.9% uptime"): a pre-check for _QUANTITY_RE.
_UNIT_WORDS = _word_set("ms millisecond milliseconds second seconds rps qps tps req requests users concurrent gb mb tb")


def _words(text: str) -> list[str]:
    """Lower-case words; "What's" -> ["what", "s"], so cues are written the same way ("what s up")."""
    return text.lower().translate(_WORD_BREAKS).split()


@dataclass(frozen=True)
class _Text:
    """The prompt prepared once for all detectors."""

    window: str  # the raw prefix that patterns look at
    lines: str  # the window framed by newlines, for the line-oriented patterns
    norm: str  # its words, lower-case, single-spaced and padded: " what s 2 2 "
    words: frozenset[str]

    @classmethod
    def of(cls, prompt: str) -> _Text:
        window = prompt[:_SCAN_CHARS]
        words = _words(window)
        return cls(window, f"\n{window}\n", " " + " ".join(words) + " ", frozenset(words))


@dataclass(frozen=True)
class _Fired:
    name: str
    contribution: float
    label: str


@dataclass(frozen=True)
class _Analysis:
    complexity: float  # rounded to 3 decimals
    fired: tuple[_Fired, ...]  # in _SIGNAL_ORDER

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fired)

    def details(self) -> str:
        """Labels of the signals, strongest first: what a human wants to read first in analytics."""
        if not self.fired:
            return "no complexity signals"
        ranked = sorted(self.fired, key=lambda f: (-f.contribution, _SIGNAL_ORDER.index(f.name)))
        return ", ".join(f.label for f in ranked)


def _strength(points: float) -> float:
    return 1.0 - math.pow(0.5, points)


def _match(text: _Text, cues: _Cues) -> tuple[float, list[str]]:
    """Sum the points of the distinct cues found; labels in table order (the table lists strong cues first)."""
    hits: set[int] = set()
    for word in text.words.intersection(cues.by_word):
        hits.update(cues.by_word[word])
    norm, words = text.norm, text.words
    for needle, index, required in cues.needles:
        if index not in hits and required <= words and needle in norm:
            hits.add(index)
    ordered = sorted(hits)
    return sum(cues.points[i] for i in ordered), [cues.labels[i] for i in ordered]


def _quoted(labels: Sequence[str], limit: int = 2) -> str:
    return ", ".join(f'"{label}"' for label in labels[:limit])


def _has_call(window: str) -> bool:
    if "(" not in window:
        return False
    return any(
        m.start() > 0 and (window[m.start() - 1].isalnum() or window[m.start() - 1] == "_")
        for m in _CALL_ARGS_RE.finditer(window)
    )


def _code(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _CODE_WORDS)
    label = f"code ({_quoted(words)})" if words else "code"
    window, lines = text.window, text.lines
    syntax = 0.0
    if _CODE_LINE_START_RE.search(lines):
        syntax += 1.5
    if "SELECT" in window and _SQL_RE.search(window):
        syntax += 1.5
    if _CODE_LINE_END_RE.search(lines):
        syntax += 1.0
    if _CODE_OPERATOR_RE.search(window):
        syntax += 1.0
    if "</" in window and _MARKUP_RE.search(window):
        syntax += 1.0
    if _has_call(window):
        syntax += 0.5
    if "`" in window and _INLINE_CODE_RE.search(window):
        syntax += 0.5
    if syntax:
        points += syntax
        label = "code-like syntax"
    fences = window.count(_FENCE)
    if fences:
        points += 3.0 if fences >= 2 else 1.5
        label = "code block"
    if ("Error" in window or "Exception" in window) and _ERROR_NAME_RE.search(window):
        points += 1.0
        label = label if fences else "error message"
    if any(marker in lines for marker in _TRACE_MARKERS) or _TRACE_RE.search(lines):
        points += 3.0
        label = "stack trace"
    return points, label


def _math(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _MATH_WORDS)
    label = f"math ({_quoted(words)})" if words else ""
    window = text.window
    if any(any(h in window for h in hints) and pattern.search(window) for pattern, hints in _EQUATIONS):
        points += 0.75
        label = label or "equation"
    symbols = len(_MATH_SYMBOLS.intersection(window))
    if symbols:
        points += min(symbols, 3)
        label = label or "math symbols"
    if ("\\" in window or "$" in window) and _LATEX_RE.search(window):
        points += 2.0
        label = "LaTeX math"
    if "prove" in words:
        label = "proof"
    if any(h in window for h in _ARITHMETIC_HINTS) and _ARITHMETIC_RE.search(window):
        points += 0.5
        label = label or "arithmetic"
    return points, label


def _multi_step(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _SEQUENCE_WORDS)
    label = f"multi-step ({_quoted(words)})" if words else "multi-step"
    if "first" in text.words and not text.words.isdisjoint(("then", "next", "second", "finally")):
        points += 1.5
        label = "first ... then"
    items = len(_LIST_ITEM_RE.findall(text.lines))
    if items >= 2:
        points += 0.75 * (items - 1)
        label = f"{items}-item list"
    questions = text.window.count("?")
    if questions >= 2:
        points += 0.75 * (questions - 1)
        label = f"{questions} questions" if items < 2 else f"{items}-item list, {questions} questions"
    return points, label


def _has_quantity(text: _Text) -> bool:
    # Cheap pre-check first: "100ms" is one word, hence the look at the last letters.
    hinted = (
        "%" in text.window
        or not text.words.isdisjoint(_UNIT_WORDS)
        or any(w[-2:] in ("ms", "gb", "mb", "tb") and w[0].isdigit() for w in text.words)
    )
    return hinted and _QUANTITY_RE.search(text.window) is not None


def _length_contribution(words: int, chars: int) -> float:
    return WEIGHTS["length"] * _strength(max(words / _LENGTH_WORDS_HALF, chars / _LENGTH_CHARS_HALF))


def _analyze(prompt: str) -> _Analysis:
    text = _Text.of(prompt)
    points: dict[str, tuple[float, str]] = {
        "code": _code(text),
        "math": _math(text),
        "multi_step": _multi_step(text),
    }
    for name, cues, title in (
        ("reasoning", _REASONING_WORDS, "reasoning"),
        ("domain", _DOMAIN_WORDS, "domain terms"),
        ("constraints", _CONSTRAINT_WORDS, "constraints"),
    ):
        value, labels = _match(text, cues)
        if name == "constraints" and _has_quantity(text):
            value += 1.0
            labels.append("quantities")
        points[name] = (value, f"{title} ({_quoted(labels)})" if labels else title)

    contributions: dict[str, tuple[float, str]] = {
        name: (WEIGHTS[name] * _strength(value), label) for name, (value, label) in points.items()
    }
    # Words are counted in a prefix only: beyond it the chars term has saturated the length signal anyway.
    words = len(prompt[: _SCAN_CHARS * 2].split())
    contributions["length"] = (_length_contribution(words, len(prompt)), f"long prompt ({words} words)")

    remaining = 1.0
    for contribution, _ in contributions.values():
        remaining *= 1.0 - contribution
    fired = tuple(
        _Fired(name, contributions[name][0], contributions[name][1])
        for name in _SIGNAL_ORDER
        if contributions[name][0] >= _FIRE_MIN
    )
    return _Analysis(round(min(1.0, max(0.0, 1.0 - remaining)), 3), fired)


def score(prompt: str) -> tuple[float, tuple[str, ...]]:
    """Complexity of ``prompt`` in [0, 1] (3 decimals) and the names of the signals that fired.

    Signal names, in this fixed order: code, math, reasoning, domain, multi_step, constraints, length.
    """
    analysis = _analyze(prompt)
    return analysis.complexity, analysis.signals


# --------------------------------------------------------------------------------------------------------------
# Follow-up and small-talk detection
# --------------------------------------------------------------------------------------------------------------


# Messages made only of these words are greetings, thanks or acknowledgements: they need no context.
_SMALL_TALK_WORDS = _word_set("""
    hi hello hey hiya yo howdy greetings good morning afternoon evening night day thanks thank thx ty tysm cheers
    you so much very a lot many ok okay k kk okey great cool nice perfect awesome excellent wonderful amazing
    brilliant fantastic super sweet lovely got it that s this is was helpful helps helped useful makes sense
    understood i see alright all right fine fair enough bye goodbye cya ya later take care appreciate appreciated
    lol haha wow will do sounds noted exactly indeed agreed works worked
    """)
_SMALL_TALK_PHRASES = frozenset(
    {
        "how are you",
        "how are you doing",
        "how s it going",
        "what s up",
        "nice to meet you",
        "see you",
        "see you later",
        "no thanks",
        "no thank you",
    }
)
_SMALL_TALK_MAX_WORDS = 10

# Leading words that do not change what a message is about ("ok, now make it faster").
_FILLER_WORDS = _word_set("ok okay great thanks thank you cool nice perfect alright hmm well please")
_CONNECTIVES = _word_set("and but so also now then plus or")
_CONFIRMATIONS = _word_set("yes yeah yep yup sure no nope please")
_EDIT_VERBS = _word_set(
    """shorten simplify rewrite rephrase continue elaborate expand redo retry clarify proceed improve optimize
    optimise shorter longer simpler faster slower more less better again"""
)
_BARE_QUESTIONS = _word_set("why how really sure are is what which where when who source sources example huh")
_PRONOUNS = _word_set("it its them they these those")
# "that" and "this" are also relative pronouns and determiners ("a function that checks ...", "this sentence:
# ..."); they refer to the previous answer only at the end of a message or before one of these words.
_DEMONSTRATIVES = _word_set("that this")
_AFTER_DEMONSTRATIVE = _word_set(
    """is was s one part bit code answer function query script version again too in into to for with more please
    but and mean means work works shorter simpler faster better"""
)
# Explicit references to the previous answer, trusted in a message of any length.
_EXPLICIT_REFERENCES = tuple(
    f" {p} "
    for p in (
        "your answer",
        "your response",
        "your code",
        "your solution",
        "your last",
        "your example",
        "your previous",
        "you said",
        "you wrote",
        "you mentioned",
        "you suggested",
        "you just",
        "the above",
        "above code",
        "previous answer",
        "previous response",
        "do the same",
        "same for",
        "as before",
    )
)
# Looser references, trusted only in short messages: "instead" or "again" in a long message is usually prose.
_SHORT_REFERENCES = tuple(
    f" {p} "
    for p in (
        "what about",
        "how about",
        "the same",
        "same thing",
        "previous",
        "earlier",
        "instead",
        "again",
        "go on",
        "go ahead",
        "keep going",
        "the first one",
        "the second one",
        "the third one",
        "the last one",
        "the other one",
        "that one",
        "this one",
        "more detail",
        "more examples",
        "another example",
    )
)
_CONNECTIVE_MAX_WORDS = 25  # also the limit for _SHORT_REFERENCES
_PRONOUN_MAX_WORDS = 12
_SHORT_MAX_WORDS = 3


def _is_small_talk(words: Sequence[str]) -> bool:
    if not words or len(words) > _SMALL_TALK_MAX_WORDS:
        return False
    return " ".join(words) in _SMALL_TALK_PHRASES or all(w in _SMALL_TALK_WORDS for w in words)


def _opening_words(prompt: str) -> list[str]:
    return _words(prompt[:_FOLLOW_UP_SCAN_CHARS])


def _follow_up_cue(words: Sequence[str]) -> str | None:
    """Why a message (its opening words) looks like it builds on the previous answer, or None if it stands alone.

    Deliberately conservative about long messages: a long message that happens to start with "so" usually
    carries its own context, so only explicit references ("your code", "the above") count there.
    """
    if not words or _is_small_talk(words):
        return None
    norm = " " + " ".join(words) + " "
    count = len(words)
    references = _EXPLICIT_REFERENCES + _SHORT_REFERENCES if count <= _CONNECTIVE_MAX_WORDS else _EXPLICIT_REFERENCES
    phrase = next((p.strip() for p in references if p in norm), None)
    if phrase is not None:
        return f'refers to the previous answer ("{phrase}")'
    first = next((w for w in words if w not in _FILLER_WORDS), words[0])
    if first in _CONNECTIVES and count <= _CONNECTIVE_MAX_WORDS:
        return f'starts with "{first}"'
    if first in _CONFIRMATIONS and count <= _SHORT_MAX_WORDS * 2:
        return f'confirms ("{first}")'
    if count <= _SHORT_MAX_WORDS and first in _EDIT_VERBS:
        return f'asks to change the previous answer ("{first}")'
    has_digit = any(w[0].isdigit() for w in words)
    if count <= _SHORT_MAX_WORDS and first in _BARE_QUESTIONS and not has_digit:
        return "short question about the previous answer"
    if count <= _PRONOUN_MAX_WORDS:
        for i, word in enumerate(words):
            after = words[i + 1] if i + 1 < count else None
            if word in _PRONOUNS or (word in _DEMONSTRATIVES and (after is None or after in _AFTER_DEMONSTRATIVE)):
                return f'refers to "{word}"'
    return None


# --------------------------------------------------------------------------------------------------------------
# Decision
# --------------------------------------------------------------------------------------------------------------


def _is_unit(value: float) -> bool:
    return isinstance(value, int | float) and not math.isnan(value) and 0.0 <= value <= 1.0


def _check_order(name: str, order: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    unknown = [b for b in order if b not in allowed]
    if unknown:
        raise ValueError(f"{name} contains unknown backends {unknown}; allowed: {', '.join(allowed)}")
    if len(set(order)) != len(order):
        raise ValueError(f"{name} lists a backend twice: {order}")


def _known(configured: Collection[str]) -> tuple[str, ...]:
    """Configured backends in canonical order: ``configured`` may be a set, whose order is not reproducible."""
    return tuple(b for b in BACKENDS if b in configured)


def _fmt(value: float) -> str:
    """0.72 -> "0.72", 0.7 -> "0.7", 0.449 -> "0.449": short, and exact for values already rounded to 3 places."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _prior_complexity(turn: PriorTurn) -> float:
    """The previous turn's complexity; for an imported turn the length signal of its message as a lower bound."""
    value = turn.complexity
    if value is not None and not math.isnan(value):
        return min(1.0, max(0.0, value))
    return _length_contribution(0, max(0, turn.user_chars))


@dataclass(frozen=True)
class _Tiered:
    backend: str
    explanation: str  # what follows the complexity, e.g. ">= 0.45: strong backend cloud"


def _pick(
    complexity: float,
    available: tuple[str, ...],
    config: RouterConfig,
    sticky: str | None,
) -> _Tiered:
    """Apply the tier rules to ``complexity``; ``sticky`` is the backend a follow-up should stay on if possible."""
    threshold = _fmt(config.local_threshold)
    preference = config.strong_order + tuple(b for b in STRONG_BACKENDS if b not in config.strong_order)
    strong = tuple(b for b in preference if b in available)

    def strong_choice() -> tuple[str, str]:
        if sticky in strong:
            return sticky, " (stays on the previous turn's backend)"
        return strong[0], ""

    if complexity < config.local_threshold:
        if "local" in available:
            return _Tiered("local", f"< {threshold}: local backend")
        backend, note = strong_choice()
        return _Tiered(backend, f"< {threshold} but no local backend is configured: strong backend {backend}{note}")
    if strong:
        backend, note = strong_choice()
        return _Tiered(backend, f">= {threshold}: strong backend {backend}{note}")
    return _Tiered("local", f">= {threshold} but no strong backend is configured: local backend")


def decide(
    prompt: str,
    history: Sequence[PriorTurn],
    configured: Collection[str],
    config: RouterConfig,
    route: str = "auto",
) -> Decision:
    """Choose the backend for ``prompt``.

    ``history`` holds the session's earlier turns, newest last. A follow-up builds on the newest turn's
    complexity; the previous backend is that of the newest turn that has one (imported turns have none).
    ``configured`` names the backends that have an endpoint. ``route`` is the user's explicit
    choice, "auto" for the rules.

    Raises ``UnknownRoute`` or ``BackendNotConfigured`` (both ``ValueError``: the client's fault) and
    ``NoBackendConfigured`` (``RuntimeError``: the deployment's fault).
    """
    if route not in ROUTES:
        raise UnknownRoute(route)
    available = _known(configured)
    if not available:
        raise NoBackendConfigured()
    if route != "auto" and route not in available:
        raise BackendNotConfigured(route, configured)

    analysis = _analyze(prompt)
    own = analysis.complexity
    previous = history[-1] if history else None
    # Imported turns were routed by nobody: the backend to stay on, or to have switched from, is the newest real one.
    previous_backend = next((turn.backend for turn in reversed(history) if turn.backend is not None), None)
    opening = _opening_words(prompt)
    cue = _follow_up_cue(opening) if previous is not None else None
    follow_up = cue is not None

    complexity = own
    basis = f"complexity {_fmt(own)} ({analysis.details()})"
    context = ""
    if previous is not None and cue is not None:
        prior = _prior_complexity(previous)
        complexity = max(own, round(prior * config.follow_up_decay, 3))
        source = f"a turn on {previous.backend}" if previous.backend is not None else "an imported turn"
        basis = (
            f"follow-up to {source} ({cue}): complexity {_fmt(complexity)} = max(own {_fmt(own)} "
            f"({analysis.details()}), previous {_fmt(prior)} * {_fmt(config.follow_up_decay)})"
        )
    elif previous is not None and own < config.local_threshold:
        # Only where inheriting would have mattered: it explains leaving a strong backend after a hard turn.
        context = "; small talk needs no context" if _is_small_talk(opening) else "; not a follow-up"

    sticky = previous_backend if follow_up else None
    auto = _pick(complexity, available, config, sticky)
    if route != "auto":
        backend = route
        auto_text = f"auto would choose {auto.backend}" if auto.backend != route else "auto agrees"
        reason = f"user override: {route} ({auto_text}: {basis} {auto.explanation}){context}"
    elif len(available) == 1:
        backend = available[0]
        reason = f"only backend configured: {backend} ({basis}){context}"
    else:
        backend = auto.backend
        reason = f"{basis} {auto.explanation}{context}"

    switched_from = previous_backend if previous_backend is not None and previous_backend != backend else None
    if switched_from is not None:
        gone = "" if switched_from in available else ", which is no longer configured"
        reason += f"; switched from {switched_from}{gone}"

    signals = analysis.signals + (("follow_up",) if follow_up else ())
    return Decision(
        backend=backend,
        complexity=round(complexity, 3),
        reason=reason,
        router_version=ROUTER_VERSION,
        signals=signals,
        switched_from=switched_from,
        follow_up=follow_up,
    )


def fallback_chain(chosen: str, configured: Collection[str], config: RouterConfig) -> tuple[str, ...]:
    """Backends to try, in order, after ``chosen`` failed: configured ones only, never ``chosen`` itself.

    ``config.fallback_order`` first; configured backends it does not mention follow in canonical order, so an
    incomplete ROUTER_FALLBACK_ORDER never silently disables a configured backend.
    """
    available = _known(configured)
    ordered = [b for b in config.fallback_order if b in available and b != chosen]
    rest = [b for b in available if b not in config.fallback_order and b != chosen]
    return tuple(ordered + rest)
