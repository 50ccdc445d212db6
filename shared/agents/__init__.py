"""Agents: one Agent Framework `Agent` per configured backend, the classification of model-call failures, the
validation of imported Agent Framework and OpenAI messages, and the one adapter that knows `AgentSession`'s
dict layout. The only package that imports Agent Framework or `openai`."""
