"""Model specs from the command line and TOML configs; keys from the environment only."""

from __future__ import annotations

import os

import pytest


def _resolve(specs, config=None, overrides=None):
    from kbmetal.generate.config import Config, resolve_models

    return resolve_models(specs, config or Config(), overrides)


def test_command_line_specs_and_presets():
    a, b, c = _resolve(["openai:gpt-4.1", "ollama:qwen2.5-coder:32b", "anthropic:claude-x"])
    assert (a.kind, a.model, a.base_url, a.key_env) == ("openai", "gpt-4.1", "https://api.openai.com/v1", "OPENAI_API_KEY")
    assert (b.kind, b.model, b.base_url, b.key_env) == ("openai", "qwen2.5-coder:32b", "http://localhost:11434/v1", "")
    assert b.label == "ollama:qwen2.5-coder:32b"  # model names keep their colons
    assert (c.kind, c.key_env) == ("anthropic", "ANTHROPIC_API_KEY")


def test_command_line_flags_apply_to_every_model():
    [spec] = _resolve(["vllm:m"], overrides={"temperature": 0.2, "max_tokens": 4096, "base_url": "http://box:9/v1",
                                             "input_price": 1, "concurrency": None})
    assert (spec.temperature, spec.max_tokens, spec.base_url, spec.input_price) == (0.2, 4096, "http://box:9/v1", 1.0)
    assert spec.concurrency == 4  # None means "not given"


def test_toml_config_layers(tmp_path):
    from kbmetal.generate.config import load_config

    path = tmp_path / "models.toml"
    path.write_text("""
[defaults]
temperature = 0.0
max_tokens = 9000

[providers.lab]
kind = "openai"
base_url = "http://gpu-box:8000/v1"
key_env = "LAB_TOKEN"
concurrency = 16
max_tokens = 12000

[[models]]
spec = "lab:qwen3-coder"

[[models]]
spec = "openai:o4-mini"
name = "o4-mini-high"
reasoning_effort = "high"
input_price = 1.1
output_price = 4.4
""")
    config = load_config(path)
    qwen, o4 = _resolve(None, config)  # no --models: every [[models]] entry
    assert (qwen.label, qwen.kind, qwen.base_url, qwen.key_env, qwen.concurrency) == (
        "lab:qwen3-coder", "openai", "http://gpu-box:8000/v1", "LAB_TOKEN", 16)
    assert (qwen.temperature, qwen.max_tokens) == (0.0, 12000)  # provider over defaults
    assert (o4.label, o4.reasoning_effort, o4.input_price, o4.max_tokens) == ("o4-mini-high", "high", 1.1, 9000)
    [only] = _resolve(["o4-mini-high"], config, {"max_tokens": 20000})  # by name; flags on top
    assert only.max_tokens == 20000 and only.model == "o4-mini"


@pytest.mark.parametrize("text, message", [
    ("[oops]\n", "unknown section(s) oops"),
    ("[defaults]\ntemprature = 1\n", "unknown setting(s) temprature"),
    ("[defaults]\nmax_tokens = 'many'\n", "max_tokens must be an int"),
    ("[providers.x]\nbase_url = 'http://a'\n", "needs kind = one of"),
    ("[[models]]\nname = 'a'\n", 'needs spec = "provider:model"'),
    ("[[models]]\nspec = 'openai:a'\n[[models]]\nspec = 'openai:a'\n", "used twice"),
    ("[defaults\n", "not valid TOML"),
])
def test_config_errors_name_the_file_and_the_fix(tmp_path, text, message):
    from kbmetal.generate.config import load_config
    from kbmetal.generate.errors import ConfigError

    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("specs, overrides, message", [
    (["nosuch:model"], None, "unknown provider 'nosuch'"),
    (["gpt-4"], None, "is not provider:model"),
    (["openai:"], None, "names no model"),
    (["openai:a", "openai:a"], None, "named twice"),
    (["openai:a"], {"temperature": 3.0}, "outside 0..2"),
    (["openai:a"], {"reasoning_effort": "extreme"}, "is not one of"),
    (["openai:a"], {"base_url": "gpu-box:8000"}, "must start with http"),
    ([], None, "--models is empty"),
])
def test_spec_errors(specs, overrides, message):
    from kbmetal.generate.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        _resolve(specs, overrides=overrides)


def test_missing_key_is_a_clear_error_before_any_request(monkeypatch):
    from kbmetal.generate.errors import ConfigError
    from kbmetal.generate.providers import make_provider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    [spec] = _resolve(["openai:gpt-4.1"])
    with pytest.raises(ConfigError, match=r"model openai:gpt-4.1 needs an API key in \$OPENAI_API_KEY"):
        make_provider(spec)


def test_a_key_under_an_unrecognised_name_leaves_the_environment(monkeypatch):
    """The evaluator drops credential-looking variables from candidates' environments; a key the
    user keeps under another name is taken out of this process's environment once read, so no
    judge or worker started later inherits it. It still redacts."""
    from kbmetal.evaluator.sandbox import is_secret
    from kbmetal.generate import keys

    monkeypatch.setenv("LAB_PASS", "plain-value-9f8e7d")
    assert not is_secret("LAB_PASS", "plain-value-9f8e7d")
    assert keys.read_key("LAB_PASS", "model lab:x") == "plain-value-9f8e7d"
    assert "LAB_PASS" not in os.environ
    assert keys.read_key("LAB_PASS", "model lab:y") == "plain-value-9f8e7d"  # a second model of the same lab
    assert keys.redact("sent plain-value-9f8e7d") == "sent [redacted]"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recognised-123456")
    keys.read_key("OPENAI_API_KEY", "model openai:x")
    assert os.environ["OPENAI_API_KEY"] == "sk-recognised-123456"  # the evaluator's own scrub covers it
