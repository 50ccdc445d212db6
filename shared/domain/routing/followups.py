"""Does a message build on the previous answer, or stand alone? Small talk and follow-up cues (rules-v1).

"and in French?" is trivial on its own but builds on the previous answer, which a weaker model would have to
understand. Small talk ("thanks!", "ok", "hi") needs no context and is always routed on its own merits. The
word lists are data, in `rules-v1.toml`.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.domain.routing import vocabulary
from shared.domain.routing.rules import word_set, words_of

# Follow-up cues only matter in short messages or in the opening of a long one.
_FOLLOW_UP_SCAN_CHARS = 600

_F = vocabulary.FOLLOW_UPS
_SMALL_TALK_WORDS = word_set(_F["small_talk_words"])
_SMALL_TALK_PHRASES = frozenset(_F["small_talk_phrases"])
_WORD_SETS = {
    name: word_set(_F[name])
    for name in ("filler_words", "connectives", "confirmations", "edit_verbs", "bare_questions", "pronouns")
}
_DEMONSTRATIVES = word_set(_F["demonstratives"])
_AFTER_DEMONSTRATIVE = word_set(_F["after_demonstrative"])
# Padded, so that a phrase matches whole words only in a padded, normalised message.
_EXPLICIT_REFERENCES = tuple(f" {phrase} " for phrase in _F["explicit_references"])
_SHORT_REFERENCES = tuple(f" {phrase} " for phrase in _F["short_references"])
_SMALL_TALK_MAX_WORDS: int = _F["small_talk_max_words"]
_CONNECTIVE_MAX_WORDS: int = _F["connective_max_words"]
_PRONOUN_MAX_WORDS: int = _F["pronoun_max_words"]
_SHORT_MAX_WORDS: int = _F["short_max_words"]


def is_small_talk(words: Sequence[str]) -> bool:
    if not words or len(words) > _SMALL_TALK_MAX_WORDS:
        return False
    return " ".join(words) in _SMALL_TALK_PHRASES or all(w in _SMALL_TALK_WORDS for w in words)


def opening_words(prompt: str) -> list[str]:
    return words_of(prompt[:_FOLLOW_UP_SCAN_CHARS])


def follow_up_cue(words: Sequence[str]) -> str | None:
    """Why a message (its opening words) looks like it builds on the previous answer, or None if it stands alone.

    Deliberately conservative about long messages: a long message that happens to start with "so" usually
    carries its own context, so only explicit references ("your code", "the above") count there.
    """
    if not words or is_small_talk(words):
        return None
    norm = " " + " ".join(words) + " "
    count = len(words)
    short = count <= _CONNECTIVE_MAX_WORDS
    references = _EXPLICIT_REFERENCES + _SHORT_REFERENCES if short else _EXPLICIT_REFERENCES
    phrase = next((p.strip() for p in references if p in norm), None)
    if phrase is not None:
        return f'refers to the previous answer ("{phrase}")'
    first = next((w for w in words if w not in _WORD_SETS["filler_words"]), words[0])
    if first in _WORD_SETS["connectives"] and short:
        return f'starts with "{first}"'
    if first in _WORD_SETS["confirmations"] and count <= _SHORT_MAX_WORDS * 2:
        return f'confirms ("{first}")'
    if count <= _SHORT_MAX_WORDS and first in _WORD_SETS["edit_verbs"]:
        return f'asks to change the previous answer ("{first}")'
    has_digit = any(w[0].isdigit() for w in words)
    if count <= _SHORT_MAX_WORDS and first in _WORD_SETS["bare_questions"] and not has_digit:
        return "short question about the previous answer"
    if count <= _PRONOUN_MAX_WORDS:
        for i, word in enumerate(words):
            after = words[i + 1] if i + 1 < count else None
            if word in _WORD_SETS["pronouns"] or (
                word in _DEMONSTRATIVES and (after is None or after in _AFTER_DEMONSTRATIVE)
            ):
                return f'refers to "{word}"'
    return None
