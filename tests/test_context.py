"""Context fitting as pure functions: token estimates, which turns go whole, summaries, tool pairs, caps, 413."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shared.domain.context import (
    SUMMARY_MAX_TOKENS,
    ContextPlan,
    Size,
    TurnMessages,
    Window,
    assemble,
    keep_beside,
    output_reserve,
    plan_context,
    size_of,
    turns_of,
)
from shared.domain.context_summary import MAX_SUMMARY_CALLS, ContextSummary, chunks, covering, prompt, turn_text
from shared.domain.errors import ContextTooLarge
from shared.domain.tokens import (
    DEFAULT_RATIO,
    FIT_MARGIN,
    MESSAGE_OVERHEAD,
    Observation,
    TokenRatio,
    choose_ratio,
    message_tokens,
    text_tokens,
)

EXACT = TokenRatio(1.0, "test")


def text(role: str, words: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "contents": [{"type": "text", "text": words}]}


def tool_call(call_id: str) -> dict[str, Any]:
    content = {"type": "function_call", "call_id": call_id, "name": "lookup", "arguments": '{"q": "x"}'}
    return {"type": "message", "role": "assistant", "contents": [content]}


def tool_result(call_id: str) -> dict[str, Any]:
    content = {"type": "function_result", "call_id": call_id, "result": "r" * 120}
    return {"type": "message", "role": "tool", "contents": [content]}


def conversation(turns: int, chars: int = 400, tools_every: int = 0) -> list[TurnMessages]:
    out = []
    for number in range(1, turns + 1):
        messages: list[dict[str, Any]] = [text("user", f"question {number} " + "q" * chars)]
        if tools_every and number % tools_every == 0:
            messages += [tool_call(f"call{number}"), tool_result(f"call{number}")]
        messages.append(text("assistant", f"answer {number} " + "a" * chars))
        out.append(TurnMessages(number, tuple(messages)))
    return out


def summary(through: int, words: str = "they talked", first: int = 1) -> ContextSummary:
    return ContextSummary(first, through, words, "local", "llama3.2", "2026-11-29T10:00:00Z", through + 1)


def window(tokens: int | None, reserve: int = 100, messages: int = 1000, chars: int = 10**7) -> Window:
    return Window(tokens, reserve, messages, chars)


FIXED = Size(50, 0, 0)


def sent_tokens(plan_turns: Sequence[TurnMessages], keep_from: int, stored: ContextSummary | None) -> float:
    return size_of(assemble((), plan_turns, keep_from, stored), EXACT).tokens


# ---- token estimates -----------------------------------------------------------------------------------------


def test_raw_tokens_count_ascii_at_four_characters_and_other_characters_at_one() -> None:
    assert text_tokens("a" * 400) == 100
    assert text_tokens("日本語") == 3
    assert text_tokens("ab日本") == 0.5 + 2
    assert message_tokens(text("user", "a" * 40)) == MESSAGE_OVERHEAD + 10


def test_the_ratio_is_the_sessions_then_the_workers_then_a_conservative_default() -> None:
    observed = [Observation(100, 120), Observation(100, 130), Observation(100, 110)]
    assert choose_ratio(observed, 2.0) == TokenRatio(1.2, "session")
    assert choose_ratio([], 0.9) == TokenRatio(0.9, "backend")
    assert choose_ratio([], None) == TokenRatio(DEFAULT_RATIO, "default")
    # A model that reports nothing, or something no tokenizer would, teaches nothing.
    assert choose_ratio([Observation(100, 0), Observation(100, 10_000), Observation(0, 5)], None).basis == "default"


def test_what_is_fitted_carries_the_margin_and_what_is_recorded_does_not() -> None:
    ratio = TokenRatio(1.2, "session")
    assert ratio.estimate(1000) == 1200
    assert ratio.fitted(1000) == round(1000 * 1.2 * FIT_MARGIN)


@pytest.mark.parametrize(
    ("window_tokens", "max_output", "reserve"),
    [(8192, None, 1024), (1500, None, 375), (128_000, None, 1024), (8192, 300, 300), (1500, 2000, 2000)],
)
def test_the_output_reserve_is_the_cap_when_set_else_1024_or_a_quarter_of_the_window(
    window_tokens: int, max_output: int | None, reserve: int
) -> None:
    assert output_reserve(window_tokens, max_output) == reserve


# ---- which turns go whole ----------------------------------------------------------------------------------------


def test_everything_is_sent_when_it_fits() -> None:
    turns = conversation(5)
    plan = plan_context(turns, FIXED, (), window(100_000), EXACT, summarize=True, backend="local")
    assert plan == ContextPlan(keep_from=0, truncate_from=0) and plan.mode == "full"


def test_without_a_window_only_the_caps_apply() -> None:
    turns = conversation(30)
    assert plan_context(turns, FIXED, (), window(None), EXACT, summarize=False, backend="x").keep_from == 0
    capped = plan_context(turns, FIXED, (), window(None, messages=10), EXACT, summarize=False, backend="x")
    assert capped.keep_from == 25 and capped.mode == "truncated"  # 5 turns of 2 messages
    by_chars = plan_context(turns, FIXED, (), window(None, chars=2000), EXACT, summarize=False, backend="x")
    assert by_chars.keep_from == 28  # a turn holds about 820 characters


@pytest.mark.parametrize("budget", [300, 700, 1500, 3000])
def test_plain_truncation_keeps_the_longest_suffix_of_whole_turns_that_fits(budget: int) -> None:
    turns = conversation(20)
    win = window(budget + 100 + 50)  # reserve 100, fixed 50: `budget` tokens for history
    plan = plan_context(turns, FIXED, (), win, EXACT, summarize=False, backend="local")
    assert sent_tokens(turns, plan.keep_from, None) <= budget
    assert plan.keep_from == 0 or sent_tokens(turns, plan.keep_from - 1, None) > budget


def test_a_message_that_cannot_fit_beside_the_instructions_is_refused_with_the_numbers() -> None:
    with pytest.raises(ContextTooLarge) as refused:
        plan_context(
            conversation(2), Size(1450, 0, 0), (), window(1500, reserve=300), EXACT, summarize=True, backend="local"
        )
    assert refused.value.status == 413 and refused.value.field == "message"
    assert (refused.value.backend, refused.value.window, refused.value.needed) == ("local", 1500, 1450)
    assert "1200" in str(refused.value) and "local" in str(refused.value)


def test_a_new_summary_leaves_room_to_grow_so_the_next_turns_reuse_it() -> None:
    turns = conversation(40)
    win = window(3000, reserve=500)
    plan = plan_context(turns, FIXED, (), win, EXACT, summarize=True, backend="local")
    assert plan.mode == "summary_needed" and plan.fold == (0, plan.keep_from)
    room = 3000 - 500 - 50
    assert plan.summary_tokens == min(SUMMARY_MAX_TOKENS, room // 4)
    assert sent_tokens(turns, plan.keep_from, None) <= (room - plan.summary_tokens) / 2  # hysteresis
    made = summary(turns[plan.keep_from - 1].turn, "w" * 400)
    # The same summary serves each following turn until the turns after it no longer fit beside it.
    reused = 0
    for grown in range(41, 60):
        longer = conversation(grown)
        again = plan_context(longer, FIXED, (made,), win, EXACT, summarize=True, backend="local")
        if again.summary is not made:
            break
        assert again.keep_from == plan.keep_from and again.mode == "summary"
        reused += 1
    assert reused >= 2


def test_a_new_summary_extends_the_stored_one_from_the_first_turn_it_does_not_cover() -> None:
    turns = conversation(40)
    stored = summary(10, "w" * 3000)
    plan = plan_context(turns, FIXED, (stored,), window(3000, reserve=500), EXACT, summarize=True, backend="local")
    assert plan.fold is not None and turns[plan.fold[0]].turn == 11


def test_a_stored_summary_that_covers_everything_but_does_not_fit_gives_plain_truncation() -> None:
    turns = conversation(12)
    huge = summary(12, "w" * 40_000)
    plan = plan_context(turns, FIXED, (huge,), window(1500, reserve=100), EXACT, summarize=True, backend="local")
    assert plan.mode == "truncated" and plan.summary is None and plan.fold is None


@pytest.mark.parametrize(("budget", "tools_every"), itertools.product([200, 450, 800, 1600, 5000], [1, 2, 3]))
def test_a_tool_call_is_never_sent_without_its_result(budget: int, tools_every: int) -> None:
    turns = conversation(12, chars=150, tools_every=tools_every)
    for summarize in (False, True):
        plan = plan_context(turns, FIXED, (), window(budget + 150), EXACT, summarize=summarize, backend="local")
        sent = assemble((), turns, plan.keep_from, None)
        calls = {c["call_id"] for m in sent for c in m["contents"] if c["type"] == "function_call"}
        results = {c["call_id"] for m in sent for c in m["contents"] if c["type"] == "function_result"}
        assert calls == results
        assert not sent or sent[0]["role"] == "user"


def test_system_messages_of_dropped_turns_come_first_then_the_summary_and_kept_turns_keep_theirs_in_place() -> None:
    entries = [
        (1, (text("system", "be brief"), text("user", "one"), text("assistant", "1"))),
        (2, (text("user", "two"), text("assistant", "2"))),
        (3, (text("user", "three"), text("system", "now in French"), text("assistant", "3"))),
        (4, (text("system", "mind the budget"),)),
    ]
    pinned, turns = turns_of(entries)
    assert [(turn, m["contents"][0]["text"]) for turn, m in pinned] == [
        (1, "be brief"),
        (3, "now in French"),
        (4, "mind the budget"),
    ]
    sent = assemble(pinned, turns, 2, summary(2))
    assert [m["contents"][0]["text"] for m in sent] == [
        "be brief",
        "Summary of turns 1-2 of this conversation, which are not shown:\nthey talked",
        "three",
        "now in French",
        "3",
        "mind the budget",
    ]
    everything = assemble(pinned, turns, 0, None)
    assert everything == [message for _, messages in entries for message in messages]


def test_turns_after_a_summary_longer_than_its_allowance_are_dropped_not_overflowed() -> None:
    turns = conversation(30)
    win = window(3000, reserve=500)
    plan = plan_context(turns, FIXED, (), win, EXACT, summarize=True, backend="local")
    short, long = summary(plan.keep_from, "w" * 100), summary(plan.keep_from, "w" * 6000)
    assert keep_beside(short, turns, FIXED, win, EXACT, plan.keep_from) == plan.keep_from
    later = keep_beside(long, turns, FIXED, win, EXACT, plan.keep_from)
    assert later > plan.keep_from
    assert sent_tokens(turns, later, long) <= 3000 - 500 - 50


# ---- summaries ----------------------------------------------------------------------------------------------------


def test_a_stored_summary_round_trips_and_a_malformed_one_is_refused() -> None:
    made = summary(7, "the user wants a trip to Lisbon")
    assert ContextSummary.from_dict(made.to_dict()) == made
    for broken in (
        {**made.to_dict(), "through_turn": 0},
        {**made.to_dict(), "through_turn": True},
        {**made.to_dict(), "first_turn": 9},
        {**made.to_dict(), "made_in_turn": 7},
        {**made.to_dict(), "text": " "},
        {**made.to_dict(), "model": 3},
    ):
        with pytest.raises((KeyError, TypeError, ValueError)):
            ContextSummary.from_dict(broken)
    with pytest.raises(KeyError):
        ContextSummary.from_dict({k: v for k, v in made.to_dict().items() if k != "text"})


def test_a_fork_keeps_the_summaries_that_cover_nothing_after_its_turn() -> None:
    made = (summary(5), summary(9), summary(14))
    assert covering(made, 9) == made[:2]
    assert covering(made, 4) == ()


def test_the_summarizer_reads_tool_calls_and_results_and_the_summary_so_far() -> None:
    turn = turn_text(3, (text("user", "find it"), tool_call("c1"), tool_result("c1"), text("assistant", "found")))
    assert turn.splitlines() == [
        "Turn 3",
        "User: find it",
        'Assistant called lookup({"q": "x"})',
        "Tool result: " + "r" * 120,
        "Assistant: found",
    ]
    instructions, user = prompt(summary(2, "earlier stuff"), 3, 3, turn, 120)
    assert "at most 120 words" in instructions
    assert user.startswith("Summary so far (turns 1-2):\nearlier stuff\n\nTurns 3-3:")


@pytest.mark.parametrize(("turns", "room"), [(5, 5000), (40, 1000), (120, 2000), (12, 300), (3, 150)])
def test_turns_are_folded_in_at_most_four_calls_each_within_the_summarizers_room(turns: int, room: int) -> None:
    history = [(turn.turn, turn.messages) for turn in conversation(turns)]
    pieces = chunks(history, room, EXACT)
    assert 1 <= len(pieces) <= MAX_SUMMARY_CALLS
    _assert_whole_turns_in_order(pieces, turns, room)


def test_a_history_too_long_even_clipped_takes_more_calls_but_loses_no_turn() -> None:
    history = [(turn.turn, turn.messages) for turn in conversation(400)]
    pieces = chunks(history, 600, EXACT)
    assert len(pieces) > MAX_SUMMARY_CALLS
    _assert_whole_turns_in_order(pieces, 400, 600)


def _assert_whole_turns_in_order(pieces: list[tuple[int, int, str]], turns: int, room: int) -> None:
    assert pieces[0][0] == 1 and pieces[-1][1] == turns
    for (_, last, _), (first, _, _) in itertools.pairwise(pieces):
        assert first == last + 1  # whole turns, in order, none left out
    for first, last, body in pieces:
        assert EXACT.fitted(text_tokens(body)) <= room
        assert [int(line.split()[1]) for line in body.splitlines() if line.startswith("Turn ")] == list(
            range(first, last + 1)
        )


def _contents(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [content.get("type", "") for message in messages for content in message["contents"]]


def test_a_summary_is_sent_as_a_system_message_that_names_its_turns() -> None:
    message = summary(11, "plans for Lisbon", first=1).message()
    assert message["role"] == "system" and _contents([message]) == ["text"]
    assert (
        message["contents"][0]["text"]
        == "Summary of turns 1-11 of this conversation, which are not shown:\nplans for Lisbon"
    )
