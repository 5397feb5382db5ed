"""The catalog: the bundled default, catalog files (JSON and TOML), catalogs built in code,
any-model providers, and errors that name the closest valid names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelboard.core import Catalog, ProviderSpec, open_store
from modelboard.core.errors import ConfigurationError, ValidationError

# Every model the seed and the issue use in their examples.
SEED_EXAMPLE_MODELS = [
    ("openai", "gpt-4"), ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-sonnet"), ("anthropic", "claude-sonnet-4-5"),
]


@pytest.mark.parametrize(("provider", "model"), SEED_EXAMPLE_MODELS)
def test_bundled_catalog_accepts_the_seed_examples(provider: str, model: str) -> None:
    Catalog.default().validate(provider, model)


def test_bundled_catalog_has_the_common_providers() -> None:
    catalog = Catalog.default()
    for provider in ("openai", "anthropic", "google", "mistral", "cohere", "deepseek", "xai",
                     "groq", "azure-openai", "bedrock", "ollama", "vllm"):
        assert provider in catalog
    assert "gpt-4o" in catalog.models("openai")
    assert catalog.models("nonexistent") == ()


@pytest.mark.parametrize("provider", ["ollama", "vllm", "azure-openai"])
def test_local_servers_accept_any_model_name(provider: str) -> None:
    catalog = Catalog.default()
    catalog.validate(provider, "my-org/finetune-7b:q4_K_M")
    assert catalog[provider].any_model
    with pytest.raises(ValidationError, match="control character"):
        catalog.validate(provider, "bad\x1bname")  # still a name, never a terminal escape


def test_unknown_model_names_the_closest_valid_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        Catalog.default().validate("openai", "gpt-4-tubro")
    error = raised.value
    assert error.provider == "openai"
    assert error.suggestions and error.suggestions[0] == "gpt-4-turbo"
    assert str(error).startswith("openai: model 'gpt-4-tubro' is not served by openai; "
                                 "did you mean 'gpt-4-turbo'")
    assert "\n" not in str(error)


def test_unknown_provider_names_the_closest_valid_ones() -> None:
    with pytest.raises(ValidationError) as raised:
        Catalog.default().validate("opnai", "gpt-4o")
    assert raised.value.suggestions[0] == "openai"
    assert str(raised.value).startswith("unknown provider 'opnai'; did you mean 'openai'")


def test_nothing_close_lists_what_exists() -> None:
    catalog = Catalog.from_mapping({"acme": ["rocket-1", "rocket-2"]})
    with pytest.raises(ValidationError, match="known providers: acme"):
        catalog.validate("zzzzzz", "rocket-1")
    with pytest.raises(ValidationError, match="it serves rocket-1, rocket-2"):
        catalog.validate("acme", "qqqqqqqqqq")


def test_catalog_built_in_code_decides_what_the_store_accepts(data_file: Path) -> None:
    catalog = Catalog([ProviderSpec("internal", ("llm-a", "llm-b")),
                       ProviderSpec("local", any_model=True)])
    store = open_store(data_file, catalog=catalog)
    store.set_model_selection("internal", "llm-b")
    store.set_model_selection("local", "anything-goes")
    with pytest.raises(ValidationError, match="did you mean 'llm-b' or 'llm-a'"):
        store.set_model_selection("internal", "llm-c")
    with pytest.raises(ValidationError, match="unknown provider 'openai'"):
        store.set_model_selection("openai", "gpt-4o")
    mapping = Catalog.from_mapping({"x": None, "y": ["*"], "z": ["m1"]})
    assert mapping["x"].any_model and mapping["y"].any_model and not mapping["z"].any_model


def write_catalog(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


JSON_EXTEND = json.dumps({"providers": {
    "acme": ["rocket-1"], "openai": ["gpt-internal"], "lab": {"any_model": True}}})
TOML_EXTEND = """
[providers]
acme = ["rocket-1"]
openai = ["gpt-internal"]

