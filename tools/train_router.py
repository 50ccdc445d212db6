"""Train the learned-v1 router and write ``shared/domain/routing/learned-v1.json``.

    python -m tools.train_router [--quick]

Needs ``requirements-train.txt`` (numpy, scikit-learn); the runtime (``shared/domain/routing/learned.py``) does
not. Reads only the train split of ``tools/router_corpus/``. Every choice (feature filter, regularisation,
category weighting, threshold, conversation decay) is made by stratified 5-fold cross-validation on train;
the dev split is scored once, at the end, and the scores are written into the weights file for the record
(and checked by ``tests/test_router_learned.py``). Deterministic: fixed seeds, sorted inputs, and the solver
(liblinear) has no randomness for a fixed ``random_state``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from shared.domain.routing import learned

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"
OUT = learned.WEIGHTS_PATH
SEED = 20240613
FOLDS = 5

# Follow-up turns whose label depends on the earlier turns are not single-turn examples: "Can you parallelize
# it?" is hard only because of what came before.
CONTEXT_DEPENDENT = {"fu_builds_on_hard", "fu_builds_on_easy"}


def load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def single_examples(single: list[dict[str, Any]], convs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(single)
    for conv in convs:
        for k, turn in enumerate(conv["turns"]):
            if turn["category"] in CONTEXT_DEPENDENT:
                continue
            category = turn["category"] if k else f"conv_{turn['category']}"
            rows.append({"id": f"{conv['id']}#{k}", "text": turn["text"], "label": turn["label"], "category": category})
    return rows


def sample_weights(rows: list[dict[str, Any]], power: float) -> np.ndarray:
    """Weight so that a category of n items weighs n**power in total (power 1: plain; 0: every category equal)."""
    counts = Counter(r["category"] for r in rows)
    w = np.array([counts[r["category"]] ** (power - 1.0) for r in rows], dtype=float)
    return w * (len(rows) / w.sum())


def fit(x, y, w, penalty: str, c: float) -> LogisticRegression:
    model = LogisticRegression(
        l1_ratio=1.0 if penalty == "l1" else 0.0, C=c, solver="liblinear", max_iter=2000, random_state=SEED, tol=1e-5
    )
    model.fit(_int32(x), y, sample_weight=w)
    return model


def _int32(x):
    """liblinear takes 32-bit sparse indices only."""
    x = x.tocsr()
    x.indices = x.indices.astype(np.int32)
    x.indptr = x.indptr.astype(np.int32)
    return x


def vectorize(feature_sets: list[frozenset[str]], min_df: int) -> tuple[DictVectorizer, Any]:
    df = Counter(f for fs in feature_sets for f in fs)
    keep = [{f: 1 for f in fs if df[f] >= min_df} for fs in feature_sets]
    vec = DictVectorizer(sort=True)
    return vec, vec.fit_transform(keep)


def oof_probabilities(rows, feature_sets, y, cfg) -> np.ndarray:
    strata = [f"{r['category']}|{r['label']}" for r in rows]
    # categories too small to stratify fall back to their label
    counts = Counter(strata)
    strata = [s if counts[s] >= FOLDS else s.split("|")[1] for s in strata]
    skf = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    oof = np.zeros(len(rows))
    for tr, te in skf.split(np.zeros(len(rows)), strata):
        vec, x_tr = vectorize([feature_sets[i] for i in tr], cfg["min_df"])
        x_te = vec.transform([{f: 1 for f in feature_sets[i]} for i in te])
        w = sample_weights([rows[i] for i in tr], cfg["cat_power"])
        model = fit(x_tr, y[tr], w, cfg["penalty"], cfg["C"])
        oof[te] = model.predict_proba(_int32(x_te))[:, 1]
    return oof


def best_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The threshold (a midpoint between sorted scores) with the highest accuracy; ties: closest to 0.5."""
    grid = np.round(np.arange(0.05, 0.951, 0.005), 3)
    accs = [(float(((p >= t) == y).mean()), -abs(t - 0.5), t) for t in grid]
    acc, _, t = max(accs)
    return float(t), acc


