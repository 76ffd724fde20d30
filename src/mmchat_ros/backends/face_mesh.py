"""Face Mesh landmarks for the liveness challenge (core/liveness.py): MediaPipe Face Mesh from the
``mediapipe==0.10.21`` wheel (``mp.solutions.face_mesh``; the models ship inside it, nothing is downloaded).

``refine_landmarks=True`` runs the attention model, whose eyelid points follow a closing eye (bench/liveness.py:
the plain model barely moves them, and blinks go unseen). Static-image mode: each frame is detected afresh, as
bench/liveness.py measured it (tracking mode may carry landmarks over between frames). Landmarks come back in pixels,
one (468+, 2) array per face; ``landmarks_in_box`` picks the face inside a given face box (the face the embedding
recognised), so a bystander cannot answer the operator's challenge.
"""
from __future__ import annotations

import numpy as np


class FaceMeshError(RuntimeError):
    """MediaPipe is missing, or an image it cannot take."""


class MediaPipeFaceMesh:
    name = "mediapipe_face_mesh"

    def __init__(self, max_num_faces: int = 2, min_detection_confidence: float = 0.5,
                 refine_landmarks: bool = True, static_image_mode: bool = True):
        try:
            from mediapipe.python.solutions import face_mesh as mp_face_mesh
        except ImportError as exc:   # pragma: no cover - depends on the install
            raise FaceMeshError(f"mediapipe is not installed ({exc}); pip install mediapipe==0.10.21") from exc
        self._mesh = mp_face_mesh.FaceMesh(static_image_mode=static_image_mode, max_num_faces=max_num_faces,
                                           refine_landmarks=refine_landmarks,
                                           min_detection_confidence=min_detection_confidence)

    def landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face's landmarks in pixels ((N, 2) float arrays) in an HxWx3 uint8 RGB image."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise FaceMeshError(f"Face Mesh needs an HxWx3 uint8 RGB image, got {getattr(rgb, 'shape', None)} "
                                f"{getattr(rgb, 'dtype', '')}")
        result = self._mesh.process(np.ascontiguousarray(rgb))
        h, w = rgb.shape[:2]
        return [np.array([(p.x * w, p.y * h) for p in face.landmark], dtype=np.float64)
                for face in result.multi_face_landmarks or []]

    def close(self) -> None:
        self._mesh.close()


def landmarks_in_box(faces: list[np.ndarray], box) -> np.ndarray | None:
    """The face whose landmark centre lies inside ``box`` (anything with top/right/bottom/left, e.g.
    backends.faces.FaceBox; grown by a quarter of its size each way, as the detectors frame faces differently),
    nearest the box centre; None when none does. With no box, the only face, or None when there are several."""
    if box is None:
        return faces[0] if len(faces) == 1 else None
    w, h = box.right - box.left, box.bottom - box.top
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    best, best_d = None, float("inf")
    for points in faces:
        x, y = points.mean(axis=0)
        if abs(x - cx) <= 0.75 * w and abs(y - cy) <= 0.75 * h:
            d = float(np.hypot(x - cx, y - cy))
            if d < best_d:
                best, best_d = points, d
    return best
