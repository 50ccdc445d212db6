"""Realistic chat text for the benchmarks: varied English sentences from a small grammar and vocabulary bank.

Why not repeated characters, lorem ipsum or a handful of canned sentences: every storage figure goes through
gzip and every routing figure through a scorer that reads words. Repeated characters (or whole sentences that
recur) compress to almost nothing and lorem ipsum has no English vocabulary, so they would flatter the storage
figures and starve the router of cues. Here each sentence is put together from a topic's nouns, shared
adjectives, verbs, adverbials, names and numbers in varied templates, so whole sentences almost never recur
while words and phrases do, as in a real conversation: a 100-exchange transcript compresses about as well as
ordinary English prose does (`compression_ratio`, reported with the storage figures). Seeded, so a run is
reproducible and two runs with the same seed store the same bytes.

    rng = random.Random(7)
    user = user_message(rng)            # about 300 characters, ends with a question
    reply = assistant_message(rng)      # about 1,200 characters, two or three paragraphs
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Sequence

USER_CHARS = 300
ASSISTANT_CHARS = 1200

# Each topic: (what the user is working on, nouns of that world). A conversation mostly stays on one topic.
# fmt: off
_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "software": (
        (
            "the billing service", "our release process", "the mobile checkout", "the nightly export job",
            "the search page", "our on-call rota", "the login flow", "the legacy reporting tool",
        ),
        (
            "deployment", "test suite", "database migration", "feature flag", "code review", "dashboard", "backlog",
            "pull request", "error budget", "staging environment", "incident report", "dependency", "cache",
            "log file", "runbook", "sprint", "API", "queue", "timeout", "retry policy",
        ),
    ),
    "kitchen": (
        (
            "a small bakery in Lyon", "my sourdough routine", "the school canteen menu", "a dinner for twelve",
            "our café's breakfast list", "a cooking class for beginners",
        ),
        (
            "oven", "starter", "dough", "recipe", "pantry", "supplier", "menu", "prep list", "spice rack",
            "allergen label", "portion", "stock pot", "delivery slot", "tasting", "fridge", "weekly order",
        ),
    ),
    "garden": (
        (
            "a community garden", "the allotment by the river", "our school vegetable beds", "a rooftop planter",
        ),
        (
            "compost heap", "seedling", "watering schedule", "raised bed", "tomato plant", "greenhouse", "soil test",
            "rain barrel", "tool shed", "volunteer", "harvest", "mulch", "seed catalogue", "frost date",
        ),
    ),
    "money": (
        (
            "our quarterly budget", "the payroll spreadsheet", "a loan for the workshop", "my household accounts",
            "the club's membership fees",
        ),
        (
            "invoice", "receipt", "cash flow", "forecast", "spreadsheet", "bank transfer", "expense claim",
            "tax return", "savings account", "price list", "subscription", "deposit", "ledger", "audit trail",
        ),
    ),
    "events": (
        (
            "the conference travel plan", "a wedding for ninety guests", "the neighbourhood festival",
            "our team offsite", "a charity run",
        ),
        (
            "venue", "guest list", "catering order", "shuttle bus", "seating plan", "programme", "sponsor",
            "registration form", "badge", "sound check", "rain plan", "volunteer briefing", "hotel block",
        ),
    ),
    "writing": (
        (
            "my thesis draft", "a short story I am writing", "the museum's audio guide", "our newsletter",
            "the onboarding handbook", "a grant application",
        ),
        (
            "chapter", "outline", "paragraph", "footnote", "reviewer", "deadline", "draft", "bibliography",
            "opening scene", "summary", "style guide", "word count", "figure", "appendix", "cover letter",
        ),
    ),
    "clinic": (
        (
            "the clinic's appointment system", "our patient reminder letters", "the pharmacy stock count",
            "a first-aid training day",
        ),
        (
            "appointment", "waiting list", "reminder", "consent form", "rota", "prescription", "front desk",
            "referral", "check-in kiosk", "triage note", "phone line", "follow-up call", "stock count",
        ),
    ),
}
_GENERAL_NOUNS = (
    "plan", "list", "meeting", "step", "owner", "budget", "rule", "note", "reminder", "template", "checklist",
    "calendar", "decision", "estimate", "change", "trial", "result", "handover", "form", "folder", "process",
    "schedule", "summary", "request", "shortcut", "workaround", "priority", "routine", "agreement", "report",
    "whiteboard", "inbox", "phone call", "survey", "contract", "key", "notice board", "spare room", "van", "laptop",
    "printer", "stand-up", "minutes", "sign-up sheet", "password", "timetable", "map", "box", "label", "question",
    "complaint", "suggestion", "photo", "chart", "queue", "shift", "holiday", "training session",
)
_ADJECTIVES = (
    "current", "old", "new", "shared", "weekly", "monthly", "manual", "simple", "separate", "main", "small", "large",
    "rough", "detailed", "cheaper", "faster", "clearer", "busy", "quiet", "temporary", "official", "informal",
    "overdue", "unused", "spare", "local", "remote", "messy", "tidy", "fragile", "reliable", "awkward", "handy",
    "outdated", "urgent", "optional", "basic", "complete", "partial", "annual", "daily", "printed", "digital",
    "shorter", "longer", "visible", "hidden", "second", "final", "draft",
)
_VERBS = (  # base, past, -ing
    ("check", "checked", "checking"), ("move", "moved", "moving"), ("split", "split", "splitting"),
    ("merge", "merged", "merging"), ("rename", "renamed", "renaming"), ("label", "labelled", "labelling"),
    ("schedule", "scheduled", "scheduling"), ("review", "reviewed", "reviewing"),
    ("cancel", "cancelled", "cancelling"), ("postpone", "postponed", "postponing"),
    ("simplify", "simplified", "simplifying"), ("track", "tracked", "tracking"), ("share", "shared", "sharing"),
    ("print", "printed", "printing"), ("update", "updated", "updating"), ("archive", "archived", "archiving"),
    ("test", "tested", "testing"), ("measure", "measured", "measuring"), ("replace", "replaced", "replacing"),
    ("document", "documented", "documenting"), ("order", "ordered", "ordering"), ("compare", "compared", "comparing"),
    ("prepare", "prepared", "preparing"), ("count", "counted", "counting"), ("confirm", "confirmed", "confirming"),
    ("clean up", "cleaned up", "cleaning up"), ("hand over", "handed over", "handing over"),
    ("write down", "wrote down", "writing down"), ("sort out", "sorted out", "sorting out"),
    ("drop", "dropped", "dropping"), ("reuse", "reused", "reusing"), ("shorten", "shortened", "shortening"),
    ("automate", "automated", "automating"), ("skip", "skipped", "skipping"), ("plan", "planned", "planning"),
    ("rebuild", "rebuilt", "rebuilding"), ("explain", "explained", "explaining"),
    ("delegate", "delegated", "delegating"), ("estimate", "estimated", "estimating"), ("fix", "fixed", "fixing"),
    ("group", "grouped", "grouping"), ("pause", "paused", "pausing"), ("announce", "announced", "announcing"),
    ("budget for", "budgeted for", "budgeting for"), ("look at", "looked at", "looking at"),
)
_PLAIN_MODALS = (  # the same form after any subject
    "should", "could", "can", "might", "will probably", "ought to", "may want to", "would rather", "might as well",
    "will", "must", "may", "would", "could easily", "should probably", "can always",
)
_MODALS = (*_PLAIN_MODALS, "needs to", "has to", "is going to", "tends to", "is able to", "is supposed to")
_CONNECTIVES = (
    "because", "so", "although", "while", "unless", "but", "since", "before", "after", "until", "as long as",
    "even if", "and", "whereas", "once", "so that",
)
_OPENERS = (
    "In my experience,", "Honestly,", "For a start,", "On balance,", "Realistically,", "If it helps,", "Usually,",
    "In your case,", "To be fair,", "Either way,", "Ideally,", "Practically speaking,", "At this stage,",
    "Most of the time,", "Looking at it again,", "Oddly enough,", "With that in mind,", "Still,", "Meanwhile,",
    "First,", "Next,", "Then", "After that,", "Finally,", "Also,", "For example,", "On the other hand,",
)
_ADVERBIALS = (
    "before Friday", "every other week", "at the end of the month", "once a quarter", "first thing on Monday",
    "after lunch", "during the quiet weeks", "before the holidays", "by the end of March", "in small batches",
    "one step at a time", "with a second pair of eyes", "on a shared calendar", "in the same meeting", "twice a day",
    "as soon as possible", "next spring", "over the summer", "while the others are away", "in under an hour",
    "from the start", "later in the year", "by hand", "without much fuss", "in one go", "on Tuesdays",
    "at short notice", "for a trial month", "on paper first", "together", "in advance", "this week", "quietly",
    "properly", "gradually", "right away", "for now", "again next year", "when it rains", "if nobody objects",
    "after the audit", "before anyone notices", "on the first of the month", "between the two deadlines",
    "until the new system arrives", "at the weekly meeting", "by email", "in the spreadsheet", "on the wiki",
    "over the phone", "without extra cost", "within budget",
)
_NAMES = (
    "Anna", "Ben", "Chloé", "Dev", "Emeka", "Farah", "Gustav", "Hana", "Ivan", "Jo", "Kemal", "Lucía", "Mei", "Nils",
    "Olu", "Priya", "Quentin", "Rosa", "Sami", "Tereza", "Umar", "Vera", "Wen", "Yusuf", "Zoe",
)
_PEOPLE = (
    "my manager", "the new intern", "one of the volunteers", "our accountant", "the team lead", "a colleague",
    "the owner", "the person on duty", "the chair", "our supplier", "the night shift", "the treasurer", "everyone",
    "nobody", "the newest member", "whoever is free",
)
_PREPOSITIONS = (
    "for", "with", "in", "from", "about", "next to", "behind", "after", "without", "under",
)
_NUMBERS = (
    2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 15, 18, 20, 25, 30, 40, 45, 60, 75, 90, 120, 250, 300, 1500,
)
_UNITS = (
    "minutes", "hours", "days", "weeks", "people", "euros", "pages", "steps", "orders", "emails", "items",
)
_QUESTION_FRAMES = (
    "How {modal} we {verb} {np} {adverbial}?", "What should I do about {np}?", "Is it worth {ving} {np}?",
    "Where would you start with {np}?", "Which {noun} would you {verb} first, and why?",
    "Would {np} be enough, or am I missing something?", "How would you explain {np} to {person}?",
    "What usually goes wrong when people {verb} {np}?", "Could {name} {verb} {np} instead?",
    "Should {np} come before {np2}?",
)
_CLOSERS = (
    "If you tell me more about {np}, I can turn this into a concrete schedule.",
    "Happy to go into any of these steps in more detail.",
    "Let me know which of these fits {project} best and we can refine it together.",
    "None of this needs special tools; a shared document and a short check-in are enough.",
    "Try it for a month, then look at {np} again and keep what helped.",
)
_ANSWER_OPENERS = (
    "That is a common situation with {project}.", "Good question.", "Here is how I would approach it.",
    "It helps to separate what must change from what would merely be nice.", "There are a few options.",
    "You are right to worry about {np}.", "Short answer: start small.", "Let me break this down.",
)
_USER_OPENERS = (
    "I'm working on {project}.", "Question about {project}.", "We're reorganising {project}.",
    "{name} and I look after {project}.", "I've just taken over {project}.",
)
# fmt: on


def _capital(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class _Writer:
    """Builds sentences from small phrase rules for one conversation topic, so whole sentences rarely recur."""

    def __init__(self, rng: random.Random, topic: str | None = None) -> None:
        self.rng = rng
        self.topic = topic or rng.choice(sorted(_TOPICS))
        projects, nouns = _TOPICS[self.topic]
        self.project = rng.choice(projects)
        self.nouns = nouns

    def noun(self) -> str:
        return self.rng.choice(self.nouns if self.rng.random() < 0.7 else _GENERAL_NOUNS)

    def np(self, depth: int = 0) -> str:
        rng = self.rng
        noun = self.noun()
        roll = rng.random()
        if roll < 0.35:
            adjective = rng.choice(_ADJECTIVES)
            phrase = f"{rng.choice(('the', 'our', 'this', 'that', 'every'))} {adjective} {noun}"
        elif roll < 0.55:
            adjective = rng.choice(_ADJECTIVES)
            phrase = f"{_article(adjective)} {adjective} {noun}"
        elif roll < 0.7:
            phrase = f"{rng.choice(_NAMES)}'s {noun}"
        elif roll < 0.8:
            phrase = f"{rng.choice(_NUMBERS)} {noun}s" if not noun.endswith("s") else f"the {noun}"
        else:
            phrase = f"the {noun}"
        if depth == 0 and rng.random() < 0.25:
            phrase += f" {rng.choice(_PREPOSITIONS)} {self.np(1)}"
        return phrase

    def subject(self) -> tuple[str, bool]:
        """A subject and whether the verb must agree with it as plural (or "I")."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            return rng.choice(("you", "we", "I", "they")), True
        if roll < 0.5:
            return rng.choice(_NAMES), False
        if roll < 0.7:
            return rng.choice(_PEOPLE), False
        phrase = self.np(1)
        return phrase, phrase.split(" ", 1)[0].isdigit()

    def clause(self) -> str:
        rng = self.rng
        verb = rng.choice(_VERBS)
        roll = rng.random()
        subject, plural = self.subject()
        if roll < 0.6:
            modal = rng.choice(_MODALS if not plural else _PLAIN_MODALS)
            core = f"{subject} {modal} {verb[0]} {self.np()}"
        elif roll < 0.85:
            core = f"{subject} {verb[1]} {self.np()}"
        else:
            effect = rng.choice(("takes", "saves", "costs", "needs"))
            core = f"{verb[2]} {self.np()} {effect} about {rng.choice(_NUMBERS)} {rng.choice(_UNITS)}"
        if rng.random() < 0.45:
            core += f" {rng.choice(_ADVERBIALS)}"
        return core

    def sentence(self) -> str:
        rng = self.rng
        parts = []
        if rng.random() < 0.4:
            parts.append(rng.choice(_OPENERS))
        parts.append(self.clause())
        if rng.random() < 0.55:
            parts.append(f"{rng.choice(_CONNECTIVES)} {self.clause()}")
        return _capital(" ".join(parts).replace(", ,", ",")) + "."

    def fill(self, frame: str) -> str:
        rng = self.rng
        verb = rng.choice(_VERBS)
        return frame.format(
            project=self.project,
            np=self.np(),
            np2=self.np(1),
            noun=self.noun(),
            modal=rng.choice(("should", "could", "can")),
            verb=verb[0],
            ving=verb[2],
            adverbial=rng.choice(_ADVERBIALS),
            person=rng.choice(_PEOPLE),
            name=rng.choice(_NAMES),
        )


