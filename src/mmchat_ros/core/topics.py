"""The graph's shared topics: one table of name, message type and QoS class. Nodes publish and subscribe through it
(nodes/common.py builds the rclpy profile of each class and checks the message type), the recorder records it,
the SROS2 policy and the Gazebo bridge are tested against it. No rclpy here: types are 'pkg/msg/Name' strings.
"""
from __future__ import annotations

from dataclasses import dataclass

# QoS classes. Streams are best effort (a late frame is worth less than the next one); set-points too, keeping only
# the newest (and so does the video that crosses the robot / ground link); commands and events are reliable; state
# that late joiners need is reliable + transient local.
SENSOR = "sensor"        # best effort, keep last 5 (rclpy's sensor-data profile)
SETPOINT = "setpoint"    # best effort, keep last 1
COMMAND = "command"      # reliable, keep last 10
STATE = "state"          # reliable, transient local, keep last 1
QOS_CLASSES = (SENSOR, SETPOINT, COMMAND, STATE)


@dataclass(frozen=True)
class Topic:
    name: str    # absolute; nodes create it relative (name[1:]) so namespaces and remappings apply
    type: str    # pkg/msg/Name
    qos: str     # one of QOS_CLASSES

    @property
    def relative_name(self) -> str:
        return self.name.lstrip("/")


PACKAGE = "mmchat_ros"
_TABLE: list[Topic] = []


def _topic(name: str, type_name: str, qos: str) -> Topic:
    """A table row (TOPICS)."""
    topic = Topic(name, type_name, qos)
    _TABLE.append(topic)
    return topic


def _ours(name: str) -> str:
    return f"{PACKAGE}/msg/{name}"


# Vehicle and simulator
ODOM = _topic("/odom", "nav_msgs/msg/Odometry", SENSOR)
IMU = _topic("/imu", "sensor_msgs/msg/Imu", SENSOR)
BATTERY = _topic("/battery", "sensor_msgs/msg/BatteryState", SENSOR)
CLOCK = _topic("/clock", "rosgraph_msgs/msg/Clock", COMMAND)
SIM_TARGETS = _topic("/sim/targets", "geometry_msgs/msg/PoseArray", SENSOR)
MOTOR_COMMAND = _topic("/motor_command", _ours("MotorCommand"), SETPOINT)
VEHICLE_VELOCITY = _topic("/cmd_vel/vehicle", "geometry_msgs/msg/Twist", SETPOINT)
VEHICLE_ENABLE = _topic("/vehicle/enable", "std_msgs/msg/Bool", STATE)
# Camera and perception
CAMERA_IMAGE = _topic("/camera/image_raw", "sensor_msgs/msg/Image", SENSOR)
CAMERA_INFO = _topic("/camera/camera_info", "sensor_msgs/msg/CameraInfo", SENSOR)
# JPEG for the ground station. Keep last 1: a reader that falls behind (a busy ground station) takes the newest frame,
# not a queue of older ones; best effort: a frame lost on the link is not resent behind the frames that follow it.
CAMERA_IMAGE_COMPRESSED = _topic("/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage", SETPOINT)
DETECTIONS = _topic("/detections", _ours("DetectionArray"), SENSOR)
DETECTIONS_DEBUG_IMAGE = _topic("/detections/debug_image", "sensor_msgs/msg/Image", SENSOR)
GESTURE = _topic("/gesture", _ours("Gesture"), COMMAND)
GESTURE_DEBUG_IMAGE = _topic("/gesture/debug_image", "sensor_msgs/msg/Image", SENSOR)
# Operator authorisation
AUTH_STATE = _topic("/auth/state", _ours("AuthState"), STATE)
AUTH_PROMPT = _topic("/auth/prompt", "std_msgs/msg/String", STATE)
AUTH_CHALLENGE = _topic("/auth/challenge", "std_msgs/msg/String", STATE)
AUTH_SECRET = _topic("/auth/secret", "std_msgs/msg/String", COMMAND)
# Speech
AUDIO_CHUNKS = _topic("/audio/chunks", _ours("AudioChunk"), SENSOR)
SPEECH_SEGMENT = _topic("/speech/segment", _ours("SpeechSegment"), COMMAND)
SPEECH_SEGMENT_EARLY = _topic("/speech/segment_early", _ours("SpeechSegment"), COMMAND)
SPEECH_ACTIVE = _topic("/speech/active", "std_msgs/msg/Bool", STATE)
TRANSCRIPT = _topic("/speech/transcript", _ours("Transcript"), COMMAND)
SAY = _topic("/tts/say", "std_msgs/msg/String", COMMAND)
TTS_SPEAKING = _topic("/tts/speaking", "std_msgs/msg/Bool", STATE)
# Planning, following and flight
PLAN = _topic("/planner/plan", _ours("ActionPlan"), COMMAND)
FOLLOW_TARGET = _topic("/follow/target", _ours("Detection"), COMMAND)
# A request, not state: a restarted follow node must not resume following on an old one.
FOLLOW_ENABLE = _topic("/follow/enable", "std_msgs/msg/Bool", COMMAND)
FLIGHT_STATE = _topic("/flight/state", _ours("FlightState"), STATE)
FLIGHT_ENVELOPE = _topic("/flight/envelope", "std_msgs/msg/String", STATE)   # JSON
FLIGHT_SETPOINT = _topic("/flight/setpoint", "geometry_msgs/msg/PoseStamped", SENSOR)
DIAGNOSTICS = _topic("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", COMMAND)

# The flight controller's command sources, highest priority first (its `sources` parameter's default): each
# source commands on /cmd_vel/<source> and /cmd_pose/<source>.
FLIGHT_SOURCES = ("operator", "plan", "teleop", "follow")


def velocity_command(source: str) -> Topic:
    # A stream (teleop and follow repeat it at 20 Hz; the mux drops a source after its timeout): on a lossy link a
    # reliable stream holds every later command behind a lost one (p95 407-461 ms on bench/network.py's link,
    # 127 ms best effort), so only the newest counts. A go-to on /cmd_pose is sent once and stays reliable.
    return Topic(f"/cmd_vel/{source}", "geometry_msgs/msg/TwistStamped", SETPOINT)


def pose_command(source: str) -> Topic:
    return Topic(f"/cmd_pose/{source}", "geometry_msgs/msg/PoseStamped", COMMAND)


TOPICS: tuple[Topic, ...] = tuple(_TABLE) + tuple(
    make(source) for source in FLIGHT_SOURCES for make in (velocity_command, pose_command))
BY_NAME: dict[str, Topic] = {topic.name: topic for topic in TOPICS}
