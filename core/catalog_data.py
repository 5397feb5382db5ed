"""The bundled catalog: common providers with the models they serve, current and older.

Older names stay listed while the provider still answers to them (or an alias does), so
that a proxy's existing selections validate. Providers whose model names are chosen by
the operator (a local server, a cloud deployment name) accept any model.
"""

from __future__ import annotations

# provider -> models; None means "any model name is accepted".
BUNDLED_PROVIDERS: dict[str, tuple[str, ...] | None] = {
    "openai": (
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-chat-latest",
        "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
        "gpt-4o", "gpt-4o-mini", "chatgpt-4o-latest",
        "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo",
        "o1", "o1-mini", "o3", "o3-mini", "o3-pro", "o4-mini",
        "gpt-oss-120b", "gpt-oss-20b",
    ),
    "anthropic": (
        "claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5",
        "claude-opus-4-1", "claude-opus-4", "claude-sonnet-4",
        "claude-3-7-sonnet", "claude-3-5-sonnet", "claude-3-5-haiku",
        "claude-3-opus", "claude-3-sonnet", "claude-3-haiku",
    ),
    "google": (
        "gemini-3-pro-preview", "gemini-2.5-pro", "gemini-2.5-flash",
        "gemini-2.5-flash-lite", "gemini-2.0-flash", "gemini-2.0-flash-lite",
        "gemini-1.5-pro", "gemini-1.5-flash",
    ),
    "mistral": (
        "mistral-large-latest", "mistral-medium-latest", "mistral-small-latest",
        "magistral-medium-latest", "magistral-small-latest", "codestral-latest",
        "devstral-medium-latest", "pixtral-large-latest", "ministral-8b-latest",
        "ministral-3b-latest", "open-mistral-nemo",
    ),
    "cohere": (
        "command-a-03-2025", "command-r-plus", "command-r", "command-r7b-12-2024",
    ),
    "deepseek": ("deepseek-chat", "deepseek-reasoner"),
    "xai": ("grok-4", "grok-4-fast", "grok-3", "grok-3-mini", "grok-2"),
    "groq": (
        "llama-3.3-70b-versatile", "llama-3.1-8b-instant",
        "openai/gpt-oss-120b", "openai/gpt-oss-20b", "qwen/qwen3-32b",
        "moonshotai/kimi-k2-instruct",
    ),
    "bedrock": (
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "anthropic.claude-3-haiku-20240307-v1:0",
        "amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0",
        "meta.llama3-1-70b-instruct-v1:0", "mistral.mistral-large-2407-v1:0",
    ),
    "azure-openai": None,  # deployment names are chosen per Azure resource
    "openrouter": None,
    "ollama": None,
    "vllm": None,
    "lmstudio": None,
}
