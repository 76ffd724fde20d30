"""World description for the embedded simulator, as data (sim/worlds/*.yaml). Pure Python, no rclpy.

Frames follow REP 103 (x forward, y left, z up, metres). Every box, target included, is given by its *full*
extents ``size: [x, y, z]`` in its own frame and the world position of its *centre*; ``yaw_deg`` turns it about z.
A target is a person-like billboard: its front face is its local +x face (``yaw_deg: 180`` makes it face world -x,
i.e. face a vehicle standing at the origin looking along +x); an optional ``texture`` image is shown on that face.
A target may walk a path: from its start position through ``path.waypoints`` at ``path.speed_mps``; with
``loop: true`` it walks back to the start and repeats, otherwise it stops at the last waypoint.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

_WORLD_KEYS = {"name", "ground_size", "boxes", "targets"}
_BOX_KEYS = {"name", "size", "position", "rgba", "yaw_deg"}
_TARGET_KEYS = {"name", "size", "position", "rgba", "yaw_deg", "texture", "path"}
_PATH_KEYS = {"waypoints", "speed_mps", "loop"}


class WorldSpecError(ValueError):
    """A world file is malformed; the message names the offending key."""


@dataclass(frozen=True)
class BoxSpec:
    name: str
    size: tuple[float, float, float]
    position: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 1.0)
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class PathSpec:
    waypoints: tuple[tuple[float, float, float], ...]
    speed_mps: float
    loop: bool = True


@dataclass(frozen=True)
class TargetSpec:
    name: str
    size: tuple[float, float, float]
    position: tuple[float, float, float]
    rgba: tuple[float, float, float, float] = (0.9, 0.35, 0.1, 1.0)
    yaw_deg: float = 180.0
    texture: Path | None = None
    path: PathSpec | None = None

    @cached_property
    def _polyline(self) -> tuple[list[tuple[float, float, float]], list[float], float]:
        """Path corners (start first; back to the start when looping), cumulative lengths, total length."""
        start = tuple(self.position)
        points = [start] + ([tuple(w) for w in self.path.waypoints] if self.path else [])
        if self.path is not None and self.path.loop:
            points.append(start)
        cum = [0.0]
        for a, b in zip(points, points[1:]):
            cum.append(cum[-1] + math.dist(a, b))
        return points, cum, cum[-1]

    def position_at(self, t_s: float) -> np.ndarray:
        """World position of the target's centre t_s seconds after the start."""
        points, cum, total = self._polyline
        if self.path is None or t_s <= 0 or total <= 0:
            return np.array(self.position, float)
        s = t_s * self.path.speed_mps
        if self.path.loop:
            s = math.fmod(s, total)
        elif s >= total:
            return np.array(points[-1], float)
        i = min(max(bisect.bisect_right(cum, s) - 1, 0), len(points) - 2)
        seg = cum[i + 1] - cum[i]
        frac = 0.0 if seg <= 0 else (s - cum[i]) / seg
        a, b = points[i], points[i + 1]
        return np.array([a[k] + frac * (b[k] - a[k]) for k in range(3)])


@dataclass(frozen=True)
class WorldSpec:
    name: str = "empty"
    ground_size: tuple[float, float] = (40.0, 40.0)
    boxes: tuple[BoxSpec, ...] = ()
    targets: tuple[TargetSpec, ...] = ()
    source: str = field(default="<code>", compare=False)


# ---------------------------------------------------------------------------------------------------- loading

