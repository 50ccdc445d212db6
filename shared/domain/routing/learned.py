"""learned-v1: a small logistic-regression router, trained offline (``python -m tools.train_router``).

Why a learned scorer next to the hand-written rules (``rules-v1``): on an independent held-out set the rules
agreed with the labelling policy on 0.735 of single turns (a "longer than 200 characters" baseline: 0.778) and
missed whole families of hard prompts (multi-step word problems, open-ended technical requests, logic
puzzles). A linear model over readable features, fitted to a labelled corpus (``tools/router_corpus/``), keeps
what made the rules acceptable in production: it is pure Python, deterministic, sub-millisecond and explainable
(every feature is a readable string with a weight), and the weights ship as one JSON file whose sha256 is
recorded inside it.

Single turn
-----------
``features(text)`` turns a message into a set of feature names (``w:explain``, ``b:step by``, ``len:9`` ...).
``probability(text)`` is ``sigmoid(bias + sum(weights[f]))``: the probability that the turn needs the strong
model. Numbers are folded into one token (``<n>``) so that "4 apples" and "17 apples" look alike. Words are
read from the first ``SCAN_CHARS`` characters only (the question nearly always comes first, and it bounds the
cost of a huge paste); length and line counts use the whole message.

Conversations
-------------
``route(text, history)`` decides a turn of a conversation from the new message and, for each earlier turn, only
what the service stores anyway: its complexity (the probability this module gave it), its backend and its
length (``PriorTurn``; the earlier texts are not needed). A message is first classified by small word lists
(``follow_up_kind``):

- ``social``: thanks, greetings, goodbyes ("thanks!", "great, bye"): routed on its own merits (local).
- ``reformat``: only reformats, shortens, simplifies or translates the previous answer ("Translate your
  answer to French", "Put it in a table"): routed on its own merits; rewriting text is a cheap-model task.
- ``new_topic``: says it changes the subject ("unrelated: ...", "by the way, ..."): its own merits.
- ``reference``: builds on earlier content: pronouns and definite references ("it", "the code", "the
  problem", "your answer") or continuations ("what if", "now", "instead", "can you also", "why"): inherits
  the conversation's difficulty, ``max(own, decay * conversation)``, where the conversation's difficulty is
  the largest recent complexity, discounted by ``decay`` per turn back (so a hard question followed by a
  reformat still counts two turns later).
- ``none``: a self-contained message: its own merits (a new hard question after small talk goes to the
  strong model, an easy one after a hard turn to the local one).

Everything here is pure: the weights file is read once, on first use; no clock, no randomness.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.domain.routing.types import Assessment, PriorTurn, quantile_threshold

__all__ = [
    "MODEL_VERSION",
    "Routed",
    "Scored",
    "features",
    "follow_up_kind",
    "model_info",
    "probability",
    "route",
    "score",
    "threshold_for_share",
    "verify_checksum",
]

MODEL_VERSION = "learned-v1"
WEIGHTS_PATH = Path(__file__).with_name("learned-v1.json")

# Words are read in this prefix only; length features use the whole text.
SCAN_CHARS = 1_500
# A follow-up cue counts only in short messages, or in the opening of a long one.
_CUE_WORDS = 40

_TOKEN_RE = re.compile(r"c\+\+|c#|[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[$%=+*/^<>\\{}()\[\]#`|_~?!:;-]")
_LIST_ITEM_RE = re.compile(r"(?m)^[ \t]*(?:\d{1,2}[.)]|[-*•])[ \t]+\S")
_CODE_LINE_RE = re.compile(
    r"(?m)^(?:[ \t]{2,}\S|.*[;{}][ \t]*$|[ \t]*(?:def|class|import|from|return|for|while|if|fn|func|public|"
    r"private|const|let|var|#include|SELECT|async)\b)"
)
_LATEX_RE = re.compile(r"\\[a-zA-Z]+|\$[^$\n]{1,200}\$")
_MATH_SYMBOLS = frozenset("∫∑∏√∞≤≥≠≈∀∃∈∉⊂⊆∪∩∂∇±÷×⇒⇔ℝℕℤℚπθ")


def _bucket(value: int, edges: Sequence[int]) -> int:
    """Index of the first edge ``value`` is below; ``len(edges)`` when above all."""
    for i, edge in enumerate(edges):
        if value < edge:
            return i
    return len(edges)


def _tokens(text: str) -> list[str]:
    return ["<n>" if t[0].isdigit() else t for t in _TOKEN_RE.findall(text.lower())]


# Function words carry style, not difficulty: alone or paired with each other they are no feature.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "with",
        "by",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "we",
        "me",
        "my",
        "your",
        "our",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "there",
        "here",
        "s",
        "do",
        "does",
        "did",
        "so",
        "if",
        "than",
        "then",
    ]
)
# Word families that generalise beyond the corpus vocabulary: each adds a count-bucket feature.
_LEXICONS: dict[str, frozenset[str]] = {
    "code": frozenset(
        [
            "python",
            "java",
            "javascript",
            "typescript",
            "rust",
            "golang",
            "go",
            "c++",
            "cpp",
            "c#",
            "csharp",
            "kotlin",
            "swift",
            "scala",
            "haskell",
            "ruby",
            "php",
            "perl",
            "bash",
            "shell",
            "powershell",
            "sql",
            "postgres",
            "postgresql",
            "mysql",
            "sqlite",
            "mongodb",
            "redis",
            "kafka",
            "spark",
            "hadoop",
            "react",
            "vue",
            "angular",
            "django",
            "flask",
            "fastapi",
            "node",
            "nodejs",
            "express",
            "spring",
            "docker",
            "kubernetes",
            "k8s",
            "helm",
            "terraform",
            "ansible",
            "aws",
            "azure",
            "gcp",
            "lambda",
            "api",
            "apis",
            "rest",
            "grpc",
            "graphql",
            "http",
            "websocket",
            "websockets",
            "tcp",
            "udp",
            "tls",
            "ssl",
            "dns",
            "nginx",
            "linux",
            "kernel",
            "unix",
            "git",
            "github",
            "compiler",
            "interpreter",
            "parser",
            "lexer",
            "regex",
            "thread",
            "threads",
            "threading",
            "async",
            "await",
            "concurrency",
            "concurrent",
            "mutex",
            "lock",
            "deadlock",
            "race",
            "memory",
            "pointer",
            "pointers",
            "heap",
            "stack",
            "queue",
            "array",
            "arrays",
            "hashmap",
            "dictionary",
            "tree",
            "trees",
            "graph",
            "graphs",
            "recursion",
            "recursive",
            "algorithm",
            "algorithms",
            "complexity",
            "database",
            "databases",
            "schema",
            "index",
            "query",
            "queries",
            "cache",
            "caching",
            "server",
            "servers",
            "client",
            "backend",
            "frontend",
            "microservice",
            "microservices",
            "deployment",
            "pipeline",
            "ci",
            "cd",
            "container",
            "containers",
            "cluster",
            "latency",
            "throughput",
            "bug",
            "debug",
            "debugging",
            "exception",
            "segfault",
            "refactor",
            "unittest",
            "pytest",
            "tests",
            "framework",
            "library",
            "sdk",
            "cli",
            "gui",
            "neural",
            "network",
            "networks",
            "model",
            "models",
            "training",
            "train",
            "pytorch",
            "tensorflow",
            "keras",
            "numpy",
            "pandas",
            "gpu",
            "cuda",
            "embedding",
            "embeddings",
            "transformer",
            "llm",
            "gan",
            "cnn",
            "rnn",
            "lstm",
            "dataset",
            "datasets",
            "classifier",
            "regression",
            "shader",
            "opengl",
            "webgl",
            "unity",
            "unreal",
            "vba",
            "excel",
            "macro",
            "plugin",
            "extension",
            "chrome",
            "browser",
            "dom",
            "css",
            "html",
            "json",
            "xml",
            "yaml",
            "csv",
            "oauth",
            "jwt",
            "encryption",
            "crypto",
            "blockchain",
            "solidity",
            "smart",
            "contract",
            "scraper",
            "crawler",
            "bot",
            "app",
            "program",
            "programs",
            "script",
            "scripts",
            "function",
            "functions",
            "class",
            "classes",
            "method",
            "methods",
            "code",
        ]
    ),
    "math": frozenset(
        [
            "prove",
            "proof",
            "theorem",
            "lemma",
            "integral",
            "derivative",
            "equation",
            "equations",
            "polynomial",
            "matrix",
            "matrices",
            "eigenvalue",
            "vector",
            "vectors",
            "probability",
            "expected",
            "variance",
            "combinatorics",
            "permutations",
            "combinations",
            "prime",
            "primes",
            "divisible",
            "divisor",
            "divisors",
            "modulo",
            "integer",
            "integers",
            "real",
            "reals",
            "rational",
            "irrational",
            "sequence",
            "series",
            "converge",
            "convergence",
            "limit",
            "function",
            "functions",
            "inequality",
            "minimum",
            "maximum",
            "optimize",
            "geometry",
            "triangle",
            "circle",
            "radius",
            "area",
            "perimeter",
            "volume",
            "angle",
            "parabola",
            "hyperbola",
            "ellipse",
            "logarithm",
            "log",
            "sin",
            "cos",
            "tan",
            "sqrt",
            "factorial",
            "gcd",
            "lcm",
            "digits",
            "remainder",
            "sum",
            "product",
            "roots",
            "solutions",
        ]
    ),
    "analysis": frozenset(
        [
            "analyze",
            "analyse",
            "analysis",
            "compare",
            "comparison",
            "contrast",
            "evaluate",
            "evaluation",
            "assess",
            "critique",
            "critically",
            "trade",
            "tradeoff",
            "tradeoffs",
            "implications",
            "design",
            "architect",
            "architecture",
            "strategy",
            "strategies",
            "optimize",
            "optimise",
            "justify",
            "derive",
            "explain",
            "justification",
            "pros",
            "cons",
            "risks",
            "risk",
            "mitigation",
            "recommend",
            "recommendation",
            "constraints",
            "requirements",
            "scalable",
            "scalability",
            "performance",
            "security",
            "threat",
            "legal",
            "regulatory",
            "compliance",
            "liability",
            "contract",
            "clause",
            "gdpr",
            "clinical",
            "diagnosis",
            "treatment",
            "pharmacology",
            "valuation",
            "portfolio",
            "econometric",
            "policy",
            "hypothesis",
            "methodology",
            "framework",
            "rigorous",
            "detailed",
            "comprehensive",
        ]
    ),
    "rewrite": frozenset(
        [
            "translate",
            "translation",
            "summarize",
            "summarise",
            "summary",
            "rewrite",
            "rephrase",
            "paraphrase",
            "proofread",
            "correct",
            "grammar",
            "spelling",
            "synonym",
            "synonyms",
            "antonym",
            "shorten",
            "shorter",
            "simplify",
            "reword",
            "title",
            "headline",
            "caption",
            "slogan",
            "tweet",
            "haiku",
            "poem",
            "limerick",
            "joke",
            "greeting",
            "classify",
            "categorize",
            "label",
            "sentiment",
            "extract",
            "list",
            "name",
            "names",
        ]
    ),
}
_CODE_REQUEST_RE = re.compile(
    r"\b(?:write|implement|create|build|develop|code|make|generate|provide)\b[^.?!\n]{0,60}?"
    r"\b(?:program|script|function|class|app|application|code|api|service|bot|algorithm|parser|compiler|game|"
    r"tool|library|module|extension|plugin|query|shader|simulation|server)\b"
)


def features(text: str) -> frozenset[str]:
    """The feature names present in ``text`` (binary features: present or not)."""
    head = text[:SCAN_CHARS]
    tokens = _tokens(head)
    feats = {f"w:{t}" for t in tokens if t not in _STOP}
    feats.update(f"b:{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if not (a in _STOP and b in _STOP))
    if tokens:
        feats.add(f"first:{tokens[0]}")
        feats.add(f"last:{tokens[-1]}")
    chars = len(text)
    numbers = tokens.count("<n>")
    lines = text.count("\n") + 1
    feats.add(f"len:{_bucket(chars, (40, 100, 250, 600, 1500))}")
    if numbers:
        feats.add(f"nums:{_bucket(numbers, (2, 3, 4, 5, 7, 10))}")
    if lines > 2:
        feats.add(f"lines:{_bucket(lines, (5, 10, 20))}")
    if head.count("?") >= 2:
        feats.add("s:questions")
    words = set(tokens)
    for name, lexicon in _LEXICONS.items():
        hits = len(words & lexicon)
        if hits:
            feats.add(f"lex:{name}:{_bucket(hits, (2, 3, 5))}")
    if _CODE_REQUEST_RE.search(head[:400].lower()):
        feats.add("s:code_request")
    if "```" in head:
        feats.add("s:fence")
    code_lines = len(_CODE_LINE_RE.findall(head))
    if code_lines:
        feats.add(f"s:code_lines:{_bucket(code_lines, (2, 4, 8))}")
    items = len(_LIST_ITEM_RE.findall(head))
    if items:
        feats.add(f"s:list:{_bucket(items, (2, 4))}")
    if _LATEX_RE.search(head):
        feats.add("s:latex")
    if not _MATH_SYMBOLS.isdisjoint(head):
        feats.add("s:math_symbol")
    return frozenset(feats)


# --------------------------------------------------------------------------------------------------------------
# The shipped model
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Model:
    bias: float
    weights: dict[str, float]
    threshold: float
    decay: float
    quantiles: tuple[float, ...]  # probability quantiles at 0%, 1%, ..., 100% of the calibration sample
    info: dict[str, Any]


_MODEL: _Model | None = None


def canonical_payload(doc: dict[str, Any]) -> bytes:
    """The bytes the checksum covers: everything but the checksum itself, canonical JSON."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_checksum(doc: dict[str, Any]) -> bool:
    return hashlib.sha256(canonical_payload(doc)).hexdigest() == doc.get("sha256")


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        doc = json.loads(WEIGHTS_PATH.read_text(encoding="utf-8"))
        if doc.get("version") != MODEL_VERSION:
            raise RuntimeError(f"{WEIGHTS_PATH.name}: version {doc.get('version')!r}, expected {MODEL_VERSION}")
        _MODEL = _Model(
            bias=float(doc["bias"]),
            weights=doc["weights"],
            threshold=float(doc["threshold"]),
            decay=float(doc["conversation"]["decay"]),
            quantiles=tuple(doc["calibration"]["quantiles"]),
            info={k: doc[k] for k in ("version", "trained_on", "dev_scores", "sha256") if k in doc},
        )
    return _MODEL


