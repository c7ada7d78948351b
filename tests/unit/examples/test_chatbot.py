"""examples/chatbot: the model answers from its packaged lexicon, and the service's routes behave."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

APP = Path(__file__).parents[3] / "examples" / "chatbot" / "app.py"


@pytest.fixture(scope="module")
def chatbot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chatbot_example", APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chatbot_example"] = module
    spec.loader.exec_module(module)
    return module


def test_the_bot_answers_in_kind(chatbot: ModuleType) -> None:
    client = TestClient(chatbot.app)
    sad = client.post("/chat", json={"message": "The GPU queue is terribly slow and my job failed"}).json()
    glad = client.post("/chat", json={"message": "Thanks, the training works great!"}).json()
    assert sad["sentiment"] < -0.3 < 0.3 < glad["sentiment"]
    assert sad["reply"].startswith("Sorry")
    assert glad["reply"].startswith("Glad")
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/chat", json={"message": ""}).status_code == 422
    assert "fetch('chat'" in client.get("/").text  # relative: works under the gateway's path
