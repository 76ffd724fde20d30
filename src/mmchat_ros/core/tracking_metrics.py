"""How well a multi-object tracker keeps identities. Pure Python + numpy, no rclpy.

A frame is a mapping ``track_id -> (x1, y1, x2, y2)`` in pixels.

- ``clear_mot_id_switches``: the CLEAR-MOT identity-switch count against ground truth (each ground-truth object
  matched to a track by IoU; a switch is a ground-truth object whose matched track id changes).
- ``proxy_id_switches``: the same idea without ground truth, for real video that has none (vtest.avi): the
  tracker's own boxes are linked across frames by overlap, and an identity change on a linked box counts as a
  switch. Two cases are caught: (1) a box that does not overlap its own id's previous box but overlaps another
  box of the previous frame (IoU >= iou_threshold) carrying a different id: a relabel, or a swap between
  objects; (2) a brand-new id born near where a track vanished a few frames earlier (within max_gap_frames):
  the tracker failed to re-associate the object after a detection gap and re-numbered it. An object that truly
  leaves and a different one that enters at the same spot within the gap would be miscounted; that is rare and
  errs on the side of reporting more switches.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]
Frame = Mapping[int, Box]


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """Pairwise intersection-over-union of two box lists (x1, y1, x2, y2), shape (len(a), len(b))."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    A = np.asarray(a, float)[:, None, :]
    B = np.asarray(b, float)[None, :, :]
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one pairs (row, column) by descending IoU, each at least ``threshold``."""
    pairs = []
    if iou.size == 0:
        return pairs
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
    used_rows, used_cols = set(), set()
    for r, c in order:
        if iou[r, c] < threshold:
            break
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(int(r))
        used_cols.add(int(c))
        pairs.append((int(r), int(c)))
    return pairs


@dataclass(frozen=True)
class TrackingSummary:
    frames: int
    boxes: int                       # tracked boxes over all frames
    tracks: int                      # distinct track ids
    id_switches: int
    relabels: int                    # proxy: overlapping box with a new id on the next frame
    fragment_relinks: int            # proxy: new id born where a track vanished within the gap
    mean_track_length_frames: float  # frames in which each id appears, averaged over ids

    @property
    def id_switches_per_100_frames(self) -> float:
        return 100.0 * self.id_switches / self.frames if self.frames else float("nan")

    def as_dict(self) -> dict:
        return {"frames": self.frames, "boxes": self.boxes, "tracks": self.tracks, "id_switches": self.id_switches,
                "relabels": self.relabels, "fragment_relinks": self.fragment_relinks,
                "mean_track_length_frames": self.mean_track_length_frames,
                "id_switches_per_100_frames": self.id_switches_per_100_frames}


def _track_lengths(frames: Sequence[Frame]) -> dict[int, int]:
    lengths: dict[int, int] = {}
    for frame in frames:
        for tid in frame:
            lengths[tid] = lengths.get(tid, 0) + 1
    return lengths


def proxy_id_switches(frames: Sequence[Frame], iou_threshold: float = 0.5, max_gap_frames: int = 30,
                      relink_iou: float = 0.3) -> TrackingSummary:
    """Identity switches of a tracker's output without ground truth (see the module docstring)."""
    relabels = relinks = 0
    seen: set[int] = set()
    last_box: dict[int, Box] = {}
    last_frame: dict[int, int] = {}
    previous: Frame = {}
    for index, frame in enumerate(frames):
        ids, boxes = list(frame), [tuple(frame[t]) for t in frame]
        # A track whose box still overlaps its own previous box kept its identity (objects crossing each other
        # overlap too: that must not read as a swap). The rest are linked by overlap alone.
        kept = {c for c, t in enumerate(ids)
                if t in previous and iou_matrix([previous[t]], [boxes[c]])[0, 0] >= iou_threshold}
        prev_ids = [t for t in previous if t not in {ids[c] for c in kept}]
        free = [c for c in range(len(ids)) if c not in kept]
        matched_current = set(kept)
        iou = iou_matrix([previous[t] for t in prev_ids], [boxes[c] for c in free])
        for r, c in greedy_match(iou, iou_threshold):
            matched_current.add(free[c])
            if prev_ids[r] != ids[free[c]]:
                relabels += 1
        # Tracks that vanished recently and are not in this frame: candidates for a re-numbered comeback.
        vanished = [t for t, f in last_frame.items() if t not in frame and index - f <= max_gap_frames]
        newborn = [c for c, t in enumerate(ids) if t not in seen and c not in matched_current]
        if vanished and newborn:
            iou = iou_matrix([boxes[c] for c in newborn], [last_box[t] for t in vanished])
            for r, c in greedy_match(iou, relink_iou):
                relinks += 1
                last_frame.pop(vanished[c])      # one comeback per vanished track
        for t, box in zip(ids, boxes):
            seen.add(t)
            last_box[t] = box
            last_frame[t] = index
        previous = frame
    lengths = _track_lengths(frames)
    return TrackingSummary(
        frames=len(frames), boxes=sum(lengths.values()), tracks=len(lengths), id_switches=relabels + relinks,
        relabels=relabels, fragment_relinks=relinks,
        mean_track_length_frames=float(np.mean(list(lengths.values()))) if lengths else 0.0)


def clear_mot_id_switches(truth: Sequence[Frame], tracked: Sequence[Frame], iou_threshold: float = 0.5
                          ) -> TrackingSummary:
    """CLEAR-MOT identity switches: ground-truth objects whose matched track id differs from the one they were
    last matched to. Matching keeps last frame's correspondences when they still overlap, then pairs the rest
    greedily by IoU (the CLEAR-MOT procedure, with greedy instead of Hungarian assignment)."""
    if len(truth) != len(tracked):
        raise ValueError(f"ground truth has {len(truth)} frames, the tracker output {len(tracked)}")
    last_match: dict[int, int] = {}     # ground-truth id -> track id it was last matched to
    switches = 0
    for gt_frame, hyp_frame in zip(truth, tracked):
        pairs: dict[int, int] = {}
        for gid, tid in last_match.items():
            if gid in gt_frame and tid in hyp_frame and tid not in pairs.values() and \
                    iou_matrix([gt_frame[gid]], [hyp_frame[tid]])[0, 0] >= iou_threshold:
                pairs[gid] = tid
        gids = [g for g in gt_frame if g not in pairs]
        tids = [t for t in hyp_frame if t not in pairs.values()]
        iou = iou_matrix([gt_frame[g] for g in gids], [hyp_frame[t] for t in tids])
        for r, c in greedy_match(iou, iou_threshold):
            pairs[gids[r]] = tids[c]
        for gid, tid in pairs.items():
            if gid in last_match and last_match[gid] != tid:
                switches += 1
            last_match[gid] = tid
    lengths = _track_lengths(tracked)
    return TrackingSummary(
        frames=len(tracked), boxes=sum(lengths.values()), tracks=len(lengths), id_switches=switches,
        relabels=switches, fragment_relinks=0,
        mean_track_length_frames=float(np.mean(list(lengths.values()))) if lengths else 0.0)
