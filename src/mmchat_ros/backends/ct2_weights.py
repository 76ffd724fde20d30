"""Read and write CTranslate2 model files (``model.bin``), and merge a low-rank adapter into one.

Why: the command-speech adapter for tiny.en (train/asr_adapter) is trained as LoRA deltas on the very matrices the
CTranslate2 file holds (its fused query/key/value layout included), so the adapted model is the shipped model.bin
with ``W += B @ A * scale`` added to some variables — no model hub, no format conversion, and the adapter file stays
small enough to ship in the repository.

The format (CTranslate2's ``ModelSpec._serialize``, binary version 6): uint32 version, string spec name, uint32
revision, uint32 variable count, then per variable: string name, uint8 rank, uint32 dims, uint8 dtype id, uint32
byte count, raw bytes; then uint32 alias count and (alias, target) string pairs. A string is uint16 length
(including a trailing NUL) and UTF-8 bytes. Only numpy is needed.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED_VERSION = 6
# CTranslate2's DataType enum; bfloat16 is not a numpy type and is kept as raw uint16 bits (never merged into).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}
DTYPE_IDS = {np.dtype(v): k for k, v in DTYPES.items() if k != 5}
MERGEABLE = (0, 4)   # float32 and float16 variables may take an adapter's delta


@dataclass
class Ct2Model:
    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]          # in file order
    dtype_ids: dict[str, int]
    aliases: list[tuple[str, str]] = field(default_factory=list)


def _read_string(stream) -> str:
    (length,) = struct.unpack("<H", stream.read(2))
    return stream.read(length)[:-1].decode("utf-8")


def _write_string(stream, text: str) -> None:
    data = text.encode("utf-8")
    stream.write(struct.pack("<H", len(data) + 1) + data + b"\0")


def read_model(path: str | Path) -> Ct2Model:
    """The variables of a CTranslate2 model.bin (or of the model directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    with open(path, "rb") as stream:
        (version,) = struct.unpack("<I", stream.read(4))
        if version != SUPPORTED_VERSION:
            raise ValueError(f"{path}: CTranslate2 binary version {version}, only {SUPPORTED_VERSION} is supported")
        spec_name = _read_string(stream)
        revision, count = struct.unpack("<II", stream.read(8))
        variables, dtype_ids = {}, {}
        for _ in range(count):
            name = _read_string(stream)
            (rank,) = struct.unpack("<B", stream.read(1))
            shape = struct.unpack(f"<{rank}I", stream.read(4 * rank))
            dtype_id, num_bytes = struct.unpack("<BI", stream.read(5))
            if dtype_id not in DTYPES:
                raise ValueError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
            data = stream.read(num_bytes)
            if len(data) != num_bytes:
                raise ValueError(f"{path}: truncated at variable {name}")
            variables[name] = np.frombuffer(data, dtype=DTYPES[dtype_id]).reshape(shape).copy()
            dtype_ids[name] = dtype_id
        (alias_count,) = struct.unpack("<I", stream.read(4))
        aliases = [(_read_string(stream), _read_string(stream)) for _ in range(alias_count)]
    return Ct2Model(spec_name, revision, variables, dtype_ids, aliases)


def write_model(model: Ct2Model, path: str | Path) -> None:
    """Write ``model`` as model.bin at ``path`` (through a temporary file and a rename: never half a model)."""
    path = Path(path)
    buffer = io.BytesIO()
    buffer.write(struct.pack("<I", SUPPORTED_VERSION))
    _write_string(buffer, model.spec_name)
    buffer.write(struct.pack("<II", model.revision, len(model.variables)))
    for name, value in model.variables.items():
        value = np.asarray(value, dtype=DTYPES[model.dtype_ids[name]])   # (ascontiguousarray makes 0-d 1-d)
        _write_string(buffer, name)
        buffer.write(struct.pack(f"<B{value.ndim}I", value.ndim, *value.shape))
        buffer.write(struct.pack("<BI", model.dtype_ids[name], value.nbytes))
        buffer.write(value.tobytes())
    buffer.write(struct.pack("<I", len(model.aliases)))
    for alias, target in model.aliases:
        _write_string(buffer, alias)
        _write_string(buffer, target)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)


def merge_lora(model: Ct2Model, adapter: dict[str, np.ndarray]) -> list[str]:
    """Add each adapter delta to its variable in place; returns the variables changed.

    ``adapter`` holds, per target variable NAME, ``NAME::A`` (rank x in), ``NAME::B`` (out x rank) and
    ``NAME::scale`` (a scalar): W += scale * B @ A, computed in float32 and stored back in the variable's dtype.
    Plain replacements are ``NAME::value`` (e.g. a layer-norm gain trained whole). Anything that does not fit — an
    unknown variable, a shape that differs, an integer variable — raises: a wrong adapter is never half applied."""
    targets: dict[str, dict[str, np.ndarray]] = {}
    for key, value in adapter.items():
        name, _, part = key.rpartition("::")
        if part not in ("A", "B", "scale", "value") or not name:
            raise ValueError(f"adapter entry {key!r} is not NAME::A, ::B, ::scale or ::value")
        targets.setdefault(name, {})[part] = np.asarray(value)
    updates = {}
    for name, parts in targets.items():
        if name not in model.variables:
            raise ValueError(f"adapter targets {name!r}, which the model does not have")
        if model.dtype_ids[name] not in MERGEABLE:
            raise ValueError(f"adapter targets {name!r}, an integer variable")
        weight = model.variables[name].astype(np.float32)
        if "value" in parts:
            if set(parts) != {"value"}:
                raise ValueError(f"{name}: a replacement cannot also be a low-rank delta")
            new = parts["value"].astype(np.float32)
        else:
            if set(parts) != {"A", "B", "scale"}:
                raise ValueError(f"{name}: a low-rank delta needs A, B and scale, got {sorted(parts)}")
            new = weight + float(parts["scale"]) * (parts["B"].astype(np.float32) @ parts["A"].astype(np.float32))
        if new.shape != weight.shape:
            raise ValueError(f"{name}: adapter gives shape {new.shape}, the model has {weight.shape}")
        if not np.all(np.isfinite(new)):
            raise ValueError(f"{name}: the merged weights are not finite")
        updates[name] = new.astype(model.variables[name].dtype)
    model.variables.update(updates)
    return sorted(updates)
