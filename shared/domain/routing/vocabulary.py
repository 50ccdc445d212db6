"""The rules router's vocabulary, as data: cue tables and word lists, nothing that runs.

A cue table lists ``(label, "alternative one|alternative two*", points)``: alternatives match whole words or
phrases, and a trailing ``*`` makes a prefix ("analy*" matches "analyze" and "analysis"). Tables list strong
cues first, because a score is explained by the labels of its first cues. Word lists are space-separated
words; phrase lists are plain phrases. `rules.py` and `followups.py` compile them once, at import. Any change
here changes decisions: bump the rules router's version with it.
"""

from __future__ import annotations

Cues = tuple[tuple[str, str, float], ...]

# ---- complexity signals --------------------------------------------------------------------------------------

CODE_WORDS: Cues = (
    ("refactor", "refactor*", 1.5),
    ("debug", "debug*", 1.0),
    ("implement", "implement*", 1.0),
    ("algorithm", "algorithm*", 1.0),
    ("race condition", "race condition*|deadlock*|thread safe*|concurren*|mutex*", 1.5),
    ("memory leak", "memory leak*|segfault*|segmentation fault*", 1.5),
    ("time complexity", "time complexity|space complexity|big o", 1.0),
    ("regex", "regex*|regular expression*", 1.0),
    ("unit test", "unit test*|integration test*|test coverage", 1.0),
    ("performance", "profil*|bottleneck*|performance", 0.5),
    ("function", "function|functions|method|methods", 0.5),
    ("bug", "bug|bugs|stack trace|exception|compile error*|compiler", 0.5),
)

MATH_WORDS: Cues = (
    ("prove", "prove|proves|proof|proofs|proving", 2.0),
    ("theorem", "theorem*|lemma*|corollar*|axiom*", 1.5),
    ("integral", "integral*|integrate", 1.5),
    ("differential equation", "differential equation*|ode|pde", 1.5),
    ("eigenvalue", "eigen*", 1.5),
    ("derivative", "derivative*|differentiate", 1.0),
    ("matrix", "matrix|matrices|linear algebra|determinant*", 1.0),
    ("probability", "probabilit*|expected value|variance|standard deviation|bayes*|distribution*", 1.0),
    ("convergence", "converge*|divergen*|asymptot*|limit of", 1.0),
    ("induction", "induction|contradiction", 1.0),
    ("polynomial", "polynomial*|logarithm*|exponential*|calculus|gradient*", 1.0),
    ("equation", "equation*|solve for|inequalit*", 1.0),
    ("number theory", "irrational|infinitely many|modular arithmetic|modulo|combinatori*", 1.0),
    ("statistics", "regression|hypothesis test*|p value*|confidence interval*", 1.0),
    ("primes", "prime|primes|permutation*|factorial", 0.5),
    ("compute", "compute|calculate", 0.5),
)

REASONING_WORDS: Cues = (
    ("trade-offs", "trade off*|tradeoff*", 2.0),
    ("analyze", "analy*", 1.5),
    ("step by step", "step by step|show your work|each step|show the steps", 1.5),
    ("pros and cons", "pros and cons|advantages and disadvantages", 1.5),
    ("justify", "justify|justification*|critique*|critici*", 1.5),
    ("root cause", "root cause*", 1.5),
    ("explain", "explain*|explanation*", 1.0),
    ("compare", "compare*|comparing|comparison*|contrast", 1.0),
    ("design", "design|designing|redesign*|architect a", 1.0),
    ("evaluate", "evaluat*|assess*", 1.0),
    ("review", "review|reviewing", 1.0),
    ("in depth", "in depth|in detail|detailed|thorough*|rigorous*", 1.0),
    ("implications", "implication*|consequence*|what would happen|what happens if", 1.0),
    ("strategy", "strateg*|optimal|optimi*", 1.0),
    ("prove", "prove|proof|derive|derivation", 1.0),
    ("reasoning", "reason about|reasoning|argue|argument*|hypothes*|walk me through|think through", 1.0),
    ("why", "why", 0.5),
    ("how ...", "how does|how do|how would|how can|how should", 0.5),
    ("difference", "difference between|differences between|versus|vs", 0.5),
    ("recommend", "recommend*|which is better|best approach|best way|should i|should we|consider*", 0.5),
)

DOMAIN_WORDS: Cues = (
    # legal
    ("liability", "liabilit*|indemni*|litigation|lawsuit*|tort", 1.0),
    ("compliance", "complian*|gdpr|hipaa|sox|pci|regulat*", 1.0),
    ("contract", "contract|contracts|clause*|statut*|jurisdiction*|intellectual property|patent*", 1.0),
    # medical
    ("diagnosis", "diagnos*|prognos*|differential|comorbid*|patholog*", 1.0),
    ("symptoms", "symptom*|side effect*|adverse", 1.0),
    ("dosage", "dosage*|dose|doses|prescri*|contraindicat*|pharmaco*", 1.0),
    ("clinical", "clinical*|interaction*|chronic", 1.0),
    ("treatment", "treatment*|therapy|medication*", 0.5),
    # financial
    ("valuation", "valuation*|discounted cash flow|dcf|ebitda|amortiz*|amortis*", 1.0),
    ("portfolio", "portfolio*|hedg*|liquidity|arbitrage|derivatives", 1.0),
    ("interest rate", "interest rate*|capital gains|depreciation|cash flow*", 1.0),
    ("tax", "tax|taxes|inflation|mortgage*|equity", 0.5),
    # analytics
    ("churn", "churn*|cohort*|forecast*|retention rate*|conversion rate*|a b test*|statistical significance", 1.0),
    # software architecture
    ("scalability", "scalab*|scale out|horizontal scaling|high availability|failover|fail over", 1.0),
    ("latency", "latenc*|throughput", 1.0),
    ("distributed", "distributed|microservice*|event driven|message queue*|kubernetes", 1.0),
    ("consistency", "consisten*|idempoten*|replicat*|shard*|partition*|eventual", 1.0),
    ("caching", "cach*|load balanc*|multi region|cdn", 0.5),
    # security
    ("threat model", "threat model*|attack surface|privilege escalation|zero trust|penetration test*", 1.0),
    ("vulnerability", "vulnerab*|exploit*|xss|csrf|sql injection|injection|cve", 1.0),
    ("encryption", "encrypt*|decrypt*|cryptograph*|key rotation|tls", 1.0),
    ("authentication", "authenticat*|authori*|oauth*|rbac|least privilege", 0.5),
)

