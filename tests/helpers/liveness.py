"""A live operator made from a real photograph, for the liveness challenge (core/liveness.py) through the real
face_auth node: one camera view of the photo (never mirrored: the head-turn direction must be the person's), with
fresh sensor noise every frame, that answers the prompt on /auth/prompt as a person would:

  blink       each eye's Face Mesh contour filled from the top with the skin colour under it (a lid) with a dark
              lash line, closing over 2 frames, closed for 2, opening over 1 (0.5 s at 10 fps), then open 1.5 s,
              and again: people blink more than once
  turn        a head turn of up to 25 degrees: the face region remapped as a rotating cylinder (radius 0.6 face
              widths), held, then back to the front, and again

(bench/liveness.py measures the challenge with the same warps.) A still photograph is ``still_frames``.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

from mmchat_ros.core import liveness as lv
from tests.helpers import faces

LEFT_CONTOUR = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
RIGHT_CONTOUR = [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398]


def close_eyes(rgb, points, closure: float):
    out = rgb.copy()
    for contour in (LEFT_CONTOUR, RIGHT_CONTOUR):
        poly = points[contour].astype(np.float32)
        top, bottom = poly[:, 1].min(), poly[:, 1].max()
        height = bottom - top
        x0, x1 = int(poly[:, 0].min()), int(poly[:, 0].max()) + 1
        below = rgb[int(bottom + 0.6 * height):int(bottom + 1.6 * height) + 1, x0:x1]
        skin = below.reshape(-1, 3).mean(axis=0) if below.size else rgb[int(bottom), x0:x1].mean(axis=0)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        edge = top + closure * (height + 2)
        mask[int(np.ceil(edge)):, :] = 0
        lid = np.zeros_like(rgb)
        lid[:] = skin
        soft = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None] / 255.0
        out = (out * (1 - soft) + lid * soft).astype(np.uint8)
        xs = poly[:, 0]
        cv2.line(out, (int(xs.min()), int(edge)), (int(xs.max()), int(edge)), (40, 30, 30), 2, cv2.LINE_AA)
    return out


def turn_head(rgb, points, degrees: float):
    left, right = points[lv.CHEEK_IMAGE_LEFT], points[lv.CHEEK_IMAGE_RIGHT]
    cx = 0.5 * (left[0] + right[0])
    radius = 0.6 * np.linalg.norm(right - left)
    top, bottom = points[:, 1].min() - 0.3 * radius, points[:, 1].max() + 0.3 * radius
    h, w = rgb.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    u = np.clip((xs - cx) / radius, -1.0, 1.0)
    src = cx + radius * np.sin(np.arcsin(u) - np.radians(degrees))
    inside = (np.abs(xs - cx) < radius) & (ys > top) & (ys < bottom)
    # Blend the warp out towards the region's border, so no seam.
    weight = np.clip(1.0 - np.abs(xs - cx) / radius, 0, 1) ** 0.5 * inside
    map_x = (xs * (1 - weight) + src * weight).astype(np.float32)
    return cv2.remap(rgb, map_x, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def mesh_landmarks(rgb) -> np.ndarray | None:
    from mmchat_ros.backends.face_mesh import MediaPipeFaceMesh
    mesh = MediaPipeFaceMesh(max_num_faces=1)
    try:
        found = mesh.landmarks(rgb)
    finally:
        mesh.close()
    return found[0] if found else None


class LiveOperator:
    """Sequences of one camera view of ``person``: still, blinking, turning left or right."""

    def __init__(self, person: str = "astronaut", seed: int = 100, size=faces.FRAME_SIZE, face_px=(100, 120)):
        self.view = faces.camera_view(person, seed, size=size, face_px=face_px, mirror=False)
        self.points = mesh_landmarks(self.view)
        if self.points is None or abs(lv.yaw_ratio(self.points)) > 0.25:
            raise ValueError(f"view {person}/{seed} is not a frontal face Face Mesh finds: pick another seed")
        self.rng = np.random.default_rng(seed)

    def _noisy(self, rgb):
        return np.clip(rgb.astype(np.float32) + self.rng.normal(0, 2.0, rgb.shape), 0, 255).astype(np.uint8)

    def still_frames(self, n: int = 6) -> list[np.ndarray]:
        return [self._noisy(self.view) for _ in range(n)]

    def answer(self, prompt: str) -> list[np.ndarray]:
        """One cycle (at 10 fps) doing what ``prompt`` (core.liveness.PROMPTS) asks; a still face for no prompt."""
        kind = next((k for k, text in lv.PROMPTS.items() if text == prompt), None)
        if kind is None:
            return self.still_frames()
        if kind == lv.BLINK:
            closures = (0.5, 1.0, 1.0, 1.0, 0.5)
            return [self._noisy(close_eyes(self.view, self.points, c)) for c in closures] + self.still_frames(15)
        sign = lv.TURN_SIGN[kind]
        angles = (8, 16, 25, 25, 25, 25, 25, 16, 8)
        return [self._noisy(turn_head(self.view, self.points, sign * a)) for a in angles] + self.still_frames(10)


class PromptResponder:
    """Shows ``operator`` on ``camera`` (tests.helpers.faces.CameraStream) doing what /auth/prompt asks, from the
    moment it asks; a still face otherwise. ``prompts`` lists the prompts seen, in order."""

    def __init__(self, ros, camera, operator: LiveOperator):
        from std_msgs.msg import String
        from mmchat_ros.nodes.common import STATE_QOS
        self.camera, self.operator = camera, operator
        self.prompts: list[str] = []
        self.lock = threading.Lock()
        self.cache: dict[str, list] = {}
        camera.show(operator.still_frames())
        self.subscription = ros.node.create_subscription(String, "/auth/prompt", self._on_prompt, STATE_QOS)

    def _on_prompt(self, msg) -> None:
        with self.lock:
            if msg.data not in self.cache:
                self.cache[msg.data] = self.operator.answer(msg.data)
            self.camera.show(self.cache[msg.data])
            self.prompts.append(msg.data)   # after showing: a test that saw it may change the camera itself
