# ruff: noqa: B023  (the nested flush() helpers run inside their loop, never later)
"""Build the labelled router corpus (single turns and conversations) and its train/dev split.

    python -m tools.router_corpus.build [--mirrors DIR]

Reads public datasets from bare git mirrors (one directory per repository, ``owner+name/repo``, as the
team's fetch tool lays them out; each source pins the commit it was read at) plus the hand-written files in
``handwritten/``, applies the labelling rules documented in SOURCES.md, and writes

    single_train.jsonl, single_dev.jsonl, conversations_train.jsonl, conversations_dev.jsonl

The committed JSONL files are the artefact; the mirrors are only needed to rebuild them. Sampling and the split
are deterministic: items are ordered by sha256(seed + id), never by Python's randomised ``hash``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SEED = "router-corpus-v1"
DEV_FRACTION = 0.25

# (mirror dir, commit) of every public source; SOURCES.md repeats these.
REPOS = {
    "gsm8k": ("openai+grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c"),
    "qwen": ("QwenLM+Qwen2.5-Math", "a45202bd16f1ec06f433442dc1152d0074773465"),
    "clinc": ("clinc+oos-eval", "828f8093932c8fe6ca7936c3d2e52903b1c523de"),
    "mtb101": ("mtbench101+mt-bench-101", "bc18b3e2c18c99164e11528f1a79c92083db5953"),
    "nq": ("google-research-datasets+natural-questions", "fb26a3073b1fe636c97302890a27b491d6530130"),
    "fastchat": ("lm-sys+FastChat", "0e6d3e4beaab66f4d3f93db72541a4abab8af28d"),
    "math500": ("wulei20+AML_HW4_Infer", "1460fcce590211503876311be7fdb1103117afd4"),
    "mbpp": ("Yogi-20MIS7040+DL", "d662033c07e0645e9334676c2e264beff68e5a8f"),
    "kk": ("zhebushipinyin+Tom-RL", "463b2d5ffd5d25061829459217b93634a336cb94"),
    "byox": ("codecrafters-io+build-your-own-x", "264b4547b30e8e700afd260751b5e13f8bc61275"),
    "karan": ("karan+Projects", "10ed1c05166c66aa1b1085b92d95b67ad5268182"),
    "dsi": ("alexeygrigorev+data-science-interviews", "83a2fefb2f0cef229c0b96a729e8ce73e540ddc8"),
    "sdp": ("donnemartin+system-design-primer", "ae9bbd7b02d90b9866215de185217d33f39ab733"),
    # prompts.csv as of January 2025 (170 prompts); later commits turned the repository into a web site
    "acp": ("f+awesome-chatgpt-prompts", "32cb65f4bae5f46bfa7c1cb8af2aeb6c1a57b098"),
    "bbh": ("suzgunmirac+BIG-Bench-Hard", "9ee07bd481feebf959a6b59d61ea57bdcf30964d"),
}


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join([SEED, *map(str, parts)]).encode()).hexdigest()


def _sample(items: list[Any], n: int, salt: str, ident=lambda x: x) -> list[Any]:
    return sorted(items, key=lambda x: _key(salt, ident(x)))[:n]


class Mirrors:
    def __init__(self, root: Path) -> None:
        self.root = root

    def show(self, source: str, path: str) -> bytes:
        repo, commit = REPOS[source]
        git_dir = self.root / repo / "repo"
        out = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"], capture_output=True, check=True
        )
        return out.stdout

    def jsonl(self, source: str, path: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.show(source, path).decode().splitlines() if line.strip()]


def _item(id_: str, text: str, label: str, category: str, source: str) -> dict[str, Any]:
    assert label in ("local", "cloud"), label
    return {"id": id_, "text": text.strip(), "label": label, "category": category, "source": source}


# ----------------------------------------------------------------------------------------------------------------
# Public single-turn sources
# ----------------------------------------------------------------------------------------------------------------

# GSM8K: the number of <<calc>> annotations in the reference solution counts the dependent arithmetic steps.
GSM8K_MIN_STEPS = 4


def gsm8k(m: Mirrors) -> list[dict[str, Any]]:
    rows = m.jsonl("gsm8k", "grade_school_math/data/train.jsonl")
    multi = [(i, r) for i, r in enumerate(rows) if r["answer"].count("<<") >= GSM8K_MIN_STEPS]
    picked = _sample(multi, 260, "gsm8k", lambda x: x[0])
    return [_item(f"gsm8k-train-{i}", r["question"], "cloud", "word_problem_multi", "gsm8k-train") for i, r in picked]


def mawps_svamp(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    for split, n in (("addsub", 90), ("singleeq", 90), ("multiarith", 40)):
        rows = m.jsonl("qwen", f"evaluation/data/mawps/{split}.jsonl")
        for i, r in _sample(list(enumerate(rows)), n, f"mawps-{split}", lambda x: x[0]):
            text = re.sub(r"\s+([.,?!])", r"\1", r["input"])
            out.append(_item(f"mawps-{split}-{i}", text, "local", "arith_single", f"mawps-{split}"))
    rows = m.jsonl("qwen", "evaluation/data/svamp/test.jsonl")
    for r in _sample(rows, 110, "svamp", lambda r: r["ID"]):
        body = r["Body"].strip()
        body = body if body.endswith(".") else body + "."
        out.append(_item(f"svamp-{r['ID']}", f"{body} {r['Question'].strip()}", "local", "arith_single", "svamp"))
    return out


def college_and_aqua(m: Mirrors) -> list[dict[str, Any]]:
    """University linear algebra exercises (the CC BY part of Qwen's college_math) and AQuA algebra word
    problems with their answer choices: multi-step computations, cloud."""
    out = []
    rows = [
        r
        for r in m.jsonl("qwen", "evaluation/data/college_math/test.jsonl")
        if r["data_topic"] == "college_math.linear_algebra" and "(CC BY)" in r["license"]
    ]
    for r in _sample(rows, 60, "college-la", lambda r: r["question_number"] + r["question"]):
        ident = _key("college-la-id", r["question_number"], r["question"])[:12]
        out.append(_item(f"college-la-{ident}", r["question"], "cloud", "college_math", "college-math-linear-algebra"))
    rows = m.jsonl("qwen", "evaluation/data/aqua/test.jsonl")
    for i, r in _sample(list(enumerate(rows)), 60, "aqua", lambda x: x[0]):
        text = f"{r['question'].strip()}\nAnswer choices: {' '.join(r['options'])}"
        out.append(_item(f"aqua-test-{i}", text, "cloud", "word_problem_aqua", "aqua"))
    return out


def math_competition(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    rows = m.jsonl("math500", "data/math500/test1.jsonl")
    rows = [r for r in rows if int(r["level"]) >= 2]
    for r in _sample(rows, 230, "math500", lambda r: r["unique_id"]):
        uid = r["unique_id"].replace("/", "-").removesuffix(".json")
        out.append(_item(f"math500-{uid}", r["problem"], "cloud", "competition_math", "math500"))
    rows = m.jsonl("qwen", "evaluation/data/gaokao2023en/test.jsonl")
    for i, r in _sample(list(enumerate(rows)), 60, "gaokao", lambda x: x[0]):
        out.append(_item(f"gaokao2023en-{i}", r["question"], "cloud", "competition_math", "gaokao2023en"))
    return out


CLINC_CHITCHAT = [
    "greeting",
    "goodbye",
    "thank_you",
    "tell_joke",
    "what_is_your_name",
    "how_old_are_you",
    "are_you_a_bot",
    "who_made_you",
    "where_are_you_from",
    "what_are_your_hobbies",
    "do_you_have_pets",
    "meaning_of_life",
    "fun_fact",
    "what_can_i_ask_you",
    "who_do_you_work_for",
    "yes",
    "no",
    "maybe",
    "user_name",
]
CLINC_REQUESTS = [
    "translate",
    "definition",
    "spelling",
    "measurement_conversion",
    "calculator",
    "timezone",
    "calories",
    "nutrition_info",
    "recipe",
    "meal_suggestion",
    "ingredient_substitution",
    "cook_time",
    "travel_suggestion",
    "flip_coin",
    "roll_dice",
    "oil_change_how",
    "jump_start",
    "tire_change",
    "improve_credit_score",
    "restaurant_suggestion",
    "food_last",
    "ingredients_list",
    "international_visa",
    "plug_type",
    "vaccines",
    "distance",
    "gas_type",
    "exchange_rate",
    "carry_on",
]


def clinc(m: Mirrors) -> list[dict[str, Any]]:
    data = json.loads(m.show("clinc", "data/data_full.json"))
    by_intent: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (text, intent) in enumerate(data["train"]):
        by_intent[intent].append((i, text))
    out = []
    for intents, per, category in ((CLINC_CHITCHAT, 5, "chitchat"), (CLINC_REQUESTS, 3, "simple_request")):
        for intent in intents:
            for i, text in _sample(by_intent[intent], per, f"clinc-{intent}", lambda x: x[0]):
                out.append(_item(f"clinc-train-{i}", text, "local", category, f"clinc150-{intent}"))
    return out


def efficientqa(m: Mirrors) -> list[dict[str, Any]]:
    rows = m.jsonl("nq", "nq_open/NQ-open.efficientqa.dev.1.1.jsonl")
    picked = _sample(list(enumerate(rows)), 260, "effqa", lambda x: x[0])
    return [_item(f"effqa-dev-{i}", r["question"], "local", "factoid", "efficientqa-dev") for i, r in picked]


# MBPP items judged non-trivial on review (dynamic programming, combinatorial search, tricky algorithms):
# routed to the strong model per the policy ("non-trivial code generation").
MBPP_HARD_WORDS = re.compile(
    r"dynamic programming|minimum cost path|number of ways|longest (?:common|palindromic|increasing|bitonic)|"
    r"maximum sum (?:increasing|of (?:non|bi))|edit distance|minimum number of (?:jumps|operations|swaps)|"
    r"n-queens|tsp|knapsack|catalan|bell number|permutation coefficient|derangement|sudoku|hamiltonian|"
    r"subset sum|partition|lucky number|nth (?:super )?ugly|friedman|shortest path|dijkstra|regex",
    re.IGNORECASE,
)


def _mbpp_signature(code: str) -> str | None:
    match = re.search(r"^def (\w+)\(([^)]*)\)\s*:", code, re.MULTILINE)
    return f"def {match.group(1)}({match.group(2).strip()}):" if match else None


def _doctest(tests: list[str]) -> str:
    """``assert f(x) == y`` lines as ``>>> f(x)`` / ``y`` doctest lines ("" when one does not fit)."""
    lines = []
    for test in tests[:2]:
        match = re.fullmatch(r"assert\s+(\w+\(.*\))\s*==\s*(.+)", test.strip())
        if not match:
            return ""
        lines.append(f"    >>> {match.group(1)}\n    {match.group(2)}\n")
    return "".join(lines)


def mbpp(m: Mirrors) -> list[dict[str, Any]]:
    rows = m.jsonl("mbpp", "mbpp.jsonl")
    rows = [r for r in rows if isinstance(r.get("task_id"), int)]
    picked = _sample(rows, 300, "mbpp", lambda r: r["task_id"])
    out = []
    for n, r in enumerate(picked):
        label = "cloud" if MBPP_HARD_WORDS.search(r["text"]) else "local"
        category = "code_hard" if label == "cloud" else "code_easy"
        sig = _mbpp_signature(r["code"])
        if n % 4 == 0 and sig and r["test_list"]:
            # a docstring-style prompt, as code benchmarks phrase it
            doc = r["text"].strip()
            example = r["test_list"][0].replace("assert ", "").strip()
            text = f'{sig}\n    """{doc}\n    Example: {example}\n    """\n'
            out.append(_item(f"mbpp-{r['task_id']}-sig", text, label, category, "mbpp"))
        elif n % 4 == 2 and sig and _doctest(r["test_list"]):
            # the doctest style of other code benchmarks (same id as the plain rendering: the split is unchanged)
            text = f'{sig}\n    """ {r["text"].strip()}\n{_doctest(r["test_list"])}    """\n'
            out.append(_item(f"mbpp-{r['task_id']}", text, label, category, "mbpp"))
        else:
            out.append(_item(f"mbpp-{r['task_id']}", r["text"], label, category, "mbpp"))
    return out


# Long but easy: a long passage with a rewriting task (translate, summarise, proofread ...) stays local under
# the policy ("simple rewriting ... translation"), so length alone must not decide. Passages: MT-Bench-101
# assistant answers and GSM8K training problems (the task is to rewrite them, not to solve them).
LONG_EASY_TEMPLATES = (
    "Translate the following text into {lang}:\n\n{passage}",
    "Summarize this in two sentences:\n\n{passage}",
    "Proofread the text below and fix any spelling or grammar mistakes. Keep the meaning.\n\n{passage}",
    "Turn this into a bulleted list of the main points:\n\n{passage}",
    "Rewrite the following in a more casual, friendly tone:\n\n{passage}",
    "{passage}\n\nCan you make the text above shorter, about half the length?",
    "Extract the five most important keywords from this text:\n\n{passage}",
    "Give this text a short, catchy title:\n\n{passage}",
)
LANGS = ("French", "Spanish", "German", "Italian", "Portuguese", "Dutch")


def long_easy(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    rows = m.jsonl("mtb101", "data/subjective/mtbench101.jsonl")
    sampled = {r["id"] for r in mtb101_sample(m)}
    passages = [
        (r["id"], k, h["bot"].strip())
        for r in rows
        if r["id"] not in sampled and r["task"] not in ("MR", "GR")
        for k, h in enumerate(r["history"])
        if 400 <= len(h["bot"]) <= 2500
    ]
    for n, (rid, k, passage) in enumerate(_sample(passages, 90, "long-easy", lambda x: (x[0], x[1]))):
        template = LONG_EASY_TEMPLATES[n % len(LONG_EASY_TEMPLATES)]
        text = template.format(passage=passage, lang=LANGS[n % len(LANGS)])
        out.append(_item(f"longeasy-mtb101-{rid}-{k}", text, "local", "long_easy", "mt-bench-101-answers"))
    gsm = m.jsonl("gsm8k", "grade_school_math/data/train.jsonl")
    used = {it["id"] for it in gsm8k(m)}
    pool = [(i, r) for i, r in enumerate(gsm) if f"gsm8k-train-{i}" not in used and r["answer"].count("<<") >= 3]
    for n, (i, r) in enumerate(_sample(pool, 40, "long-easy-gsm", lambda x: x[0])):
        template = LONG_EASY_TEMPLATES[(n * 3) % 5]  # translate, summarise, proofread, bullets, tone
        text = template.format(passage=r["question"], lang=LANGS[n % len(LANGS)])
        out.append(_item(f"longeasy-gsm8k-{i}", text, "local", "long_easy", "gsm8k-train-rewrite"))
    return out


def knights_knaves(m: Mirrors) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq  # training-time only (requirements-train.txt)

    out = []
    for people in (3, 4, 5, 6, 7):
        table = pq.read_table(io.BytesIO(m.show("kk", f"data/kk/instruct/{people}ppl/train.parquet"))).to_pylist()
        for i, r in _sample(list(enumerate(table)), 9, f"kk-{people}", lambda x: x[0]):
            out.append(_item(f"kk-{people}ppl-train-{i}", r["quiz"], "cloud", "logic_puzzle", "knights-knaves"))
    return out


# BIG-Bench Hard: the multi-step deduction tasks are logic puzzles (cloud); the one-step judgement tasks
# (plausibility, counting, adjective order, sarcasm, recommendations) are local.
BBH_CLOUD = {
    "logical_deduction_five_objects": 10,
    "logical_deduction_seven_objects": 8,
    "tracking_shuffled_objects_five_objects": 10,
    "tracking_shuffled_objects_seven_objects": 8,
    "web_of_lies": 10,
    "temporal_sequences": 8,
    "navigate": 8,
    "dyck_languages": 6,
    "multistep_arithmetic_two": 6,
    "formal_fallacies": 6,
}
BBH_LOCAL = {"sports_understanding": 8, "object_counting": 8, "hyperbaton": 6, "snarks": 6, "movie_recommendation": 6}


def bbh(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    for tasks, label, category in ((BBH_CLOUD, "cloud", "bbh_reasoning"), (BBH_LOCAL, "local", "bbh_judgement")):
        for task, n in tasks.items():
            examples = json.loads(m.show("bbh", f"bbh/{task}.json"))["examples"]
            for i, ex in _sample(list(enumerate(examples)), n, f"bbh-{task}", lambda x: x[0]):
                out.append(_item(f"bbh-{task}-{i}", ex["input"], label, category, f"bbh-{task}"))
    return out


# Vicuna bench (80 questions), labelled one by one against the policy. Question 77 is left out: its wording is
# that of a reserved evaluation question.
VICUNA_CLOUD = {12, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 62}
VICUNA_SKIP = {77}


def vicuna(m: Mirrors) -> list[dict[str, Any]]:
    out = []
    for r in m.jsonl("fastchat", "fastchat/llm_judge/data/vicuna_bench/question.jsonl"):
        qid = r["question_id"]
        if qid in VICUNA_SKIP:
            continue
        label = "cloud" if qid in VICUNA_CLOUD else "local"
        out.append(_item(f"vicuna-{qid}", r["turns"][0], label, f"vicuna_{r['category']}", "vicuna-bench"))
    return out


# ----------------------------------------------------------------------------------------------------------------
# MT-Bench-101 conversations
# ----------------------------------------------------------------------------------------------------------------

MTB101_PER_TASK = {"CR": 8, "FR": 8, "AR": 7, "TS": 6, "CM": 6, "SI": 5, "SC": 3, "SA": 3, "MR": 10, "GR": 9}
MTB101_CATEGORY = {
    "CR": "fu_reformat",
    "FR": "fu_reformat",
    "AR": "fu_builds_on_easy",
    "TS": "fu_new_easy",
    "CM": "fu_builds_on_easy",
    "SI": "fu_builds_on_easy",
    "SC": "fu_builds_on_easy",
    "SA": "fu_builds_on_easy",
    "MR": "fu_math",
    "GR": "fu_reasoning",
}


def mtb101_sample(m: Mirrors) -> list[dict[str, Any]]:
    rows = m.jsonl("mtb101", "data/subjective/mtbench101.jsonl")
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    picked = []
    for task, n in MTB101_PER_TASK.items():
        picked.extend(_sample(by_task[task], n, f"mtb101-{task}", lambda r: r["id"]))
    return picked


def mtb101(m: Mirrors) -> list[dict[str, Any]]:
    # Per-turn labels decided by hand for the math (MR) and general-reasoning (GR) dialogues, by id; every other
    # sampled dialogue is everyday advice or small rewrites, local on every turn (reviewed).
    labels = json.loads((HERE / "handwritten" / "mtb101_labels.json").read_text())
    out = []
    for r in mtb101_sample(m):
        task = r["task"]
        turn_labels = labels.get(str(r["id"])) or ["local"] * len(r["history"])
        assert len(turn_labels) == len(r["history"]), r["id"]
        turns = []
        for k, (h, label) in enumerate(zip(r["history"], turn_labels, strict=True)):
            category = MTB101_CATEGORY[task] if k else "first_" + ("hard" if label == "cloud" else "easy")
            turns.append({"text": h["user"].strip(), "label": label, "category": category})
        out.append({"id": f"mtb101-{r['id']}", "turns": turns, "source": f"mt-bench-101-{task}"})
    return out


# ----------------------------------------------------------------------------------------------------------------
# Hand-written items
# ----------------------------------------------------------------------------------------------------------------


def handwritten_single() -> list[dict[str, Any]]:  # noqa: C901
    out = []
    for path in sorted((HERE / "handwritten").glob("*.txt")):
        if path.name == "conversations.txt":
            continue
        category = label = None
        buf: list[str] = []
        count: dict[str, int] = defaultdict(int)

        def flush() -> None:  # noqa: B023 (called inside the loop only)
            text = "\n".join(buf).strip()
            buf.clear()
            if text:
                assert category and label, path
                count[category] += 1
                out.append(_item(f"hw-{category}-{count[category]}", text, label, category, "handwritten"))

        for line in path.read_text().splitlines():
            if line.startswith("#!"):
                continue
            if line.startswith("@ "):
                flush()
                _, category, label = line.split()
            elif line.strip() == "%%":
                flush()
            else:
                buf.append(line)
        flush()
    return out


def handwritten_conversations() -> list[dict[str, Any]]:
    convs: list[dict[str, Any]] = []
    turn: dict[str, Any] | None = None
    buf: list[str] = []

    def flush() -> None:
        if turn is not None:
            turn["text"] = "\n".join(buf).strip()
            convs[-1]["turns"].append(turn)
        buf.clear()

    for line in (HERE / "handwritten" / "conversations.txt").read_text().splitlines():
        if line.startswith("#!"):
            continue
        if line.startswith("@@ "):
            flush()
            turn = None
            convs.append({"id": line[3:].strip(), "turns": [], "source": "handwritten"})
        elif line.startswith("## "):
            flush()
            _, label, category = line.split()
            assert label in ("local", "cloud"), line
            turn = {"text": "", "label": label, "category": category}
        else:
            buf.append(line)
    flush()
    return convs


# ----------------------------------------------------------------------------------------------------------------
# Split and write
# ----------------------------------------------------------------------------------------------------------------


def split(items: list[dict[str, Any]], stratum) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Seeded, stratified: within each stratum, the first round(25%) by sha256 order go to dev."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[stratum(item)].append(item)
    train, dev = [], []
    for name in sorted(groups):
        ordered = sorted(groups[name], key=lambda x: _key("split", x["id"]))
        n_dev = round(len(ordered) * DEV_FRACTION)
        dev.extend(ordered[:n_dev])
        train.extend(ordered[n_dev:])
    return sorted(train, key=lambda x: x["id"]), sorted(dev, key=lambda x: x["id"])


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--dump-mtb101", action="store_true", help="print the sampled MT-Bench-101 dialogues")
    args = parser.parse_args()
    m = Mirrors(args.mirrors)
    from tools.router_corpus.public_tech import (
        act_as_prompts,
        build_your_own_x,
        ds_interviews,
        karan_projects,
        system_design,
    )

    if args.dump_mtb101:
        for r in mtb101_sample(m):
            print(f"## {r['id']} {r['task']}")
            for h in r["history"]:
                print("   U:", h["user"].replace("\n", " ")[:400])
        return

    single = (
        gsm8k(m)
        + mawps_svamp(m)
        + college_and_aqua(m)
        + math_competition(m)
        + clinc(m)
        + efficientqa(m)
        + mbpp(m)
        + knights_knaves(m)
        + bbh(m)
        + vicuna(m)
        + long_easy(m)
        + build_your_own_x(m)
        + karan_projects(m)
        + ds_interviews(m)
        + system_design(m)
        + act_as_prompts(m)
        + handwritten_single()
    )
    seen: set[str] = set()
    unique = []
    for item in single:
        norm = " ".join(item["text"].lower().split())
        if norm in seen or item["id"] in seen:
            continue
        seen.update((norm, item["id"]))
        unique.append(item)
    convs = handwritten_conversations() + mtb101(m)
    s_train, s_dev = split(unique, lambda x: x["category"])
    c_train, c_dev = split(convs, lambda x: x["source"])
    _write(HERE / "single_train.jsonl", s_train)
    _write(HERE / "single_dev.jsonl", s_dev)
    _write(HERE / "conversations_train.jsonl", c_train)
    _write(HERE / "conversations_dev.jsonl", c_dev)
    print(f"single: {len(s_train)} train, {len(s_dev)} dev; conversations: {len(c_train)} train, {len(c_dev)} dev")


if __name__ == "__main__":
    main()
