"""gesture node: camera frames → hand landmarks (MediaPipe) → static and dynamic gestures.

Subscribes /camera/image_raw (sensor-data QoS); publishes mmchat_ros/Gesture on /gesture for every processed frame
(stamped with the frame's capture stamp; name "none" and num_hands 0 when no hand is seen) and, while someone
subscribes, an annotated image (landmarks + gesture name) on /gesture/debug_image. Inference runs in a worker
thread on the newest frame; frames that arrive while it is busy are dropped (counted), never queued. While no hand
has been seen for ``idle_after_s`` it looks at ``idle_rate_hz`` frames a second only (palm detection on every frame
is its most expensive case), and at every frame again from the first that shows a hand (core/idle_frames.py).
/gesture is reliable (a swipe is a one-frame event); sensor-data subscribers receive it too. The statistics line
(every ``stats_period_s``) says where a frame's time goes: transport (capture stamp → arrival here), wait (arrival
→ the worker takes it), convert, mediapipe (wall time, and the process's CPU time meanwhile: less CPU than wall
time is time spent waiting for a core), classify and publish.

A lifecycle node (nodes/lifecycle.py): configure loads the landmark model, activate subscribes to the camera and
starts recognising, deactivate stops both (no CPU spent, the model kept). The activation policy
(config/activation_policy.yaml) keeps it active while the vehicle flies or an operator is in front of the camera.
"""
from __future__ import annotations

import sys
import time

from geometry_msgs.msg import Point
from sensor_msgs.msg import Image

from mmchat_ros.backends.hands import annotate, make_hand_detector
from mmchat_ros.core import topics
from mmchat_ros.core.gestures import GestureRecognizer, GestureResult, recognizer_config
from mmchat_ros.core.idle_frames import IdleFrameGate
from mmchat_ros.core.stage_timings import StageTimings
from mmchat_ros.msg import Gesture
from mmchat_ros.nodes.base import LatestFrameWorker
from mmchat_ros.nodes.common import Param, first_frame_line, stamp_to_seconds
from mmchat_ros.nodes.image_conversion import CameraFrames, numpy_to_image, to_rgb
from mmchat_ros.nodes.lifecycle import LIFECYCLE_PARAMS, MmchatLifecycleNode, run_lifecycle_node
from mmchat_ros.nodes.scheduling import apply_niceness, niceness_param

PARAMS = {
    "backend": Param("mediapipe", "hand landmark backend: 'mediapipe' (models in the mediapipe wheel) or "
                                  "'mediapipe_task' (a HandLandmarker .task file at model_path)"),
    "model_path": Param("", "hand_landmarker.task file for backend 'mediapipe_task'"),
    "allow_download": Param(False, "backend 'mediapipe_task' may download its model when model_path is missing "
                                   "(robots with internet only)"),
    "max_num_hands": Param(1, "hands detected per frame. 1: once a hand is found it is only tracked (no palm "
                              "detection while tracking; p95 19 vs 36 ms per frame on bench/gesture.py's sequence); "
                              "2 lets preferred_hand choose between two hands, at palm detection on every frame"),
    "model_complexity": Param(0, "MediaPipe landmark model: 0 lite (faster), 1 full (more accurate)"),
    "min_detection_confidence": Param(0.5, "MediaPipe palm detection threshold, 0..1"),
    "min_tracking_confidence": Param(0.5, "MediaPipe landmark tracking threshold, 0..1 (below it, detect again)"),
    "static_image_mode": Param(False, "detect in every frame instead of tracking between frames (slower)"),
    "input_mirrored": Param(False, "the camera image is mirrored (a selfie view): affects handedness"),
    "mirror_directions": Param(True, "left/right in gesture names are the user's (a camera facing the user); "
                                     "false: image left/right"),
    "min_hand_score": Param(0.5, "hands detected with a lower confidence are ignored, 0..1"),
    "preferred_hand": Param("", "with several hands visible (max_num_hands >= 2), follow this one: 'left', "
                                "'right' or '' (largest)"),
    "hold_frames": Param(4, "frames a gesture must lead before it counts as stable"),
    "release_frames": Param(3, "frames below exit_confidence before a stable gesture is dropped"),
    "smoothing": Param(0.5, "weight of the newest frame in the exponential average of gesture scores (1 = none)"),
    "enter_confidence": Param(0.6, "smoothed confidence a gesture needs to start being held, 0..1"),
    "exit_confidence": Param(0.35, "a stable gesture holds while its smoothed confidence stays above this, 0..1"),
    "swipes_enabled": Param(True, "recognise dynamic gestures (swipes)"),
    "swipe_window_s": Param(0.6, "a swipe is a movement within this time, s"),
    "swipe_min_distance_palms": Param(1.5, "a swipe covers at least this many palm sizes"),
    "swipe_min_distance_image": Param(0.15, "a swipe covers at least this fraction of the image height"),
    "swipe_cooldown_s": Param(0.6, "no new swipe this soon after one, s"),
    "publish_debug_image": Param(True, "publish the annotated image (only while it has subscribers)"),
    "idle_rate_hz": Param(5.0, "frames a second looked at while no hand is in view (every frame again from the first "
                               "that shows one; a hand appearing is seen up to 1/idle_rate_hz s later), Hz; 0: every "
                               "frame always", value_range=(0.0, 30.0), live=True),
    "idle_after_s": Param(1.0, "no hand for this long before idle_rate_hz applies, s", value_range=(0.0, 60.0),
                          live=True),
    "niceness": niceness_param(-10, "the hand → velocity path is interactive and goes before background work on a "
                                    "busy computer, level with the flight controller's callbacks (MediaPipe's "
                                    "threads inherit it)"),
    "stats_period_s": Param(10.0, "log frame and inference-time statistics this often, s (0: never)"),
    **LIFECYCLE_PARAMS,
}


