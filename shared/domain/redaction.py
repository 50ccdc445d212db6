"""Masking of personal data before a conversation is stored (and, optionally, before a cloud model sees it).

Pure text in, text out: no I/O, no settings reads, no clock. `Redactor` is built once per process from the
settings (`PII_REDACTION`, `PII_EXTRA_PATTERNS`) and reused by every turn.

What is masked, and the rules that keep look-alikes unmasked (each rule has a test in tests/test_redaction.py):

- ``[EMAIL]``: ``local@domain.tld``.
- ``[CARD]``: 13 to 19 digits starting with 2-6 (the card networks' ranges), written compact or in groups
  separated by single spaces or hyphens, that pass the Luhn check. A run that fails Luhn is tried without its
  trailing groups, so "4111 1111 1111 1111 12/26" masks the card and keeps the expiry. ISBNs (978/979...),
  order numbers that fail Luhn and the digits after an IBAN-shaped head ("DE89 3704 ...") stay. A Luhn-valid
  16-digit number is masked even if it was something else: one in ten random numbers passes Luhn, and a card
  that leaks is worse than a masked order number.
- ``[IBAN]``: two capital letters, two check digits and the account, compact or in groups of four, with the
  length of its country (or 15 to 34 characters for a country not in the table) and a valid mod-97 checksum.
- ``[IP]``: IPv4 dotted quads of valid octets (0-255, no leading zeros) and IPv6 addresses that Python's
  ``ipaddress`` accepts and that contain a digit. Not IPs: version strings with three parts (``1.2.3``),
  anything glued to a letter (``v1.2.3.4``), a dotted quad after "version", "release" or "build", dotted
  runs of five or more parts, times (``12:30:45``), MAC addresses and ``::`` or ``dead::beef`` (no digit).
  A bare ``1.2.3.4`` is an IP: addresses are not distinguishable from four-part versions by shape alone.
- ``[PHONE]``: ``+`` and 8 to 15 digits (E.164), an area code in parentheses (``(555) 123-4567``), the North
  American 3-3-4 shape with one consistent separator (``555-123-4567``), or 7 to 15 digits right after a
  phone word ("phone", "tel", "mobile", "call me at", ...). Not phones: numbers right after ``#`` or after an
  identifier word ("order", "invoice", "ticket", "ref", "ISBN", ...), so ``Order #123-456-7890`` stays;
  dates (``2024-03-15``, ``15/03/2024``), ISBNs, UUIDs and hex hashes do not have a phone's shape.
- ``[<NAME>]``: every pattern in ``PII_EXTRA_PATTERNS``; they run first, so an operator's pattern wins
  where it overlaps a built-in one.

Overlaps: kinds are tried in the order above (extra patterns first); a match that overlaps an accepted one
is dropped. Masking is idempotent: no mask matches any pattern.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.shapes import json_value

BUILT_IN_KINDS = ("EMAIL", "PHONE", "CARD", "IBAN", "IP")
NAME_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
MAX_EXTRA_PATTERNS = 50
MAX_PATTERN_CHARS = 500
# Structural keys of an Agent Framework message dict: ids and enums, never free text.
_STRUCTURAL_KEYS = frozenset({"type", "role", "message_id", "author_name", "call_id", "response_id", "media_type"})

# Countries' IBAN lengths (ISO 13616 registry). A country missing here is checked by checksum and 15-34 length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_ID_WORDS = (
    *("order", "invoice", "ticket", "case", "ref", "tracking", "serial", "sku", "po", "isbn", "part", "item"),
    *("account", "acct", "booking", "confirmation", "transaction", "id"),
)
_PHONE_WORDS = ("phone", "tel", "mobile", "mob", "cell", "fax", "whatsapp", "call me", "text me", "reach me")


@dataclass(frozen=True)
class _Patterns:
    """The built-in kinds' expressions; compiled on first use, so a process with redaction off never pays."""

    trigger: re.Pattern[str]
    email: re.Pattern[str]
    iban: re.Pattern[str]
    card: re.Pattern[str]
    ipv4: re.Pattern[str]
    ipv6: re.Pattern[str]
    version_before: re.Pattern[str]
    dotted_quad: re.Pattern[str]
    iban_head_before: re.Pattern[str]
    phone_shapes: tuple[re.Pattern[str], ...]
    phone_after_word: re.Pattern[str]
    not_a_phone_before: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    return _Patterns(
        trigger=re.compile(r"[\d@]"),
        email=re.compile(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?![\w-])"),
        iban=re.compile(
            r"(?<![\w-])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![\w-])"
        ),
        card=re.compile(r"(?<![\w.,-])(?:\d{13,19}|\d{4}(?:[ -]\d{2,6}){2,4})(?![\w-]|[ -]?\d)"),
        ipv4=re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"),
        ipv6=re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.]+)?(?![\w:]|\.\d)"
        ),
        iban_head_before=re.compile(r"(?<![\w-])[A-Z]{2}\d{2} $"),
        dotted_quad=re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d"),
        version_before=re.compile(r"(?i)\b(?:version|ver\.?|release|build|rev\.?)\s*[:#]?\s*$"),
        phone_shapes=(
            # E.164: + and country code, then groups (an area code may sit in parentheses).
            re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){2,6}(?![\w]|[ .-]?\d)"),
            # An area code in parentheses.
            re.compile(r"(?<![\w(])\(\d{2,5}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,5}){1,2}(?![\w]|[ .-]?\d)"),
            # North American 3-3-4 with one consistent separator.
            re.compile(r"(?<![\w#+.-])\d{3}([-. ])\d{3}\1\d{4}(?![\w-]|[-.]\d)"),
        ),
        phone_after_word=re.compile(
            r"(?i)\b(?:phone|telephone|tel|mobile|mob|cell|fax|whatsapp|call me at|call me on|text me at|reach me at)"
            r"\b\.?(?:\s*(?:no\.?|number|nr\.?|#))?\s*[:=]?\s*(?P<number>\+?\(?\d[\d ().-]{5,22}\d)(?![\w]|[ .-]?\d)"
        ),
        not_a_phone_before=re.compile(
            r"(?i)(?:#\s*|\b(?:order|invoice|ticket|case|ref|reference|tracking|serial|sku|po|isbn|part|item|account|"
            r"acct|booking|confirmation|transaction|id)\b[\s:#.]*(?:no\.?|nr\.?|number)?[\s:#.]*)$"
        ),
    )