def _vec(value: Any, n: int, where: str, *, positive: bool = False, unit: bool = False) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise WorldSpecError(f"{where}: expected a list of {n} numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise WorldSpecError(f"{where}: expected finite numbers, got {value!r}")
        if positive and v <= 0:
            raise WorldSpecError(f"{where}: values must be > 0, got {value!r}")
        if unit and not 0.0 <= v <= 1.0:
            raise WorldSpecError(f"{where}: values must be within 0..1, got {value!r}")
        out.append(float(v))
    return tuple(out)


def _number(value: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WorldSpecError(f"{where}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise WorldSpecError(f"{where}: must be > 0, got {value!r}")
    return float(value)


def _mapping(value: Any, where: str, allowed: set[str], required: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise WorldSpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise WorldSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        raise WorldSpecError(f"{where}: missing key(s) {missing}")
    return value


def _name(value: Any, where: str, seen: set[str]) -> str:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "_-" for c in value):
        raise WorldSpecError(f"{where}: names must be non-empty [A-Za-z0-9_-] strings, got {value!r}")
    if value in seen:
        raise WorldSpecError(f"{where}: duplicate name {value!r}")
    seen.add(value)
    return value


def world_from_dict(data: Any, *, base_dir: str | Path | None = None, source: str = "<dict>") -> WorldSpec:
    """Validate a parsed world file. Relative texture paths resolve against base_dir (the file's folder)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if data is None:
        data = {}
    data = _mapping(data, source, _WORLD_KEYS, ())
    names: set[str] = set()
    ground = _vec(data.get("ground_size", [40.0, 40.0]), 2, f"{source}: ground_size", positive=True)

    boxes_raw = data.get("boxes") or []
    if not isinstance(boxes_raw, list):
        raise WorldSpecError(f"{source}: boxes: expected a list")
    boxes = []
    for i, raw in enumerate(boxes_raw):
        where = f"{source}: boxes[{i}]"
        raw = _mapping(raw, where, _BOX_KEYS, ("name", "size", "position"))
        boxes.append(BoxSpec(
            name=_name(raw["name"], f"{where}.name", names),
            size=_vec(raw["size"], 3, f"{where}.size", positive=True),
            position=_vec(raw["position"], 3, f"{where}.position"),
            rgba=_vec(raw.get("rgba", [0.6, 0.6, 0.6, 1.0]), 4, f"{where}.rgba", unit=True),
            yaw_deg=_number(raw.get("yaw_deg", 0.0), f"{where}.yaw_deg"),
        ))

    targets_raw = data.get("targets") or []
    if not isinstance(targets_raw, list):
        raise WorldSpecError(f"{source}: targets: expected a list")
    targets = []
    for i, raw in enumerate(targets_raw):
        where = f"{source}: targets[{i}]"
        raw = _mapping(raw, where, _TARGET_KEYS, ("name", "size", "position"))
        texture = raw.get("texture")
        if texture is not None:
            if not isinstance(texture, str) or not texture:
                raise WorldSpecError(f"{where}.texture: expected an image file path, got {texture!r}")
            texture = Path(texture).expanduser()
            if not texture.is_absolute():
                texture = (base / texture).resolve()
            if not texture.is_file():
                raise WorldSpecError(f"{where}.texture: image file not found: {texture}")
        path = None
        if raw.get("path") is not None:
            praw = _mapping(raw["path"], f"{where}.path", _PATH_KEYS, ("waypoints", "speed_mps"))
            wps = praw["waypoints"]
            if not isinstance(wps, list) or not wps:
                raise WorldSpecError(f"{where}.path.waypoints: expected a non-empty list of [x, y, z]")
            loop = praw.get("loop", True)
            if not isinstance(loop, bool):
                raise WorldSpecError(f"{where}.path.loop: expected true or false, got {loop!r}")
            path = PathSpec(
                waypoints=tuple(_vec(w, 3, f"{where}.path.waypoints[{j}]") for j, w in enumerate(wps)),
                speed_mps=_number(praw["speed_mps"], f"{where}.path.speed_mps", positive=True),
                loop=loop,
            )
        targets.append(TargetSpec(
            name=_name(raw["name"], f"{where}.name", names),
            size=_vec(raw["size"], 3, f"{where}.size", positive=True),
            position=_vec(raw["position"], 3, f"{where}.position"),
            rgba=_vec(raw.get("rgba", [0.9, 0.35, 0.1, 1.0]), 4, f"{where}.rgba", unit=True),
            yaw_deg=_number(raw.get("yaw_deg", 180.0), f"{where}.yaw_deg"),
            texture=texture,
            path=path,
        ))

    name = data.get("name", Path(source).stem if source != "<dict>" else "world")
    if not isinstance(name, str) or not name:
        raise WorldSpecError(f"{source}: name: expected a non-empty string, got {name!r}")
    return WorldSpec(name=name, ground_size=ground, boxes=tuple(boxes), targets=tuple(targets), source=source)


def default_world_file() -> Path:
    """sim/worlds/default.yaml of the checkout or of the installed share directory."""
    from mmchat_ros.core.paths import share_dir
    return share_dir() / "sim" / "worlds" / "default.yaml"


def load_world(path: str | Path | None = None) -> WorldSpec:
    """Load and validate a world file (default: sim/worlds/default.yaml)."""
    path = Path(path) if path is not None else default_world_file()
    if not path.is_file():
        raise FileNotFoundError(f"world file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise WorldSpecError(f"{path}: not valid YAML: {exc}") from exc
    return world_from_dict(data, base_dir=path.parent, source=str(path))
