"""Whisper (as CTranslate2 stores it) in plain PyTorch, with LoRA on its linear layers: what train.py fine-tunes.

The layers are named and laid out as in the CTranslate2 model.bin (fused query/key/value in self-attention, fused
key/value in cross-attention), so a LoRA delta trained here is added to exactly the variable of the same name by
``mmchat_ros.backends.ct2_weights.merge_lora``. Pre-norm transformer, exact GELU, sinusoidal/learned position tables
taken from the file; the output projection is the token embedding (CTranslate2 aliases the two).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class LoraLinear(nn.Module):
    """y = x W^T + b + scale * (x A^T) B^T, with W, b frozen and only A, B trained (B starts at zero)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, rank: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight.astype(np.float32)), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(torch.from_numpy(bias.astype(np.float32)),
                                                           requires_grad=False)
        self.rank = rank
        if rank > 0:
            out_features, in_features = weight.shape
            self.lora_a = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
            self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
            self.scale = alpha / rank

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)
        if self.rank > 0:
            y = y + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale
        return y


class WhisperCt2(nn.Module):
    def __init__(self, variables: dict[str, np.ndarray], rank: int = 8, alpha: float = 16.0,
                 lora_targets: tuple[str, ...] = ("self_attention/linear_0", "self_attention/linear_1",
                                                  "attention/linear_0", "attention/linear_1", "attention/linear_2",
                                                  "ffn/linear_0", "ffn/linear_1"),
                 scope: tuple[str, ...] = ("encoder", "decoder")):
        super().__init__()
        self.heads = int(variables["encoder/num_heads"])
        self.linears = nn.ModuleDict()
        self.norms = nn.ParameterDict()
        self.rank = rank
        self.encoder_layers = sum(1 for k in variables if k.startswith("encoder/layer_") and k.endswith(
            "self_attention/linear_0/weight"))
        self.decoder_layers = sum(1 for k in variables if k.startswith("decoder/layer_") and k.endswith(
            "self_attention/linear_0/weight"))
        for name in variables:
            if name.endswith("/weight") and "/linear_" in name:
                base = name[: -len("/weight")]
                targeted = base.split("/")[0] in scope and any(base.endswith("/" + t) for t in lora_targets)
                self.linears[self._key(base)] = LoraLinear(variables[name], variables.get(base + "/bias"),
                                                           rank if targeted else 0, alpha)
        frozen = lambda name: nn.Parameter(torch.from_numpy(variables[name].astype(np.float32)),   # noqa: E731
                                           requires_grad=False)
        for name in variables:
            if name.endswith("/gamma") or name.endswith("/beta") or name.startswith("encoder/conv") or \
                    name.endswith("/encodings") or name == "decoder/embeddings/weight":
                self.norms[self._key(name)] = frozen(name)

    @staticmethod
    def _key(name: str) -> str:
        return name.replace("/", "__")

    def linear(self, name: str, x):
        return self.linears[self._key(name)](x)

    def p(self, name: str):
        return self.norms[self._key(name)]

    def layer_norm(self, prefix: str, x):
        return F.layer_norm(x, x.shape[-1:], self.p(prefix + "/gamma"), self.p(prefix + "/beta"), 1e-5)

    def _attend(self, q, k, v, causal: bool):
        b, tq, d = q.shape
        h = self.heads
        q = q.view(b, tq, h, d // h).transpose(1, 2)
        k = k.view(b, k.shape[1], h, d // h).transpose(1, 2)
        v = v.view(b, v.shape[1], h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return out.transpose(1, 2).reshape(b, tq, d)

    def encode(self, mel):
        """mel: (batch, 80, frames) → (batch, frames / 2, d)."""
        x = F.gelu(F.conv1d(mel, self.p("encoder/conv1/weight"), self.p("encoder/conv1/bias"), padding=1))
        x = F.gelu(F.conv1d(x, self.p("encoder/conv2/weight"), self.p("encoder/conv2/bias"), stride=2, padding=1))
        x = x.transpose(1, 2)
        x = x + self.p("encoder/position_encodings/encodings")[: x.shape[1]]
        for i in range(self.encoder_layers):
            x = self._self_attention(f"encoder/layer_{i}", x, causal=False)
            x = self._feed_forward(f"encoder/layer_{i}", x)
        return self.layer_norm("encoder/layer_norm", x)

    def _self_attention(self, prefix: str, x, causal: bool):
        h = self.layer_norm(f"{prefix}/self_attention/layer_norm", x)
        q, k, v = self.linear(f"{prefix}/self_attention/linear_0", h).chunk(3, dim=-1)
        return x + self.linear(f"{prefix}/self_attention/linear_1", self._attend(q, k, v, causal))

    def _feed_forward(self, prefix: str, x):
        h = self.layer_norm(f"{prefix}/ffn/layer_norm", x)
        return x + self.linear(f"{prefix}/ffn/linear_1", F.gelu(self.linear(f"{prefix}/ffn/linear_0", h)))

    def decode(self, tokens, memory):
        """tokens: (batch, length) → logits (batch, length, vocabulary), attending to ``memory`` (encoder output)."""
        embeddings = self.p("decoder/embeddings/weight")
        x = embeddings[tokens] + self.p("decoder/position_encodings/encodings")[: tokens.shape[1]]
        for i in range(self.decoder_layers):
            prefix = f"decoder/layer_{i}"
            x = self._self_attention(prefix, x, causal=True)
            h = self.layer_norm(f"{prefix}/attention/layer_norm", x)
            q = self.linear(f"{prefix}/attention/linear_0", h)
            k, v = self.linear(f"{prefix}/attention/linear_1", memory).chunk(2, dim=-1)
            x = x + self.linear(f"{prefix}/attention/linear_2", self._attend(q, k, v, False))
            x = self._feed_forward(prefix, x)
        x = self.layer_norm("decoder/layer_norm", x)
        return x @ embeddings.T

    @torch.no_grad()
    def greedy(self, mel, prompt: list[int], eot: int, max_new: int = 60, suppress: list[int] = ()) -> list[int]:
        """Greedy transcript tokens of one utterance (no cache: slow, for checks only)."""
        memory = self.encode(mel)
        tokens = list(prompt)
        for _ in range(max_new):
            logits = self.decode(torch.tensor([tokens], device=mel.device), memory)[0, -1]
            if suppress:
                logits[list(suppress)] = -math.inf
            token = int(logits.argmax())
            if token == eot:
                break
            tokens.append(token)
        return tokens[len(prompt):]

    def adapter(self) -> dict[str, np.ndarray]:
        """The trained deltas, keyed as ct2_weights.merge_lora reads them."""
        out = {}
        for key, module in self.linears.items():
            if module.rank > 0:
                name = key.replace("__", "/") + "/weight"
                out[f"{name}::A"] = module.lora_a.detach().float().cpu().numpy().astype(np.float16)
                out[f"{name}::B"] = module.lora_b.detach().float().cpu().numpy().astype(np.float16)
                out[f"{name}::scale"] = np.float32(module.scale)
        return out