CONSTRAINT_WORDS: Cues = (
    ("must not", "must not|mustn t|should not|shouldn t|cannot use|can t use|without using|never", 1.0),
    ("at most", "at most|no more than|at least|no less than|maximum|minimum", 0.75),
    ("requirements", "requirement*|constraint*", 1.0),
    ("SLO", "sla|slo|slas|slos|p99|p95|uptime", 1.0),
    ("edge cases", "edge case*|corner case*", 1.0),
    ("compatibility", "backward compat*|backwards compat*|zero downtime|without downtime", 1.0),
    ("must", "must", 0.5),
    ("budget", "budget*|deadline*|real time", 0.5),
    ("assumptions", "given that|assume|assuming", 0.5),
)

SEQUENCE_WORDS: Cues = (
    ("step 1", "step 1|step one", 1.0),
    ("finally", "finally|after that|afterwards|and then|lastly", 0.5),
    ("additionally", "additionally|in addition|furthermore|moreover", 0.5),
    ("and what", "and what|and how|and why|and which|and when|and where", 0.75),
)

# Words sizing a requirement ("10k rps", "under 50 ms", "99.9% uptime"): a pre-check for the quantity pattern.
UNIT_WORDS = "ms millisecond milliseconds second seconds rps qps tps req requests users concurrent gb mb tb"

# ---- follow-ups and small talk -------------------------------------------------------------------------------

# Messages made only of these words are greetings, thanks or acknowledgements: they need no context.
SMALL_TALK_WORDS = """
    hi hello hey hiya yo howdy greetings good morning afternoon evening night day thanks thank thx ty tysm cheers
    you so much very a lot many ok okay k kk okey great cool nice perfect awesome excellent wonderful amazing
    brilliant fantastic super sweet lovely got it that s this is was helpful helps helped useful makes sense
    understood i see alright all right fine fair enough bye goodbye cya ya later take care appreciate appreciated
    lol haha wow will do sounds noted exactly indeed agreed works worked
    """
SMALL_TALK_PHRASES = (
    "how are you",
    "how are you doing",
    "how s it going",
    "what s up",
    "nice to meet you",
    "see you",
    "see you later",
    "no thanks",
    "no thank you",
)
SMALL_TALK_MAX_WORDS = 10

# Leading words that do not change what a message is about ("ok, now make it faster").
FILLER_WORDS = "ok okay great thanks thank you cool nice perfect alright hmm well please"
CONNECTIVES = "and but so also now then plus or"
CONFIRMATIONS = "yes yeah yep yup sure no nope please"
EDIT_VERBS = """shorten simplify rewrite rephrase continue elaborate expand redo retry clarify proceed improve optimize
    optimise shorter longer simpler faster slower more less better again"""
BARE_QUESTIONS = "why how really sure are is what which where when who source sources example huh"
PRONOUNS = "it its them they these those"
# "that" and "this" are also relative pronouns and determiners ("a function that checks ...", "this sentence:
# ..."); they refer to the previous answer only at the end of a message or before one of these words.
DEMONSTRATIVES = "that this"
AFTER_DEMONSTRATIVE = """
    is was s one part bit code answer function query script version again too in into to for with more please
    but and mean means work works shorter simpler faster better
    """
# Explicit references to the previous answer, trusted in a message of any length.
EXPLICIT_REFERENCES = (
    "your answer",
    "your response",
    "your code",
    "your solution",
    "your last",
    "your example",
    "your previous",
    "you said",
    "you wrote",
    "you mentioned",
    "you suggested",
    "you just",
    "the above",
    "above code",
    "previous answer",
    "previous response",
    "do the same",
    "same for",
    "as before",
)
# Looser references, trusted only in short messages: "instead" or "again" in a long message is usually prose.
SHORT_REFERENCES = (
    "what about",
    "how about",
    "the same",
    "same thing",
    "previous",
    "earlier",
    "instead",
    "again",
    "go on",
    "go ahead",
    "keep going",
    "the first one",
    "the second one",
    "the third one",
    "the last one",
    "the other one",
    "that one",
    "this one",
    "more detail",
    "more examples",
    "another example",
)
CONNECTIVE_MAX_WORDS = 25  # also the limit for SHORT_REFERENCES
PRONOUN_MAX_WORDS = 12
SHORT_MAX_WORDS = 3