def _until(writer: _Writer, first: str, target: int, last: str, slack: int) -> list[str]:
    """`first`, then made-up sentences, until adding `last` would pass about `target` characters."""
    parts = [first]
    size = len(first)
    for _ in range(200):
        sentence = writer.sentence()
        if size + len(sentence) + len(last) + 2 > target + slack:
            break
        parts.append(sentence)
        size += len(sentence) + 1
    parts.append(last)
    return parts


def user_message(rng: random.Random, target: int = USER_CHARS, topic: str | None = None) -> str:
    """A user turn of about `target` characters: what they are working on, some detail, a question."""
    writer = _Writer(rng, topic)
    first = writer.fill(rng.choice(_USER_OPENERS))
    question = _capital(writer.fill(rng.choice(_QUESTION_FRAMES)))
    return " ".join(_until(writer, first, target, question, slack=45))


def assistant_message(rng: random.Random, target: int = ASSISTANT_CHARS, topic: str | None = None) -> str:
    """An assistant turn of about `target` characters in two or three paragraphs."""
    writer = _Writer(rng, topic)
    first = writer.fill(rng.choice(_ANSWER_OPENERS))
    closer = writer.fill(rng.choice(_CLOSERS))
    sentences = _until(writer, first, target, closer, slack=50)
    paragraphs: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        current.append(sentence)
        if len(current) >= rng.choice((3, 4, 5)):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n\n".join(paragraphs)


