"""Routing quality on the dev split of the router corpus: learned-v1 vs rules-v1 vs "cloud if > 200 chars".

    python -m bench.routing_eval [--write] [--no-timing]

``routing_report()`` returns a dict (pure apart from reading the corpus files and timing); ``main`` prints it as
markdown. What it computes, on ``tools/router_corpus/single_dev.jsonl`` and ``conversations_dev.jsonl``:

- single-turn agreement with the labels, cloud share vs the labels' share, confusion matrix, per category;
- follow-up agreement: every turn after the first of each dev conversation, each router deciding the whole
  conversation with its own earlier decisions as history (as in production);
- decision time p50/p99 of one ``decide()`` call per router version (``time.perf_counter``, in process, the
  garbage collector left on as in the service), over the dev prompts plus synthetic pastes of 1,000 to 6,000
  characters, and over the pastes alone;
- what importing the learned router adds to a cold start: ``python -X importtime`` of the routing package in
  fresh interpreters that first import what the app imports anyway (json, re, dataclasses, ...), the
  cumulative time of ``shared.domain.routing.learned`` and its modules, plus the first load of the weights
  file (``perf_counter``; it happens on the first routed turn, not at import);
- the agreement / cloud-share curve of learned-v1 over thresholds.

``--write`` also writes the report to ``bench/results/routing.json``; ``make bench`` runs it as the ``routing``
scenario (section 9 of ``SUMMARY.md``). The dev split is never used for fitting
(``tools/train_router.py`` reads train only). Timing is reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.env import quantile
from shared.domain.routing import PriorTurn as RulesPriorTurn
from shared.domain.routing import RouterConfig, decide, learned

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"
RESULT = ROOT / "bench" / "results" / "routing.json"
CONFIGURED = ("local", "cloud")
LENGTH_CUTOFF = 200
LONG_SIZES = (1_000, 2_000, 3_000, 4_000, 5_000, 6_000)


def _load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# A conversation router: the turns' texts in, one cloud/local decision per turn out.
ConversationRouter = Callable[[Sequence[str]], list[bool]]


def _learned_conversation(texts: Sequence[str]) -> list[bool]:
    return [routed.cloud for routed in learned.route_conversation(texts)]


def _rules_conversation(texts: Sequence[str]) -> list[bool]:
    config = RouterConfig(version="rules-v1")
    history: list[Any] = []
    out = []
    for text in texts:
        decision = decide(text, history, CONFIGURED, config)
        out.append(decision.backend != "local")
        history.append(RulesPriorTurn(backend=decision.backend, complexity=decision.complexity, user_chars=len(text)))
    return out


def _length_conversation(texts: Sequence[str]) -> list[bool]:
    return [len(t) > LENGTH_CUTOFF for t in texts]


ROUTERS: dict[str, ConversationRouter] = {
    "learned-v1": _learned_conversation,
    "rules-v1": _rules_conversation,
    f"length>{LENGTH_CUTOFF}": _length_conversation,
}


def _long_prompts(texts: Sequence[str]) -> list[str]:
    """Synthetic pastes: dev prompts concatenated up to each size (the hard case for a scanner)."""
    pool = "\n\n".join(texts)
    out = []
    for i, size in enumerate(LONG_SIZES):
        start = (i * 7919) % max(1, len(pool) - size)
        out.append(pool[start : start + size])
    return out


def _timings(prompts: Sequence[str], fn: Callable[[str], object], repeat: int = 3) -> dict[str, float]:
    """Every decision timed on its own. ``p50_us``/``p99_us``/``max_us`` over all the samples; ``best_p99_us``
    over each prompt's fastest of ``repeat`` runs, so that a time slice taken by another process on a shared
    machine does not count as the router's (the raw p99 is kept beside it)."""
    for p in prompts:  # warm-up
        fn(p)
    per_prompt: list[list[float]] = [[] for _ in prompts]
    for _ in range(repeat):
        for i, p in enumerate(prompts):
            started = time.perf_counter()
            fn(p)
            per_prompt[i].append((time.perf_counter() - started) * 1e6)
    samples = [t for ts in per_prompt for t in ts]
    best = [min(ts) for ts in per_prompt]
    return {
        "n": len(samples),
        "p50_us": round(quantile(samples, 0.5), 1),
        "p99_us": round(quantile(samples, 0.99), 1),
        "max_us": round(max(samples), 1),
        "best_p50_us": round(quantile(best, 0.5), 1),
        "best_p99_us": round(quantile(best, 0.99), 1),
    }


# What the app has imported before the router anyway: not counted as the router's.
_APP_IMPORTS = "json, re, dataclasses, math, pathlib, typing, array, binascii, tomllib, hashlib, collections.abc"
_IMPORT_PROBE = f"""
import {_APP_IMPORTS}
import time
started = time.perf_counter()
import shared.domain.routing
imported = time.perf_counter()
from shared.domain.routing import learned
learned._model()
loaded = time.perf_counter()
print(json.dumps({{"package_ms": (imported - started) * 1000, "load_ms": (loaded - imported) * 1000}}))
"""
_NAIVE_PROBE = (
    "import time; t = time.perf_counter(); from shared.domain.routing import learned; learned._model(); "
    "print((time.perf_counter() - t) * 1000)"
)


