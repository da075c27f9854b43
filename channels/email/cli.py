"""The e-mail commands of the CLI (`switchboard email …`), kept beside the channel: the CLI module
only parses arguments and delegates here."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, TextIO

import orjson

from bot.errors import ConfigError
from channels.email.config import EmailChannelSettings
from channels.email.inspect import default_settings, inspect_mail, read_sources


def _settings(config: Path | None, address: str | None) -> EmailChannelSettings:
    """The email section of the config when one is named (or $SWITCHBOARD_CONFIG is set and has
    one); otherwise defaults. Inspecting needs no secrets: an unreadable default config is not an
    error, a named one is."""
    named = config or (Path(os.environ["SWITCHBOARD_CONFIG"]) if os.environ.get("SWITCHBOARD_CONFIG") else None)
    cfg: EmailChannelSettings | None = None
    if named is not None:
        from bot.config import load_settings

        section = load_settings(named).channel("email")
        if section is not None and not isinstance(section, EmailChannelSettings):
            raise ConfigError("the email section is not an email channel")
        cfg = section
    if cfg is None:
        cfg = default_settings(address)
    elif address:
        cfg = cfg.model_copy(update={"address": address.strip().lower()})
    return cfg


def inspect_command(files: Iterable[str], config: Path | None, address: str | None, stdin: BinaryIO,
                    out: TextIO) -> int:
    """Print one JSON line per mail. Exit code 1 when a file could not be read, else 0."""
    cfg = _settings(config, address)
    code = 0
    for src in read_sources(files, stdin):
        if src.data is None:
            report = {"file": src.name, "verdict": "unparseable", "why": f"could not read the file: {src.error}"}
            code = 1
        else:
            report = inspect_mail(src.data, cfg, src.name)
        out.write(orjson.dumps(report).decode() + "\n")
        out.flush()
    return code
