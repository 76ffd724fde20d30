"""Liveness challenge–response (core/liveness.py) measured on real photographs through the real MediaPipe Face Mesh.

    python bench/liveness.py [--seeds 4]

Subjects: the three real photos of tests/helpers/faces.py (scikit-image's astronaut, matplotlib's Grace Hopper,
OpenCV's Messi), as 640x480 camera views (face 150-220 px, exposure, blur, noise, JPEG; never mirrored), 5 fps.

Attacks (must all be refused), for each challenge kind:
  static  the same photo held still (fresh sensor noise every frame)
  moved   the photo moved in front of the camera: translated, rotated in plane, scaled, and tilted about its
          vertical and horizontal axes (a homography of a tilting flat print), a new pose every frame
Live operators (must pass), for each challenge kind, made from the same photos by warping, 1 s after the prompt:
  blink   the eyes closed over 3 frames and opened again: each eye's Face Mesh contour is filled from the top with
          the skin colour sampled under it (a lid), with a dark lash line at its edge (50 %, 100 %, 50 %)
  turn    a head turn of up to 25 degrees: the face region remapped as a rotating cylinder (radius 0.6 face
          widths), which moves the nose across the face more than the cheeks, as a turning head does
Face Mesh runs with refine_landmarks (the attention model: its eyelid landmarks follow a closing eye; the plain
model barely moves them). Prints one line per condition and a JSON line: false accepts (attacks passed), false rejects (live refused), and
the time from prompt to pass.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmchat_ros.core import liveness as lv  # noqa: E402
from tests.helpers import faces  # noqa: E402
from tests.helpers.liveness import close_eyes, turn_head  # noqa: E402,F401 (the warps, shared with the tests)

SIZE = (640, 480)
FPS = 5.0


class Mesh:
    def __init__(self):
        import mediapipe as mp
        self.mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
        self.times: list[float] = []

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        start = time.perf_counter()
        result = self.mesh.process(rgb)
        self.times.append(time.perf_counter() - start)
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])


def noisy(rgb, rng):
    return np.clip(rgb.astype(np.float32) + rng.normal(0, 3.0, rgb.shape), 0, 255).astype(np.uint8)


def moved_photo(rgb, step: int, rng):
    h, w = rgb.shape[:2]
    angle, scale = rng.uniform(-15, 15), rng.uniform(0.85, 1.15)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += rng.uniform(-40, 40, 2)
    out = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    # Tilt the print: the image plane rotated up to 20 degrees about a vertical and up to 12 about a horizontal
    # axis at 2.5 focal lengths, projected by a pinhole camera (a real perspective homography of a flat print).
    yaw, pitch = np.radians(rng.uniform(-20, 20)), np.radians(rng.uniform(-12, 12))
    f, depth = 1.2 * w, 2.5 * 1.2 * w
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    plane = np.column_stack([(corners - [w / 2, h / 2]) * depth / f, np.zeros(4)])
    world = plane @ (rx @ ry).T + [0, 0, depth]
    projected = (f * world[:, :2] / world[:, 2:3] + [w / 2, h / 2]).astype(np.float32)
    H = cv2.getPerspectiveTransform(corners, projected)
    return cv2.warpPerspective(out, H, (w, h), borderMode=cv2.BORDER_REPLICATE)


def trial(mesh, frame, points, kind, condition, rng) -> tuple[bool, float | None, str]:
    challenge = lv.LivenessChallenge(rng=random.Random(0))
    challenge.rng.choice = lambda options: kind
    t, issued_frame = 0.0, None
    for i in range(int((challenge.config.timeout_s + 2.0) * FPS)):
        if condition == "static":
            image = noisy(frame, rng)
        elif condition == "moved":
            image = noisy(moved_photo(frame, i, rng), rng)
        else:
            k = -1 if issued_frame is None else i - issued_frame - int(FPS)   # reacts 1 s after the prompt
            image = frame
            if condition == "live" and kind == lv.BLINK and 0 <= k < 3:
                image = close_eyes(frame, points, (0.5, 1.0, 0.5)[k])
            elif condition == "live" and kind != lv.BLINK and k >= 0:
                sign = lv.TURN_SIGN[kind]
                image = turn_head(frame, points, sign * min(25.0, 8.0 * (k + 1)))
            image = noisy(image, rng)
        state = challenge.observe(mesh.landmarks(image), t)
        if state == lv.ISSUED and issued_frame is None:
            issued_frame = i
        if challenge.done:
            break
        t += 1.0 / FPS
    passed = challenge.state == lv.PASSED
    return passed, (t - challenge.issued_at) if passed else None, challenge.reason or challenge.state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4, help="camera views per person")
    args = parser.parse_args(argv)
    mesh = Mesh()
    rng = np.random.default_rng(7)
    counts = {"attack_trials": 0, "false_accepts": 0, "live_trials": 0, "false_rejects": 0, "no_face_views": 0}
    pass_times, failures = [], []
    for person in faces.PEOPLE:
        for seed in range(args.seeds):
            frame = faces.camera_view(person, 1000 + seed, size=SIZE, face_px=(150, 220), mirror=False)
            points = mesh.landmarks(frame)
            if points is None or abs(lv.yaw_ratio(points)) > 0.25:
                counts["no_face_views"] += 1   # Face Mesh finds no face, or the photo is not frontal enough
                continue
            for kind in lv.CHALLENGES:
                for condition in ("static", "moved", "live"):
                    passed, took, why = trial(mesh, frame, points, kind, condition, rng)
                    if condition == "live":
                        counts["live_trials"] += 1
                        if passed:
                            pass_times.append(took)
                        else:
                            counts["false_rejects"] += 1
                            failures.append(f"live {person}/{seed} {kind}: {why}")
                    else:
                        counts["attack_trials"] += 1
                        if passed:
                            counts["false_accepts"] += 1
                            failures.append(f"{condition} photo {person}/{seed} {kind}: PASSED ({why})")
                    print(f"{condition:6s} {person:12s} view {seed} {kind:10s} -> "
                          f"{'pass' if passed else 'refused'} ({why})", flush=True)
    for line in failures:
        print("FAILURE", line)
    result = {**counts, "photo_attack_accepted": counts["false_accepts"],
              "pass_time_median_s": round(statistics.median(pass_times), 2) if pass_times else None,
              "pass_time_max_s": round(max(pass_times), 2) if pass_times else None,
              "face_mesh_ms_median": round(1000 * statistics.median(mesh.times), 1)}
    print(json.dumps(result))
    return 0 if counts["false_accepts"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