class GestureNode(MmchatLifecycleNode):
    """Lifecycle: configure loads the hand landmark model, activate subscribes to the camera and starts recognising
    with a fresh gesture filter, deactivate stops both."""

    def __init__(self):
        super().__init__("gesture", PARAMS, on_change=self.retune)
        self.idle_gate = IdleFrameGate(self.p.idle_rate_hz, self.p.idle_after_s)
        apply_niceness(self, self.p.niceness)   # before configure starts MediaPipe's threads

    def retune(self, values: dict) -> None:
        """Live idle_rate_hz and idle_after_s (their ranges are checked before)."""
        self.idle_gate.retune(values["idle_rate_hz"], values["idle_after_s"])

    def configure(self) -> None:
        options = dict(max_num_hands=self.p.max_num_hands, min_detection_confidence=self.p.min_detection_confidence,
                       min_tracking_confidence=self.p.min_tracking_confidence, input_mirrored=self.p.input_mirrored)
        if self.p.backend == "mediapipe":
            options.update(model_complexity=self.p.model_complexity, static_image_mode=self.p.static_image_mode)
        else:
            options.update(model_path=self.p.model_path, allow_download=self.p.allow_download)
        self.detector = make_hand_detector(self.p.backend, **options)
        self.last_t = 0.0   # frame times stay increasing for the detector's whole life (its video mode needs it)
        self.gesture_pub = self.publish_to(topics.GESTURE, Gesture)
        self.debug_pub = self.publish_to(topics.GESTURE_DEBUG_IMAGE, Image)
        if self.p.preferred_hand and self.p.max_num_hands < 2:
            self.get_logger().warn(f"preferred_hand '{self.p.preferred_hand}' has no effect with max_num_hands "
                                   f"{self.p.max_num_hands}: only the first hand found is tracked")
        self.get_logger().info(f"gesture recogniser ready: backend {self.p.backend}, up to {self.p.max_num_hands} "
                               f"hands, stable after {self.p.hold_frames} frames")

    def activate(self) -> None:
        self.recognizer = GestureRecognizer(recognizer_config(
            classifier={"mirror_directions": self.p.mirror_directions},
            filter={"hold_frames": self.p.hold_frames, "release_frames": self.p.release_frames,
                    "smoothing": self.p.smoothing, "enter_confidence": self.p.enter_confidence,
                    "exit_confidence": self.p.exit_confidence},
            swipe={"window_s": self.p.swipe_window_s, "min_distance_palms": self.p.swipe_min_distance_palms,
                   "min_distance_image": self.p.swipe_min_distance_image, "cooldown_s": self.p.swipe_cooldown_s},
            min_hand_score=self.p.min_hand_score, preferred_hand=self.p.preferred_hand,
            dynamic_enabled=self.p.swipes_enabled))
        self.processed = 0
        self.timings = StageTimings()
        self.last_stable = ""
        self.worker = LatestFrameWorker(self, "gesture recognition", self.process)
        self.start_worker(self.worker)
        self.frames = CameraFrames(self, self.offer_frame)
        self.subscribe_to(topics.CAMERA_IMAGE, Image, self.frames)
        if self.p.stats_period_s > 0:
            self.create_timer(self.p.stats_period_s, self.log_stats)

    def offer_frame(self, msg: Image) -> None:
        """A readable camera frame: to the worker with its arrival time, unless the idle rate skips it."""
        if self.idle_gate.admit(time.monotonic()):
            self.worker.offer((msg, time.time()))

    def frame_time(self, msg: Image) -> float:
        """The frame's capture time for the trajectory of swipes: its stamp, kept increasing."""
        t = stamp_to_seconds(msg.header.stamp)
        if t <= 0.0:
            t = time.time()
        if t <= self.last_t:
            t = self.last_t + 1e-3
        self.last_t = t
        return t

    def process(self, frame: tuple[Image, float]) -> None:
        msg, arrived = frame
        taken = time.time()
        self.get_logger().info(first_frame_line(msg), once=True)
        rgb = to_rgb(msg)
        t = self.frame_time(msg)
        converted, converted_cpu = time.time(), time.process_time()
        hands = self.detector.detect(rgb, t)
        detected, detected_cpu = time.time(), time.process_time()
        self.idle_gate.seen(bool(hands))
        result = self.recognizer.update(t, hands, rgb.shape[1] / rgb.shape[0])
        classified = time.time()
        self.processed += 1
        self.gesture_pub.publish(self.to_msg(result, msg.header))
        published = time.time()
        captured = stamp_to_seconds(msg.header.stamp)
        stages = {"transport": arrived - captured} if captured > 0.0 else {}
        stages.update(wait=taken - arrived, convert=converted - taken, mediapipe=detected - converted,
                      mediapipe_cpu=detected_cpu - converted_cpu, classify=classified - detected,
                      publish=published - classified, in_node=published - arrived)
        self.timings.add_frame({stage: seconds * 1000.0 for stage, seconds in stages.items()})
        if result.stable and result.name != self.last_stable:
            self.get_logger().info(f"gesture {result.name} ({result.confidence:.2f}, {result.handedness or '?'} "
                                   f"hand{', dynamic' if result.is_dynamic else ''})")
        self.last_stable = result.name if result.stable else ""
        if self.p.publish_debug_image and self.debug_pub.get_subscription_count() > 0:
            label = f"{result.name} {result.confidence:.2f}{' *' if result.stable else ''}  hands: {len(hands)}"
            image = numpy_to_image(annotate(rgb, hands, label, result.hand), "rgb8", msg.header)
            self.debug_pub.publish(image)

    @staticmethod
    def to_msg(result: GestureResult, header) -> Gesture:
        msg = Gesture(header=header, name=result.name, confidence=float(result.confidence),
                      is_dynamic=result.is_dynamic, stable=result.stable, handedness=result.handedness,
                      num_hands=min(255, result.num_hands))
        if result.hand is not None:
            msg.landmarks = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in result.hand.landmarks]
        return msg

    def log_stats(self) -> None:
        frames = self.timings.count
        if not frames:
            self.get_logger().info("no camera frames in the last period", throttle_duration_sec=60.0)
            return
        self.get_logger().info(f"{frames} frames: {self.timings.take_summary()}; dropped {self.worker.dropped} while "
                               f"busy, {self.idle_gate.skipped} skipped while idle, {self.frames.bad} bad")

    def release(self) -> None:
        self.detector.close()
        self.detector = None


def main(args=None):
    return run_lifecycle_node(GestureNode, args)


if __name__ == "__main__":
    sys.exit(main())
