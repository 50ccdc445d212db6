"""Fixtures for the service itself: fake model backends, per-test settings, services and a live HTTP server.

Every test gets its own blob container and Cosmos database (unique names), so tests never see each other's
data while sharing one Azurite and one Cosmos emulator for the whole session.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
import uvicorn
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from shared.app import Services, build_services
from shared.config import Settings, reset_settings_cache
from tools.emulators import Azurite, CosmosEmulator
from tools.fake_model import FakeModelServer

MODEL_NAMES = {"local": "llama3.2", "cloud": "gpt-4o-mini", "foundry": "phi-4", "apim": "gpt-4o"}


@pytest.fixture(scope="session")
def model_servers() -> Iterator[dict[str, FakeModelServer]]:
    """One fake OpenAI-compatible server per backend, for the whole session."""
    servers = {name: FakeModelServer(name, models=(model,)) for name, model in MODEL_NAMES.items()}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def models(model_servers: dict[str, FakeModelServer]) -> Iterator[dict[str, FakeModelServer]]:
    """The fake backends, emptied of scripts and logs before and after each test."""
    for server in model_servers.values():
        if not server.running:
            server.start()
        server.clear()
    yield model_servers
    for server in model_servers.values():
        if not server.running:
            server.start()
        server.clear()


def service_env(
    azurite: Azurite,
    cosmos: CosmosEmulator,
    models: Mapping[str, FakeModelServer],
    backends: tuple[str, ...] = ("local", "cloud"),
    **overrides: str,
) -> dict[str, str]:
    """Environment for one test: its own container and database, and the chosen fake backends."""
    suffix = uuid.uuid4().hex[:12]
    env = {
        "STORAGE_CONNECTION_STRING": azurite.connection_string,
        "SNAPSHOT_CONTAINER": f"test-{suffix}",
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_DATABASE": f"db-{suffix}",
        "STORAGE_MAX_RETRIES": "1",
        "TRUST_PRINCIPAL_HEADERS": "true",  # the tests play App Service Authentication's part
        "MODEL_TIMEOUT_SECONDS": "5",
    }
    for name in backends:
        prefix = f"{name.upper()}_MODEL_"
        env[prefix + "ENDPOINT"] = models[name].base_url
        env[prefix + "NAME"] = MODEL_NAMES[name]
        env[prefix + "API_KEY"] = f"key-{name}"
    env.update(overrides)
    return env


@pytest.fixture
def make_env(
    azurite: Azurite, cosmos_emulator: CosmosEmulator, models: dict[str, FakeModelServer]
) -> Callable[..., dict[str, str]]:
    def make(backends: tuple[str, ...] = ("local", "cloud"), **overrides: str) -> dict[str, str]:
        return service_env(azurite, cosmos_emulator, models, backends, **overrides)

    return make


@pytest.fixture
async def make_services(make_env: Callable[..., dict[str, str]]) -> AsyncIterator[Callable[..., Any]]:
    """Build `Services` from an environment (as a worker process would); all are closed after the test."""
    built: list[Services] = []

    async def make(env: Mapping[str, str] | None = None, **overrides: str) -> Services:
        services = await build_services(Settings.from_env(env if env is not None else make_env(**overrides)))
        built.append(services)
        return services

    yield make
    for services in built:
        await services.close()


@pytest.fixture
async def services(make_services: Callable[..., Any]) -> Services:
    return await make_services()


class LiveServer:
    """The dev server's app (the function app's own handlers) on uvicorn in a thread, on a free port."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self._saved: dict[str, str | None] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> LiveServer:
        from tools.devserver import create_app
        from tools.emulators import free_port

        for key, value in self.env.items():
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        reset_settings_cache()
        self.port = free_port()
        config = uvicorn.Config(create_app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=20)
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings_cache()


@pytest.fixture
def live_server(make_env: Callable[..., dict[str, str]]) -> Iterator[Callable[..., LiveServer]]:
    """Start the HTTP API against the emulators; `live_server(**env_overrides)` returns a running server."""
    started: list[LiveServer] = []

    def start(env: Mapping[str, str] | None = None, **overrides: str) -> LiveServer:
        server = LiveServer(env if env is not None else make_env(**overrides)).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def api(live_server: Callable[..., LiveServer]) -> Iterator[httpx.Client]:
    """An HTTP client on a live server with the default backends (local + cloud)."""
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def container(azurite: Azurite) -> AsyncIterator[ContainerClient]:
    """An empty blob container of its own in the session's Azurite, removed after the test."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_container_client(f"snap-{uuid.uuid4().hex[:12]}")
    await client.create_container()
    yield client
    await client.delete_container()
    await service.close()
