"""Real photographs of hands, and camera frames made from them, for the MediaPipe tests, the gesture pipeline
tests and the bench.

The photos come from Debian's opencv-doc (tests skip when it is not installed):
- ``open_hand_a`` / ``open_hand_b``: OpenCV's homography tutorial photos of an open hand lying on a table
  (``handSrc.jpg`` / ``handDst.jpg``; MediaPipe sees open palms);
- ``chessboard_thumb``: calibration photo ``right04.jpg``, a hand holding a board, thumb up, fingers hidden
  behind it (a partly visible hand);
- ``basketball``: ``basketball1.png``, two people playing with a ball, hands small and blurred.

Other hand shapes do not exist in these photos, so ``hand_pose_photo`` makes them from the open-hand photos by
folding fingers (``fold_fingers``): a folded finger (located with MediaPipe's landmarks on the untouched photo and
the photo's skin mask) is cut out of the hand and its own pixels are pasted back turned towards the wrist and
shortened, as a curled finger looks from the palm side. This is image editing of real
photographs, not a rendering: the hand, its skin and its lighting are the photo's. ``place_hand`` cuts the hand out
(skin mask) and puts it, turned, scaled, mirrored and moved, onto a real background (``basketball1.png``'s
corridor wall) at camera size: every hand frame the tests feed the real MediaPipe is built this way, and
``GESTURE_SHOTS`` lists, per gesture, a pose and placement that MediaPipe and the classifier were measured to agree
on (tests/unit/test_hands_mediapipe.py checks every one).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
OPENCV_HTML = Path("/usr/share/doc/opencv-doc/opencv4/html")
PHOTOS = {
    "open_hand_a": OPENCV_HTML / "handSrc.jpg",
    "open_hand_b": OPENCV_HTML / "handDst.jpg",
    "chessboard_thumb": OPENCV_DATA / "right04.jpg",
    "basketball": OPENCV_DATA / "basketball1.png",
    "basketball2": OPENCV_DATA / "basketball2.png",
    "room": OPENCV_DATA / "basketball1.png",
}
FINGER_JOINTS = {"thumb": (1, 2, 3, 4), "index": (5, 6, 7, 8), "middle": (9, 10, 11, 12), "ring": (13, 14, 15, 16),
                 "pinky": (17, 18, 19, 20)}
# Fingers kept straight in each hand pose; the others are folded into the palm (see fold_fingers).
POSES = {
    "open": ("thumb", "index", "middle", "ring", "pinky"),
    "point": ("index",),
    "thumb": ("thumb",),
    "victory": ("index", "middle"),
    "fist": (),
}


def photos_available() -> bool:
    return all(path.is_file() for path in PHOTOS.values())


def load_photo(name: str) -> np.ndarray:
    """BGR image of a named photo; raises FileNotFoundError naming the Debian package when missing."""
    path = PHOTOS[name]
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path} missing: install Debian's opencv-doc")
    return image


@functools.lru_cache(maxsize=None)
def _detector():
    from mmchat_ros.backends.hands import MediaPipeHands
    return MediaPipeHands(static_image_mode=True, max_num_hands=1, min_detection_confidence=0.3)


@functools.lru_cache(maxsize=None)
def photo_landmarks_px(name: str) -> np.ndarray:
    """MediaPipe's 21 landmarks (pixels) on an untouched photo: where its fingers are."""
    image = load_photo(name)
    hands = _detector().detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not hands:
        raise RuntimeError(f"MediaPipe finds no hand in {PHOTOS[name]}")
    h, w = image.shape[:2]
    return hands[0].landmarks[:, :2] * (w, h)


