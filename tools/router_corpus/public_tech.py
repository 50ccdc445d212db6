"""Public technical requests for the router corpus: the short-but-hard class, and the easy requests beside it.

Four CC0 / MIT / CC BY 4.0 sources (SOURCES.md has commits and licences), each labelled against the policy:

- codecrafters-io/build-your-own-x (CC0): tutorial titles ("Build your own X") turned into requests to build
  that thing in that language: non-trivial code generation, all ``cloud`` (``tech_build``).
- karan/Projects (MIT): programming project ideas with a one-paragraph brief, labelled one by one: short obvious
  programs (FizzBuzz, unit converter, Luhn check) ``local``, whole applications or non-trivial algorithms
  (text editor, CMS, closest pair, Huffman zip) ``cloud`` (``project_easy`` / ``project_hard``).
- alexeygrigorev/data-science-interviews (CC BY 4.0): theory questions carry the authors' own difficulty mark
  (👶 easy, ⭐️ medium, 🚀 expert): 🚀 ``cloud`` (``ml_expert``), 👶/⭐️ ``local`` (``ml_concept``; one explains a
  textbook concept, as a capable small model does); the short Python/algorithm exercises ``local``
  (``interview_code``).
- donnemartin/system-design-primer (CC BY 4.0): the system design questions ``cloud``; the object-oriented design
  exercises labelled one by one (``system_design``).

- f/awesome-chatgpt-prompts (CC0): "act as ..." role prompts, each with its first request, labelled one by one:
  simulators, everyday advice, creative writing and coaching ``local``; expert deliverables (a smart contract
  with code, a security strategy, a diagnosis or treatment plan, a legal agreement, a multi-part application, a
  Fermi estimate, reviewing a scientific paper) ``cloud`` (``roleplay``).

The request wording around a title is ours (templates below, picked by a seeded hash), so that no one phrasing
becomes a cue.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from tools.router_corpus.build import Mirrors, _item, _key, _sample

# ----------------------------------------------------------------------------------------------------------------
# build-your-own-x
# ----------------------------------------------------------------------------------------------------------------

_BYOX_ENTRY = re.compile(r"^\* \[\*\*(?P<lang>[^*]+)\*\*:\s*_?(?P<title>[^\]_]+?)_?\s*\]\(")
_BYOX_SECTION = re.compile(r"^#### Build your own `(?P<thing>[^`]+)`")
BYOX_TEMPLATES = (
    "{title} ({lang})",
    'How would I build my own {thing} in {lang}? Something like "{title}".',
    "write a {lang} program: {title}",
    "I'd like to implement a {thing} from scratch in {lang}. Where do I start and what does the core code look like?",
    "{lang}: {title}",
    "Can you show me how to make a {thing} in {lang}, step by step with code?",
    "Build a minimal {thing} in {lang}.",
    "{title}. Use {lang}.",
)
BYOX_COUNT = 160


def build_your_own_x(m: Mirrors) -> list[dict[str, Any]]:
    thing = ""
    entries = []
    for line in m.show("byox", "README.md").decode().splitlines():
        section = _BYOX_SECTION.match(line)
        if section:
            thing = section.group("thing").split(" / ")[0]
            continue
        if line.startswith("#### Uncategorized"):
            thing = "project"
            continue
        entry = _BYOX_ENTRY.match(line)
        if entry and thing and "(any)" not in entry.group("lang"):
            lang = entry.group("lang").split(" / ")[0].strip()
            entries.append((thing, lang, entry.group("title").strip()))
    entries = list(dict.fromkeys(entries))
    out = []
    for thing_, lang, title in _sample(entries, BYOX_COUNT, "byox", lambda e: e[2] + e[1]):
        n = int(_key("byox-template", title, lang), 16) % len(BYOX_TEMPLATES)
        if thing_ == "project" and "{thing}" in BYOX_TEMPLATES[n]:
            n = (n + 1) % len(BYOX_TEMPLATES) if "{thing}" not in BYOX_TEMPLATES[(n + 1) % len(BYOX_TEMPLATES)] else 0
        thing_text = thing_ if thing_.isupper() or thing_ in ("AI Model",) else thing_.lower()
        text = BYOX_TEMPLATES[n].format(title=title, lang=lang, thing=thing_text)
        ident = re.sub(r"[^a-z0-9]+", "-", f"{lang}-{title}".lower()).strip("-")[:60]
        out.append(_item(f"byox-{ident}", text, "cloud", "tech_build", "build-your-own-x"))
    return out


# ----------------------------------------------------------------------------------------------------------------
# karan/Projects
# ----------------------------------------------------------------------------------------------------------------

_KARAN_ENTRY = re.compile(r"^\*\*(?P<title>[^*]+)\*\*\s*-?\s*(?P<brief>.+)$")
# Judged one by one: an application with several parts (UI, network, storage, threads) or a non-trivial
# algorithm is "non-trivial code generation"; the rest are short obvious programs.
KARAN_CLOUD = {
    "Limit Calculator",
    "Closest pair problem",
    "Eulerian Path",
    "Inverted index",
    "Text Editor",
    "Quote Tracker (market symbols etc)",
    "Guestbook / Journal",
    "FTP Program",
    "Bandwidth Monitor",
    "Mail Checker (POP3 / IMAP)",
    "Airline / Hotel Reservation System",
    "Create A Progress Bar for Downloads",
    "Bulk Thumbnail Creator",
    "Online White Board",
    "E-Card Generator",
    "Content Management System",
    "Web Board (Forum)",
    "CAPTCHA Maker",
    "Create Zip File Maker",
    "PDF Generator",
    "Mp3 Tagger",
    "SQL Query Analyzer",
    "Event Scheduler and Calendar",
    "Budget Tracker",
    "TV Show Tracker",
    "Travel Planner System",
    "Stream Video from Online",
    "Mp3 Player",
    "Turtle Graphics",
}
KARAN_LANGS = ("Python", "Java", "JavaScript", "C#", "Go", "C++", "Rust", "Ruby")
KARAN_TEMPLATES = (
    "{brief}",
    "Write a {lang} program for this: {title}. {brief}",
    "{title} - {brief} Please use {lang}.",
    "Project: {title}. {brief}",
)


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links keep their text
    return text.replace("*", "").strip()


def karan_projects(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    for line in m.show("karan", "README.md").decode().splitlines():
        entry = _KARAN_ENTRY.match(line)
        if not entry:
            continue
        title, brief = entry.group("title").strip(), _plain(entry.group("brief"))
        label = "cloud" if title in KARAN_CLOUD else "local"
        n = int(_key("karan", title), 16)
        text = KARAN_TEMPLATES[n % len(KARAN_TEMPLATES)].format(
            title=title, brief=brief, lang=KARAN_LANGS[(n // 7) % len(KARAN_LANGS)]
        )
        ident = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        category = "project_hard" if label == "cloud" else "project_easy"
        out.append(_item(f"karan-{ident}", text, label, category, "karan-projects"))
    assert sum(it["label"] == "cloud" for it in out) == len(KARAN_CLOUD), "a KARAN_CLOUD title is not in the list"
    return out


# ----------------------------------------------------------------------------------------------------------------
# data-science-interviews
# ----------------------------------------------------------------------------------------------------------------

_DSI_QUESTION = re.compile(r"^\*\*(?P<q>.+?)\s*(?P<mark>[\u200d]*(?:👶|⭐️?|🚀)[^*]*)\*\*\s*$")
_DSI_TASK = re.compile(r"^\*\*\d+\)\s*(?P<title>[^*]+?)\.?\*\*\.?\s*(?P<brief>.*)$")
DSI_MEDIUM_COUNT = 60  # of ~110 medium questions: enough to teach the class without drowning the rest


def ds_interviews(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    medium = []
    for line in m.show("dsi", "theory.md").decode().splitlines():
        q = _DSI_QUESTION.match(line)
        if not q:
            continue
        text, mark = q.group("q").strip(), q.group("mark")
        ident = "dsi-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
        if "🚀" in mark:
            out.append(_item(ident, text, "cloud", "ml_expert", "data-science-interviews-theory"))
        elif "⭐" in mark:
            medium.append(_item(ident, text, "local", "ml_concept", "data-science-interviews-theory"))
        else:
            out.append(_item(ident, text, "local", "ml_concept", "data-science-interviews-theory"))
    out += _sample(medium, DSI_MEDIUM_COUNT, "dsi-medium", lambda it: it["id"])
    section = ""
    for line in m.show("dsi", "technical.md").decode().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            continue
        task = _DSI_TASK.match(line)
        if task and section != "SQL" and task.group("brief"):
            title, brief = task.group("title").strip(), _plain(task.group("brief"))
            ident = "dsi-code-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
            text = f"{brief} Write it in Python." if int(_key("dsi", title), 16) % 2 else f"{title}: {brief}"
            out.append(_item(ident, text, "local", "interview_code", "data-science-interviews-technical"))
    return out


# ----------------------------------------------------------------------------------------------------------------
# system-design-primer
# ----------------------------------------------------------------------------------------------------------------

_SDP_ROW = re.compile(r"^\| (?P<q>Design [^|]+?) \|")
# Object-oriented design exercises a small model handles (one class with the obvious methods): local.
SDP_LOCAL = {
    "Design a hash map",
    "Design a least recently used cache",
    "Design a deck of cards",
    "Design a circular array",
}
SDP_TEMPLATES = (
    "{q}.",
    "How would you {q_lower}? Walk through the components, data model and how it scales.",
    "{q} - what would the architecture look like?",
    "System design question: {q_lower}.",
)


def system_design(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    seen = set()
    for line in m.show("sdp", "README.md").decode().splitlines():
        row = _SDP_ROW.match(line)
        if not row or row.group("q") in seen:
            continue
        q = row.group("q").strip()
        seen.add(q)
        label = "local" if q in SDP_LOCAL else "cloud"
        n = int(_key("sdp", q), 16) % len(SDP_TEMPLATES)
        text = q + "." if label == "local" else SDP_TEMPLATES[n].format(q=q, q_lower=q[0].lower() + q[1:])
        ident = "sdp-" + re.sub(r"[^a-z0-9]+", "-", q.lower()).strip("-")[:60]
        out.append(_item(ident, text, label, "system_design", "system-design-primer"))
    return out


# ----------------------------------------------------------------------------------------------------------------
# awesome-chatgpt-prompts
# ----------------------------------------------------------------------------------------------------------------

# Judged one by one (the row's "act"): what the first request asks for is an expert deliverable.
ACP_CLOUD = {
    "An Ethereum Developer",
    "SEO Prompt",
    "Cyber Security Specialist",
    "AI Assisted Doctor",
    "Doctor",
    "Accountant",
    "Statistician",
    "IT Architect",
    "Journal Reviewer",
    "Car Navigation System",
    "Chess Player",
    "Fullstack Software Developer",
    "Senior Frontend Developer",
    "Startup Tech Lawyer",
    "Chemical reactor",
}


def act_as_prompts(m: Mirrors) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(m.show("acp", "prompts.csv").decode())))
    out = []
    for row in rows:
        act = row["act"].strip()
        label = "cloud" if act in ACP_CLOUD else "local"
        ident = "acp-" + re.sub(r"[^a-z0-9]+", "-", act.lower()).strip("-")[:50]
        out.append(_item(ident, row["prompt"], label, "roleplay", "awesome-chatgpt-prompts"))
    found = {it["id"] for it in out if it["label"] == "cloud"}
    assert len(found) == len(ACP_CLOUD), "an ACP_CLOUD act is not in the file"
    return out