def macro_by_category(p: np.ndarray, y: np.ndarray, rows, t: float) -> float:
    per: dict[str, list[bool]] = defaultdict(list)
    for pi, yi, r in zip(p, y, rows, strict=True):
        per[r["category"]].append(bool((pi >= t) == yi))
    return float(np.mean([np.mean(v) for v in per.values()]))


# ----------------------------------------------------------------------------------------------------------------
# Conversations: the decay is tuned on the train conversations with the model's own scores
# ----------------------------------------------------------------------------------------------------------------


def run_conversation(turns: list[str], threshold: float, decay: float) -> list[learned.Routed]:
    history: list[learned.PriorTurn] = []
    out = []
    for text in turns:
        routed = _route_with_decay(text, history, threshold, decay)
        out.append(routed)
        history.append(learned.PriorTurn(complexity=routed.complexity, backend="cloud" if routed.cloud else "local"))
    return out


def _route_with_decay(text, history, threshold, decay) -> learned.Routed:
    model = learned._model()
    saved = model.decay
    object.__setattr__(model, "decay", decay)
    try:
        return learned.route(text, history, threshold=threshold)
    finally:
        object.__setattr__(model, "decay", saved)


def conversation_scores(convs, threshold: float, decay: float | None = None) -> dict[str, Any]:
    decay = learned._model().decay if decay is None else decay
    first = follow = first_ok = follow_ok = 0
    for conv in convs:
        routed = run_conversation([t["text"] for t in conv["turns"]], threshold, decay)
        for k, (turn, r) in enumerate(zip(conv["turns"], routed, strict=True)):
            ok = r.cloud == (turn["label"] == "cloud")
            if k == 0:
                first, first_ok = first + 1, first_ok + ok
            else:
                follow, follow_ok = follow + 1, follow_ok + ok
    return {"first_turns": first, "follow_ups": follow, "follow_up_agreement": round(follow_ok / max(1, follow), 4)}


# ----------------------------------------------------------------------------------------------------------------