def skin_mask(bgr: np.ndarray) -> np.ndarray:
    """The hand of the open-hand photos (saturated skin on a grey table): uint8 0/255."""
    saturation = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)[:, :, 1]
    _, mask = cv2.threshold(cv2.GaussianBlur(saturation, (7, 7), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:   # the hand is the largest blob
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        mask = np.where(labels == largest, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(np.zeros_like(mask), contours, -1, 255, cv2.FILLED)   # pale patches of palm included


def remove_fingers(bgr: np.ndarray, landmarks_px: np.ndarray, fingers: tuple[str, ...]) -> np.ndarray:
    """The mask of the photo's hand without ``fingers`` (cut off a little above their knuckles)."""
    hand = skin_mask(bgr)
    finger_width = 1.1 * float(np.linalg.norm(landmarks_px[5] - landmarks_px[9]))
    cut = np.zeros_like(hand)
    for finger in fingers:
        base, j1, j2, tip = FINGER_JOINTS[finger]
        # Keep the knuckle: the cut starts a third of the way up the first bone (for the thumb, the second).
        start = landmarks_px[j1] + 0.3 * (landmarks_px[j2] - landmarks_px[j1]) if finger == "thumb" else \
            landmarks_px[base] + 0.35 * (landmarks_px[j1] - landmarks_px[base])
        beyond = landmarks_px[tip] + 2.0 * (landmarks_px[tip] - landmarks_px[j2])
        chain = [start, *(landmarks_px[j] for j in (j1, j2, tip) if finger != "thumb" or j != j1), beyond]
        for a, b in zip(chain[:-1], chain[1:]):
            cv2.line(cut, tuple(int(v) for v in a), tuple(int(v) for v in b), 255, int(finger_width))
    return cv2.bitwise_and(hand, cv2.bitwise_not(cv2.dilate(cut, np.ones((5, 5), np.uint8))))


def _paste_strip(out: np.ndarray, out_mask: np.ndarray, photo: np.ndarray, skin: np.ndarray, src: np.ndarray,
                 dst: np.ndarray, width: float, shade: float) -> None:
    """Copy the skin pixels of a finger strip (``src``: base centre, end centre, base side point) to where
    ``dst`` (the same three points) puts it, darkened by ``shade``. In place."""
    transform = cv2.getAffineTransform(np.float32(src), np.float32(dst))
    size = (photo.shape[1], photo.shape[0])
    strip = np.zeros_like(skin)
    cv2.line(strip, tuple(int(v) for v in src[0]), tuple(int(v) for v in src[1]), 255, int(width))
    alpha = cv2.warpAffine(cv2.bitwise_and(strip, skin), transform, size).astype(np.float32) / 255.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)[..., None]
    warped = cv2.warpAffine(photo, transform, size, flags=cv2.INTER_LINEAR).astype(np.float32) * shade
    out[:] = out * (1 - alpha) + warped * alpha
    out_mask[:] = np.maximum(out_mask, ((alpha[..., 0] > 0.5) * 255).astype(np.uint8))


def fold_fingers(photo: np.ndarray, landmarks_px: np.ndarray, folded: tuple[str, ...], fold_length: float = 0.35
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The photo with ``folded`` fingers bent into the palm, and the hand's mask.

    Each folded finger is cut out of the hand and its own pixels are pasted back turned towards the wrist and
    shortened to ``fold_length`` of its length, from just past its knuckle: from the palm side this is what a curled
    finger shows. A folded thumb is laid across the index and middle fingers. Only the pixels under the returned
    mask show the hand (place_hand cuts it out by that mask)."""
    mask = remove_fingers(photo, landmarks_px, folded)
    skin = skin_mask(photo)
    out = photo.astype(np.float32)
    width = 1.1 * float(np.linalg.norm(landmarks_px[5] - landmarks_px[9]))
    for finger in folded:
        base, j1, j2, tip = FINGER_JOINTS[finger]
        if finger == "thumb":
            continue
        length = float(np.linalg.norm(landmarks_px[tip] - landmarks_px[base]))
        along = (landmarks_px[tip] - landmarks_px[base]) / length
        side = np.array([-along[1], along[0]])
        start = landmarks_px[base] + 0.35 * (landmarks_px[j1] - landmarks_px[base])
        src = np.array([start, landmarks_px[tip] + 0.15 * length * along, start + width / 2 * side])
        fold_start = start + 0.1 * length * along
        dst = np.array([fold_start, fold_start - fold_length * length * along, fold_start + width / 2 * side])
        _paste_strip(out, mask, photo, skin, src, dst, width, 0.88)
    if "thumb" in folded:
        _, j1, _, tip = FINGER_JOINTS["thumb"]
        start = landmarks_px[j1]
        length = float(np.linalg.norm(landmarks_px[tip] - start))
        along = (landmarks_px[tip] - start) / length
        side = np.array([-along[1], along[0]])
        across = (landmarks_px[6] + landmarks_px[10]) / 2 - start     # towards the folded index/middle fingers
        across /= np.linalg.norm(across)
        across_side = np.array([-across[1], across[0]])
        across_side *= 1.0 if across_side @ side >= 0 else -1.0
        src = np.array([start, landmarks_px[tip] + 0.15 * length * along, start + width / 2 * side])
        dst = np.array([start, start + length * across, start + width / 2 * across_side])
        _paste_strip(out, mask, photo, skin, src, dst, width, 0.95)
    return out.astype(np.uint8), mask


@functools.lru_cache(maxsize=None)
def hand_pose_photo(pose: str, photo: str = "open_hand_a") -> tuple[np.ndarray, np.ndarray]:
    """(BGR photo, hand mask) of one of POSES, made from an open-hand photo by folding the other fingers."""
    if pose not in POSES:
        raise KeyError(f"unknown hand pose '{pose}' (poses: {', '.join(POSES)})")
    folded = tuple(f for f in FINGER_JOINTS if f not in POSES[pose])
    return fold_fingers(load_photo(photo), photo_landmarks_px(photo), folded)


@dataclass(frozen=True)
class Placement:
    """Where a hand goes in a frame: centre (fractions of width, height), hand length as a fraction of the frame
    height, rotation (degrees, counter-clockwise in the image), mirrored (the other hand)."""
    centre: tuple[float, float] = (0.5, 0.5)
    size: float = 0.5
    angle_deg: float = 0.0
    mirror: bool = False


@functools.lru_cache(maxsize=4)
def background(width: int = 640, height: int = 480) -> np.ndarray:
    """A real indoor background at camera size: the corridor wall of basketball1.png, in colour-less grey."""
    room = load_photo("room")[0:280, 205:425]            # wall, door frame, no people
    return cv2.resize(room, (width, height), interpolation=cv2.INTER_LINEAR)


def place_hand(hand_bgr: np.ndarray, hand_mask: np.ndarray, placement: Placement, width: int = 640,
               height: int = 480, backdrop: np.ndarray | None = None) -> np.ndarray:
    """A width x height BGR frame showing the hand cut out of ``hand_bgr`` (by ``hand_mask``) as placed."""
    frame = (backdrop if backdrop is not None else background(width, height)).copy()
    ys, xs = np.nonzero(hand_mask)
    if xs.size == 0:
        return frame
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    crop, mask = hand_bgr[y0:y1, x0:x1], hand_mask[y0:y1, x0:x1]
    if placement.mirror:
        crop, mask = crop[:, ::-1], mask[:, ::-1]
    scale = placement.size * height / max(crop.shape[:2])
    centre_in = ((crop.shape[1] - 1) / 2.0, (crop.shape[0] - 1) / 2.0)
    transform = cv2.getRotationMatrix2D(centre_in, placement.angle_deg, scale)
    transform[:, 2] += (placement.centre[0] * width - centre_in[0], placement.centre[1] * height - centre_in[1])
    warped = cv2.warpAffine(np.ascontiguousarray(crop), transform, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(np.ascontiguousarray(mask), transform, (width, height), flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha.astype(np.float32) / 255.0, (0, 0), 1.0)[..., None]
    return (frame.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha).astype(np.uint8)


def gesture_frame(pose: str, placement: Placement = Placement(), width: int = 640, height: int = 480,
                  photo: str = "open_hand_b") -> np.ndarray:
    """RGB frame of a hand pose placed on the background: what the camera node would publish."""
    hand, mask = hand_pose_photo(pose, photo)
    return cv2.cvtColor(place_hand(hand, mask, placement, width, height), cv2.COLOR_BGR2RGB)


# A pose and placement per gesture that MediaPipe + the classifier were measured to recognise, named in image
# directions (the classifier with mirror_directions false). Hand length half the frame height, centred.
IMAGE_GESTURE_SHOTS: dict[str, tuple[str, str, Placement]] = {
    "open_palm": ("open", "open_hand_a", Placement(angle_deg=90.0, size=0.5)),
    "fist": ("fist", "open_hand_a", Placement(angle_deg=90.0, size=0.5, mirror=True)),
    "thumbs_up": ("thumb", "open_hand_a", Placement(angle_deg=60.0, size=0.5)),
    "thumbs_down": ("thumb", "open_hand_a", Placement(angle_deg=-120.0, size=0.5)),
    "thumb_right": ("thumb", "open_hand_a", Placement(angle_deg=-30.0, size=0.5)),
    "thumb_left": ("thumb", "open_hand_a", Placement(angle_deg=150.0, size=0.5)),
    "pointing_up": ("point", "open_hand_a", Placement(angle_deg=90.0, size=0.5)),
    "pointing_down": ("point", "open_hand_a", Placement(angle_deg=-90.0, size=0.5)),
    "victory": ("victory", "open_hand_a", Placement(angle_deg=90.0, size=0.5, mirror=True)),
}
_SWAP_SIDES = {"thumb_left": "thumb_right", "thumb_right": "thumb_left", "swipe_left": "swipe_right",
               "swipe_right": "swipe_left"}


def image_name(gesture: str, mirror_directions: bool) -> str:
    """The image-direction name of a gesture named as the classifier with ``mirror_directions`` names it."""
    return _SWAP_SIDES.get(gesture, gesture) if mirror_directions else gesture


def shot(gesture: str, mirror_directions: bool = True, width: int = 640, height: int = 480,
         centre: tuple[float, float] | None = None) -> np.ndarray:
    """RGB frame showing ``gesture`` (named as the gesture node with ``mirror_directions`` names it)."""
    pose, photo, placement = IMAGE_GESTURE_SHOTS[image_name(gesture, mirror_directions)]
    if centre is not None:
        placement = Placement(centre, placement.size, placement.angle_deg, placement.mirror)
    return gesture_frame(pose, placement, width, height, photo)


SWIPE_HAND_SIZE = 0.4
SWIPE_PATHS = {"right": ((0.2, 0.5), (0.8, 0.5)), "left": ((0.8, 0.5), (0.2, 0.5)),
               "up": ((0.5, 0.75), (0.5, 0.2)), "down": ((0.5, 0.2), (0.5, 0.75))}


def swipe_frames(direction: str, frames: int = 8, width: int = 640, height: int = 480) -> list[np.ndarray]:
    """An open hand moving across the frame in image direction ``direction`` (left/right/up/down) over
    ``frames`` frames."""
    start, end = SWIPE_PATHS[direction]
    pose, photo, placement = IMAGE_GESTURE_SHOTS["open_palm"]
    out = []
    for i in range(frames):
        f = i / (frames - 1)
        centre = (start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]))
        out.append(gesture_frame(pose, Placement(centre, SWIPE_HAND_SIZE, placement.angle_deg, placement.mirror),
                                 width, height, photo))
    return out


def swipe_start_frame(direction: str, width: int = 640, height: int = 480) -> np.ndarray:
    """The open hand where a swipe in ``direction`` starts (to hold there before swiping)."""
    return swipe_frames(direction, 2, width, height)[0]


def empty_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """The background alone, RGB: no hand."""
    return cv2.cvtColor(background(width, height), cv2.COLOR_BGR2RGB)


def record_landmark_sets(path: Path) -> int:
    """Write what MediaPipe measures on the gesture shots (and turned / mirrored variants) as a landmark fixture
    for the classifier's unit tests: ``python -m tests.helpers.hands tests/data/gestures/landmarks.json``."""
    import json

    from mmchat_ros.backends.hands import MediaPipeHands
    detector = MediaPipeHands(static_image_mode=True, max_num_hands=1)
    entries = []
    variants = [(0.0, False), (-35.0, True), (40.0, False)]
    for gesture, (pose, photo, placement) in IMAGE_GESTURE_SHOTS.items():
        for turn, mirror in variants if gesture in ("open_palm", "fist", "victory") else variants[:1]:
            shown = Placement(placement.centre, placement.size, placement.angle_deg + turn,
                              placement.mirror != mirror)
            frame = gesture_frame(pose, shown, photo=photo)
            hands = detector.detect(frame)
            if len(hands) != 1:
                raise RuntimeError(f"{gesture} {shown}: MediaPipe found {len(hands)} hands")
            entries.append({"gesture": gesture, "handedness": hands[0].handedness, "score": round(hands[0].score, 3),
                            "aspect": frame.shape[1] / frame.shape[0],
                            "source": f"{photo}:{pose}:turn{shown.angle_deg:g}{':mirrored' if shown.mirror else ''}",
                            "landmarks": np.round(hands[0].landmarks, 5).tolist()})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "about": "MediaPipe Hands (mediapipe 0.10.21, static image mode) landmarks measured on frames made by "
                 "tests/helpers/hands.py from OpenCV's real hand photos; gesture names in image directions",
        "hands": entries}, indent=None, separators=(",", ":")) + "\n")
    return len(entries)


