"""Train the learned-v1 router and write ``shared/domain/routing/learned-v1.json`` (and the rules-v1 calibration).

    python -m tools.train_router [--quick]

Needs ``requirements-train.txt`` (numpy, scikit-learn); the runtime (``shared/domain/routing/learned*.py``) does
not. Reads only the train split of ``tools/router_corpus/``. Every choice (feature filter, regularisation,
category weighting, threshold, conversation decay) is made by stratified 5-fold cross-validation on train;
the dev split is scored once, at the end, and the scores are written into the weights file for the record
(and checked by ``tests/test_router_learned.py``). Deterministic: fixed seeds, sorted inputs, and the solver
(liblinear) has no randomness for a fixed ``random_state``.

The vocabulary (``learned-v1.toml``) is copied into the weights file, so the runtime reads one file. Both router
versions are calibrated on the same sample: the out-of-fold learned-v1 probabilities of the training examples
and ``rules.score()`` of the same examples give the percentiles ``ROUTER_TARGET_CLOUD_SHARE`` reads (the
``[calibration]`` block of ``rules-v1.toml`` is rewritten here).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from shared.domain.routing import learned, learned_model, rules
from shared.domain.routing.learned_features import HEAD_CHARS, TAIL_CHARS, FeatureSpec, encode_word_hashes

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tools" / "router_corpus"
OUT = learned_model.WEIGHTS_PATH
RULES_TOML = ROOT / "shared" / "domain" / "routing" / "rules-v1.toml"
SEED = 20240613
FOLDS = 5
DECAYS = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0)
DISCOUNTS = (1.0, 0.75, 0.5, 0.25)
MACRO_MIN_ITEMS = 4 * FOLDS  # categories this small are too noisy to weigh in the category macro

# Follow-up turns whose label depends on the earlier turns are not single-turn examples: "Can you parallelize
# it?" is hard only because of what came before.
CONTEXT_DEPENDENT = {"fu_builds_on_hard", "fu_builds_on_easy"}


def load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


COMMON_WORDS = 25_000  # the most frequent English words (wordfreq, small list) are "common"; others "rare"


def common_words() -> dict[str, Any]:
    import wordfreq  # training-time only (requirements-train.txt)

    # only words of 4+ letters are ever looked up (learned_features.Patterns.lower_word)
    top = wordfreq.top_n_list("en", COMMON_WORDS, wordlist="small")
    words = {w for w in top if len(w) >= 4 and re.fullmatch(r"[a-z']+", w)}
    return {**encode_word_hashes(words), "words": len(words), "source": f"wordfreq top {COMMON_WORDS} English (small)"}


def vocabulary() -> dict[str, Any]:
    with learned_model.VOCABULARY_PATH.open("rb") as fh:
        vocab = tomllib.load(fh)
    vocab["common_words"] = common_words()
    return vocab


def single_examples(single: list[dict[str, Any]], convs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = list(single)
    for conv in convs:
        for k, turn in enumerate(conv["turns"]):
            if turn["category"] in CONTEXT_DEPENDENT:
                continue
            category = turn["category"] if k else f"conv_{turn['category']}"
            rows.append({"id": f"{conv['id']}#{k}", "text": turn["text"], "label": turn["label"], "category": category})
    return sorted(rows, key=lambda r: r["id"])


def sample_weights(rows: list[dict[str, Any]], power: float) -> np.ndarray:
    """Weight so that a category of n items weighs n**power in total (power 1: plain; 0: every category equal)."""
    counts = Counter(r["category"] for r in rows)
    w = np.array([counts[r["category"]] ** (power - 1.0) for r in rows], dtype=float)
    return w * (len(rows) / w.sum())


def _int32(x):
    """liblinear takes 32-bit sparse indices only."""
    x = x.tocsr()
    x.indices = x.indices.astype(np.int32)
    x.indptr = x.indptr.astype(np.int32)
    return x


def fit(x, y, w, penalty: str, c: float) -> LogisticRegression:
    model = LogisticRegression(
        l1_ratio=1.0 if penalty == "l1" else 0.0, C=c, solver="liblinear", max_iter=2000, random_state=SEED, tol=1e-5
    )
    model.fit(_int32(x), y, sample_weight=w)
    return model


def vectorize(feature_sets: list[frozenset[str]], min_df: int) -> tuple[DictVectorizer, Any]:
    df = Counter(f for fs in feature_sets for f in fs)
    keep = [{f: 1 for f in fs if df[f] >= min_df} for fs in feature_sets]
    vec = DictVectorizer(sort=True)
    return vec, vec.fit_transform(keep)


def folds(rows: list[dict[str, Any]]):
    strata = [f"{r['category']}|{r['label']}" for r in rows]
    counts = Counter(strata)  # categories too small to stratify fall back to their label
    strata = [s if counts[s] >= FOLDS else s.split("|")[1] for s in strata]
    return list(StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED).split(np.zeros(len(rows)), strata))


def oof_probabilities(rows, feature_sets, y, cfg, splits) -> np.ndarray:
    oof = np.zeros(len(rows))
    for tr, te in splits:
        vec, x_tr = vectorize([feature_sets[i] for i in tr], cfg["min_df"])
        x_te = vec.transform([{f: 1 for f in feature_sets[i]} for i in te])
        model = fit(x_tr, y[tr], sample_weights([rows[i] for i in tr], cfg["cat_power"]), cfg["penalty"], cfg["C"])
        oof[te] = model.predict_proba(_int32(x_te))[:, 1]
    return oof


def best_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The threshold on a 0.005 grid with the highest accuracy; ties: closest to 0.5."""
    grid = np.round(np.arange(0.05, 0.951, 0.005), 3)
    acc, _, t = max((float(((p >= t) == y).mean()), -abs(t - 0.5), t) for t in grid)
    return float(t), acc


