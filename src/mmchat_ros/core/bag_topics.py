"""What `mmchat record` writes and how `mmchat play` replays it: topic selection and rates, QoS classes, the
rosbags type registry with mmchat_ros's own messages, replay timing and progress lines. No rclpy here.

Bags are ROS 2 bags (rosbag2 metadata + MCAP storage) written with ``rosbags``; messages stay in the CDR bytes
rclpy received, so nothing is converted field by field. Standard message types come from rosbags' built-in Jazzy
typestore, ours are registered from the package's ``msg/*.msg`` files so every bag carries their definitions and
opens in standard tools (``mcap``, Foxglove, ``ros2 bag``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mmchat_ros.core import topics
from mmchat_ros.core.topics import COMMAND, PACKAGE, QOS_CLASSES, SENSOR, STATE


class TopicSpecError(ValueError):
    """A topic selection that cannot be recorded as written."""


@dataclass(frozen=True)
class TopicSpec:
    """One recorded topic: its name, type ('' = learn it from the graph), the most messages per second kept
    (0 = every message) and its QoS class ('' = adapt to the publishers found)."""
    name: str
    type: str = ""
    max_rate_hz: float = 0.0
    qos: str = ""

    def __post_init__(self):
        if not re.fullmatch(r"/[A-Za-z0-9_/~{}]*[A-Za-z0-9_}]", self.name) or "//" in self.name:
            raise TopicSpecError(f"'{self.name}' is not an absolute ROS topic name (e.g. /camera/image_raw)")
        if self.type and not re.fullmatch(r"[A-Za-z0-9_]+/msg/[A-Za-z0-9_]+", self.type):
            raise TopicSpecError(f"topic {self.name}: type '{self.type}' is not of the form pkg/msg/Name")
        if not (math.isfinite(self.max_rate_hz) and self.max_rate_hz >= 0):
            raise TopicSpecError(f"topic {self.name}: rate {self.max_rate_hz} Hz is not a finite number >= 0")
        if self.qos and self.qos not in QOS_CLASSES:
            raise TopicSpecError(f"topic {self.name}: QoS class '{self.qos}' is not one of {', '.join(QOS_CLASSES)}")


# What the robot sees and decides (core/topics.py gives type and QoS class). Images (and their camera info) are
# thinned to image_rate_hz, odometry to odom_rate_hz (recording_defaults); everything else is kept whole.
IMAGE_TOPICS = (topics.CAMERA_IMAGE.name, topics.CAMERA_INFO.name)
ODOM_TOPIC = topics.ODOM.name
DEFAULT_TOPICS: tuple[TopicSpec, ...] = tuple(TopicSpec(topic.name, topic.type, qos=topic.qos) for topic in (
    topics.CAMERA_IMAGE, topics.CAMERA_INFO, topics.DETECTIONS, topics.GESTURE, topics.TRANSCRIPT, topics.PLAN,
    topics.SAY, topics.AUTH_STATE, topics.FLIGHT_STATE, topics.FLIGHT_SETPOINT, topics.ODOM))
DEFAULT_IMAGE_RATE_HZ = 5.0
DEFAULT_ODOM_RATE_HZ = 50.0


def recording_defaults(image_rate_hz: float = DEFAULT_IMAGE_RATE_HZ,
                       odom_rate_hz: float = DEFAULT_ODOM_RATE_HZ) -> list[TopicSpec]:
    """The default selection with the reduced image and odometry rates applied (0 = keep every message)."""
    rates = {**{name: image_rate_hz for name in IMAGE_TOPICS}, ODOM_TOPIC: odom_rate_hz}
    return [replace(spec, max_rate_hz=float(rates.get(spec.name, spec.max_rate_hz))) for spec in DEFAULT_TOPICS]


def parse_topic_arg(text: str) -> TopicSpec:
    """'/topic', '/topic:RATE', '/topic:RATE:pkg/msg/Type' or '/topic::pkg/msg/Type' -> TopicSpec (a type left
    out is the default selection's type for that topic, or learnt from the graph)."""
    parts = text.strip().split(":")
    if len(parts) > 3 or not parts[0]:
        raise TopicSpecError(f"'{text}': expected /topic[:rate_hz[:pkg/msg/Type]]")
    name = parts[0]
    rate = 0.0
    if len(parts) > 1 and parts[1]:
        try:
            rate = float(parts[1])
        except ValueError:
            raise TopicSpecError(f"'{text}': rate '{parts[1]}' is not a number") from None
    known = {spec.name: spec for spec in DEFAULT_TOPICS}.get(name)
    type_name = parts[2] if len(parts) > 2 and parts[2] else (known.type if known else "")
    return TopicSpec(name, type_name, rate, known.qos if known and type_name == known.type else "")


def select_topics(topic_args: Sequence[str] = (), image_rate_hz: float = DEFAULT_IMAGE_RATE_HZ,
                  odom_rate_hz: float = DEFAULT_ODOM_RATE_HZ, include_defaults: bool | None = None,
                  exclude: Iterable[str] = ()) -> list[TopicSpec]:
    """The recording selection: the defaults (unless topics are named and include_defaults is not True), then
    the named topics (a named topic replaces a default of the same name), minus ``exclude``."""
    named = [parse_topic_arg(arg) for arg in topic_args]
    use_defaults = include_defaults if include_defaults is not None else not named
    selection: dict[str, TopicSpec] = {}
    if use_defaults:
        selection.update((spec.name, spec) for spec in recording_defaults(image_rate_hz, odom_rate_hz))
    for spec in named:
        selection[spec.name] = spec
    excluded = set(exclude)
    unknown = excluded - set(selection)
    if unknown:
        raise TopicSpecError(f"cannot exclude {', '.join(sorted(unknown))}: not in the selection")
    specs = [spec for name, spec in selection.items() if name not in excluded]
    if not specs:
        raise TopicSpecError("no topics selected")
    return specs


class RateLimiter:
    """Keeps at most ``max_rate_hz`` messages per second of a stream (0 = all), spaced evenly: a message is kept
    when at least one period has passed since the last kept one (with 10 % slack, so a 15 Hz camera thinned to
    5 Hz keeps every third frame rather than beating between the third and fourth)."""

    def __init__(self, max_rate_hz: float):
        self.period_ns = int(1e9 / max_rate_hz) if max_rate_hz > 0 else 0
        self.last_ns: int | None = None

    def accept(self, t_ns: int) -> bool:
        if self.period_ns == 0:
            return True
        if self.last_ns is not None and t_ns - self.last_ns < self.period_ns * 0.9:
            return False
        self.last_ns = t_ns
        return True


# ------------------------------------------------------------------------------------------------------ QoS
def qos_class_for_publishers(offered: Sequence[tuple[str, str]]) -> str:
    """The class to subscribe (or replay) with, from the publishers' offered (reliability, durability), each
    'reliable'/'best_effort' and 'transient_local'/'volatile': a best-effort publisher only matches best-effort
    subscribers; a transient-local subscription only matches transient-local publishers."""
    if not offered:
        return COMMAND
    if any(reliability != "reliable" for reliability, _ in offered):
        return SENSOR
    if all(durability == "transient_local" for _, durability in offered):
        return STATE
    return COMMAND


# ----------------------------------------------------------------------------------------------- type registry
def package_msg_dir() -> Path:
    from mmchat_ros.core.paths import share_dir
    return share_dir() / "msg"


def package_message_definitions(msg_dir: Path | None = None) -> dict[str, str]:
    """'mmchat_ros/msg/Name' -> the text of msg/Name.msg, for every message of the package."""
    msg_dir = Path(msg_dir) if msg_dir is not None else package_msg_dir()
    files = sorted(msg_dir.glob("*.msg"))
    if not files:
        raise FileNotFoundError(f"no .msg files in {msg_dir}: cannot register {PACKAGE}'s message types")
    return {f"{PACKAGE}/msg/{path.stem}": path.read_text() for path in files}


def make_typestore(msg_dir: Path | None = None, extra_definitions: Mapping[str, str] | None = None):
    """rosbags' Jazzy typestore with mmchat_ros's messages (and ``extra_definitions``, type -> .msg text)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for name, text in {**package_message_definitions(msg_dir), **(extra_definitions or {})}.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


# ---------------------------------------------------------------------------------------------------- replay
class ReplayClock:
    """When each recorded message is due on the wall clock: log times map to wall times from ``start_wall_s``
    on, divided by ``rate`` (2.0 = twice as fast)."""

    def __init__(self, first_log_ns: int, start_wall_s: float, rate: float = 1.0):
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"replay rate must be a number > 0, got {rate}")
        self.first_log_ns = first_log_ns
        self.start_wall_s = start_wall_s
        self.rate = rate

    def due(self, log_ns: int) -> float:
        return self.start_wall_s + (log_ns - self.first_log_ns) * 1e-9 / self.rate

    def bag_seconds(self, wall_s: float) -> float:
        """Seconds into the bag reached at ``wall_s``."""
        return max(0.0, (wall_s - self.start_wall_s) * self.rate)


def shifted_stamp(sec: int, nanosec: int, offset_ns: int) -> tuple[int, int]:
    """A builtin_interfaces/Time (sec, nanosec) moved by ``offset_ns``; a zero stamp (unset) stays zero."""
    if sec == 0 and nanosec == 0:
        return 0, 0
    total = max(0, sec * 1_000_000_000 + nanosec + offset_ns)
    return total // 1_000_000_000, total % 1_000_000_000


# -------------------------------------------------------------------------------------------------- progress
def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def recording_progress(elapsed_s: float, messages: int, bytes_written: int, per_topic: Mapping[str, int],
                       dropped: int = 0) -> str:
    topics = ", ".join(f"{name} {count}" for name, count in sorted(per_topic.items()))
    line = f"recording {elapsed_s:6.1f} s: {messages} messages, {human_bytes(bytes_written)}"
    if dropped:
        line += f", {dropped} dropped (writer behind)"
    return f"{line} [{topics}]" if topics else line


def replay_progress(bag_s: float, duration_s: float, messages: int, loop: int = 0) -> str:
    fraction = 1.0 if duration_s <= 0 else min(1.0, bag_s / duration_s)
    lap = f" (loop {loop + 1})" if loop else ""
    return f"playing {bag_s:6.1f} / {duration_s:.1f} s ({100 * fraction:3.0f} %){lap}: {messages} messages published"
