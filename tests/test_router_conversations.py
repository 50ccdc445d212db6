"""learned-v1 in conversations: a table of (earlier turns, new message, strong model?) cases and follow-up kinds.

Each case runs the whole conversation through ``learned.route`` with the router's own earlier decisions as
history (what the service stores: complexity, backend, length), as in production. The expected choices follow
the labelling policy: a follow-up that only reformats, shortens or translates, a thank-you and a new easy
question are local whatever came before; a follow-up that builds on a hard turn and a new hard question are not.
"""

from __future__ import annotations

import pytest

from shared.domain.routing import learned

HARD_TREE = (
    "Write a function that returns the maximum path sum in a binary tree, where a path can start and end at any node."
)
HARD_CODE = (
    "My Python function is too slow for 1 million items:\n```python\ndef pairs(nums, t):\n"
    "    for i in range(len(nums)):\n"
    "        for j in range(i + 1, len(nums)):\n            if nums[i] + nums[j] == t:\n                return True\n"
    "    return False\n```\nMake it fast and explain the complexity."
)
HARD_DESIGN = (
    "Design a multi-region active-active architecture for an order service that must tolerate the loss of a region, "
    "keep p99 latency under 200 ms and never lose an acknowledged write. Analyse the consistency trade-offs."
)
HARD_NEW = (
    "Design a sharded counter service that supports 1 million increments per second with eventually consistent "
    "reads, and analyse the trade-offs between accuracy and cost."
)
HARD_PROOF = "Prove that among any 5 points inside a unit square, two are at distance at most sqrt(2)/2."
GSM8K_STYLE = (
    "A bakery sells muffins for $3 each and cookies for $1.25 each. On Monday it sold 48 muffins and three times "
    "as many cookies. On Tuesday it sold 20% fewer muffins and half as many cookies as on Monday. How much more "
    "money did the bakery make on Monday than on Tuesday?"
)
EASY_POEM = "Write a short poem about the sea."
GEOMETRY = (
    "The vertices of a triangle are at (0, 0), (-1, 1) and (3, 3). Find its area and the radius of its incircle, "
    "and justify each step."
)


