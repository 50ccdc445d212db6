"""learned-v1's features: a message in, a set of readable feature names out (``w:explain``, ``b:step by``, ``len:3``).

Words are read from a window of the message: all of it up to ``HEAD_CHARS + TAIL_CHARS`` characters, else its
first ``HEAD_CHARS`` and its last ``TAIL_CHARS`` (the request nearly always opens a message or closes a paste,
and the window bounds the cost of a huge one). Length and line counts use the whole message. Numbers fold into
one token (``<n>``), so "4 apples" and "17 apples" look alike. The word lists come from the model's vocabulary
(``learned-v1.toml``, embedded in the weights file), so a feature means the same at training and at run time.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

HEAD_CHARS = 400
TAIL_CHARS = 100
NAME_CHARS = 400  # acronyms, code identifiers and rare words are looked for in the opening only


class Patterns(NamedTuple):
    """The regular expressions the features use, compiled when the model is loaded (not at import)."""

    token: re.Pattern[str]
    list_item: re.Pattern[str]
    latex: re.Pattern[str]
    acronym: re.Pattern[str]
    identifier: re.Pattern[str]  # camelCase and PascalCase (PyTorch, useEffect), snake_case, calls: code()
    lower_word: re.Pattern[str]  # a lowercase word of 4+ letters (capitalised names are not looked up)
    math_symbol: re.Pattern[str]

    @classmethod
    def compile(cls) -> Patterns:
        return cls(
            token=re.compile(r"c\+\+|c#|[a-z]+(?:'[a-z]+)?|\d+(?:[.,]\d+)*|[$%=+*/^<>\\{}()\[\]#`|_~?!:;-]"),
            list_item=re.compile(r"(?:\d{1,2}[.)]|[-*•])[ \t]+\S"),
            latex=re.compile(r"\\[a-zA-Z]+|\$[^$\n]{1,200}\$"),
            acronym=re.compile(r"\b[A-Z][A-Z0-9]{1,6}s?\b"),
            identifier=re.compile(r"\b(?:[A-Z]?[a-z]++[A-Z][A-Za-z]*|[a-z]++_[a-z_]+|\w++\(\))"),
            lower_word=re.compile(r"(?<![\w'])[a-z][a-z']{3,}\b"),
            math_symbol=re.compile("[∫∑∏√∞≤≥≠≈∀∃∈∉⊂⊆∪∩∂∇±÷×⇒⇔ℝℕℤℚπθ]"),
        )


def bucket(value: int, edges: Sequence[int]) -> int:
    """Index of the first edge ``value`` is below; ``len(edges)`` when above all."""
    for i, edge in enumerate(edges):
        if value < edge:
            return i
    return len(edges)


def word_hash(word: str) -> int:
    """The crc32 of a word: how the common-word list is stored (a set of ints loads far faster than strings)."""
    return binascii.crc32(word.encode())


def encode_word_hashes(words: Iterable[str]) -> dict[str, Any]:
    return {"encoding": "sorted crc32 of each utf-8 word", "crc32": sorted({word_hash(w) for w in words})}


def decode_word_hashes(block: Mapping[str, Any] | None) -> frozenset[int]:
    return frozenset(block["crc32"]) if block else frozenset()


def window(text: str) -> str:
    """The part of ``text`` whose words are read."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def _words(values: Iterable[str]) -> frozenset[str]:
    return frozenset(str(v) for v in values)