@dataclass(frozen=True)
class ExtraPattern:
    """An operator's own kind of personal data: masked as ``[NAME]`` wherever ``pattern`` matches."""

    name: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: str


def parse_extra_patterns(raw: str) -> tuple[ExtraPattern, ...]:
    """`PII_EXTRA_PATTERNS` (a JSON list of ``{"name", "pattern"}``) checked and compiled.

    Raises ValueError with a message that says which entry is wrong and why; the settings loader adds the
    variable's name. Patterns come from the operator, not from users, but a pattern that matches the empty
    string would mask between every character, so it is refused.
    """
    items = json_value(raw)
    if not isinstance(items, list):
        raise ValueError('must be a JSON list of {"name": "EMPLOYEE_ID", "pattern": "EMP-\\\\d{6}"} objects')
    if len(items) > MAX_EXTRA_PATTERNS:
        raise ValueError(f"has {len(items)} patterns; at most {MAX_EXTRA_PATTERNS} are allowed")
    patterns: list[ExtraPattern] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"[{index}]"
        if not isinstance(item, dict) or set(item) != {"name", "pattern"}:
            raise ValueError(f'{where} must be an object with exactly "name" and "pattern"')
        name, pattern = item["name"], item["pattern"]
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"{where}.name must match {NAME_PATTERN.pattern} (it becomes the mask [NAME])")
        if name in BUILT_IN_KINDS or name in seen:
            raise ValueError(f"{where}.name {name!r} is already taken")
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_CHARS:
            raise ValueError(f"{where}.pattern must be a regular expression of 1 to {MAX_PATTERN_CHARS} characters")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{where}.pattern is not a valid regular expression: {exc}") from None
        if compiled.fullmatch(""):
            raise ValueError(f"{where}.pattern matches the empty string")
        seen.add(name)
        patterns.append(ExtraPattern(name, compiled))
    return tuple(patterns)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """Length for the country and the ISO 7064 mod-97 checksum (the rearranged number mod 97 is 1)."""
    expected = IBAN_LENGTHS.get(compact[:2])
    if (expected is not None and len(compact) != expected) or not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _grouped_prefixes(text: str, start: int) -> Iterator[tuple[str, int]]:
    """(compact value, end offset) of the whole run, then of the run without its last group, and so on."""
    groups = re.split(r"[ -]", text)
    for count in range(len(groups), 0, -1):
        kept = groups[:count]
        yield "".join(kept), start + sum(len(group) for group in kept) + count - 1


def _cards(text: str) -> Iterator[Finding]:
    for match in _patterns().card.finditer(text):
        if _patterns().iban_head_before.search(text, max(0, match.start() - 5), match.start()):
            continue  # the account digits of an IBAN-shaped string (one that failed its checksum)
        for digits, end in _grouped_prefixes(match.group(), match.start()):
            if len(digits) < 13:
                break
            if len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
                yield Finding(match.start(), end, "CARD")
                break


def _ibans(text: str) -> Iterator[Finding]:
    for match in _patterns().iban.finditer(text):
        for compact, end in _grouped_prefixes(match.group(), match.start()):
            if len(compact) < 15:
                break
            if iban_valid(compact):
                yield Finding(match.start(), end, "IBAN")
                break


