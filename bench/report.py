"""SUMMARY.md and the PNG plots, from the scenario results of one run (plus earlier files for skipped ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

from bench import concurrency, routing_eval, storage, turns
from bench.coldstart import markdown as coldstart_markdown
from bench.context import markdown as context_markdown
from bench.env import ratio

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first

OURS = "#1f77b4"
THEIRS = "#d62728"


def _ms(stats: dict[str, Any] | None, key: str = "p50", digits: int = 1) -> str:
    if not stats or stats.get("n", 0) == 0 or stats.get(key) is None:
        return "—"
    return f"{stats[key]:.{digits}f}"


def _iqr(stats: dict[str, Any] | None, digits: int = 1) -> str:
    if not stats or stats.get("n", 0) == 0:
        return "—"
    return f"{stats['p50']:.{digits}f} (IQR {stats['q1']:.{digits}f}–{stats['q3']:.{digits}f}, n={stats['n']})"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _kib(value: float) -> str:
    return f"{value / 1024:.1f} KiB"


def _load_previous(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Scenarios not run this time keep their last results (their own stamp is shown next to them)."""
    merged = dict(results)
    for path in sorted(out.glob("*.json")):
        name = path.stem
        if name in merged or name == "emulator_facts":
            continue
        try:
            merged[name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return merged


def _stamp_note(result: dict[str, Any], stamp: dict[str, Any]) -> str:
    notes = []
    other = result.get("provenance")
    if other and (other.get("date") != stamp.get("date")):
        notes.append(f"from another run: {other.get('date')}, commit {str(other.get('commit'))[:12]}")
    load = result.get("load_average")
    if load:
        notes.append(
            f"took {result.get('elapsed_s', '?')} s; load average (1/5/15 min) {load.get('before')} before, "
            f"{load.get('after')} after, on {stamp['machine']['cores']} cores"
        )
    return f"\n_({'; '.join(notes)})_\n" if notes else ""


# ---- plots --------------------------------------------------------------------------------------------------


def _plot_turns(out: Path, result: dict[str, Any]) -> str:
    data = result["by_length"]
    lengths = [int(key) for key in data]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    for who, color, label in (
        ("ours", OURS, "ours (Blob snapshot + Cosmos metadata)"),
        ("theirs", THEIRS, "CosmosHistoryProvider"),
    ):
        stats = [data[str(n)][f"{who}_overhead_ms"] for n in lengths]
        p50 = [s["p50"] for s in stats]
        low = [s["p50"] - s["q1"] for s in stats]
        high = [s["q3"] - s["p50"] for s in stats]
        left.errorbar(lengths, p50, yerr=[low, high], marker="o", capsize=4, color=color, label=f"{label} p50 (IQR)")
        left.plot(
            lengths, [s["p95"] for s in stats], linestyle="--", marker="^", color=color, alpha=0.6, label=f"{label} p95"
        )
    left.set_xscale("log")
    left.set_xticks(lengths, [str(n) for n in lengths])
    left.set_xlabel("turn number (conversation length)")
    left.set_ylabel("ms per turn, model time excluded")
    left.set_title("Turn overhead")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    phases = (*turns.PHASES, "other")
    bottom = [0.0] * len(lengths)
    positions = list(range(len(lengths)))
    for phase in phases:
        values = [max(0.0, float(data[str(n)]["ours_phases_p50_ms"].get(phase, 0.0))) for n in lengths]
        right.bar(positions, values, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_xticks(positions, [str(n) for n in lengths])
    right.set_xlabel("turn number (conversation length)")
    right.set_ylabel("ms (median of each phase)")
    right.set_title("Ours: where the overhead goes")
    right.legend(fontsize=8)
    right.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    name = "turn_overhead.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _plot_resume(out: Path, result: dict[str, Any]) -> str:
    data = result["by_length"]
    lengths = [int(key) for key in data]
    figure, axis = plt.subplots(figsize=(6.5, 4.4))
    for who, color, label in (
        ("ours", OURS, "ours: SnapshotStore.load + AgentSession.from_dict"),
        ("theirs", THEIRS, "theirs: CosmosHistoryProvider.get_messages"),
    ):
        stats = [data[str(n)][f"{who}_ms"] for n in lengths]
        axis.errorbar(
            lengths,
            [s["p50"] for s in stats],
            yerr=[[s["p50"] - s["q1"] for s in stats], [s["q3"] - s["p50"] for s in stats]],
            marker="o",
            capsize=4,
            color=color,
            label=label,
        )
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xticks(lengths, [str(n) for n in lengths])
    axis.set_xlabel("turns in the conversation")
    axis.set_ylabel("ms to load, ready to continue (p50, IQR)")
    axis.set_title("Resume")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    name = "resume.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _plot_storage(out: Path, result: dict[str, Any]) -> str:
    labels = ["raw text", "ours: Blob", "ours: Cosmos", "theirs: Cosmos"]
    values = [
        result["raw_text_bytes"]["p50"],
        result["ours_blob_bytes"]["p50"],
        result["ours_cosmos_bytes"]["p50"],
        result["theirs_cosmos_bytes"]["p50"],
    ]
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    bars = axis.bar(labels, [v / 1024 for v in values], color=["#7f7f7f", OURS, "#6baed6", THEIRS])
    for bar, value in zip(bars, values, strict=True):
        axis.annotate(
            f"{value / 1024:.0f} KiB",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    axis.set_ylabel("KiB per 100 exchanges")
    axis.set_title("Stored bytes, 100 exchanges (user ~300 + assistant ~1,200 chars)")
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    name = "storage.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _plot_throughput(out: Path, result: dict[str, Any]) -> str:
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    for index, run in enumerate(result["runs"]):
        axis.hist(run["latencies"], bins=40, alpha=0.5, label=f"run {index + 1}: {run['turns_per_s']:.0f} turns/s")
    axis.axvline(result["model_latency_s"] * 1000, color="black", linestyle="--", label="model latency (200 ms)")
    axis.set_xlabel("turn latency at the client (ms)")
    axis.set_ylabel("turns")
    axis.set_title(f"{result['sessions']} concurrent sessions × {result['turns_per_session']} turns, local HTTP server")
    axis.legend(fontsize=8)
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    name = "throughput.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


def _plot_coldstart(out: Path, result: dict[str, Any]) -> str:
    labels = ["python -c pass", "mandatory imports", "import function_app\n+ first POST /chat"]
    stats = [result["bare_interpreter_wall_ms"], result["deps_wall_ms"], result["app_wall_ms"]]
    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    axis.bar(
        labels,
        [s["p50"] for s in stats],
        yerr=[[s["p50"] - s["q1"] for s in stats], [s["q3"] - s["p50"] for s in stats]],
        capsize=5,
        color=["#7f7f7f", "#9467bd", OURS],
    )
    axis.set_ylabel("ms, process spawn to result (p50, IQR)")
    axis.set_title("Cold start of a fresh Python process")
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    name = "coldstart.png"
    figure.savefig(out / name, dpi=110)
    plt.close(figure)
    return name


# ---- markdown -----------------------------------------------------------------------------------------------


def _compaction_note(turns_result: dict[str, Any], length: str) -> str:
    row = turns_result["by_length"][length]
    stats = row["ours_compaction_ms"]
    if not stats or stats.get("n", 0) == 0:
        return ""
    interval = turns_result.get("compaction_schedule", {}).get("interval_around", {}).get(length)
    note = (
        f" A compaction at this length (the occasional save that rewrites the snapshot) takes p50 {stats['p50']:.1f} ms"
    )
    if interval:
        note += (
            f"; near turn {length} one save in {interval} is a compaction, so it adds about "
            f"{stats['p50'] / interval:.1f} ms per turn amortized"
        )
    return note + "."


def _order_counts(items: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """(transcripts, out of order, exchanges reversed, exchanges) over order reports."""
    return (
        len(items),
        sum(0 if item["in_order"] else 1 for item in items),
        sum(item["exchanges_reversed"] for item in items),
        sum(item["messages"] // 2 for item in items),
    )


def _order_line(label: str, counts: tuple[int, int, int, int]) -> str:
    transcripts, bad, reversed_, exchanges = counts
    share = reversed_ / exchanges * 100 if exchanges else 0.0
    return (
        f"{label}: {transcripts} transcripts, **{bad} out of order**, {reversed_} of {exchanges} exchanges "
        f"({share:.1f}%) with the reply before the user's message"
    )


def _order_findings(results: dict[str, Any]) -> list[str]:
    sources: dict[str, dict[str, list[dict[str, Any]]]] = {}
    if "storage" in results:
        sources["conversations of 100 real turns (storage run, every message saved by a real turn)"] = {
            "ours": [run["order_ours"] for run in results["storage"]["runs"]],
            "theirs": [run["order_theirs"] for run in results["storage"]["runs"]],
        }
    if "turns" in results:
        sources["after the measured turns (seeded history + real turns)"] = results["turns"]["order"]
    if "resume" in results:
        sources["every resume load (seeded history, each conversation loaded repeatedly)"] = results["resume"]["order"]
    lines: list[str] = []
    ours_total = [0, 0]
    for who, title in (("ours", "**Ours**"), ("theirs", "**Theirs (CosmosHistoryProvider)**")):
        lines.append(f"- {title}:")
        for label, orders in sources.items():
            counts = _order_counts(orders[who])
            if who == "ours":
                ours_total[0] += counts[0]
                ours_total[1] += counts[1]
            lines.append(f"  - {_order_line(label, counts)}")
    lines.append(
        f"- Ours never reordered ({ours_total[1]} of {ours_total[0]} transcripts out of order): a transcript's order "
        "is the turn number of each stored entry, never a timestamp, and a load refuses a gap in the turn numbers "
        "(`SnapshotCorrupt`)."
    )
    if "storage" in results:
        tied = sum(run["order_theirs"]["tied"] for run in results["storage"]["runs"])
        documents = sum(run["order_theirs"]["documents"] for run in results["storage"]["runs"])
        lines.append(
            "- Why theirs reorders: `save_messages` gives the messages of one save `sort_key = time.time_ns() + "
            "index` (about 1.8e18). Cosmos numbers are IEEE doubles, 256 apart at that size, so the user message "
            f"and the reply of one save nearly always get the same stored `sort_key` (after the real saves above, "
            f"{tied} of {documents} documents shared theirs with another). `ORDER BY c.sort_key` then leaves the "
            "pair's order to the engine's tie-break: the emulator breaks ties by `_rid` compared as a string, "
            "which does not follow insertion order. Azure Cosmos DB does not promise an order for ties either (not "
            "checked against Azure here), so the same can happen there. Saves of different turns are milliseconds "
            "apart and never tie."
        )
    return lines


def write(out: Path, results: dict[str, Any], stamp: dict[str, Any], facts: dict[str, Any]) -> None:
    results = _load_previous(out, results)
    plots: list[str] = []
    md: list[str] = ["# Benchmarks", ""]
    machine = stamp["machine"]
    md += [
        f"- **Commit**: `{stamp['commit']}`{' (dirty working tree)' if stamp['dirty'] else ''}",
        f"- **Command**: `{stamp['command']}` (`make bench` runs `python -m bench`)"
        + (" — quick mode, fewer repetitions" if stamp.get("quick") else ""),
        f"- **Date**: {stamp['date']}, whole run {stamp.get('elapsed_s', '?')} s; load average at the start "
        f"{stamp.get('load_average_at_start')} on {machine['cores']} cores (anything else running on the machine "
        "shows up in the spreads; each section gives its own)",
        f"- **Machine**: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"Python {machine['python']}, {machine['os']}",
        "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in stamp["versions"].items() if v),
        "",
        "Everything runs on this one machine: Azurite, the Cosmos DB emulator (`tools/cosmos_emulator.js`, in "
        "memory), fake OpenAI-compatible models as separate processes, and the code measured. Absolute numbers "
        "are those of the emulators on localhost, not of Azure; ratios are measured in the same run, "
        "interleaved. Each figure is a median with its spread (IQR, or min–max across repeated runs). Nothing "
        "here is a test and nothing asserts on time.",
        "",
        "## Cosmos emulator facts behind the figures (checked at the start of this run)",
        "",
        f"- Transactional batch with the partition key only in the header (as the Python SDK sends it): "
        f"{'works' if facts['batch_read_with_header_partition_key_ok'] else 'FAILS'} — the launcher falls back "
        "to the header, so `CosmosHistoryProvider.save_messages` works (it ran every turn below).",
        "- `query_items(partition_key=...)`: "
        + (
            "only that partition's items come back (the launcher filters by the key)."
            if facts["partition_key_on_query_respected"]
            else f"the key is IGNORED ({facts['query_with_partition_key_B_returned']} items instead of 5)."
        ),
        f"- Paging: a {facts['items_in_those_pages']}-item query without `max_item_count` came back in "
        f"{facts['pages_for_250_items_without_max_item_count']} page(s). Azure caps a page (item count, 4 MB) and "
        "the SDK follows continuation tokens, so a long history costs `get_messages` more round trips there "
        "than here: theirs is, if anything, flattered by the emulator.",
        f"- Numbers: a `sort_key` of {facts['sort_key_written']} came back as {facts['sort_key_read_back']} "
        f"({'exact' if facts['sort_key_exact'] else 'rounded to a double'}); in Python, `float(t) == float(t + 1)` "
        f"for {facts['doubles']['tied_fraction'] * 100:.1f}% of `time.time_ns()` values (doubles are "
        f"{facts['doubles']['double_spacing_at_example']:.0f} ns apart there).",
        "- The emulator's queries scan the container in memory; each conversation length of theirs has its own "
        "container so that cost does not grow with the other lengths' data.",
        "",
    ]

    # ---- headline table
    table = ["| Figure | Ours | Theirs (CosmosHistoryProvider) | Ours / theirs |", "|---|---|---|---|"]
    if "turns" in results:
        for length, row in results["turns"]["by_length"].items():
            table.append(
                f"| Turn overhead at turn {length}, ms p50 / p95 | {_ms(row['ours_overhead_ms'])} / "
                f"{_ms(row['ours_overhead_ms'], 'p95')} | {_ms(row['theirs_overhead_ms'])} / "
                f"{_ms(row['theirs_overhead_ms'], 'p95')} | {_ratio(row['ratio_p50'])} / {_ratio(row['ratio_p95'])} |"
            )
        for length, row in results["turns"]["by_length"].items():
            cold = row.get("ours_cold_overhead_ms")
            if cold:
                table.append(
                    f"| Turn overhead at turn {length} on a worker with no copy (cold), ms p50 | {_ms(cold)} | "
                    f"{_ms(row['theirs_overhead_ms'])} | {_ratio(row.get('cold_ratio_p50'))} |"
                )
        for length, row in results["turns"]["by_length"].items():
            for kind, seen in row.get("ours_round_trips", {}).items():
                usual = seen[0]
                table.append(
                    f"| Storage round trips of a {kind} turn at turn {length}: requests / sequential steps | "
                    f"{usual['requests']} / {usual['sequential_steps']} ({usual['turns']} of "
                    f"{sum(item['turns'] for item in seen)} turns) | | |"
                )
        for length, row in results["turns"]["by_length"].items():
            table.append(
                f"| Whole turn with an instant model at turn {length}, ms p50 | {_ms(row['ours_total_ms'])} | "
                f"{_ms(row['theirs_total_ms'])} | {_ratio(row['total_ratio_p50'])} |"
            )
        for length, row in results["turns"]["by_length"].items():
            if "ours_model_ms" in row:
                table.append(
                    f"| Model call with an instant model at turn {length} (client-side work), ms p50 | "
                    f"{_ms(row['ours_model_ms'])} | {_ms(row['theirs_model_ms'])} | "
                    f"{_ratio(ratio(row['ours_model_ms']['p50'], row['theirs_model_ms']['p50']))} |"
                )
    if "resume" in results:
        for length, row in results["resume"]["by_length"].items():
            table.append(
                f"| Resume a {length}-turn conversation (cold), ms p50 / p95 | {_ms(row['ours_ms'])} / "
                f"{_ms(row['ours_ms'], 'p95')} | {_ms(row['theirs_ms'])} / {_ms(row['theirs_ms'], 'p95')} | "
                f"{_ratio(row['ratio_p50'])} / {_ratio(row['ratio_p95'])} |"
            )
        for length, row in results["resume"]["by_length"].items():
            trips = row.get("ours_round_trips", {})
            if trips:
                table.append(
                    f"| Resume a {length}-turn conversation: warm, ms p50; cold with the whole history as an "
                    f"AgentSession, ms p50; requests / steps cold, warm | {_ms(row['ours_warm_ms'])}; "
                    f"{_ms(row.get('ours_whole_history_ms'))}; {trips['cold']['requests']} / "
                    f"{trips['cold']['sequential_steps']}, {trips['warm']['requests']} / "
                    f"{trips['warm']['sequential_steps']} | | |"
                )
    if "storage" in results:
        s = results["storage"]
        ours_total = s["ours_blob_bytes"]["p50"] + s["ours_cosmos_bytes"]["p50"]
        table.append(
            f"| Stored bytes per 100 exchanges (raw text {_kib(s['raw_text_bytes']['p50'])}) | "
            f"{_kib(ours_total)} (Blob {_kib(s['ours_blob_bytes']['p50'])} + Cosmos "
            f"{_kib(s['ours_cosmos_bytes']['p50'])}) | {_kib(s['theirs_cosmos_bytes']['p50'])} | "
            f"{_ratio(s['ratio_ours_total_to_theirs'])} |"
        )
        table.append(
            f"| Stored bytes / raw text bytes | {s['ratios_to_raw']['ours_total']:.2f} (Blob "
            f"{s['ratios_to_raw']['ours_blob']:.2f}, Cosmos {s['ratios_to_raw']['ours_cosmos']:.2f}) | "
            f"{s['ratios_to_raw']['theirs']:.2f} | |"
        )
    table_other = ["| Figure | Value | Spread | Note |", "|---|---|---|---|"]
    if "coldstart" in results:
        c = results["coldstart"]
        inside = c["app_import_and_first_request_ms"]
        table_other.append(
            f"| Cold start: import function_app + first POST /chat, ms (in process) | {_ms(inside)} | "
            f"IQR {_ms(inside, 'q1')}–{_ms(inside, 'q3')} | "
            f"{_ratio(c['ratio_app_to_deps_inside_p50'])} the mandatory imports alone ({_ms(c['deps_import_ms'])} ms) |"
        )
        table_other.append(
            f"| Cold start, wall from spawn, ms | {_ms(c['app_wall_ms'])} | IQR {_ms(c['app_wall_ms'], 'q1')}–"
            f"{_ms(c['app_wall_ms'], 'q3')} | imports alone {_ms(c['deps_wall_ms'])}, bare interpreter "
            f"{_ms(c['bare_interpreter_wall_ms'])}; ratio {_ratio(c['ratio_app_to_deps_wall_p50'])} |"
        )
        if "import_profile" in c:
            p = c["import_profile"]
            table_other.append(
                f"| Cold start: modules `import function_app` loads | {p['modules']} | (deterministic) | "
                f"{p['modules_beyond_mandatory']} beyond the mandatory imports' {p['mandatory_modules']} |"
            )
    if "throughput" in results:
        t = results["throughput"]
        table_other.append(
            f"| Throughput, {t['sessions']} sessions × {t['turns_per_session']} turns, turns/s | "
            f"{_ms(t['turns_per_s'])} | min–max {_ms(t['turns_per_s'], 'min')}–{_ms(t['turns_per_s'], 'max')} "
            f"(n={t['turns_per_s']['n']} runs) | {t['fraction_of_ideal_p50'] * 100:.0f}% of the ideal "
            f"{t['ideal_turns_per_s']:.0f} turns/s |"
        )
        cpu = t.get("server_cpu_ms_per_turn") or {}
        if cpu.get("n"):
            table_other.append(
                f"| Throughput: server CPU per turn, ms | {_ms(cpu)} | min–max {_ms(cpu, 'min')}–{_ms(cpu, 'max')} | "
                f"one worker process tops out near {1000 / cpu['p50']:.0f} turns/s on one free core of this CPU |"
            )
        table_other.append(
            f"| Throughput: turn latency p50 / p95, ms | {_ms(t['latency_p50_ms'])} / {_ms(t['latency_p95_ms'])} | "
            f"p95 min–max {_ms(t['latency_p95_ms'], 'min')}–{_ms(t['latency_p95_ms'], 'max')} | model alone: 200 |"
        )
        table_other.append(
            f"| Every acknowledged turn in Blob and Cosmos exactly once | "
            f"{'yes' if t['all_acknowledged_turns_durable'] else 'NO'} | "
            + ", ".join(
                f"{r['check']['acknowledged']} acked / {r['check']['in_blob_exactly_once']} Blob / "
                f"{r['check']['in_cosmos_exactly_once']} Cosmos"
                for r in t["runs"]
            )
            + " | |"
        )
    if "router" in results:
        r = results["router"]
        table_other.append(
            f"| Router decisions per second | {_ms(r['decisions_per_s'], digits=0)} | min–max "
            f"{_ms(r['decisions_per_s'], 'min', 0)}–{_ms(r['decisions_per_s'], 'max', 0)} ({r['passes']} passes) | "
            f"{r['prompts']} prompts ({r['distinct_prompts']} distinct), 2 histories |"
        )
        table_other.append(
            f"| Router decision time p50 / p99, µs | {_ms(r['decision_us'])} / {_ms(r['decision_us'], 'p99')} | "
            f"max {_ms(r['decision_us'], 'max')} | prompts of {_ms(r['prompt_chars'], 'min', 0)}–"
            f"{_ms(r['prompt_chars'], 'max', 0)} chars |"
        )
    md += ["## Figures", "", *table, "", *table_other, ""]

    # ---- the closing note
    if "turns" in results and "storage" in results:
        rows = results["turns"]["by_length"]
        s = results["storage"]
        md += [
            "## For the issue's closing note",
            "",
            f"Measured by `{stamp['command']}` on commit `{stamp['commit'][:12]}` ({stamp['date']}).",
            "",
            f"- **Stored size of a 100-exchange conversation** (user ~300, assistant ~1,200 characters of prose; "
            f"raw text {_kib(s['raw_text_bytes']['p50'])}): Blob {_kib(s['ours_blob_bytes']['p50'])} "
            f"(snapshot + journal, gzip) + Cosmos {_kib(s['ours_cosmos_bytes']['p50'])} (100 turn documents + "
            f"the summary, compact JSON as returned) = "
            f"{_kib(s['ours_blob_bytes']['p50'] + s['ours_cosmos_bytes']['p50'])}, "
            f"{s['ratios_to_raw']['ours_total']:.2f}× the raw text. CosmosHistoryProvider: "
            f"{_kib(s['theirs_cosmos_bytes']['p50'])} ({s['ratios_to_raw']['theirs']:.2f}×).",
        ]
        for length in ("10", "500"):
            if length in rows:
                row = rows[length]
                kinds = ", ".join(f"{k} {v}" for k, v in row["ours_save_kinds"].items())
                md.append(
                    f"- **Storage time per turn at turn {length}** (save = journal append or compaction, plus the "
                    f"Cosmos metadata write): p50 {_ms(row['ours_storage_ms'])} ms, p95 "
                    f"{_ms(row['ours_storage_ms'], 'p95')} ms (n={row['ours_storage_ms']['n']}; saves: {kinds}). "
                    f"Of that, the save alone p50 {row['ours_phases_p50_ms'].get('save', 0):.1f} ms and the metadata "
                    f"write p50 {row['ours_phases_p50_ms'].get('metadata', 0):.1f} ms."
                    + _compaction_note(results["turns"], length)
                )
        md.append("")

    # ---- scenario sections
    if "turns" in results:
        t = results["turns"]
        plots.append(_plot_turns(out, t))
        md += ["## 1. Turn overhead", _stamp_note(t, stamp), t["what"].strip(), ""]
        md += [
            "| Turn | n | Ours overhead p50 (IQR) | p95 | Theirs overhead p50 (IQR) | p95 | Ratio p50 "
            "| Ours phases p50 (ms) | Theirs phases p50 (ms) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for length, row in t["by_length"].items():
            ours_phases = ", ".join(
                f"{k} {v:.1f}" for k, v in row["ours_phases_p50_ms"].items() if k != "saved_messages"
            )
            their_phases = ", ".join(
                f"{k} {v:.1f}" for k, v in row["theirs_phases_p50_ms"].items() if k != "saved_messages"
            )
            md.append(
                f"| {length} | {row['ours_overhead_ms']['n']} | {_iqr(row['ours_overhead_ms'])} | "
                f"{_ms(row['ours_overhead_ms'], 'p95')} | {_iqr(row['theirs_overhead_ms'])} | "
                f"{_ms(row['theirs_overhead_ms'], 'p95')} | {_ratio(row['ratio_p50'])} | {ours_phases} | "
                f"{their_phases} |"
            )
        md += [
            "",
            "Whole turns with a model that answers at once include what each sends to the model: ours caps the "
            "context (`CONTEXT_MAX_MESSAGES`, `CONTEXT_MAX_CHARS`), theirs sends every stored message (about "
            "750 KB of JSON at turn 500), which is why theirs' whole turn grows much faster than its overhead. "
            "The model call with an instant model is client-side work (Agent Framework, the openai SDK building "
            "the request — its `_transform` of the message list is the largest single CPU cost in a profile — and "
            "parsing the stream) plus the fake model's own parsing; it is excluded from the overhead of both.",
            "",
            f"![turn overhead]({plots[-1]})",
            "",
        ]
    if "resume" in results:
        r = results["resume"]
        plots.append(_plot_resume(out, r))
        md += ["## 2. Resume", _stamp_note(r, stamp), r["what"].strip(), ""]
        md += [
            "| Turns | Ours p50 (IQR) | p95 | Theirs p50 (IQR) | p95 | Ratio p50 "
            "| Ours layout (snapshot + journal turns) |",
            "|---|---|---|---|---|---|---|",
        ]
        for length, row in r["by_length"].items():
            layout = "; ".join(f"{x['snapshot_turns']}+{x['journal_turns']}" for x in row["ours_layout"])
            md.append(
                f"| {length} | {_iqr(row['ours_ms'])} | {_ms(row['ours_ms'], 'p95')} | {_iqr(row['theirs_ms'])} | "
                f"{_ms(row['theirs_ms'], 'p95')} | {_ratio(row['ratio_p50'])} | {layout} |"
            )
        md += ["", f"![resume]({plots[-1]})", ""]
    if "storage" in results:
        s = results["storage"]
        plots.append(_plot_storage(out, s))
        md += ["## 3. Storage", _stamp_note(s, stamp), s["what"].strip(), ""]
        md += [
            "| Run | Raw text | Ours Blob (files) | Ours Cosmos (bare) | Theirs Cosmos (bare) | Layout |",
            "|---|---|---|---|---|---|",
        ]
        for index, run in enumerate(s["runs"]):
            files = ", ".join(f"{k} {v}" for k, v in run["ours_blobs"].items())
            md.append(
                f"| {index + 1} | {run['raw_text_bytes']} | {run['ours_blob_bytes']} ({files}) | "
                f"{run['ours_cosmos_bytes']} ({run['ours_cosmos_bytes_without_system_properties']}) | "
                f"{run['theirs_cosmos_bytes']} ({run['theirs_cosmos_bytes_without_system_properties']}) | "
                f"{run['snapshot_turns']} snapshot + {run['journal_turns']} journal turns |"
            )
        md += [
            "",
            f"The prose of these conversations compresses {s['prose_gzip_ratio']['p50']:.1f}× with gzip; ordinary "
            "English prose compresses about 2.6–3.2× (this repository's README: 2.6×). A template generator repeats "
            "its function words more than people do, so the gzip-compressed Blob figure is somewhat optimistic for "
            "real text (by up to that factor on the text part); the Cosmos figures, uncompressed, are not affected.",
            "",
            "Bytes. Ours keeps each message twice in Blob (Agent Framework and OpenAI form, side by side so gzip "
            "folds one into the other) plus the whole routing record; Cosmos keeps per turn only what analytics, "
            "budgets and router calibration read (no text). Theirs keeps each message once, uncompressed, in its "
            "own document.",
            "",
            *(storage.summary_lines(s) if "estimated_ru_per_turn" in s else []),
            "",
            f"![storage]({plots[-1]})",
            "",
        ]
    if "coldstart" in results:
        c = results["coldstart"]
        plots.append(_plot_coldstart(out, c))
        md += ["## 4. Cold start", _stamp_note(c, stamp), c["what"].strip(), ""]
        md += [
            f"- import function_app: {_iqr(c['app_import_function_app_ms'])} ms; first POST /chat (services "
            f"built on first use, one real turn): {_iqr(c['app_first_request_ms'])} ms; statuses "
            f"{c['first_request_statuses']}",
            f"- import function_app + first request: {_iqr(c['app_import_and_first_request_ms'])} ms; the "
            f"mandatory imports alone: {_iqr(c['deps_import_ms'])} ms; ratio "
            f"{_ratio(c['ratio_app_to_deps_inside_p50'])} (import function_app alone / imports alone: "
            f"{_ratio(c['ratio_import_function_app_to_deps_p50'])})",
            f"- wall from spawn: app {_iqr(c['app_wall_ms'])} ms, imports {_iqr(c['deps_wall_ms'])} ms, bare "
            f"interpreter {_iqr(c['bare_interpreter_wall_ms'])} ms",
            "",
            f"![cold start]({plots[-1]})",
            "",
            *coldstart_markdown(c),
        ]
    if "throughput" in results:
        t = results["throughput"]
        plots.append(_plot_throughput(out, t))
        md += ["## 5. Throughput", _stamp_note(t, stamp), t["what"].strip(), ""]
        md += [
            "| Run | Wall s | Turns/s | Latency p50 / p95 / max ms | Statuses | Acked / in Blob once / in Cosmos once "
            "| Problems | CPU seconds during the run | Load average after |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for index, run in enumerate(t["runs"]):
            check = run["check"]
            cpu_text = ", ".join(f"{k} {v}" for k, v in (run.get("cpu_seconds") or {}).items() if v is not None)
            md.append(
                f"| {index + 1} | {run['wall_s']} | {run['turns_per_s']} | {_ms(run['latency_ms'])} / "
                f"{_ms(run['latency_ms'], 'p95')} / {_ms(run['latency_ms'], 'max')} | {run['statuses']} | "
                f"{check['acknowledged']} / {check['in_blob_exactly_once']} / {check['in_cosmos_exactly_once']} | "
                f"{check['problem_count']} | {cpu_text} | {run.get('load_average_after')} |"
            )
        md += [
            "",
            f"The ideal {t['ideal_turns_per_s']:.0f} turns/s assumes the server costs nothing. Here one uvicorn "
            "worker process shares the machine's cores with both emulators (Node), both fake models and the "
            "client, so the figure is a floor for the code, not a forecast for Azure (where Functions scales out "
            "instances and the storage services run elsewhere).",
            "",
            f"![throughput]({plots[-1]})",
            "",
        ]
    if "router" in results:
        r = results["router"]
        md += ["## 6. Router", _stamp_note(r, stamp), r["what"].strip(), ""]
        md += [
            f"- decisions per second (per pass): {_iqr(r['decisions_per_s'], 0)}",
            f"- one decision: p50 {_ms(r['decision_us'])} µs, p95 {_ms(r['decision_us'], 'p95')} µs, p99 "
            f"{_ms(r['decision_us'], 'p99')} µs, max {_ms(r['decision_us'], 'max')} µs (the slowest are the long "
            "pastes: patterns read the first 4,000 characters)",
            f"- prompt length: {_iqr(r['prompt_chars'], 0)} characters; chosen: {r['chosen_backends']}",
            "",
        ]
    if "context" in results:
        md += context_markdown(results["context"], _stamp_note(results["context"], stamp))
    if "concurrency" in results:
        plots.append(concurrency.plot(out, results["concurrency"]))
        md += concurrency.markdown(results["concurrency"], _stamp_note(results["concurrency"], stamp), plots[-1])
    if "routing" in results:
        md += [
            "## 9. Routing quality on the held-out dev split",
            _stamp_note(results["routing"], stamp),
            "learned-v1 (the shipped router) against rules-v1 and the length baseline (cloud when a prompt is longer "
            "than 200 characters), on `tools/router_corpus/*_dev.jsonl`, which training never reads "
            "(`python -m bench.routing_eval` prints the same; docs/routing.md explains it).",
            "",
            routing_eval.to_markdown(results["routing"]),
            "",
        ]
    md += ["## Order of resumed transcripts", "", *_order_findings(results), ""]
    md += [
        "## Files",
        "",
        "One JSON file per scenario (every sample, the provenance stamp and the emulator facts), "
        "`emulator_facts.json`, this summary and the plots: " + ", ".join(f"`{p}`" for p in plots) + ".",
        "",
    ]
    (out / "SUMMARY.md").write_text("\n".join(md))
