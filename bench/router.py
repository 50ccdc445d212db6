"""Scenario 6: routing decisions per second and the time of one decision (`shared.domain.routing.decide`).

A few hundred varied prompts (`bench.prose.router_prompts`: small talk, follow-ups, everyday questions, long
pastes to proofread, code, maths, analysis), each decided with an empty history and, in a second pass over
the same prompts, after a prior turn (so follow-up handling runs), with a local and a cloud backend
configured. One warm-up pass, then repeated passes: decisions per second per pass, and every decision timed
on its own (`time.perf_counter_ns`) for the p50 and p99.
"""

from __future__ import annotations

import time
from typing import Any

from bench import prose
from bench.env import describe
from shared.domain.routing import PriorTurn, RouterConfig, decide

PROMPTS = 400
CONFIGURED = ("local", "cloud")


def run(quick: bool) -> dict[str, Any]:
    prompts = prose.router_prompts(11, PROMPTS)
    config = RouterConfig()
    histories: list[list[PriorTurn]] = [[], [PriorTurn(backend="cloud", complexity=0.7, user_chars=300)]]
    cases = [(prompt, history) for history in histories for prompt in prompts]
    backends: dict[str, int] = {}
    for prompt, history in cases:  # warm-up, and what the router chose (a sanity check of the prompt mix)
        decision = decide(prompt, history, CONFIGURED, config)
        backends[decision.backend] = backends.get(decision.backend, 0) + 1
    passes = 8 if quick else 25
    per_decision_us: list[float] = []
    per_pass_rate: list[float] = []
    for _ in range(passes):
        pass_started = time.perf_counter_ns()
        for prompt, history in cases:
            started = time.perf_counter_ns()
            decide(prompt, history, CONFIGURED, config)
            per_decision_us.append((time.perf_counter_ns() - started) / 1000.0)
        per_pass_rate.append(len(cases) / ((time.perf_counter_ns() - pass_started) / 1e9))
    lengths = [len(prompt) for prompt in prompts]
    return {
        "scenario": "router",
        "what": __doc__,
        "prompts": len(prompts),
        "distinct_prompts": len(set(prompts)),
        "prompt_chars": describe([float(n) for n in lengths], 0),
        "decisions_per_pass": len(cases),
        "passes": passes,
        "decisions_per_s": describe(per_pass_rate, 0),
        "decision_us": describe(per_decision_us, 1),
        "chosen_backends": backends,
    }