def macro_by_category(p: np.ndarray, y: np.ndarray, rows, t: float) -> float:
    """Mean agreement over the categories of at least MACRO_MIN_ITEMS examples."""
    per: dict[str, list[bool]] = defaultdict(list)
    for pi, yi, r in zip(p, y, rows, strict=True):
        per[r["category"]].append(bool((pi >= t) == yi))
    return float(np.mean([np.mean(v) for v in per.values() if len(v) >= MACRO_MIN_ITEMS]))


def grid(quick: bool) -> list[dict[str, Any]]:
    out = []
    for penalty, cs in (("l1", (0.5, 1.0, 2.0, 4.0)), ("l2", (0.1, 0.3, 1.0))):
        for c in cs:
            for min_df in (2, 3):
                for cat_power in (1.0, 0.5):
                    out.append({"penalty": penalty, "C": c, "min_df": min_df, "cat_power": cat_power})
    return out[:2] if quick else out


def select(rows, feature_sets, y, quick: bool) -> tuple[dict[str, Any], float, float, float, np.ndarray]:
    splits = folds(rows)
    results = []
    for cfg in grid(quick):
        oof = oof_probabilities(rows, feature_sets, y, cfg, splits)
        t, acc = best_threshold(oof, y)
        macro = macro_by_category(oof, y, rows, t)
        results.append(((acc + macro) / 2, acc, macro, t, cfg, oof))
        print(f"  cv {cfg}: acc {acc:.4f} category-macro {macro:.4f} at t={t:.3f}")
    results.sort(key=lambda r: (-r[0], json.dumps(r[4], sort_keys=True)))
    _, cv_acc, cv_macro, threshold, cfg, oof = results[0]
    print(f"chosen {cfg}: cv acc {cv_acc:.4f}, macro {cv_macro:.4f}, threshold {threshold:.3f}")
    return cfg, cv_acc, cv_macro, threshold, oof


def percentiles(values: list[float] | np.ndarray, digits: int) -> list[float]:
    return [round(float(q), digits) for q in np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, 101))]


# ----------------------------------------------------------------------------------------------------------------
# Conversations: the decay is tuned on the train conversations with the model's own scores
# ----------------------------------------------------------------------------------------------------------------


def follow_up_agreement(
    convs, threshold: float, decay: float | None = None, discount: float | None = None
) -> tuple[int, float]:
    follow = ok = 0
    for conv in convs:
        routed = learned.route_conversation(
            [t["text"] for t in conv["turns"]], threshold, decay=decay, discount=discount
        )
        for turn, r in list(zip(conv["turns"], routed, strict=True))[1:]:
            follow += 1
            ok += r.cloud == (turn["label"] == "cloud")
    return follow, round(ok / max(1, follow), 4)


def choose_conversation(convs, threshold: float) -> tuple[float, float, float]:
    """Decay and rewrite discount with the best follow-up agreement on the train conversations (ties: the
    values closest to 0.9 and 1, i.e. the least intervention)."""
    best: tuple[tuple[float, float, float], float, float] | None = None
    for decay in DECAYS:
        for discount in DISCOUNTS:
            _, agreement = follow_up_agreement(convs, threshold, decay, discount)
            print(f"  decay {decay}, rewrite discount {discount}: train follow-up agreement {agreement}")
            key = (agreement, -abs(decay - 0.9), discount)
            if best is None or key > best[0]:
                best = (key, decay, discount)
    assert best is not None
    return best[1], best[2], best[0][0]