class FeatureSpec(NamedTuple):
    """The vocabulary the features read (the ``[features]`` table of the model's vocabulary) and the patterns."""

    stop: frozenset[str]
    fillers: frozenset[str]
    build_verbs: frozenset[str]
    howto: tuple[str, ...]
    lexicons: tuple[tuple[str, frozenset[str]], ...]
    code_keywords: frozenset[str]  # a line opening with one of these looks like code
    common: frozenset[int]  # crc32 of everyday English words; a word outside them (jargon, names) counts as rare
    patterns: Patterns

    @classmethod
    def from_vocabulary(cls, vocabulary: Mapping[str, Any]) -> FeatureSpec:
        table = vocabulary["features"]
        return cls(
            stop=_words(table["stop"]),
            fillers=_words(table["fillers"]),
            build_verbs=_words(table["build_verbs"]),
            howto=tuple(table["howto"]),
            lexicons=tuple((name, _words(words)) for name, words in sorted(table["lexicons"].items())),
            code_keywords=_words(table["code_keywords"]),
            common=decode_word_hashes(vocabulary.get("common_words")),
            patterns=Patterns.compile(),
        )

    def features(self, text: str) -> frozenset[str]:
        """The feature names present in ``text`` (binary features: present or not)."""
        return frozenset(self.feature_set(text))

    def feature_set(self, text: str) -> set[str]:
        """``features`` as a plain set (what scoring iterates over)."""
        seen = window(text)
        toks = self.tokens(seen)
        feats = self._lexical(toks)
        feats.update(self._structure(text, seen, toks))
        rare = self._rare(seen)
        if rare:
            feats.add(rare)
        return feats

    def tokens(self, text: str) -> list[str]:
        """Lowercased word, number (as ``<n>``) and symbol tokens."""
        return ["<n>" if t[0].isdigit() else t for t in self.patterns.token.findall(text.lower())]

    def _lexical(self, toks: list[str]) -> set[str]:
        stop = self.stop
        feats = {"w:" + t for t in toks if t not in stop}
        feats |= {f"b:{a} {b}" for a, b in zip(toks, toks[1:], strict=False) if a not in stop or b not in stop}
        if not toks:
            return feats
        feats.add("first:" + toks[0])
        feats.add("last:" + toks[-1])
        words = set(toks)
        tech = False
        for name, lexicon in self.lexicons:
            hits = len(words & lexicon)
            if hits:
                feats.add(f"lex:{name}:{bucket(hits, (2, 3, 5))}")
                tech = tech or name == "code"
        verb = next((t for t in toks[:12] if t not in self.fillers and t.isalpha()), None)
        if verb is not None:
            feats.add("v:" + verb)
            if tech and verb in self.build_verbs:
                feats.add("s:build_tech")
        if tech and " ".join(toks[:4]).startswith(self.howto):
            feats.add("s:howto_tech")
        return feats

    def _rare(self, seen: str) -> str | None:
        """How many distinct lowercase words (names are capitalised) are outside everyday English."""
        if not self.common:
            return None
        common = self.common
        opening = set(self.patterns.lower_word.findall(seen, 0, NAME_CHARS))
        rare = sum(1 for w in opening if word_hash(w) not in common)
        return f"rare:{bucket(rare, (1, 2, 3, 5, 8))}"

    def _structure(self, text: str, seen: str, toks: list[str]) -> list[str]:
        """Length, numbers, lines, code, lists, LaTeX, symbols, acronyms, identifiers."""
        return _structure(text, seen, toks, self.code_keywords, self.patterns)


def _structure(text: str, seen: str, toks: list[str], keywords: frozenset[str], patterns: Patterns) -> list[str]:
    out = [f"len:{bucket(len(text), (40, 100, 250, 600, 1500))}"]
    numbers = toks.count("<n>")
    if numbers:
        out.append(f"nums:{bucket(numbers, (2, 3, 4, 5, 7, 10))}")
    lines = text.count("\n") + 1
    if lines > 2:
        out.append(f"lines:{bucket(lines, (5, 10, 20))}")
    if seen.count("?") >= 2:
        out.append("s:questions")
    if "```" in seen:
        out.append("s:fence")
    if lines > 1:
        out += _line_shapes(seen, keywords, patterns.list_item)
    if ("\\" in seen or "$" in seen) and patterns.latex.search(seen):
        out.append("s:latex")
    if patterns.math_symbol.search(seen):
        out.append("s:math_symbol")
    opening = seen[:NAME_CHARS]
    acronyms = len(patterns.acronym.findall(opening))
    if acronyms:
        out.append(f"s:acronyms:{bucket(acronyms, (2, 4))}")
    if patterns.identifier.search(opening):
        out.append("s:identifier")
    return out


def _line_shapes(seen: str, keywords: frozenset[str], list_item: re.Pattern[str]) -> list[str]:
    """Lines that look like code (indented, ending in ; { }, opening with a keyword) and list items."""
    code = items = 0
    for line in seen.split("\n"):
        stripped = line.strip()
        if not stripped:
            continue
        if (
            line.startswith(("  ", "\t"))
            or stripped.endswith((";", "{", "}"))
            or stripped.split(None, 1)[0] in keywords
        ):
            code += 1
        if list_item.match(stripped):
            items += 1
    out = []
    if code:
        out.append(f"s:code_lines:{bucket(code, (2, 4, 8))}")
    if items:
        out.append(f"s:list:{bucket(items, (2, 4))}")
    return out
