"""Real photographs of hands, and camera frames made from them, for the MediaPipe tests, the gesture pipeline
tests and the bench.

The photos come from Debian's opencv-doc (tests skip when it is not installed):
- ``open_hand_a`` / ``open_hand_b``: OpenCV's homography tutorial photos of an open hand lying on a table
  (``handSrc.jpg`` / ``handDst.jpg``; MediaPipe sees open palms);
- ``chessboard_thumb``: calibration photo ``right04.jpg``, a hand holding a board, thumb up, fingers hidden
  behind it (a partly visible hand);
- ``basketball``: ``basketball1.png``, two people playing with a ball, hands small and blurred.

Other hand shapes do not exist in these photos, so ``hand_pose_photo`` makes them from the open-hand photos by
removing fingers: the finger's pixels (located with MediaPipe's landmarks on the untouched photo and the photo's
skin mask) are replaced by the table behind them, estimated from the surrounding table pixels. What remains is a
real photograph of a hand whose missing fingers MediaPipe then reports as folded. ``place_hand`` cuts the hand out
(skin mask) and puts it, turned, scaled, mirrored and moved, onto a real background (``basketball1.png``'s
corridor wall) at camera size: every frame the tests feed the real MediaPipe is built this way.
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
# Fingers kept for each hand pose (the others are removed). The angle turns the photo so the kept finger points
# the way the gesture needs: the photos' fingers point to the right, with the thumb upward (a) or up-left (b).
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


def _table_behind(bgr: np.ndarray, hand: np.ndarray) -> np.ndarray:
    """The table under the hand: a smooth fill from the surrounding table pixels (normalised convolution)."""
    table = (cv2.dilate(hand, np.ones((9, 9), np.uint8)) == 0).astype(np.float32)
    image = bgr.astype(np.float32)
    filled = np.zeros_like(image)
    weight = np.zeros(table.shape, np.float32)
    for sigma in (8, 24, 64, 160):                      # fine detail near the edge, coarse far inside
        w = cv2.GaussianBlur(table, (0, 0), sigma)
        v = cv2.GaussianBlur(image * table[..., None], (0, 0), sigma)
        take = (weight < 0.5) & (w > 0.02)
        filled[take] = v[take] / w[take, None]
        weight[take] = 1.0
    return np.clip(filled, 0, 255).astype(np.uint8)


def remove_fingers(bgr: np.ndarray, landmarks_px: np.ndarray, fingers: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The photo with ``fingers`` replaced by the table behind them, and the remaining hand's mask."""
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
    cut = cv2.bitwise_and(cut, cv2.dilate(hand, np.ones((7, 7), np.uint8)))
    if not cut.any():
        return bgr.copy(), hand
    table = _table_behind(bgr, hand)
    soft = cv2.GaussianBlur(cut.astype(np.float32) / 255.0, (0, 0), 2.0)[..., None]
    out = (bgr.astype(np.float32) * (1 - soft) + table.astype(np.float32) * soft).astype(np.uint8)
    remaining = cv2.bitwise_and(hand, cv2.bitwise_not(cv2.dilate(cut, np.ones((5, 5), np.uint8))))
    return out, remaining


@functools.lru_cache(maxsize=None)
def hand_pose_photo(pose: str, photo: str = "open_hand_b") -> tuple[np.ndarray, np.ndarray]:
    """(BGR photo, hand mask) of one of POSES made from an open-hand photo."""
    image = load_photo(photo)
    landmarks = photo_landmarks_px(photo)
    removed = tuple(f for f in FINGER_JOINTS if f not in POSES[pose])
    return remove_fingers(image, landmarks, removed)


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