def exchanges(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` (user, assistant) pairs on one topic, reproducible from `seed`."""
    rng = random.Random(seed)
    topic = rng.choice(sorted(_TOPICS))
    return [(user_message(rng, topic=topic), assistant_message(rng, topic=topic)) for _ in range(count)]


def compression_ratio(pairs: Sequence[tuple[str, str]]) -> float:
    """Raw bytes / gzip bytes of the whole transcript: ordinary English prose gives about 2.5 to 3.5."""
    text = "\n".join(f"{user}\n{reply}" for user, reply in pairs).encode("utf-8")
    return round(len(text) / len(gzip.compress(text, compresslevel=6)), 2)


# ---- prompts for the router benchmark: the kinds of turn a router really sees -------------------------------

_SMALL_TALK = ("thanks!", "ok", "hi there", "great, thank you", "hello", "perfect", "cool, that helps", "bye for now")
_FOLLOW_UPS = (
    "and in French?",
    "shorter please",
    "can you make it more formal?",
    "what about the second option?",
    "why?",
    "and for a team of ten?",
    "same thing but as a table",
    "go on",
    "what did you mean by the last point?",
)
_CODE_SNIPPETS = (
    "```python\ndef total(items):\n    return sum(i.price * i.qty for i in items)\n```\nWhy does this return 0 "
    "for an empty cart and how would you refactor it to handle discounts?",
    'I get this stack trace:\nTraceback (most recent call last):\n  File "app.py", line 12, in <module>\n'
    "    main()\nKeyError: 'user_id'\nWhat is the race condition here and how do I fix it?",
    "Refactor this JavaScript so it does not block the event loop: `for (const f of files) { fs.readFileSync(f); }`",
    "```sql\nSELECT customer, SUM(amount) FROM orders GROUP BY customer HAVING SUM(amount) > 100;\n```\nHow do I "
    "add an index that makes this fast on 50 million rows?",
)
_MATH = (
    "Prove that the sum of the first n odd numbers is n^2.",
    "Compute the integral of x * e^x from 0 to 1 and explain each step.",
    "What is the derivative of sin(x) / x, and where is it zero?",
    "If a loan of 20000 euros has 4.5% yearly interest over 5 years, what is the monthly payment? Show the formula.",
    "Solve 3x + 7 = 2x - 5 and check the answer.",
)
_ANALYSIS = (
    "Compare token bucket and sliding window rate limiting and analyze the trade-offs step by step.",
    "Design a backup strategy for a 2 TB database that must not lose more than 5 minutes of data, with an RTO "
    "of at most one hour. Justify each choice.",
    "Explain the legal difference between a contractor and an employee under EU law, and what a small company "
    "must check before hiring.",
    "Analyze the security risks of storing API keys in environment variables versus a managed secret store.",
    "Our p95 latency doubled after the last release. First list the likely causes, then explain how to confirm "
    "each one, and what would you measure before rolling back?",
)


def router_prompts(seed: int, count: int) -> list[str]:
    """`count` varied prompts: small talk, follow-ups, everyday questions, long pastes, code, maths, analysis."""
    rng = random.Random(seed)
    prompts: list[str] = []
    kinds = ("small", "follow", "everyday", "everyday", "long", "code", "math", "analysis")
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == "small":
            prompt = rng.choice(_SMALL_TALK)
        elif kind == "follow":
            prompt = rng.choice(_FOLLOW_UPS)
        elif kind == "everyday":
            prompt = user_message(rng, rng.choice((120, 300, 600)))
        elif kind == "long":
            prompt = "Please proofread this e-mail:\n\n" + assistant_message(rng, rng.choice((1500, 3000, 6000)))
        elif kind == "code":
            prompt = rng.choice(_CODE_SNIPPETS) + " " + user_message(rng, 150)
        elif kind == "math":
            prompt = rng.choice(_MATH)
        else:
            prompt = rng.choice(_ANALYSIS) + " " + user_message(rng, 200)
        prompts.append(prompt)
    return prompts
