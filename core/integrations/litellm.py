"""A LiteLLM proxy that takes each provider's model from a modelboard store.

Clients ask for a provider, ``modelboard/openai``; the hook rewrites the request to
the model selected for it now, ``openai/gpt-4.1``, which a wildcard ``model_list``
entry (``openai/*``) routes. In LiteLLM's ``config.yaml``::

    model_list:
      - model_name: "openai/*"
        litellm_params: {model: "openai/*", api_key: os.environ/OPENAI_API_KEY}
    litellm_settings:
      callbacks: modelboard.integrations.litellm.proxy_handler

``proxy_handler`` reads ``$MODELBOARD_FILE`` (else ``config/model_selections.json``),
opened on the first request and watched: an operator's change (editor, ``modelboard
set``) moves the next request, a locked provider keeps its model. For another file or
another provider mapping, make your own instance (see :class:`ModelboardRouter`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from modelboard.core import NotFoundError, SelectionStore, open_store

__all__ = ["LITELLM_PROVIDERS", "ModelboardRouter", "proxy_handler"]

#: modelboard's provider names that LiteLLM spells differently (its model prefixes).
#: Every other provider keeps its name (openai, anthropic, mistral, groq, xai …).
LITELLM_PROVIDERS: Mapping[str, str] = {
    "azure-openai": "azure",
    "google": "gemini",
    "lmstudio": "lm_studio",
    "vllm": "hosted_vllm",
}


class ModelboardRouter(CustomLogger):  # type: ignore[misc]  # litellm is not type-checked
    """A LiteLLM callback whose pre-call hook routes ``modelboard/<provider>`` requests.

    ``location`` is the store (a file or ``redis://`` URL; default as ``open_store``),
    opened with ``watch=True`` on first use; or pass an open ``store``. ``providers``
    is added to (and overrides) :data:`LITELLM_PROVIDERS`. ``prefix`` is how clients
    name a provider. A request for another model passes through untouched.
    """

    def __init__(self, location: str | None = None, *, store: SelectionStore | None = None,
                 providers: Mapping[str, str] | None = None,
                 prefix: str = "modelboard/") -> None:
        super().__init__()
        self._location = location
        self._store = store
        self._opening = threading.Lock()
        self.providers = {**LITELLM_PROVIDERS, **(providers or {})}
        self.prefix = prefix

    @property
    def store(self) -> SelectionStore:
        """The store, opened (and watched) on first use."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = open_store(self._location, watch=True)
        return self._store

    def route(self, requested: str) -> str | None:
        """The LiteLLM model for ``requested`` (``modelboard/openai`` -> ``openai/gpt-4o``).

        None when ``requested`` does not name a provider through modelboard; raises
        :class:`NotFoundError` when it does and no model is selected for it.
        """
        if not requested.startswith(self.prefix):
            return None
        provider = requested[len(self.prefix):]
        selection = self.store.get_model_selection(provider)
        if selection is None:
            raise NotFoundError(provider)
        return f"{self.providers.get(provider, provider)}/{selection.model_name}"

    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any,
                                  data: dict[str, Any], call_type: Any) -> dict[str, Any]:
        requested = data.get("model")
        if isinstance(requested, str):
            routed = self.route(requested)
            if routed is not None:
                data["model"] = routed
                metadata = data.get("metadata")
                if isinstance(metadata, dict):
                    metadata["modelboard"] = {"requested": requested, "routed": routed}
        return data


#: The callback to name in LiteLLM's config.yaml: the default store, default mapping.
proxy_handler = ModelboardRouter()
