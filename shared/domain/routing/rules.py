"""The rules-v1 complexity scorer: seven families of hand-written signals, combined like independent evidence.

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

The cue tables and patterns themselves are data, in `rules-v1.toml` (loaded by `vocabulary.py`). Everything
here is pure and deterministic.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from shared.domain.routing import vocabulary

# Bump whenever a cue, weight or rule changes: every turn record stores it, so analytics can tell decisions
# made by different rule sets apart and a decision can be reproduced.
ROUTER_VERSION = "rules-v1"

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

_LENGTH_WORDS_HALF = 150.0
_LENGTH_CHARS_HALF = 1000.0


def word_set(text: str) -> frozenset[str]:
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


_CUES = {name: _cues(*table) for name, table in vocabulary.CUES.items()}
_RE = {name: re.compile(source) for name, source in vocabulary.PATTERNS.items()}
# (pattern, substrings of which at least one must occur for the pattern to possibly match: a cheap pre-check)
_EQUATIONS = tuple((re.compile(source), tuple(hints)) for source, hints in vocabulary.MATH["equations"])
_FENCE: str = vocabulary.TEXT["fence"]
_TRACE_MARKERS: tuple[str, ...] = tuple(vocabulary.TEXT["trace_markers"])
_MATH_SYMBOLS = frozenset(vocabulary.MATH["symbols"])
_ARITHMETIC_HINTS: tuple[str, ...] = tuple(vocabulary.MATH["arithmetic_hints"])
# Splits text into words: punctuation (ASCII and the typographic kind phones insert) becomes a space.
_WORD_BREAKS = str.maketrans(
    dict.fromkeys(string.punctuation + string.whitespace + vocabulary.TEXT["word_breaks"], " ")
)
_UNIT_WORDS = word_set(vocabulary.TEXT["unit_words"])


def words_of(text: str) -> list[str]:
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
        words = words_of(window)
        return cls(window, f"\n{window}\n", " " + " ".join(words) + " ", frozenset(words))


@dataclass(frozen=True)
class _Fired:
    name: str
    contribution: float
    label: str


@dataclass(frozen=True)
class Analysis:
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
        for m in _RE["call_args"].finditer(window)
    )


def _code(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _CUES["code"])
    label = f"code ({_quoted(words)})" if words else "code"
    window, lines = text.window, text.lines
    syntax = 0.0
    if _RE["code_line_start"].search(lines):
        syntax += 1.5
    if "SELECT" in window and _RE["sql"].search(window):
        syntax += 1.5
    if _RE["code_line_end"].search(lines):
        syntax += 1.0
    if _RE["code_operator"].search(window):
        syntax += 1.0
    if "</" in window and _RE["markup"].search(window):
        syntax += 1.0
    if _has_call(window):
        syntax += 0.5
    if "`" in window and _RE["inline_code"].search(window):
        syntax += 0.5
    if syntax:
        points += syntax
        label = "code-like syntax"
    fences = window.count(_FENCE)
    if fences:
        points += 3.0 if fences >= 2 else 1.5
        label = "code block"
    if ("Error" in window or "Exception" in window) and _RE["error_name"].search(window):
        points += 1.0
        label = label if fences else "error message"
    if any(marker in lines for marker in _TRACE_MARKERS) or _RE["trace"].search(lines):
        points += 3.0
        label = "stack trace"
    return points, label


def _math(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _CUES["math"])
    label = f"math ({_quoted(words)})" if words else ""
    window = text.window
    if any(any(h in window for h in hints) and pattern.search(window) for pattern, hints in _EQUATIONS):
        points += 0.75
        label = label or "equation"
    symbols = len(_MATH_SYMBOLS.intersection(window))
    if symbols:
        points += min(symbols, 3)
        label = label or "math symbols"
    if ("\\" in window or "$" in window) and _RE["latex"].search(window):
        points += 2.0
        label = "LaTeX math"
    if "prove" in words:
        label = "proof"
    if any(h in window for h in _ARITHMETIC_HINTS) and _RE["arithmetic"].search(window):
        points += 0.5
        label = label or "arithmetic"
    return points, label


def _multi_step(text: _Text) -> tuple[float, str]:
    points, words = _match(text, _CUES["sequence"])
    label = f"multi-step ({_quoted(words)})" if words else "multi-step"
    if "first" in text.words and not text.words.isdisjoint(("then", "next", "second", "finally")):
        points += 1.5
        label = "first ... then"
    items = len(_RE["list_item"].findall(text.lines))
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
    return hinted and _RE["quantity"].search(text.window) is not None


def length_contribution(words: int, chars: int) -> float:
    return WEIGHTS["length"] * _strength(max(words / _LENGTH_WORDS_HALF, chars / _LENGTH_CHARS_HALF))


def analyze(prompt: str) -> Analysis:
    """Every signal of ``prompt``: its complexity and what fired, for the decision and its explanation."""
    text = _Text.of(prompt)
    points: dict[str, tuple[float, str]] = {
        "code": _code(text),
        "math": _math(text),
        "multi_step": _multi_step(text),
    }
    for name, cues, title in (
        ("reasoning", _CUES["reasoning"], "reasoning"),
        ("domain", _CUES["domain"], "domain terms"),
        ("constraints", _CUES["constraint"], "constraints"),
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
    contributions["length"] = (length_contribution(words, len(prompt)), f"long prompt ({words} words)")

    remaining = 1.0
    for contribution, _ in contributions.values():
        remaining *= 1.0 - contribution
    fired = tuple(
        _Fired(name, contributions[name][0], contributions[name][1])
        for name in _SIGNAL_ORDER
        if contributions[name][0] >= _FIRE_MIN
    )
    return Analysis(round(min(1.0, max(0.0, 1.0 - remaining)), 3), fired)


def score(prompt: str) -> tuple[float, tuple[str, ...]]:
    """Complexity of ``prompt`` in [0, 1] (3 decimals) and the names of the signals that fired.

    Signal names, in this fixed order: code, math, reasoning, domain, multi_step, constraints, length.
    """
    analysis = analyze(prompt)
    return analysis.complexity, analysis.signals
