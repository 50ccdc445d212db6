"""Routing quality on the dev split of the router corpus: learned-v1 vs rules-v1 vs "cloud if > 200 chars".

    python -m bench.routing_eval

``routing_report()`` returns a dict (pure apart from reading the corpus files and timing); ``main`` prints it as
markdown. What it computes, on ``tools/router_corpus/single_dev.jsonl`` and ``conversations_dev.jsonl``:

- single-turn agreement with the labels, cloud share vs the labels' share, confusion matrix, per category;
- follow-up agreement: every turn after the first of each dev conversation, each router deciding the whole
  conversation with its own earlier decisions as history (as in production);
- decision time p50/p99 of one decision (``time.perf_counter``), over the dev prompts plus synthetic pastes
  of up to 6,000 characters, and the cold import time of the learned router including its weights file;
- the agreement / cloud-share curve of learned-v1 over thresholds.

The dev split is never used for fitting (``tools/train_router.py`` reads train only). Timing is reported,
not asserted.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.domain.routing import learned

try:
    from shared.routing import PriorTurn as RulesPriorTurn
    from shared.routing import RouterConfig, decide
except ImportError:  # the module is being moved into shared/domain/routing
    from shared.domain.routing import PriorTurn as RulesPriorTurn  # type: ignore[no-redef]
    from shared.domain.routing import RouterConfig, decide  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"
CONFIGURED = ("local", "cloud")
LENGTH_CUTOFF = 200
LONG_SIZES = (1_000, 2_000, 3_000, 4_000, 5_000, 6_000)


def _load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# A conversation router: the turns' texts in, one cloud/local decision per turn out.
ConversationRouter = Callable[[Sequence[str]], list[bool]]


def _learned_conversation(texts: Sequence[str], threshold: float | None = None) -> list[bool]:
    history: list[learned.PriorTurn] = []
    out = []
    for text in texts:
        routed = learned.route(text, history, threshold=threshold)
        out.append(routed.cloud)
        history.append(
            learned.PriorTurn(
                complexity=routed.complexity, backend="cloud" if routed.cloud else "local", user_chars=len(text)
            )
        )
    return out


def _rules_conversation(texts: Sequence[str]) -> list[bool]:
    config = RouterConfig()
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


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def _long_prompts(texts: Sequence[str]) -> list[str]:
    """Synthetic pastes: dev prompts concatenated up to each size (the hard case for a scanner)."""
    pool = "\n\n".join(texts)
    out = []
    for i, size in enumerate(LONG_SIZES):
        start = (i * 7919) % max(1, len(pool) - size)
        out.append(pool[start : start + size])
    return out


def _timings(prompts: Sequence[str], fn: Callable[[str], object], repeat: int = 3) -> dict[str, float]:
    for p in prompts:  # warm-up
        fn(p)
    samples = []
    for _ in range(repeat):
        for p in prompts:
            started = time.perf_counter()
            fn(p)
            samples.append((time.perf_counter() - started) * 1e6)
    return {
        "n": len(samples),
        "p50_us": round(_percentile(samples, 0.5), 1),
        "p99_us": round(_percentile(samples, 0.99), 1),
        "max_us": round(max(samples), 1),
    }


def _import_ms(runs: int = 5) -> dict[str, float]:
    """Cold import of the learned router plus loading its weights, in fresh interpreters (median of runs)."""
    code = (
        "import time; t=time.perf_counter(); "
        "from shared.domain.routing import learned; learned._model(); "
        "print((time.perf_counter()-t)*1000)"
    )
    values = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        values.append(float(out.stdout.strip()))
    return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1), "runs": runs}


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
    report["learned_model"] = {k: v for k, v in learned.model_info().items() if k != "trained_on"}
    if timing:
        texts = [r["text"] for r in single] + [t["text"] for c in convs for t in c["turns"]]
        prompts = texts + _long_prompts(texts) * 20
        report["timing"] = {
            "prompts": len(prompts),
            "max_chars": max(len(p) for p in prompts),
            "learned-v1": _timings(prompts, learned.route),
            "rules-v1": _timings(prompts, lambda p: decide(p, (), CONFIGURED, RouterConfig())),
            "learned-v1_long_only": _timings(_long_prompts(texts) * 20, learned.route),
            "learned_import_and_load": _import_ms(),
        }
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
    lines += [
        "",
        "Per category (single turns; agreement, n):",
        "",
        "| category | n | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    cats = sorted(report["routers"][names[0]]["per_category"])
    for c in cats:
        n = report["routers"][names[0]]["per_category"][c][1]
        row = " | ".join(f"{report['routers'][m]['per_category'][c][0]:.2f}" for m in names)
        lines.append(f"| {c} | {n} | {row} |")
    lines += [
        "",
        "Follow-ups by kind (agreement, n):",
        "",
        "| kind | n | " + " | ".join(names) + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for c in sorted(report["routers"][names[0]]["follow_up_per_category"]):
        n = report["routers"][names[0]]["follow_up_per_category"][c][1]
        row = " | ".join(f"{report['routers'][m]['follow_up_per_category'][c][0]:.2f}" for m in names)
        lines.append(f"| {c} | {n} | {row} |")
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
        t = report["timing"]
        lines += [
            "",
            f"Decision time over {t['prompts']} prompts up to {t['max_chars']} characters:",
            "",
            "| router | p50 µs | p99 µs | max µs |",
            "| --- | --- | --- | --- |",
        ]
        for n in ("learned-v1", "rules-v1", "learned-v1_long_only"):
            lines.append(f"| {n} | {t[n]['p50_us']} | {t[n]['p99_us']} | {t[n]['max_us']} |")
        imp = t["learned_import_and_load"]
        lines += [
            "",
            f"Cold import of learned.py plus its weights file: median {imp['median_ms']} ms, "
            f"max {imp['max_ms']} ms over {imp['runs']} fresh interpreters.",
        ]
    return "\n".join(lines)


def main() -> None:
    print(to_markdown(routing_report()))


if __name__ == "__main__":
    main()
