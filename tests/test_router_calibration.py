"""Router configuration in the service: the threshold from ROUTER_TARGET_CLOUD_SHARE, shadow routing recorded on
every turn with its agreement in analytics, and calibration from feedback (the arithmetic, and the
`tools.calibrate_router` report over a real deployment's Cosmos DB)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, SettingsError
from shared.domain.routing import VERSIONS, RouterConfig, decide
from shared.domain.routing.calibration import RatedTurn, agreement, propose, should_be_strong
from shared.domain.routing.types import quantile_threshold
from tests.api_helpers import client, principal
from tests.fixtures_app import LiveServer

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "COSMOS_ENDPOINT": "https://localhost:8081"}


# ---- thresholds ----------------------------------------------------------------------------------------------------


def test_a_target_share_picks_the_quantile_of_the_calibration_sample() -> None:
    quantiles = tuple(i / 100 for i in range(101))  # a uniform sample: the threshold for share s is 1 - s
    assert quantile_threshold(quantiles, 0.3) == pytest.approx(0.7)
    assert quantile_threshold(quantiles, 0.455) == pytest.approx(0.545)
    assert quantile_threshold(quantiles, 1.0) == 0.0
    assert quantile_threshold(quantiles, 0.0) > quantiles[-1]  # nothing at all goes to the strong tier
    with pytest.raises(ValueError, match="target_share"):
        quantile_threshold(quantiles, 1.5)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_each_version_ships_a_calibration_that_is_monotone(version: str) -> None:
    router = VERSIONS[version]
    thresholds = [router.threshold_for_share(share / 10) for share in range(11)]
    assert thresholds == sorted(thresholds, reverse=True)
    assert RouterConfig(version=version, target_cloud_share=0.4).threshold() == round(thresholds[4], 4)
    assert RouterConfig(version=version, local_threshold=0.3).threshold() == 0.3
    assert RouterConfig(version=version).threshold() == router.default_threshold()


def test_an_explicit_threshold_is_the_primary_versions_and_the_shadow_keeps_its_own() -> None:
    """ROUTER_LOCAL_THRESHOLD is on the scale of ROUTER_VERSION's scores; the shadow's are on another."""
    config = RouterConfig(version="learned-v1", local_threshold=0.9, shadow="rules-v1")
    assert config.threshold() == config.threshold("learned-v1") == 0.9
    assert config.threshold("rules-v1") == VERSIONS["rules-v1"].default_threshold() != 0.9
    shared = RouterConfig(version="learned-v1", target_cloud_share=0.3, shadow="rules-v1")
    assert shared.threshold("rules-v1") == round(VERSIONS["rules-v1"].threshold_for_share(0.3), 4)


def test_settings_take_a_version_a_target_share_and_a_shadow_and_refuse_both_threshold_kinds() -> None:
    settings = Settings.from_env(
        {**MINIMAL, "ROUTER_VERSION": "rules-v1", "ROUTER_TARGET_CLOUD_SHARE": "0.5", "ROUTER_SHADOW": "learned-v1"}
    )
    assert (settings.router.version, settings.router.target_cloud_share, settings.router.shadow) == (
        "rules-v1",
        0.5,
        "learned-v1",
    )
    assert Settings.from_env(MINIMAL).router.version == "learned-v1"
    with pytest.raises(SettingsError, match="ROUTER_LOCAL_THRESHOLD or ROUTER_TARGET_CLOUD_SHARE"):
        Settings.from_env({**MINIMAL, "ROUTER_LOCAL_THRESHOLD": "0.4", "ROUTER_TARGET_CLOUD_SHARE": "0.5"})
    with pytest.raises(SettingsError, match="ROUTER_SHADOW"):
        Settings.from_env({**MINIMAL, "ROUTER_SHADOW": "gut-feeling"})
    with pytest.raises(SettingsError, match="ROUTER_TARGET_CLOUD_SHARE"):
        Settings.from_env({**MINIMAL, "ROUTER_TARGET_CLOUD_SHARE": "47%"})


def test_a_lower_target_share_sends_fewer_turns_to_the_strong_tier() -> None:
    prompts = [json.loads(line)["text"] for line in (ROOT / "tools/router_corpus/single_dev.jsonl").open()][:300]

    def strong_share(share: float) -> float:
        config = RouterConfig(target_cloud_share=share)
        return sum(decide(p, [], ("local", "cloud"), config).backend == "cloud" for p in prompts) / len(prompts)

    low, high = strong_share(0.2), strong_share(0.6)
    assert low < high
    assert abs(low - 0.2) < 0.1 and abs(high - 0.6) < 0.1  # the dev split is like the calibration sample


# ---- calibration from feedback (pure) ------------------------------------------------------------------------------


def test_feedback_implies_a_tier() -> None:
    assert should_be_strong(RatedTurn(0.2, "local", "down"))  # local was not good enough
    assert not should_be_strong(RatedTurn(0.8, "cloud", "down"))  # cloud was more than needed
    assert should_be_strong(RatedTurn(0.8, "cloud", "up"))
    assert not should_be_strong(RatedTurn(0.8, "cloud", "down", preferred_backend="local"))
    assert should_be_strong(RatedTurn(0.8, "local", "up", preferred_backend="apim"))  # a named backend wins


def test_the_proposal_is_the_threshold_that_agrees_most_with_feedback() -> None:
    rated = [
        RatedTurn(0.10, "local", "up"),
        RatedTurn(0.30, "local", "down"),  # should have been strong: the threshold is too high
        RatedTurn(0.35, "local", "down"),
        RatedTurn(0.60, "cloud", "up"),
        RatedTurn(0.20, "local", "up"),
    ]
    complexities = [0.1, 0.2, 0.3, 0.35, 0.6, 0.05, 0.9, 0.25]
    assert agreement(rated, 0.5) == 0.6
    report = propose(rated, complexities, current=0.5)
    assert report["proposed"] == {"threshold": 0.3, "agreement": 1.0, "target_cloud_share": 0.5}
    assert report["current"] == {"threshold": 0.5, "agreement": 0.6, "cloud_share": 0.25}
    assert report["feedback"] == {"up": 3, "down": 2, "should_be_strong": 3, "should_be_local": 2}
    assert report["rated_turns"] == 5 and report["routed_turns"] == 8
    assert propose([], [], current=0.41)["proposed"]["threshold"] == 0.41  # no evidence: keep what is there


# ---- shadow routing and the calibration tool over a live deployment -----------------------------------------------


def test_shadow_routing_records_the_other_versions_choice_and_analytics_report_agreement(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server(ROUTER_SHADOW="rules-v1")
    prompts = ["hi!", "What is the capital of Peru?", "Prove that there are infinitely many primes.", "thanks!"]
    with client(server.url, principal("alice-01")) as alice:
        session_id = alice.post("/chat", json={"message": prompts[0]}).json()["session_id"]
        for prompt in prompts[1:]:
            alice.post("/chat", json={"message": prompt, "session_id": session_id})
        turns = alice.get(f"/sessions/{session_id}").json()["turns"]
        shadows = [turn["extra"]["shadow"] for turn in turns]
        assert {shadow["router_version"] for shadow in shadows} == {"rules-v1"}
        assert all(turn["router_version"] == "learned-v1" for turn in turns)
        assert [shadow["primary"] for shadow in shadows] == [turn["backend"] for turn in turns]
        agreed = sum(shadow["backend"] == shadow["primary"] for shadow in shadows) / len(shadows)
        analytics = alice.get(f"/sessions/{session_id}/analytics").json()
        assert analytics["shadow"] == {"router_version": "rules-v1", "turns": 4, "agreement": round(agreed, 4)}
        assert alice.get("/analytics").json()["shadow"]["turns"] == 4


def test_without_a_shadow_analytics_say_so(live_server: Callable[..., LiveServer]) -> None:
    with client(live_server().url) as api:
        session_id = api.post("/chat", json={"message": "hi"}).json()["session_id"]
        assert "shadow" not in api.get(f"/sessions/{session_id}").json()["turns"][0]["extra"]
        assert api.get("/analytics").json()["shadow"] is None


def test_calibrate_router_reports_from_a_deployments_feedback_and_changes_nothing(
    live_server: Callable[..., LiveServer],
) -> None:
    server = live_server()
    with client(server.url, principal("alice-01")) as alice:
        session_id = alice.post("/chat", json={"message": "hello"}).json()["session_id"]
        for prompt in ("What is 2 + 2?", "Prove that the square root of 2 is irrational, step by step."):
            alice.post("/chat", json={"message": prompt, "session_id": session_id})
        turns = alice.get(f"/sessions/{session_id}").json()["turns"]
        # the first easy turn should have gone to the strong model, says its user
        alice.post(f"/sessions/{session_id}/turns/2/feedback", json={"rating": "down", "preferred_backend": "cloud"})
        alice.post(f"/sessions/{session_id}/turns/3/feedback", json={"rating": "up"})
        before = alice.get(f"/sessions/{session_id}").json()
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "tools.calibrate_router", "--days", "1"],
        cwd=ROOT,
        env={**server.env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    rated = [
        RatedTurn(turns[1]["complexity"], turns[1]["backend"], "down", "cloud"),
        RatedTurn(turns[2]["complexity"], turns[2]["backend"], "up"),
    ]
    expected = propose(rated, [turn["complexity"] for turn in turns], RouterConfig().threshold())
    assert report["router_version"] == "learned-v1"
    assert {key: report[key] for key in expected} == expected
    assert report["proposed"]["agreement"] == 1.0
    with client(server.url, principal("alice-01")) as alice:
        assert alice.get(f"/sessions/{session_id}").json() == before
