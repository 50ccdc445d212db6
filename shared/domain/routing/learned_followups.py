"""learned-v1's follow-up classifier: what a message does to the conversation, from small word lists.

- ``social``: thanks, greetings, goodbyes ("thanks!", "great, bye"): routed on its own merits (local).
- ``reformat``: only reformats, shortens, simplifies or translates the previous answer ("Translate your answer
  to French", "and in French?", "Put it in a table"): routed on its own merits; rewriting is a cheap-model task.
- ``new_topic``: says it changes the subject ("unrelated: ...", "by the way, ..."): its own merits.
- ``reference``: builds on earlier content: pronouns and definite references ("it", "the code", "the problem",
  "your answer") or continuations ("what if", "now", "instead", "can you also", "why"): inherits the
  conversation's difficulty.
- ``none``: a self-contained message: its own merits (a new hard question after small talk goes to the strong
  model, an easy one after a hard turn to the local one).

The lists are the ``[followups]`` table of the model's vocabulary (``learned-v1.toml``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

# A follow-up cue counts only in short messages, or in the opening of a long one.
CUE_WORDS = 40
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text[:600].lower().replace("’", "'"))


class FollowUpCues(NamedTuple):
    social: frozenset[str]
    reformat_verbs: frozenset[str]
    languages: frozenset[str]
    build_words: frozenset[str]
    reformat_adds: frozenset[str]
    new_topic: tuple[str, ...]
    pronouns: frozenset[str]
    definite_nouns: frozenset[str]
    determiners: frozenset[str]
    continuations: tuple[str, ...]
    openers: frozenset[str]
    connectives: frozenset[str]
    question_words: frozenset[str]
    references: tuple[str, ...]

    @classmethod
    def from_vocabulary(cls, vocabulary: Mapping[str, Any]) -> FollowUpCues:
        table = vocabulary["followups"]

        def words_of(name: str) -> frozenset[str]:
            return frozenset(str(w) for w in table[name])

        def phrases_of(name: str) -> tuple[str, ...]:
            return tuple(str(w) for w in table[name])

        return cls(
            social=words_of("social"),
            reformat_verbs=words_of("reformat_verbs"),
            languages=words_of("languages"),
            build_words=words_of("build_words"),
            reformat_adds=words_of("reformat_adds"),
            new_topic=phrases_of("new_topic"),
            pronouns=words_of("pronouns"),
            definite_nouns=words_of("definite_nouns"),
            determiners=words_of("determiners"),
            continuations=phrases_of("continuations"),
            openers=words_of("openers"),
            connectives=words_of("connectives"),
            question_words=words_of("question_words"),
            references=phrases_of("references"),
        )

    def kind(self, text: str) -> str:
        """``social``, ``reformat``, ``new_topic``, ``reference`` or ``none``."""
        ws = words(text)
        if not ws:
            return "social"
        n = len(ws)
        if n <= 10 and all(w in self.social for w in ws):
            return "social"
        opening = " ".join(ws[:CUE_WORDS]) + " "
        if any(marker in opening for marker in self.new_topic):
            return "new_topic"
        if self._reformat(ws, opening):
            return "reformat"
        if n <= CUE_WORDS and self._refers(ws, opening):
            return "reference"
        return "none"

    def _reformat(self, ws: list[str], opening: str) -> bool:
        head = set(ws[:CUE_WORDS])
        n = len(ws)
        asks_language = bool(head & self.languages) and bool(head & {"in", "into", "to"}) and n <= 12
        if not (head & self.reformat_verbs or asks_language) or n > 25:
            return False
        build = bool(head & self.build_words) or "what if" in opening
        return not build or bool(head & self.reformat_adds)

    def _refers(self, ws: list[str], opening: str) -> bool:
        padded = " " + opening
        if any(" " + c in padded for c in self.continuations) or any(r in opening for r in self.references):
            return True
        if len(ws) <= 20 and any(w in self.pronouns for w in ws[:20]):
            return True
        if any(w in self.determiners and nxt in self.definite_nouns for w, nxt in zip(ws, ws[1:], strict=False)):
            return True
        # The weakest cue: an opening connective ("Now make ...", "Also support ..."), unless a question of its
        # own follows it ("Thanks. Also, how many bytes are in a gigabyte?").
        lead = 0
        while lead < min(3, len(ws)) and ws[lead] in self.openers:
            lead += 1
        if not any(w in self.connectives for w in ws[:lead]):
            return False
        return lead == len(ws) or ws[lead] not in self.question_words
