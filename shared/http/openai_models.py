"""The OpenAI Chat Completions shapes of `/api/v1`: what `openai` and every client built on it send and expect.

Requests accept the standard fields. Passed to the model when set: `temperature`, `top_p`, `max_tokens` /
`max_completion_tokens` (held to MODEL_MAX_OUTPUT_TOKENS), `stop`, `seed`; `stream` with
`stream_options.include_usage`. Accepted and ignored: `user` (identity always comes from the caller's
principal), `n` (only 1), `metadata` and the sampling knobs a router cannot honour the same way on every backend
(`presence_penalty`, `frequency_penalty`, `logit_bias`, `logprobs`, ...). Refused with 422: `tools`,
`tool_choice`, `functions`, `function_call` (this router runs no client tools), a `response_format` other than
text, and `audio`. Unknown fields are refused, as OpenAI refuses them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from shared.http.models import Shape  # built on first use, as every HTTP shape


class StreamOptions(Shape):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class TextFormat(Shape):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]


class ChatCompletionRequest(Shape):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="`auto` lets the router choose; a backend name (local, cloud, ...) forces it.")
    messages: list[dict[str, Any]] = Field(
        min_length=1, description="The conversation so far and, last, the new user message."
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(None, description="Up to 4 sequences.")
    seed: int | None = None
    # Accepted and ignored.
    user: str | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only 1.")
    metadata: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    # Not supported (this router runs no client tools and answers in text): null or absent only.
    tools: None = Field(None, description="Not supported.")
    tool_choice: None = Field(None, description="Not supported.")
    functions: None = Field(None, description="Not supported.")
    function_call: None = Field(None, description="Not supported.")
    response_format: TextFormat | None = Field(None, description="Text only.")
    audio: None = Field(None, description="Not supported.")


class AssistantMessage(Shape):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class Choice(Shape):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class CompletionUsage(Shape):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(Shape):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = Field(description="The model that actually answered.")
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ChunkDelta(Shape):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(Shape):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(Shape):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None


class Model(Shape):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(Shape):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIErrorBody(Shape):
    message: str
    type: str = Field(description="invalid_request_error, not_found_error, rate_limit_error or api_error.")
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(Shape):
    error: OpenAIErrorBody