CASES = [
    # builds on a hard turn: inherits its difficulty
    pytest.param([HARD_TREE], "What if the problem changed from a binary tree to a ternary tree?", True, id="ternary"),
    pytest.param([HARD_CODE], "Can you parallelize it?", True, id="parallelize-it"),
    pytest.param([HARD_CODE], "Now make it return all such pairs without duplicates.", True, id="now-make-it"),
    pytest.param([HARD_DESIGN], "How would the design change if reads must be strongly consistent?", True, id="design"),
    pytest.param([HARD_TREE], "Why did you need recursion there?", True, id="why-after-hard"),
    pytest.param([HARD_TREE], "Can you also handle negative values in the code?", True, id="also-handle"),
    pytest.param([HARD_TREE], "Instead, could it be done iteratively?", True, id="instead"),
    pytest.param([GSM8K_STYLE], "What if the cookies cost $1.50 instead?", True, id="what-if-word-problem"),
    pytest.param([HARD_PROOF], "Can the bound be improved?", True, id="bound"),
    pytest.param([GEOMETRY], "What's the area of the circle circumscribing the triangle?", True, id="circumcircle"),
    pytest.param(
        [HARD_DESIGN], "What would change if we also had 200 contractors with read-only access?", True, id="would"
    ),
    pytest.param([HARD_CODE], "Can you add tests for the edge cases?", True, id="add-tests"),
    pytest.param(
        [HARD_DESIGN, "Make it shorter."], "What if we also need a third region in Asia?", True, id="after-reformat"
    ),
    # reformat, shorten, translate the previous answer: local even after a hard turn
    pytest.param([HARD_DESIGN], "Translate your answer to French", False, id="translate-after-hard"),
    pytest.param([HARD_TREE], "and in French?", False, id="and-in-french"),
    pytest.param([HARD_DESIGN], "Summarize that in three bullet points.", False, id="summarize"),
    pytest.param([HARD_DESIGN], "Can you shorten that to one paragraph?", False, id="shorten"),
    pytest.param([HARD_CODE], "Add comments to the code.", False, id="add-comments"),
    pytest.param([HARD_DESIGN], "Put the recommendation in a table.", False, id="table"),
    pytest.param([HARD_DESIGN], "Turn that into a checklist.", False, id="checklist"),
    pytest.param([HARD_PROOF], "Rewrite the proof in plain English without symbols.", False, id="rewrite-proof"),
    pytest.param(
        [HARD_DESIGN], "Rewrite your previous response. Start every sentence with the letter A.", False, id="letter-a"
    ),
    pytest.param([HARD_CODE], "Now do the same but output JSON.", False, id="output-json"),
    # thanks, greetings, goodbyes
    pytest.param([HARD_TREE], "thanks!", False, id="thanks-after-hard"),
    pytest.param([HARD_CODE], "Perfect, that works. Thanks a lot!", False, id="closer-after-code"),
    pytest.param([HARD_DESIGN], "great, bye", False, id="bye-after-hard"),
    # a new question: its own merits, whatever came before
    pytest.param([HARD_DESIGN], "By the way, what's the capital of Australia?", False, id="by-the-way-easy"),
    pytest.param([HARD_DESIGN], "What is the capital of Peru?", False, id="capital-after-hard"),
    pytest.param([HARD_CODE], "Thanks. Also, how many bytes are in a gigabyte?", False, id="thanks-also-new-easy"),
    pytest.param(["hi there", "I'm fine, how are you?"], HARD_NEW, True, id="hard-after-small-talk"),
    pytest.param(
        ["hello"],
        "Compare token bucket and sliding window rate limiting and analyze the trade-offs step by step",
        True,
        id="token-bucket-after-hello",
    ),
    pytest.param(["What is 12 times 12?"], GSM8K_STYLE, True, id="word-problem-after-arithmetic"),
    pytest.param(["Good evening!", "Can you give me a synonym for quick?"], HARD_NEW, True, id="hard-after-easy"),
    # follow-ups on an easy turn stay easy
    pytest.param(["What is the capital of Peru?"], "And what's its population?", False, id="follow-up-on-easy"),
    pytest.param([EASY_POEM], "Make it rhyme.", False, id="edit-easy-poem"),
    pytest.param([EASY_POEM, "Make it rhyme."], "Now make it shorter.", False, id="shorter-poem"),
    pytest.param(["Translate 'I love books' into Spanish."], "And into Italian?", False, id="translate-chain"),
]


@pytest.mark.parametrize(("earlier", "message", "cloud"), CASES)
def test_conversation_routing(earlier: list[str], message: str, cloud: bool) -> None:
    routed = learned.route_conversation([*earlier, message])[-1]
    assert routed.cloud is cloud, routed.reason


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("thanks!", "social"),
        ("great, bye", "social"),
        ("", "social"),
        ("Translate your answer to French", "reformat"),
        ("and in French?", "reformat"),
        ("Summarize that in three bullet points.", "reformat"),
        ("Rewrite the proof in plain English without symbols.", "reformat"),
        ("What if the problem changed from a binary tree to a ternary tree?", "reference"),
        ("Can you parallelize it?", "reference"),
        ("Also support the L and W special characters.", "reference"),
        ("Can the bound be improved?", "reference"),
        ("Unrelated: what time zone is London in?", "new_topic"),
        ("Thanks. Also, how many bytes are in a gigabyte?", "none"),
        (HARD_NEW, "none"),
    ],
)
def test_follow_up_kind(message: str, kind: str) -> None:
    assert learned.follow_up_kind(message) == kind


def test_a_reference_inherits_and_says_so() -> None:
    first, follow = learned.route_conversation([HARD_TREE, "Can you parallelize it?"])
    assert first.cloud and follow.cloud and follow.kind == "reference"
    assert follow.complexity > follow.own and "builds on earlier turns" in follow.reason
    assessment = learned.assess("Can you parallelize it?", [learned.PriorTurn("cloud", first.complexity)], 0.4)
    assert assessment.follow_up and assessment.signals == ("reference",)