[providers.lab]
any_model = true
"""


@pytest.mark.parametrize(("name", "text"), [("catalog.json", JSON_EXTEND),
                                            ("catalog.toml", TOML_EXTEND)])
def test_catalog_file_extends_the_bundled_one(tmp_path: Path, name: str, text: str) -> None:
    catalog = Catalog.from_file(write_catalog(tmp_path, name, text))
    catalog.validate("acme", "rocket-1")
    catalog.validate("openai", "gpt-internal")
    catalog.validate("openai", "gpt-4o")            # the bundled models are still there
    catalog.validate("anthropic", "claude-3-opus")  # and the bundled providers
    catalog.validate("lab", "whatever")


@pytest.mark.parametrize(("name", "text"), [
    ("catalog.json", json.dumps({"mode": "replace", "providers": {"acme": ["rocket-1"]}})),
    ("catalog.toml", 'mode = "replace"\n[providers]\nacme = ["rocket-1"]\n'),
])
def test_catalog_file_replaces_the_bundled_one(tmp_path: Path, name: str, text: str) -> None:
    catalog = Catalog.from_file(write_catalog(tmp_path, name, text))
    assert list(catalog) == ["acme"]
    with pytest.raises(ValidationError):
        catalog.validate("openai", "gpt-4o")


def test_open_store_takes_a_catalog_path(tmp_path: Path, data_file: Path) -> None:
    path = write_catalog(tmp_path, "catalog.toml", TOML_EXTEND)
    store = open_store(data_file, catalog=str(path))
    assert store.set_model_selection("acme", "rocket-1").model_name == "rocket-1"


def test_modelboard_catalog_names_the_catalog_when_none_is_given(
        tmp_path: Path, data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_catalog(tmp_path, "catalog.toml", TOML_EXTEND)
    with pytest.raises(ValidationError):
        open_store(data_file).set_model_selection("acme", "rocket-1")
    monkeypatch.setenv("MODELBOARD_CATALOG", str(path))
    assert open_store(data_file).set_model_selection("acme", "rocket-1").model_name == "rocket-1"
    explicit = Catalog.from_mapping({"lab": None})
    assert "acme" not in open_store(data_file, catalog=explicit).catalog  # given beats the variable
    monkeypatch.setenv("MODELBOARD_CATALOG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigurationError, match=r"gone\.toml"):
        open_store(data_file)


@pytest.mark.parametrize(("name", "text", "fragment", "where"), [
    ("bad.json", '{"providers": {"acme": ["rocket-1",]}}', "Expecting value", (1, 36)),
    ("bad.toml", '[providers]\nacme = ["rocket-1"\nlab = 1\n', "Unclosed array", (3, 1)),
    ("cut.toml", '[providers]\nacme = [\n', "not a valid catalog", (3, 1)),
    ("typo.json", '{"provders": {}}', "provders", None),
    ("bad-model.json", '{"providers": {"acme": [42]}}', "providers.acme", None),
    ("escape.json", '{"providers": {"acme": ["\\u001b[2J"]}}', "control character", None),
])
def test_bad_catalog_files_give_one_line_naming_the_spot(
        tmp_path: Path, name: str, text: str, fragment: str,
        where: tuple[int, int] | None) -> None:
    path = write_catalog(tmp_path, name, text)
    with pytest.raises(ConfigurationError) as raised:
        Catalog.from_file(path)
    message = str(raised.value)
    assert fragment in message and "\n" not in message
    assert message.startswith(str(path))
    if where is not None:
        assert (raised.value.line, raised.value.column) == where, message


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read catalog: No such file"):
        Catalog.from_file(tmp_path / "nope.json")


def test_a_catalog_says_what_it_holds_when_printed() -> None:
    assert repr(Catalog.from_mapping({"b": ["m"], "a": None})) == "<Catalog of 2 providers: a, b>"
    assert repr(Catalog.default()).startswith(f"<Catalog of {len(Catalog.default())} providers: ")


def test_get_is_the_mapping_get() -> None:
    catalog = Catalog.from_mapping({"openai": ["gpt-4o"]})
    assert catalog.get("openai") == catalog["openai"]
    assert catalog.get("nobody") is None
    assert catalog.get("nobody", "fallback") == "fallback"
    assert catalog.get("nobody", default="fallback") == "fallback"  # as Mapping.get allows