def model_info() -> dict[str, Any]:
    """Version, checksum and recorded dev scores of the shipped weights (for the turn record and analytics)."""
    return dict(_model().info)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    p = min(1.0 - 1e-9, max(1e-9, p))
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class Scored:
    probability: float
    top: tuple[tuple[str, float], ...]  # the strongest contributions, strongest first

    def explain(self) -> str:
        parts = ", ".join(f"{name} {w:+.2f}" for name, w in self.top)
        return f"p={self.probability:.3f} ({parts})" if parts else f"p={self.probability:.3f}"


def score(text: str, prior: float | None = None, top: int = 4) -> Scored:
    """Probability and the ``top`` feature contributions (by absolute weight) behind it.

    ``prior``: a different base rate of hard turns than the training corpus had; shifts the log-odds by
    ``logit(prior) - logit(corpus rate)``.
    """
    model = _model()
    weights = model.weights
    hits = [(f, weights[f]) for f in features(text) if f in weights]
    z = model.bias + sum(w for _, w in hits)
    if prior is not None:
        z += _logit(prior) - _logit(model.info.get("trained_on", {}).get("cloud_share", 0.5))
    hits.sort(key=lambda fw: (-abs(fw[1]), fw[0]))
    return Scored(_sigmoid(z), tuple(hits[:top]))