def _emails(text: str) -> Iterator[Finding]:
    if "@" in text:
        for match in _patterns().email.finditer(text):
            yield Finding(match.start(), match.end(), "EMAIL")


def _ips(text: str) -> Iterator[Finding]:
    import ipaddress

    if ":" in text:
        for match in _patterns().ipv6.finditer(text):
            candidate = match.group()
            # An address has "::" or eight groups (seven colons); times and MACs have neither.
            if ("::" not in candidate and candidate.count(":") != 7) or not any(c.isdigit() for c in candidate):
                continue
            try:
                ipaddress.IPv6Address(candidate)  # imported on first use, like the patterns
            except ValueError:
                continue
            yield Finding(match.start(), match.end(), "IP")
    if _patterns().dotted_quad.search(text):
        for match in _patterns().ipv4.finditer(text):
            line_start = text.rfind("\n", 0, match.start()) + 1
            if _patterns().version_before.search(text, max(line_start, match.start() - 16), match.start()):
                continue
            yield Finding(match.start(), match.end(), "IP")


def _not_a_phone(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    lo = max(line_start, start - 40)
    before = text[lo:start].lower()
    if "#" not in before and not any(word in before for word in _ID_WORDS):
        return False  # the common case, without the (slower) expression
    return _patterns().not_a_phone_before.search(text, lo, start) is not None


def _phones(text: str) -> Iterator[Finding]:
    lowered = text.lower()
    if any(word in lowered for word in _PHONE_WORDS):  # the word-led expression is slow; most text has none
        for match in _patterns().phone_after_word.finditer(text):
            digits = sum(char.isdigit() for char in match.group("number"))
            if 7 <= digits <= 15:
                yield Finding(match.start("number"), match.end("number"), "PHONE")
    for shape in _patterns().phone_shapes:
        for match in shape.finditer(text):
            digits = sum(char.isdigit() for char in match.group())
            if 7 <= digits <= 15 and not _not_a_phone(text, match.start()):
                yield Finding(match.start(), match.end(), "PHONE")


Detector = Callable[[str], Iterator[Finding]]
_BUILT_IN_DETECTORS: tuple[Detector, ...] = (_emails, _ibans, _cards, _ips, _phones)


class Redactor:
    """Finds and masks personal data; one instance per process (its patterns are compiled once)."""

    def __init__(self, extra: Sequence[ExtraPattern] = ()) -> None:
        self._extra = tuple(extra)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order; earlier kinds win overlaps (see the module docstring)."""
        accepted: list[Finding] = []  # kept in text order, so an overlap check looks at two neighbours only
        starts: list[int] = []

        def add(found: Iterator[Finding]) -> None:
            for finding in found:
                index = bisect.bisect_left(starts, finding.start)
                if finding.end <= finding.start or (index > 0 and accepted[index - 1].end > finding.start):
                    continue
                if index < len(accepted) and accepted[index].start < finding.end:
                    continue
                accepted.insert(index, finding)
                starts.insert(index, finding.start)

        for extra in self._extra:
            add(Finding(m.start(), m.end(), extra.name) for m in extra.pattern.finditer(text))
        if _patterns().trigger.search(text):  # every built-in kind needs a digit or an @: most prose is skipped here
            for detector in _BUILT_IN_DETECTORS:
                add(detector(text))
        return accepted

    def redact(self, text: str) -> tuple[str, frozenset[str]]:
        """The text with every finding replaced by ``[KIND]``, and the kinds found."""
        findings = self.find(text)
        if not findings:
            return text, frozenset()
        parts: list[str] = []
        position = 0
        for finding in findings:
            parts.append(text[position : finding.start])
            parts.append(f"[{finding.kind}]")
            position = finding.end
        parts.append(text[position:])
        return "".join(parts), frozenset(finding.kind for finding in findings)

    def redact_value(self, value: Any, kinds: set[str]) -> Any:
        """Every string inside a JSON-like value masked (structural keys such as ids and roles are kept)."""
        if isinstance(value, str):
            masked, found = self.redact(value)
            kinds.update(found)
            return masked
        if isinstance(value, Mapping):
            return {
                key: item if key in _STRUCTURAL_KEYS else self.redact_value(item, kinds) for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact_value(item, kinds) for item in value]
        return value

    def redact_messages(self, messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], frozenset[str]]:
        """Agent Framework message dicts with their text masked (new dicts; the input is not changed)."""
        kinds: set[str] = set()
        masked = [self.redact_value(message, kinds) for message in messages]
        return masked, frozenset(kinds)


def redaction_note(kinds: frozenset[str]) -> dict[str, Any]:
    """What a turn record keeps about redaction: that it ran and the kinds found, never the values."""
    return {"applied": True, "kinds": sorted(kinds)}
