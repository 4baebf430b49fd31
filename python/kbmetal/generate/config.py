"""Which models a run asks, and how: `provider:model` specs from the command line, or a TOML file.

    --models openai:gpt-4.1,anthropic:claude-sonnet-4-5,ollama:qwen2.5-coder:32b

A spec is `PROVIDER:MODEL`, split at the first colon (model names may hold colons). PROVIDER is
a provider kind (`openai`, `anthropic`, `google`, `replay`), one of the OpenAI-compatible presets
below, or a `[providers.NAME]` of the config. A spec without a colon names a `[[models]]` entry of
the config. A config file looks like:

    [defaults]                        # every model; any model field
    temperature = 0.0
    max_tokens = 8192

    [providers.lab]                   # an endpoint: OpenAI-compatible server, its key, its limit
    kind = "openai"
    base_url = "http://gpu-box:8000/v1"
    key_env = ""                      # "" = the server needs no key
    concurrency = 16                  # requests in flight at once, over all its models

    [[models]]
    spec = "openai:o4-mini"
    name = "o4-mini-high"             # the label in the store and the tables (default: the spec)
    reasoning_effort = "high"
    input_price = 1.10                # USD per million input tokens
    output_price = 4.40               # USD per million output tokens (reasoning tokens included)

    [[models]]
    spec = "lab:qwen3-coder"

Precedence, lowest first: built-in defaults, `[defaults]`, the provider's entry, the model's entry,
then command-line flags (`--temperature`, `--max-tokens`, ...), which apply to every model of the
run. Keys are never written in a config: `key_env` names the environment variable that holds one.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

KINDS = ("openai", "anthropic", "google", "replay")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


@dataclass(frozen=True)
class ProviderPreset:
    kind: str
    base_url: str | None
    key_env: str  # "" when the endpoint needs no key


# OpenAI-compatible servers are reached through the openai SDK with their base URL.
PRESETS: dict[str, ProviderPreset] = {
    "openai": ProviderPreset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": ProviderPreset("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
    "google": ProviderPreset("google", None, "GEMINI_API_KEY"),
    "openrouter": ProviderPreset("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "vllm": ProviderPreset("openai", "http://localhost:8000/v1", ""),
    "sglang": ProviderPreset("openai", "http://localhost:30000/v1", ""),
    "ollama": ProviderPreset("openai", "http://localhost:11434/v1", ""),
    "llamacpp": ProviderPreset("openai", "http://localhost:8080/v1", ""),
    "replay": ProviderPreset("replay", None, ""),
}


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run, fully resolved. Holds the name of the key's variable, never a key."""

    label: str  # unique within a run: the `model` of its candidates
    provider: str  # the provider name as written (a kind, a preset or a config provider)
    kind: str  # openai | anthropic | google | replay
    model: str
    base_url: str | None = None
    key_env: str = ""
    temperature: float | None = None
    max_tokens: int = 8192
    reasoning_effort: str | None = None
    input_price: float | None = None  # USD per million input tokens
    output_price: float | None = None  # USD per million output tokens
    timeout: float = 600.0  # seconds per HTTP request
    max_retries: int = 6
    concurrency: int = 4  # requests in flight at once on this endpoint, over all its models
    extra_body: dict[str, Any] = field(default_factory=dict)  # passed to the API as it is

    @property
    def endpoint(self) -> str:
        """What a concurrency limit counts against: one server with one key."""
        return f"{self.kind}|{self.base_url or ''}|{self.key_env}"

    def identity(self) -> dict[str, Any]:
        """What changes the answers: enters the run's fingerprint and the run record."""
        data = dataclasses.asdict(self)
        for name in ("timeout", "max_retries", "concurrency"):
            data.pop(name)
        return data


# Fields a [defaults], [providers.X] or [[models]] entry may set, with their types.
_FIELDS: dict[str, tuple[type, ...]] = {
    "base_url": (str,),
    "key_env": (str,),
    "temperature": (int, float),
    "max_tokens": (int,),
    "reasoning_effort": (str,),
    "input_price": (int, float),
    "output_price": (int, float),
    "timeout": (int, float),
    "max_retries": (int,),
    "concurrency": (int,),
    "extra_body": (dict,),
}