def write_weights(doc: dict[str, Any]) -> None:
    doc["sha256"] = hashlib.sha256(learned.canonical_payload(doc)).hexdigest()
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    OUT.write_text(text + "\n", encoding="utf-8")
    learned._MODEL = None  # reload on next use


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid (for a smoke run)")
    args = parser.parse_args()
    started = time.perf_counter()

    single = load("single_train.jsonl")
    convs = load("conversations_train.jsonl")
    rows = single_examples(single, convs)
    rows.sort(key=lambda r: r["id"])
    y = np.array([r["label"] == "cloud" for r in rows], dtype=int)
    feature_sets = [learned.features(r["text"]) for r in rows]
    print(f"{len(rows)} single-turn training examples, cloud share {y.mean():.3f}")

    grid = []
    for penalty, cs in (("l1", (0.5, 1.0, 2.0, 4.0)), ("l2", (0.1, 0.3, 1.0))):
        for c in cs:
            for min_df in (2, 3):
                for cat_power in (1.0, 0.5):
                    grid.append({"penalty": penalty, "C": c, "min_df": min_df, "cat_power": cat_power})
    if args.quick:
        grid = grid[:2]
    results = []
    for cfg in grid:
        oof = oof_probabilities(rows, feature_sets, y, cfg)
        t, acc = best_threshold(oof, y)
        macro = macro_by_category(oof, y, rows, t)
        objective = (acc + macro) / 2
        results.append((objective, acc, macro, t, cfg, oof))
        print(f"  cv {cfg}: acc {acc:.4f} category-macro {macro:.4f} at t={t:.3f}")
    results.sort(key=lambda r: (-r[0], json.dumps(r[4], sort_keys=True)))
    objective, cv_acc, cv_macro, threshold, cfg, oof = results[0]
    print(f"chosen {cfg}: cv acc {cv_acc:.4f}, macro {cv_macro:.4f}, threshold {threshold:.3f}")

    vec, x = vectorize(feature_sets, cfg["min_df"])
    model = fit(x, y, sample_weights(rows, cfg["cat_power"]), cfg["penalty"], cfg["C"])
    names = vec.get_feature_names_out()
    weights = {str(n): round(float(w), 4) for n, w in zip(names, model.coef_[0], strict=True) if abs(w) >= 5e-4}
    quantiles = [round(float(q), 5) for q in np.quantile(oof, np.linspace(0, 1, 101))]

    doc: dict[str, Any] = {
        "version": learned.MODEL_VERSION,
        "features": {
            "scan_chars": learned.SCAN_CHARS,
            "kinds": "w: word/number/symbol tokens (numbers folded to <n>), b: token bigrams, first:/last: token, "
            "len/words/nums/lines/qmarks buckets, s: structure (fence, code lines, list items, LaTeX, math symbols)",
            "min_df": cfg["min_df"],
        },
        "model": {
            "type": "logistic_regression",
            "penalty": cfg["penalty"],
            "C": cfg["C"],
            "category_weight_power": cfg["cat_power"],
            "solver": "liblinear",
            "seed": SEED,
        },
        "bias": round(float(model.intercept_[0]), 4),
        "weights": dict(sorted(weights.items())),
        "threshold": threshold,
        "conversation": {"decay": 0.9, "lookback": learned._LOOKBACK},
        "calibration": {
            "what": f"out-of-fold probabilities of the {len(rows)} training examples ({FOLDS}-fold CV, same "
            "config): each scored by a model that did not see it; percentiles 0..100",
            "quantiles": quantiles,
        },
        "trained_on": {
            "examples": len(rows),
            "cloud_share": round(float(y.mean()), 4),
            "corpus": "tools/router_corpus/single_train.jsonl + conversations_train.jsonl",
        },
        "cv": {"accuracy": round(cv_acc, 4), "category_macro": round(cv_macro, 4), "folds": FOLDS},
    }
    write_weights(doc)

    # conversation decay: chosen on the train conversations
    best = None
    for decay in (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0):
        s = conversation_scores(convs, threshold, decay)
        print(f"  decay {decay}: train follow-up agreement {s['follow_up_agreement']}")
        key = (s["follow_up_agreement"], -abs(decay - 0.9))
        if best is None or key > best[0]:
            best = (key, decay)
    doc["conversation"]["decay"] = best[1]
    doc["conversation"]["train_follow_up_agreement"] = best[0][0]
    write_weights(doc)

    # dev, once, for the record
    dev = load("single_dev.jsonl")
    dev_convs = load("conversations_dev.jsonl")
    doc["dev_scores"] = dev_scores(dev, dev_convs)
    write_weights(doc)
    size = OUT.stat().st_size
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(weights)} weights, {size / 1024:.0f} KiB, "
        f"threshold {threshold:.3f}, decay {best[1]}"
    )
    print(f"dev: {json.dumps(doc['dev_scores'])}")
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def dev_scores(dev: list[dict[str, Any]], dev_convs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the test recomputes: single-turn agreement and cloud shares on dev, follow-up agreement."""
    threshold = learned._model().threshold
    decisions = [learned.route(r["text"]).cloud for r in dev]
    labels = [r["label"] == "cloud" for r in dev]
    agree = sum(d == lab for d, lab in zip(decisions, labels, strict=True)) / len(dev)
    conv = conversation_scores(dev_convs, threshold)
    return {
        "single_turn_items": len(dev),
        "single_turn_agreement": round(agree, 4),
        "cloud_share": round(sum(decisions) / len(dev), 4),
        "label_cloud_share": round(sum(labels) / len(dev), 4),
        "follow_ups": conv["follow_ups"],
        "follow_up_agreement": conv["follow_up_agreement"],
    }


if __name__ == "__main__":
    main()
