"""A real Rasa server, trained on the repo's intents during the session (cached by data hash)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from intents.rasa import RasaPaths, RasaServer, free_port, train
from tests.conftest import ROOT


def repo_rasa_paths() -> RasaPaths:
    return RasaPaths(root=ROOT, venv=ROOT / ".venv-rasa", project=ROOT / "intents", models=ROOT / "models")


@pytest.fixture(scope="session")
def trained_model() -> object:
    model, _ = train(repo_rasa_paths())
    return model


@pytest.fixture(scope="session")
def rasa_url(trained_model, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = RasaServer(
        repo_rasa_paths(), trained_model, free_port(), log_path=tmp_path_factory.mktemp("rasa") / "rasa.log"
    )
    server.start()
    try:
        server.wait_ready(240)
        yield server.url
    finally:
        server.stop()