def probability(text: str, prior: float | None = None) -> float:
    """Probability that ``text`` (one user turn, on its own) needs the strong model."""
    return score(text, prior, top=0).probability


def threshold_for_share(target_share: float) -> float:
    """The threshold that would have sent ``target_share`` of the calibration sample to the strong model."""
    return quantile_threshold(_model().quantiles, target_share)


def default_threshold() -> float:
    """The decision threshold chosen at training time (recorded in the weights file)."""
    return _model().threshold


# --------------------------------------------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------------------------------------------

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text[:600].lower().replace("’", "'"))


_SOCIAL = frozenset(
    [
        "hi",
        "hello",
        "hey",
        "hiya",
        "yo",
        "howdy",
        "greetings",
        "good",
        "morning",
        "afternoon",
        "evening",
        "night",
        "thanks",
        "thank",
        "thx",
        "ty",
        "tysm",
        "cheers",
        "you",
        "so",
        "much",
        "very",
        "a",
        "lot",
        "ok",
        "okay",
        "k",
        "kk",
        "great",
        "cool",
        "nice",
        "perfect",
        "awesome",
        "excellent",
        "wonderful",
        "amazing",
        "brilliant",
        "fantastic",
        "super",
        "sweet",
        "lovely",
        "love",
        "it",
        "that",
        "this",
        "is",
        "was",
        "s",
        "helpful",
        "helps",
        "helped",
        "useful",
        "makes",
        "sense",
        "understood",
        "i",
        "see",
        "alright",
        "all",
        "right",
        "fine",
        "fair",
        "enough",
        "bye",
        "goodbye",
        "cya",
        "later",
        "take",
        "care",
        "appreciate",
        "appreciated",
        "lol",
        "haha",
        "wow",
        "will",
        "do",
        "sounds",
        "noted",
        "exactly",
        "indeed",
        "agreed",
        "works",
        "worked",
        "got",
        "now",
        "the",
        "explanation",
        "for",
        "that's",
        "it's",
        "all",
        "danke",
        "merci",
        "gracias",
        "grazie",
        "obrigado",
        "done",
        "yes",
        "yeah",
        "yep",
        "no",
        "nope",
        "sure",
    ]
)
_REFORMAT_VERBS = frozenset(
    [
        "translate",
        "translated",
        "translation",
        "shorten",
        "shorter",
        "summarize",
        "summarise",
        "summary",
        "condense",
        "condensed",
        "rephrase",
        "reword",
        "rewrite",
        "restate",
        "paraphrase",
        "simplify",
        "simpler",
        "simple",
        "simply",
        "reformat",
        "format",
        "formatted",
        "bullet",
        "bullets",
        "bulleted",
        "table",
        "tabular",
        "list",
        "numbered",
        "markdown",
        "json",
        "csv",
        "briefly",
        "brief",
        "concise",
        "shorter",
        "longer",
        "tone",
        "casual",
        "formal",
        "formally",
        "informal",
        "friendlier",
        "polite",
        "politely",
        "comments",
        "comment",
        "docstrings",
        "docstring",
        "rename",
        "capitalize",
        "capitalise",
        "spell",
        "proofread",
        "eli5",
        "tldr",
        "tl",
        "dr",
    ]
)
_LANGUAGES = frozenset(
    [
        "french",
        "spanish",
        "german",
        "italian",
        "portuguese",
        "dutch",
        "chinese",
        "japanese",
        "korean",
        "russian",
        "arabic",
        "hindi",
        "polish",
        "swedish",
        "turkish",
        "greek",
        "english",
    ]
)
# Words that ask for new reasoning, so a message is not "only a reformat" even if it mentions a format.
_BUILD_WORDS = frozenset(
    [
        "why",
        "prove",
        "proof",
        "what",
        "if",
        "suppose",
        "instead",
        "parallelize",
        "parallelise",
        "optimize",
        "optimise",
        "faster",
        "scale",
        "support",
        "handle",
        "extend",
        "generalize",
        "generalise",
        "complexity",
        "tests",
        "test",
        "edge",
        "cases",
        "bug",
        "fix",
        "wrong",
        "error",
        "improve",
        "also",
        "compare",
        "change",
        "changed",
        "changes",
        "modify",
        "add",
    ]
) - frozenset({"comments", "comment", "docstrings"})
_REFORMAT_ADDS = frozenset({"comments", "comment", "docstrings", "docstring", "pronunciation", "emojis"})
_NEW_TOPIC = (
    "unrelated",
    "by the way",
    "different question",
    "another question",
    "on a different note",
    "different topic",
    "new question",
    "change of topic",
    "changing the subject",
    "completely different",
    "random question",
)
_PRONOUNS = frozenset(
    ["it", "its", "it's", "them", "they", "these", "those", "that", "this", "he", "she", "him", "her", "there"]
)
_DEFINITE_NOUNS = frozenset(
    [
        "code",
        "function",
        "program",
        "script",
        "query",
        "algorithm",
        "solution",
        "answer",
        "response",
        "problem",
        "question",
        "proof",
        "example",
        "design",
        "plan",
        "approach",
        "list",
        "table",
        "essay",
        "story",
        "poem",
        "letter",
        "email",
        "text",
        "paragraph",
        "version",
        "result",
        "results",
        "output",
        "above",
        "previous",
        "last",
        "first",
        "second",
        "third",
        "same",
        "one",
        "ones",
        "class",
        "method",
        "implementation",
        "schema",
        "model",
        "policy",
        "recommendation",
        "comparison",
        "explanation",
        "formula",
        "equation",
        "puzzle",
        "game",
        "idea",
        "ideas",
        "steps",
        "step",
        "calculation",
        "numbers",
        "number",
        "analysis",
        "argument",
        "system",
        "architecture",
    ]
)
_CONTINUATIONS = (
    "what if",
    "what about",
    "how about",
    "instead",
    "can you also",
    "could you also",
    "and if",
    "same for",
    "do the same",
    "as before",
    "go on",
    "continue",
    "keep going",
    "why ",
    "is that",
    "are you sure",
    "explain why",
)
# Connectives that continue the conversation only when they open the message ("Now make it faster").
_OPENERS = frozenset(
    ["now", "then", "also", "and", "but", "so", "ok", "okay", "well", "great", "thanks", "cool", "nice", "hmm"]
)
_CONNECTIVES = frozenset(["now", "then", "also", "and", "but", "so"])