def _check_fields(entry: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    for name, value in entry.items():
        types = _FIELDS.get(name)
        if types and (not isinstance(value, types) or isinstance(value, bool)):
            want = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{where}: {name} must be {'an' if want[0] in 'aeiou' else 'a'} {want}, got {value!r}")
    return entry


def _validate(spec: ModelSpec, where: str) -> ModelSpec:
    if spec.temperature is not None and not 0.0 <= spec.temperature <= 2.0:
        raise ConfigError(f"{where}: temperature {spec.temperature} is outside 0..2")
    if spec.max_tokens < 16:
        raise ConfigError(f"{where}: max_tokens {spec.max_tokens} is too small for a kernel (use 4096 or more)")
    if spec.reasoning_effort is not None and spec.reasoning_effort not in REASONING_EFFORTS:
        raise ConfigError(
            f"{where}: reasoning_effort {spec.reasoning_effort!r} is not one of {', '.join(REASONING_EFFORTS)}"
        )
    for name in ("input_price", "output_price"):
        value = getattr(spec, name)
        if value is not None and value < 0:
            raise ConfigError(f"{where}: {name} must not be negative (USD per million tokens)")
    if spec.timeout <= 0 or spec.concurrency < 1 or spec.max_retries < 0:
        raise ConfigError(f"{where}: timeout must be positive, concurrency at least 1, max_retries at least 0")
    if spec.base_url is not None and not spec.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: base_url {spec.base_url!r} must start with http:// or https://")
    return spec


@dataclass
class Config:
    """A parsed config file (or none): defaults, named providers, named models."""

    defaults: dict[str, Any] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    path: pathlib.Path | None = None

    def where(self) -> str:
        return str(self.path) if self.path else "the command line"

    def provider(self, name: str) -> tuple[ProviderPreset, dict[str, Any]] | None:
        """The preset a provider name stands for, and the config's settings for it."""
        settings = dict(self.providers.get(name, {}))
        if name in self.providers:
            kind = settings.pop("kind", None) or (PRESETS[name].kind if name in PRESETS else None)
            if kind not in KINDS:
                raise ConfigError(
                    f"{self.where()}: [providers.{name}] needs kind = one of {', '.join(KINDS)}"
                    f"{'' if kind is None else f' (got {kind!r})'}"
                )
            base = PRESETS.get(name) or PRESETS[kind]
            preset = ProviderPreset(kind, settings.pop("base_url", base.base_url), settings.pop("key_env", base.key_env))
            return preset, settings
        if name in PRESETS:
            return PRESETS[name], {}
        return None

    def named_model(self, name: str) -> dict[str, Any] | None:
        for entry in self.models:
            if entry.get("name", entry.get("spec")) == name:
                return entry
        return None

    def known_providers(self) -> list[str]:
        return sorted(set(PRESETS) | set(self.providers))


def load_config(path: str | pathlib.Path | None) -> Config:
    """Read a TOML config; None gives the empty config (command-line specs only)."""
    if path is None:
        return Config()
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"{path}: reading TOML on Python 3.10 needs tomli: pip install tomli") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"defaults", "providers", "models"})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(unknown)}; known: defaults, providers, models")
    fields = set(_FIELDS)
    defaults = _check_fields(dict(data.get("defaults", {})), f"{path} [defaults]", fields)
    providers = {}
    for name, entry in dict(data.get("providers", {})).items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: [providers.{name}] must be a table")
        if ":" in name:
            raise ConfigError(f"{path}: provider name {name!r} must not contain ':'")
        providers[name] = _check_fields(dict(entry), f"{path} [providers.{name}]", fields | {"kind"})
        kind = entry.get("kind") or (PRESETS[name].kind if name in PRESETS else None)
        if kind not in KINDS:
            raise ConfigError(
                f"{path}: [providers.{name}] needs kind = one of {', '.join(KINDS)}"
                f"{'' if kind is None else f' (got {kind!r})'} (only the built-in providers "
                f"{', '.join(PRESETS)} may leave it out)"
            )
    models = []
    for i, entry in enumerate(data.get("models", [])):
        where = f"{path} [[models]] #{i + 1}"
        if not isinstance(entry, dict) or not isinstance(entry.get("spec"), str):
            raise ConfigError(f"{where}: needs spec = \"provider:model\"")
        _check_fields(dict(entry), where, fields | {"spec", "name"})
        models.append(dict(entry))
    config = Config(defaults, providers, models, path)
    names = [m.get("name", m["spec"]) for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model name(s) {', '.join(duplicates)} used twice; give each [[models]] its own name")
    return config


def resolve_models(specs: list[str] | None, config: Config, overrides: dict[str, Any] | None = None) -> list[ModelSpec]:
    """The ModelSpecs of a run: `specs` from --models (None: every [[models]] of the config),
    with command-line `overrides` (model fields) on top. Labels are unique."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if specs is None:
        if not config.models:
            raise ConfigError("no models: give --models provider:model,... or a --config with [[models]] entries")
        specs = [m.get("name", m["spec"]) for m in config.models]
    resolved = [_resolve_one(text.strip(), config, overrides) for text in specs if text.strip()]
    if not resolved:
        raise ConfigError("--models is empty; give provider:model,... (e.g. openai:gpt-4.1)")
    labels = [s.label for s in resolved]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(
            f"model {', '.join(duplicates)} is named twice; a run asks each model once "
            "(to ask one model with two settings, give two [[models]] entries distinct names)"
        )
    return resolved


def _resolve_one(text: str, config: Config, overrides: dict[str, Any]) -> ModelSpec:
    entry = config.named_model(text)
    if entry is None:
        if ":" not in text:
            known = ", ".join(m.get("name", m["spec"]) for m in config.models) or "none"
            raise ConfigError(
                f"model {text!r} is not provider:model and no [[models]] entry of {config.where()} is named so "
                f"(named models: {known})"
            )
        entry = {"spec": text}
    where = f"model {entry.get('name', entry['spec'])!r}"
    provider_name, _, model = entry["spec"].partition(":")
    if not model:
        raise ConfigError(f"{where}: {entry['spec']!r} names no model after the provider (write provider:model)")
    found = config.provider(provider_name)
    if found is None:
        raise ConfigError(
            f"{where}: unknown provider {provider_name!r}; known: {', '.join(config.known_providers())} "
            "(add a [providers.NAME] table with kind and base_url for another OpenAI-compatible server)"
        )
    preset, provider_settings = found
    values: dict[str, Any] = {"base_url": preset.base_url, "key_env": preset.key_env}
    for layer in (config.defaults, provider_settings, {k: v for k, v in entry.items() if k not in ("spec", "name")}, overrides):
        values.update(layer)
    for name in ("temperature", "input_price", "output_price", "timeout"):
        if values.get(name) is not None:
            values[name] = float(values[name])
    spec = ModelSpec(
        label=entry.get("name", entry["spec"]),
        provider=provider_name,
        kind=preset.kind,
        model=model,
        **values,
    )
    return _validate(spec, where)


def identities(models: list[ModelSpec]) -> str:
    """The models of a run as canonical JSON (for fingerprints and the run record)."""
    return json.dumps([m.identity() for m in models], sort_keys=True)
