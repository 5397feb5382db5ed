"""modelboard.integrations.litellm with the real ``litellm`` package, against a fake
OpenAI-compatible upstream on loopback.

The LiteLLM proxy server is not installable from PyPI on its own (its ``proxy`` extra
needs a ``litellm-proxy`` distribution), so the test does what the proxy does with a
request: the callback's ``async_pre_call_hook`` with LiteLLM's own auth and cache
types, then a real ``litellm.Router`` built from a ``config.yaml``-style
``model_list`` with wildcard entries, whose HTTP call reaches the fake upstream.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch at import
litellm = pytest.importorskip("litellm")
from litellm.caching.caching import DualCache  # noqa: E402
from litellm.proxy._types import UserAPIKeyAuth  # noqa: E402

from modelboard.core import NotFoundError, open_store  # noqa: E402
from modelboard.integrations.litellm import (  # noqa: E402
    LITELLM_PROVIDERS,
    ModelboardRouter,
)

pytestmark = pytest.mark.slow


class Upstream:
    """An OpenAI-compatible chat endpoint that records which model each request asked for."""

    def __init__(self) -> None:
        self.models: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                upstream.models.append(body["model"])
                reply = json.dumps({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "hello"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def selections(data_file: Path) -> Path:
    store = open_store(data_file)
    store.bulk_set_model_selections({"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"})
    store.close()
    return data_file


def modelboard(*args: str, file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelboard", *args, "--file", str(file)],
                          capture_output=True, text=True, timeout=60, check=False)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def router_for(upstream: Upstream) -> Any:
    """The Router a proxy builds from config.yaml's model_list: one wildcard per provider,
    each sent to the fake upstream as OpenAI-compatible (``openai/*``)."""
    return litellm.Router(model_list=[
        {"model_name": f"{prefix}/*",
         "litellm_params": {"model": "openai/*", "api_base": upstream.url,
                            "api_key": "sk-test"}}
        for prefix in ("openai", "anthropic")])


async def ask(handler: ModelboardRouter, router: Any, model: str) -> tuple[dict[str, Any], Any]:
    """One chat request through the hook and the router, as the proxy handles it."""
    data: dict[str, Any] = {"model": model, "metadata": {},
                            "messages": [{"role": "user", "content": "hi"}]}
    data = await handler.async_pre_call_hook(user_api_key_dict=UserAPIKeyAuth(),
                                             cache=DualCache(), data=data,
                                             call_type="completion")
    response = await router.acompletion(**data)
    return data, response


def test_requests_follow_the_selection_live_and_a_lock_holds(
        selections: Path, upstream: Upstream) -> None:
    handler = ModelboardRouter(str(selections))
    router = router_for(upstream)

    async def scenario() -> None:
        data, response = await ask(handler, router, "modelboard/openai")
        assert data["model"] == "openai/gpt-4o"
        assert data["metadata"]["modelboard"] == {"requested": "modelboard/openai",
                                                  "routed": "openai/gpt-4o"}
        assert upstream.models[-1] == "gpt-4o"
        assert response.model.endswith("gpt-4o")  # the response names the routed model

        # An operator moves openai; the watching store sees it and the next request follows.
        moved = modelboard("set", "openai", "gpt-4o-mini", file=selections)
        assert moved.returncode == 0, moved.stderr
        wait_for(lambda: handler.store.get_model_selection("openai") is not None
                 and handler.store.get_model_selection("openai").model_name == "gpt-4o-mini",
                 "the store to see the change")
        _data, response = await ask(handler, router, "modelboard/openai")
        assert upstream.models[-1] == "gpt-4o-mini"
        assert response.model.endswith("gpt-4o-mini")

        # A locked provider keeps its model: the change is refused, requests stay put.
        assert modelboard("lock", "anthropic", file=selections).returncode == 0
        refused = modelboard("set", "anthropic", "claude-opus-4-1", file=selections)
        assert refused.returncode == 1 and "locked" in refused.stderr
        wait_for(lambda: not handler.store.get_model_selection("anthropic").editable,
                 "the store to see the lock")
        _data, response = await ask(handler, router, "modelboard/anthropic")
        assert upstream.models[-1] == "claude-sonnet-4-5"

        # A request that names a model itself passes through untouched.
        data, _response = await ask(handler, router, "openai/gpt-4.1")
        assert data["model"] == "openai/gpt-4.1" and upstream.models[-1] == "gpt-4.1"

    try:
        asyncio.run(scenario())
    finally:
        handler.store.close()


def test_provider_names_map_to_litellm_prefixes_and_can_be_overridden(
        data_file: Path) -> None:
    store = open_store(data_file)
    store.bulk_set_model_selections({"google": "gemini-2.5-pro", "azure-openai": "prod-4o",
                                     "lmstudio": "qwen3", "mistral": "mistral-large-latest"})
    default = ModelboardRouter(store=store)
    custom = ModelboardRouter(store=store, providers={"google": "vertex_ai"}, prefix="mb:")

    assert default.route("modelboard/google") == "gemini/gemini-2.5-pro"
    assert default.route("modelboard/azure-openai") == "azure/prod-4o"
    assert default.route("modelboard/lmstudio") == "lm_studio/qwen3"
    assert default.route("modelboard/mistral") == "mistral/mistral-large-latest"
    assert custom.route("mb:google") == "vertex_ai/gemini-2.5-pro"
    assert custom.route("mb:lmstudio") == "lm_studio/qwen3"  # the rest of the defaults stay
    assert custom.route("modelboard/google") is None
    assert LITELLM_PROVIDERS["google"] == "gemini"
    with pytest.raises(NotFoundError, match="openai: no model selected"):
        default.route("modelboard/openai")
    store.close()


def test_the_config_yaml_callback_name_resolves_through_litellm(
        tmp_path: Path, selections: Path) -> None:
    """The dotted name the README puts in config.yaml, loaded by LiteLLM's own loader."""
    from litellm.proxy.types_utils.utils import get_instance_fn

    config = tmp_path / "config.yaml"
    config.write_text("litellm_settings:\n"
                      "  callbacks: modelboard.integrations.litellm.proxy_handler\n")
    loaded = subprocess.run(
        [sys.executable, "-c",
         "from litellm.proxy.types_utils.utils import get_instance_fn\n"
         f"handler = get_instance_fn('modelboard.integrations.litellm.proxy_handler', "
         f"{str(config)!r})\n"
         "print(type(handler).__name__, handler.route('modelboard/openai'))"],
        env={**os.environ, "MODELBOARD_FILE": str(selections),
             "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        capture_output=True, text=True, timeout=120, check=False)

    assert get_instance_fn is not None
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split()[-2:] == ["ModelboardRouter", "openai/gpt-4o"]
