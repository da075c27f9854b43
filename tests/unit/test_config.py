from pathlib import Path

import pytest

from bot.config import load_settings, parse_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_repo_config_is_valid() -> None:
    s = load_settings(ROOT / "config.yaml")
    assert s.channel("web") is not None
    assert s.path("intents").is_dir()


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config.yaml: queue.max_attempt: unknown key$"):
        load_settings(write(tmp_path, "queue:\n  max_attempt: 3\n"))


def test_wrong_type_is_named_with_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"web.port: .*integer.*'eighty'"):
        load_settings(write(tmp_path, "web:\n  port: eighty\n"))


def test_missing_secret_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SB_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match=r"redis.url: environment variable SB_TEST_UNSET is not set"):
        load_settings(write(tmp_path, "redis:\n  url: ${SB_TEST_UNSET}\n"))


def test_env_reference_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB_TEST_URL", "redis://10.0.0.5:6380/2")
    s = load_settings(write(tmp_path, "redis:\n  url: ${SB_TEST_URL}\nnlu:\n  urls: ['${SB_NOPE:-http://h:1}']\n"))
    assert s.redis.url == "redis://10.0.0.5:6380/2"
    assert s.nlu.urls == ["http://h:1"]


def test_unknown_channel_and_channel_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"channels\[0\].type: unknown channel type 'fax'"):
        parse_settings({"channels": [{"type": "fax"}]})
    with pytest.raises(ConfigError, match=r"channels\[0\].colour: unknown key"):
        parse_settings({"channels": [{"type": "web", "colour": "red"}]})


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:\d: not valid YAML"):
        load_settings(write(tmp_path, "web:\n  port: [1\n"))


def test_bad_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"redis.url: .*redis://"):
        parse_settings({"redis": {"url": "http://x"}})
    with pytest.raises(ConfigError, match=r"nlu.confidence_threshold"):
        parse_settings({"nlu": {"confidence_threshold": 1.5}})
    with pytest.raises(ConfigError, match=r"sla.targets.urgnt"):
        parse_settings({"sla": {"targets": {"urgnt": {"first_response_min": 1, "resolution_min": 2}}}})


def test_config_check_cli(tmp_path: Path) -> None:
    import subprocess

    exe = ROOT / ".venv" / "bin" / "switchboard"
    ok = subprocess.run([exe, "config", "check", "-c", ROOT / "config.yaml"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "config OK" in ok.stdout
    bad = subprocess.run([exe, "config", "check", "-c", write(tmp_path, "routr: {}\n")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "switchboard: config error: config.yaml: routr: unknown key"