def follow_up_kind(text: str) -> str:
    """``social``, ``reformat``, ``new_topic``, ``reference`` or ``none`` (see the module docstring)."""
    words = _words(text)
    if not words:
        return "social"
    n = len(words)
    if n <= 10 and all(w in _SOCIAL for w in words):
        return "social"
    opening = " ".join(words[:_CUE_WORDS]) + " "
    if any(marker in opening for marker in _NEW_TOPIC):
        return "new_topic"
    head = set(words[:_CUE_WORDS])
    reformat = bool(head & _REFORMAT_VERBS) or (
        bool(head & _LANGUAGES) and bool(head & {"in", "into", "to"}) and n <= 12
    )
    build = bool(head & _BUILD_WORDS) or "what if" in opening
    if reformat and n <= 25 and (not build or bool(head & _REFORMAT_ADDS)):
        return "reformat"
    if n <= _CUE_WORDS:
        padded = " " + opening
        if any(" " + c in padded for c in _CONTINUATIONS):
            return "reference"
        leading = []
        for w in words[:3]:
            if w not in _OPENERS:
                break
            leading.append(w)
        if any(w in _CONNECTIVES for w in leading):
            return "reference"
        if any(w in _PRONOUNS for w in words[:20]) and n <= 20:
            return "reference"
        for i, w in enumerate(words[:-1]):
            if w in ("the", "your", "that", "this", "those", "these", "my") and words[i + 1] in _DEFINITE_NOUNS:
                return "reference"
        if "you said" in opening or "you mentioned" in opening or "you wrote" in opening:
            return "reference"
    return "none"