if __name__ == "__main__":
    import sys
    print(record_landmark_sets(Path(sys.argv[1])), "landmark sets written")


def two_hands_frame(first_pose: str, second_pose: str, width: int = 640, height: int = 480,
                    sizes: tuple[float, float] = (0.45, 0.45), photo: str = "open_hand_a") -> np.ndarray:
    """RGB frame with both hands of a person upright (fingers up, palms to the camera): ``first_pose`` (POSES) on
    the left of the frame, ``second_pose`` mirrored (the other hand) on the right."""
    frame = background(width, height)
    for pose, x, size, mirror in ((first_pose, 0.27, sizes[0], False), (second_pose, 0.73, sizes[1], True)):
        hand, mask = hand_pose_photo(pose, photo)
        # The photos' fingers point right (mirrored: left): a quarter turn puts them up.
        frame = place_hand(hand, mask, Placement((x, 0.5), size, -90.0 if mirror else 90.0, mirror), width,
                           height, frame)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class FramePlayer:
    """Publishes frames on an image topic at a fixed rate from its own thread, stamped when sent: a camera
    stand-in for tests (what it shows is changed with ``show``). Keeps every stamp it sent."""

    def __init__(self, ros, topic: str = "/camera/image_raw", fps: float = 15.0):
        import threading

        from sensor_msgs.msg import Image

        from mmchat_ros.nodes.common import SENSOR_QOS
        self.ros, self.period = ros, 1.0 / fps
        self.publisher = ros.node.create_publisher(Image, topic, SENSOR_QOS)
        self.frame: np.ndarray | None = None
        self.raw = None                      # an Image message to send as is (a bad frame), once
        self.sent: list[float] = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def show(self, frame: np.ndarray | None) -> None:
        """RGB frame to send from now on (None: send nothing, as a camera that stopped)."""
        with self.lock:
            self.frame = frame

    def send_raw_once(self, msg) -> None:
        with self.lock:
            self.raw = msg

    def _loop(self) -> None:
        import time

        from mmchat_ros.nodes.common import stamp_to_seconds
        from mmchat_ros.nodes.image_conversion import numpy_to_image
        next_t = time.monotonic()
        while self.running:
            with self.lock:
                frame, raw, self.raw = self.frame, self.raw, None
            stamp = self.ros.node.get_clock().now().to_msg()
            msg = raw if raw is not None else numpy_to_image(frame, "rgb8") if frame is not None else None
            if msg is not None:
                msg.header.stamp = stamp
                msg.header.frame_id = "camera_optical"
                try:
                    self.publisher.publish(msg)
                except Exception:          # the test is tearing the participant down
                    return
                if raw is None:
                    self.sent.append(stamp_to_seconds(stamp))
            next_t += self.period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=2.0)
