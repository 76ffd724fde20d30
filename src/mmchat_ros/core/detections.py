"""What the tracker reports, without ROS: one tracked object of one /detections frame, shared by the planner (which
object to follow), its answers (what the drone sees) and follow-me (where to steer)."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class TrackedObject:
    """One object of one frame: its box centre and size in pixels as /detections gives them, or in fractions of the
    image (0..1, x right, y down) once `normalised`. track_id < 0: detected but not tracked."""
    track_id: int
    class_name: str
    center_x: float
    center_y: float
    width: float
    height: float
    score: float = 1.0

    @property
    def area(self) -> float:
        return self.width * self.height

    def normalised(self, image_width: float, image_height: float) -> TrackedObject:
        """The same box in fractions of an image of this size in pixels."""
        if image_width <= 0 or image_height <= 0:
            raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
        return replace(self, center_x=self.center_x / image_width, center_y=self.center_y / image_height,
                       width=self.width / image_width, height=self.height / image_height)
