"""Model backends: one Agent Framework `Agent` per configured backend, over Chat Completions.

Every backend, Azure included, uses `OpenAIChatCompletionClient` (Chat Completions). The Responses API
client keeps history on the service, which silently loses the thread when a conversation moves between
backends; here the history is always ours, in the session we pass, and `service_session_id` stays empty.

The `openai` client under each agent is built here, not by Agent Framework, so timeouts and retries come
from our settings and no `OPENAI_*`/`AZURE_OPENAI_*` environment variable changes where a turn goes.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx2
import openai
from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient

from shared.config import BackendSettings, Settings
from shared.config.network import proxy_for

logger = logging.getLogger(__name__)

# The Entra ID scope of Azure OpenAI and Foundry endpoints (the token provider is built for it).
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
# Sent when a backend needs no key (a local model): the openai client refuses to start without one.
PLACEHOLDER_API_KEY = "not-needed"

TokenProvider = Callable[[], Any]


@dataclass(frozen=True)
class Backend:
    name: str
    model: str
    agent: Agent
    openai_client: openai.AsyncOpenAI
    config: BackendSettings

    async def close(self) -> None:
        await self.openai_client.close()


def _is_openai_v1_path(endpoint: str) -> bool:
    return urlparse(endpoint).path.rstrip("/").endswith("/v1")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context every backend's HTTP client shares, made as the openai SDK's own client
    makes it (`httpx2`, the SDK's HTTP library: the platform's trust store, `SSL_CERT_*` not read, as with
    `trust_env=False`), once: loading a trust store takes about 80 ms, which each client otherwise pays itself."""
    return httpx2.create_ssl_context(trust_env=False)


def http_client(endpoint: str, timeout: float) -> openai.DefaultAioHttpClient:
    """The HTTP client under one backend's openai client: aiohttp (a profile put httpx's request handling at
    about a fifth more client CPU per model call), the environment read once (`shared.config.network`)."""
    return openai.DefaultAioHttpClient(
        timeout=timeout, trust_env=False, proxy=proxy_for(endpoint), verify=tls_context()
    )


def build_openai_client(
    config: BackendSettings, settings: Settings, token_provider: TokenProvider | None
) -> openai.AsyncOpenAI:
    """The openai client for one backend: Azure style, or any OpenAI-compatible base URL."""
    headers: dict[str, str] = {}
    api_key = config.api_key
    if config.name == "apim" and config.api_key:
        # API Management reads its subscription key from this header, not from the bearer token.
        headers["Ocp-Apim-Subscription-Key"] = config.api_key
        api_key = PLACEHOLDER_API_KEY
    common: dict[str, Any] = {
        "timeout": settings.model_timeout_seconds,
        "max_retries": settings.model_max_retries,
        "default_headers": headers or None,
        "http_client": http_client(config.endpoint, settings.model_timeout_seconds),
    }
    use_entra = config.is_azure and not config.api_key
    if use_entra and token_provider is None:
        raise ValueError(f"{config.name} backend needs Entra ID but no credential is available")
    if config.is_azure and not _is_openai_v1_path(config.endpoint):
        if use_entra:
            return openai.AsyncAzureOpenAI(
                azure_endpoint=config.endpoint,
                api_version=settings.azure_openai_api_version,
                azure_ad_token_provider=token_provider,
                **common,
            )
        return openai.AsyncAzureOpenAI(
            azure_endpoint=config.endpoint, api_version=settings.azure_openai_api_version, api_key=api_key, **common
        )
    if use_entra:
        # The v1 surface of Azure OpenAI/Foundry takes the Entra token as the bearer key, refreshed per call.
        return openai.AsyncOpenAI(base_url=config.endpoint, api_key=token_provider, **common)  # type: ignore[arg-type]
    return openai.AsyncOpenAI(base_url=config.endpoint, api_key=api_key or PLACEHOLDER_API_KEY, **common)


def send_messages_as_given(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """Chat requests carry their messages as Agent Framework built them (wire-format dicts), in `extra_body`.

    Otherwise the SDK's request transform walks every field of every message against its typed definitions on
    every call, to change nothing in a text or tool message: a profile of the server put it at about a seventh
    of the CPU of a turn, growing with the history. `extra_body` is the SDK's documented way to send body fields
    as given; the JSON on the wire is the same.
    """
    completions = client.chat.completions
    create = completions.create

    async def create_as_given(*, messages: Any, extra_body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return await create(messages=[], extra_body={**(extra_body or {}), "messages": list(messages)}, **kwargs)

    completions.create = create_as_given  # type: ignore[method-assign,assignment]
    return client


def build_backends(settings: Settings, token_provider: TokenProvider | None = None) -> dict[str, Backend]:
    """One agent per configured backend; built once per process and reused by every turn."""
    backends: dict[str, Backend] = {}
    default_options: dict[str, Any] = {}
    if settings.model_max_output_tokens:
        default_options["max_tokens"] = settings.model_max_output_tokens
    for name in settings.configured_backends:
        config = settings.backends[name]
        client = send_messages_as_given(build_openai_client(config, settings, token_provider))
        chat_client = OpenAIChatCompletionClient(model=config.model, async_client=client)
        agent = Agent(
            client=chat_client,
            instructions=settings.system_prompt,
            name=f"router-{name}",
            default_options=default_options or None,  # type: ignore[arg-type]
        )
        backends[name] = Backend(name=name, model=config.model, agent=agent, openai_client=client, config=config)
        logger.info("backend %s configured (model %s, azure=%s)", name, config.model, config.is_azure)
    return backends