def dev_scores(dev: list[dict[str, Any]], dev_convs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the test recomputes: single-turn agreement and cloud shares on dev, follow-up agreement."""
    decisions = [learned.route(r["text"]).cloud for r in dev]
    labels = [r["label"] == "cloud" for r in dev]
    follow, agreement = follow_up_agreement(dev_convs, learned.default_threshold())
    return {
        "single_turn_items": len(dev),
        "single_turn_agreement": round(sum(d == y for d, y in zip(decisions, labels, strict=True)) / len(dev), 4),
        "cloud_share": round(sum(decisions) / len(dev), 4),
        "label_cloud_share": round(sum(labels) / len(dev), 4),
        "follow_ups": follow,
        "follow_up_agreement": agreement,
    }


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------


def write_weights(doc: dict[str, Any]) -> None:
    doc["sha256"] = learned_model.checksum(doc)
    # One key per line (sha256 last, so the checksum pair reads "sha256": "<hex>"), compact values.
    keys = sorted(k for k in doc if k != "sha256") + ["sha256"]
    compact = {"sort_keys": True, "ensure_ascii": False, "separators": (",", ":"), "allow_nan": False}
    body = ",\n".join(f"{json.dumps(k)}: {json.dumps(doc[k], **compact)}" for k in keys)
    OUT.write_text("{\n" + body + "\n}\n", encoding="utf-8")
    learned.reload()


def write_rules_calibration(quantiles: list[float], sample: int, what: str) -> None:
    text = RULES_TOML.read_text(encoding="utf-8")
    rows = [", ".join(str(q) for q in quantiles[i : i + 10]) + "," for i in range(0, len(quantiles), 10)]
    block = (
        "[calibration]\n"
        f"# Percentiles (0%, 1%, ..., 100%) of the rules-v1 complexity over {what}\n"
        "# (written by python -m tools.train_router, the same sample learned-v1 is calibrated on):\n"
        "# ROUTER_TARGET_CLOUD_SHARE reads its threshold from these.\n"
        f"sample = {sample}\n"
        "quantiles = [\n" + "\n".join(f"    {row}" for row in rows) + "\n]\n"
    )
    new, n = re.subn(r"(?ms)^\[calibration\]\n.*?^\]\n", lambda _: block, text)
    assert n == 1, "rules-v1.toml has no [calibration] block ending in ]"
    RULES_TOML.write_text(new, encoding="utf-8")


def document(cfg, bias, weights, threshold, vocab, oof, rows, y, cv) -> dict[str, Any]:
    return {
        "version": learned.MODEL_VERSION,
        "features": {
            "window": f"first {HEAD_CHARS} and last {TAIL_CHARS} characters (all of a shorter message)",
            "kinds": "w: word/number/symbol tokens (numbers folded to <n>), b: token bigrams, first:/last: token, "
            "v: the request's verb, lex: word-family counts, len/nums/lines buckets, s: structure (fence, code "
            "lines, list items, LaTeX, math symbols, acronyms, identifiers, build and how-to requests)",
            "min_df": cfg["min_df"],
        },
        "vocabulary": vocab,
        "model": {
            "type": "logistic_regression",
            "penalty": cfg["penalty"],
            "C": cfg["C"],
            "category_weight_power": cfg["cat_power"],
            "solver": "liblinear",
            "seed": SEED,
        },
        "bias": bias,
        "weights": dict(sorted(weights.items())),
        "threshold": threshold,
        "conversation": {"decay": 0.9, "lookback": 3},
        "calibration": {
            "what": f"out-of-fold probabilities of the {len(rows)} training examples ({FOLDS}-fold CV, same "
            "config): each scored by a model that did not see it; percentiles 0..100",
            "quantiles": percentiles(oof, 5),
        },
        "trained_on": {
            "examples": len(rows),
            "cloud_share": round(float(y.mean()), 4),
            "corpus": "tools/router_corpus/single_train.jsonl + conversations_train.jsonl",
        },
        "cv": {"accuracy": round(cv[0], 4), "category_macro": round(cv[1], 4), "folds": FOLDS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid (for a smoke run)")
    args = parser.parse_args()
    started = time.perf_counter()

    vocab = vocabulary()
    spec = FeatureSpec.from_vocabulary(vocab)
    convs = load("conversations_train.jsonl")
    rows = single_examples(load("single_train.jsonl"), convs)
    y = np.array([r["label"] == "cloud" for r in rows], dtype=int)
    feature_sets = [spec.features(r["text"]) for r in rows]
    print(f"{len(rows)} single-turn training examples, cloud share {y.mean():.3f}")

    cfg, cv_acc, cv_macro, threshold, oof = select(rows, feature_sets, y, args.quick)
    vec, x = vectorize(feature_sets, cfg["min_df"])
    model = fit(x, y, sample_weights(rows, cfg["cat_power"]), cfg["penalty"], cfg["C"])
    names = vec.get_feature_names_out()
    weights = {str(n): round(float(w), 4) for n, w in zip(names, model.coef_[0], strict=True) if abs(w) >= 5e-4}
    bias = round(float(model.intercept_[0]), 4)
    doc = document(cfg, bias, weights, threshold, vocab, oof, rows, y, (cv_acc, cv_macro))
    write_weights(doc)

    decay, discount, train_agreement = choose_conversation(convs, threshold)
    doc["conversation"].update(decay=decay, rewrite_discount=discount, train_follow_up_agreement=train_agreement)
    write_weights(doc)
    write_rules_calibration(
        percentiles([rules.score(r["text"])[0] for r in rows], 3), len(rows), "the learned-v1 training examples"
    )

    doc["dev_scores"] = dev_scores(load("single_dev.jsonl"), load("conversations_dev.jsonl"))  # once, for the record
    write_weights(doc)
    print(
        f"wrote {OUT.relative_to(ROOT)}: {len(weights)} weights, {OUT.stat().st_size / 1024:.0f} KiB, "
        f"threshold {threshold:.3f}, decay {decay}"
    )
    print(f"dev: {json.dumps(doc['dev_scores'])}")
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
