"""The pure domain: plain values and decisions, no I/O, no clock, no SDK.

Ids and errors, turn records and session summaries, analytics and prices, the stored message format, context
capping, redaction and the router. Everything here takes plain values and returns plain values, so it is
testable in microseconds; every other layer builds on it and it imports none of them.
"""