@dataclass(frozen=True)
class Routed:
    cloud: bool  # True: the strong model
    complexity: float  # the probability used for the decision (store it as the turn's complexity)
    own: float  # the message's own probability
    kind: str  # follow_up_kind(), "first" for the first turn
    reason: str


_LOOKBACK = 3


def _prior_complexity(turn: PriorTurn) -> float:
    value = turn.complexity
    if value is not None and not math.isnan(value):
        return min(1.0, max(0.0, value))
    # imported turn: nobody scored it; a long message is weak evidence of a hard one
    return min(0.5, max(0, turn.user_chars) / 4000.0)


def conversation_difficulty(history: Sequence[PriorTurn], decay: float | None = None) -> float:
    """The largest of the last few turns' complexities, each discounted by ``decay`` per turn back."""
    d = _model().decay if decay is None else decay
    best = 0.0
    for back, turn in enumerate(reversed(history[-_LOOKBACK:])):
        best = max(best, _prior_complexity(turn) * d**back)
    return best


def route(
    text: str,
    history: Sequence[PriorTurn] = (),
    threshold: float | None = None,
    prior: float | None = None,
) -> Routed:
    """Decide one turn. ``history``: the session's earlier turns, oldest first (the newest last)."""
    model = _model()
    cut = model.threshold if threshold is None else threshold
    scored = score(text, prior)
    own = scored.probability
    kind = follow_up_kind(text) if history else "first"
    complexity = own
    why = scored.explain()
    if kind == "reference":
        inherited = model.decay * conversation_difficulty(history)
        if inherited > own:
            complexity = inherited
            why = f"builds on earlier turns (conversation {inherited:.3f}); own {why}"
    elif kind in ("social", "reformat", "new_topic"):
        why = f"{kind.replace('_', ' ')} follow-up, routed on its own: {why}"
    cloud = complexity >= cut
    side = "strong" if cloud else "local"
    reason = f"{MODEL_VERSION} {side}: {complexity:.3f} {'>=' if cloud else '<'} {cut:.3f}; {why}"
    return Routed(cloud=cloud, complexity=round(complexity, 4), own=round(own, 4), kind=kind, reason=reason)


def assess(prompt: str, history: Sequence[PriorTurn], threshold: float, decay: float | None = None) -> Assessment:
    """This version's view of a turn, for `decision.decide` (which applies tiers, overrides and switches)."""
    routed = route(prompt, history, threshold)
    follow_up = routed.kind == "reference" and routed.complexity > routed.own
    signals = (routed.kind,) if routed.kind not in ("none", "first") else ()
    basis = routed.reason.split(";", 1)[1].strip() if ";" in routed.reason else routed.reason
    return Assessment(
        routed.complexity, f"{MODEL_VERSION} complexity {routed.complexity:.3f} ({basis})", "", follow_up, signals
    )