def _import_ms(runs: int = 7) -> dict[str, Any]:
    """What the learned router adds to a cold start, in fresh interpreters (medians over ``runs``).

    ``learned_import_ms``: the cumulative ``-X importtime`` of ``shared.domain.routing.learned`` (its modules
    included) after the app's own imports, from the bytecode cache; ``first_load_ms``: reading the weights file
    on the first routed turn;
    ``fresh_import_and_load_ms``: a bare interpreter importing the routing package and loading the weights.
    """
    # Write the bytecode caches first (PYTHONDONTWRITEBYTECODE may be set): a deployed app imports from them.
    warm_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import shared.domain.routing"], cwd=ROOT, env=warm_env, check=True)
    learned_us, loads, package, naive = [], [], [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", _IMPORT_PROBE],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        for line in out.stderr.splitlines():
            parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
            if len(parts) == 3 and parts[2] == "shared.domain.routing.learned":
                learned_us.append(int(parts[1]))
        probe = json.loads(out.stdout)
        loads.append(probe["load_ms"])
        package.append(probe["package_ms"])
        naive_out = subprocess.run([sys.executable, "-c", _NAIVE_PROBE], cwd=ROOT, capture_output=True, text=True)
        naive.append(float(naive_out.stdout.strip()))
    learned_ms = statistics.median(learned_us) / 1000 if learned_us else float("nan")
    first_load = statistics.median(loads)
    return {
        "runs": runs,
        "learned_import_ms": round(learned_ms, 1),
        "first_load_ms": round(first_load, 1),
        "learned_total_ms": round(learned_ms + first_load, 1),
        "routing_package_import_ms": round(statistics.median(package), 1),
        "fresh_import_and_load_ms": round(statistics.median(naive), 1),
        "app_imports_excluded": _APP_IMPORTS,
    }


def _decision_timings(texts: list[str]) -> dict[str, Any]:
    """p50/p99 of one ``decide()`` per version, in process, on dev prompts and pastes of up to 6,000 characters."""
    pastes = _long_prompts(texts) * 20
    prompts = texts + pastes
    prior = [RulesPriorTurn(backend="cloud", complexity=0.8, user_chars=300)]
    out: dict[str, Any] = {
        "prompts": len(prompts),
        "max_chars": max(len(p) for p in prompts),
        "pastes": f"{len(pastes)} pastes of {', '.join(str(n) for n in LONG_SIZES)} characters",
    }
    for version in ("learned-v1", "rules-v1"):
        config = RouterConfig(version=version)
        out[version] = _timings(prompts, lambda p, c=config: decide(p, (), CONFIGURED, c))
        out[f"{version}_pastes_only"] = _timings(pastes, lambda p, c=config: decide(p, (), CONFIGURED, c))
        out[f"{version}_after_a_turn"] = _timings(prompts, lambda p, c=config: decide(p, prior, CONFIGURED, c))
    return out


def routing_report(timing: bool = True) -> dict[str, Any]:
    single = _load("single_dev.jsonl")
    convs = _load("conversations_dev.jsonl")
    labels = [r["label"] == "cloud" for r in single]
    report: dict[str, Any] = {
        "dev_single_turn_items": len(single),
        "dev_conversations": len(convs),
        "dev_follow_ups": sum(len(c["turns"]) - 1 for c in convs),
        "label_cloud_share": round(sum(labels) / len(labels), 4),
        "routers": {},
    }
    for name, router in ROUTERS.items():
        decisions = [router([r["text"]])[0] for r in single]
        confusion = {"cloud_as_cloud": 0, "cloud_as_local": 0, "local_as_cloud": 0, "local_as_local": 0}
        per_cat: dict[str, list[bool]] = defaultdict(list)
        for r, d, lab in zip(single, decisions, labels, strict=True):
            confusion[f"{'cloud' if lab else 'local'}_as_{'cloud' if d else 'local'}"] += 1
            per_cat[r["category"]].append(d == lab)
        follow_ok = follow_n = follow_cloud = 0
        fu_by_cat: dict[str, list[bool]] = defaultdict(list)
        for conv in convs:
            decided = router([t["text"] for t in conv["turns"]])
            for k, (turn, d) in enumerate(zip(conv["turns"], decided, strict=True)):
                if k == 0:
                    continue
                ok = d == (turn["label"] == "cloud")
                follow_n += 1
                follow_ok += ok
                follow_cloud += d
                fu_by_cat[turn["category"]].append(ok)
        report["routers"][name] = {
            "single_turn_agreement": round(
                sum(d == lab for d, lab in zip(decisions, labels, strict=True)) / len(single), 4
            ),
            "cloud_share": round(sum(decisions) / len(decisions), 4),
            "confusion": confusion,
            "per_category": {c: [round(sum(v) / len(v), 3), len(v)] for c, v in sorted(per_cat.items())},
            "follow_up_agreement": round(follow_ok / max(1, follow_n), 4),
            "follow_up_cloud_share": round(follow_cloud / max(1, follow_n), 4),
            "follow_up_per_category": {c: [round(sum(v) / len(v), 3), len(v)] for c, v in sorted(fu_by_cat.items())},
        }
    # threshold curve for learned-v1 (single turns)
    probs = [learned.probability(r["text"]) for r in single]
    curve = []
    for i in range(1, 20):
        t = i / 20
        d = [p >= t for p in probs]
        curve.append(
            {
                "threshold": t,
                "agreement": round(sum(a == b for a, b in zip(d, labels, strict=True)) / len(d), 4),
                "cloud_share": round(sum(d) / len(d), 4),
            }
        )
    report["learned_threshold"] = learned._model().threshold
    report["learned_curve"] = curve
    # (not the sha256: a hex string in a results file would trip the secrets scan)
    report["learned_model"] = {k: v for k, v in learned.model_info().items() if k not in ("trained_on", "sha256")}
    if timing:
        texts = [r["text"] for r in single] + [t["text"] for c in convs for t in c["turns"]]
        report["timing"] = _decision_timings(texts)
        report["timing"]["learned_import"] = _import_ms()
    return report


def to_markdown(report: dict[str, Any]) -> str:
    names = list(report["routers"])
    lines = [
        f"Dev split: {report['dev_single_turn_items']} single turns, {report['dev_conversations']} conversations "
        f"({report['dev_follow_ups']} follow-ups); label cloud share {report['label_cloud_share']:.3f}.",
        "",
        "| router | single-turn agreement | cloud share | follow-up agreement | follow-up cloud share |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in names:
        r = report["routers"][n]
        lines.append(
            f"| {n} | {r['single_turn_agreement']:.3f} | {r['cloud_share']:.3f} | {r['follow_up_agreement']:.3f} "
            f"| {r['follow_up_cloud_share']:.3f} |"
        )
    lines += _category_table(report, names, "per_category", "Per category (single turns; agreement, n):", "category")
    lines += _category_table(report, names, "follow_up_per_category", "Follow-ups by kind (agreement, n):", "kind")
    lines += [
        "",
        "Confusion (rows: label; columns: decision):",
        "",
        "| router | cloud→cloud | cloud→local | local→cloud | local→local |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n in names:
        c = report["routers"][n]["confusion"]
        lines.append(
            f"| {n} | {c['cloud_as_cloud']} | {c['cloud_as_local']} | {c['local_as_cloud']} | {c['local_as_local']} |"
        )
    lines += [
        "",
        f"learned-v1 threshold curve (shipped threshold {report['learned_threshold']:.3f}):",
        "",
        "| threshold | agreement | cloud share |",
        "| --- | --- | --- |",
    ]
    for point in report["learned_curve"]:
        lines.append(f"| {point['threshold']:.2f} | {point['agreement']:.3f} | {point['cloud_share']:.3f} |")
    if "timing" in report:
        lines += _timing_markdown(report["timing"])
    return "\n".join(lines)


def _category_table(report: dict[str, Any], names: list[str], key: str, title: str, first: str) -> list[str]:
    """Agreement per category for every router, with the category's size."""
    lines = ["", title, "", f"| {first} | n | " + " | ".join(names) + " |"]
    lines.append("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    for category in sorted(report["routers"][names[0]][key]):
        n = report["routers"][names[0]][key][category][1]
        row = " | ".join(f"{report['routers'][name][key][category][0]:.2f}" for name in names)
        lines.append(f"| {category} | {n} | {row} |")
    return lines


def _timing_markdown(t: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Decision time of one decide() call over {t['prompts']} prompts up to {t['max_chars']} characters "
        f"(dev prompts plus {t['pastes']}):",
        "",
        "| router | prompts | p50 µs | p99 µs | max µs | best-of-3 p50 µs | best-of-3 p99 µs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for version in ("learned-v1", "rules-v1"):
        for suffix, what in (
            ("", "all, no history"),
            ("_pastes_only", "pastes only"),
            ("_after_a_turn", "all, after a turn"),
        ):
            row = t[version + suffix]
            lines.append(
                f"| {version} | {what} | {row['p50_us']} | {row['p99_us']} | {row['max_us']} | {row['best_p50_us']} "
                f"| {row['best_p99_us']} |"
            )
    imp = t["learned_import"]
    lines += [
        "",
        f"Cold start added by learned-v1 (medians over {imp['runs']} fresh interpreters): import "
        f"{imp['learned_import_ms']} ms (-X importtime, after the app's own imports: {imp['app_imports_excluded']}) "
        f"+ first load of the weights {imp['first_load_ms']} ms = {imp['learned_total_ms']} ms. For context: the "
        f"whole routing package imports in {imp['routing_package_import_ms']} ms; a bare interpreter imports it and "
        f"loads the weights in {imp['fresh_import_and_load_ms']} ms.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"also write {RESULT.relative_to(ROOT)}")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing (quality only)")
    args = parser.parse_args()
    report = routing_report(timing=not args.no_timing)
    print(to_markdown(report))
    if args.write:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
