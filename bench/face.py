#!/usr/bin/env python3
"""Face authentication figures on real photographs of three different people (scikit-image's astronaut,
matplotlib's grace_hopper.jpg, OpenCV's messi5.jpg; tests/helpers/faces.py): per-frame detection and embedding
time on 320x240 camera-like views, and the genuine / impostor distance distributions with the false-accept and
false-reject rates of the match threshold.

Each person is enrolled from --enroll augmented views (as the enroll_operator service does: consistent samples,
mean embedding); --probes other views of each person are then compared with every enrolled template. A genuine
comparison is a probe against its own person's template, an impostor one against another person's. FAR = impostor
comparisons within the threshold / impostor comparisons; FRR = genuine comparisons beyond it / genuine comparisons,
where a probe in which no face was found counts as a false reject.

    python bench/face.py [--detector hog|mediapipe|cnn] [--threshold 0.5] [--probes 20] [--compare-detectors]

--sim-distances: the face detectors at the distances the simulator's camera sees an operator. Its 320x240 frames
reach face_auth doubled to 640x480 by the camera node; a view here is made the same way (the photo at half the face
width in 320x240, then doubled), with faces 40-160 px wide in the 640x480 frame, i.e. about 1.2 m to 0.3 m from the
sim's 90-degree camera for a 15 cm wide face. Per detector setting and face width: faces found, ms per analysed frame
(detection + embedding of what was found; wall clock, and the process's CPU time, steadier on a busy machine), and
false rejects / accepts against templates enrolled with the same setting from the ordinary 320x240 views, and
against templates enrolled with dlib's HOG (upsample 1, the enroll CLI's default: a database enrolled before a
switch of detector).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, emit, percentile  # noqa: E402

sys.path.insert(0, str(ROOT))   # tests.helpers.faces: the photographs and their augmented views
import numpy as np  # noqa: E402

from mmchat_ros.backends.faces import make_face_analyzer  # noqa: E402
from mmchat_ros.core.face_auth import enrollment_samples  # noqa: E402
from tests.helpers import faces  # noqa: E402

PROBE_SEED0 = 1000   # probe views never share a seed with enrollment views (0..)


def wilson_upper(errors: int, trials: int, z: float = 1.96) -> float:
    """Upper end of the 95 % Wilson interval of an error rate: with 0 errors in n trials the rate is not 0."""
    if trials == 0:
        return float("nan")
    p = errors / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre + spread) / (1 + z * z / trials)


def histogram(values, lo: float, hi: float, bins: int = 14, width: int = 40) -> list[str]:
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    top = max(1, counts.max())
    return [f"  {edges[i]:.2f}-{edges[i + 1]:.2f} {'#' * int(round(width * c / top)):<{width}} {c}"
            for i, c in enumerate(counts)]


def run_detector(name: str, args) -> dict:
    analyzer = make_face_analyzer(name, upsample=args.upsample)
    analyzer.analyse(faces.camera_view("astronaut", 999))   # warm-up (first-call allocations)
    detect_ms, embed_ms, frame_ms = [], [], []

    def analyse(frame):
        start = time.perf_counter()
        result = analyzer.analyse(frame)
        frame_ms.append(1000 * (time.perf_counter() - start))
        detect_ms.append(1000 * result.detect_s)
        if result.faces:
            embed_ms.append(1000 * result.embed_s / len(result.faces))
        return result.faces[0].embedding if result.faces else None   # largest face

    templates, probes, missed = {}, {}, {}
    for person in faces.PEOPLE:
        samples = [e for e in (analyse(v) for v in faces.views(person, range(args.enroll))) if e is not None]
        kept, _ = enrollment_samples(samples, args.threshold, min_samples=3)
        templates[person] = np.mean(kept, axis=0)
        found = [analyse(v) for v in faces.views(person, range(PROBE_SEED0, PROBE_SEED0 + args.probes))]
        probes[person] = [e for e in found if e is not None]
        missed[person] = len(found) - len(probes[person])
    analyzer.close()

    genuine = [float(np.linalg.norm(e - templates[p])) for p in faces.PEOPLE for e in probes[p]]
    impostor = [float(np.linalg.norm(e - templates[q])) for p in faces.PEOPLE for e in probes[p]
                for q in faces.PEOPLE if q != p]
    failures_to_detect = sum(missed.values())
    genuine_trials = len(genuine) + failures_to_detect
    false_rejects = sum(d > args.threshold for d in genuine) + failures_to_detect
    false_accepts = sum(d <= args.threshold for d in impostor)
    return {"detect_ms": detect_ms, "embed_ms": embed_ms, "frame_ms": frame_ms, "genuine": genuine,
            "impostor": impostor, "failures_to_detect": failures_to_detect, "genuine_trials": genuine_trials,
            "false_rejects": false_rejects, "false_accepts": false_accepts}


SIM_FACE_PX = (40, 56, 80, 112, 160)      # face widths in the 640x480 frame face_auth receives in sim mode
SIM_SETTINGS = {                          # label -> make_face_analyzer options
    "hog upsample 0 (sim graph before)": dict(detector="hog", upsample=0),
    "hog upsample 1 (node default before)": dict(detector="hog", upsample=1),
    "mediapipe short-range": dict(detector="mediapipe"),
    "mediapipe full-range": dict(detector="mediapipe", full_range=True),
}


def sim_view(person: str, seed: int, face_px: float) -> np.ndarray:
    """A 640x480 frame as face_auth gets it in sim mode: a 320x240 camera view doubled by the camera node."""
    import cv2
    small = faces.camera_view(person, seed, (320, 240), (face_px / 2, face_px / 2))
    return cv2.resize(small, (640, 480), interpolation=cv2.INTER_LINEAR)


def enrolled_templates(analyzer, args) -> dict:
    templates = {}
    for person in faces.PEOPLE:
        samples = [r.faces[0].embedding for r in map(analyzer.analyse, faces.views(person, range(args.enroll)))
                   if r.faces]
        kept, _ = enrollment_samples(samples, args.threshold, min_samples=3)
        templates[person] = np.mean(kept, axis=0)
    return templates


def sim_distance_table(args) -> dict:
    """The --sim-distances table (printed) and its figures."""
    hog_templates = enrolled_templates(make_face_analyzer("hog", upsample=1), args)
    figures, rows = {}, []
    for label, options in SIM_SETTINGS.items():
        analyzer = make_face_analyzer(**options)
        analyzer.analyse(sim_view("astronaut", 999, 80))      # warm-up
        own_templates = enrolled_templates(analyzer, args)
        key = "_".join(label.split(" (")[0].replace("-", "_").split())
        for face_px in SIM_FACE_PX:
            wall_ms, cpu_ms, found = [], [], 0
            rejects = {"own": 0, "hog": 0}
            accepts = {"own": 0, "hog": 0}
            for person in faces.PEOPLE:
                for seed in range(PROBE_SEED0, PROBE_SEED0 + args.probes_per_size):
                    frame = sim_view(person, seed, face_px)
                    cpu, start = time.process_time(), time.perf_counter()
                    result = analyzer.analyse(frame)
                    wall_ms.append(1000 * (time.perf_counter() - start))
                    cpu_ms.append(1000 * (time.process_time() - cpu))
                    found += bool(result.faces)
                    for name, templates in (("own", own_templates), ("hog", hog_templates)):
                        if not result.faces:
                            rejects[name] += 1
                            continue
                        distances = {q: float(np.linalg.norm(result.faces[0].embedding - templates[q]))
                                     for q in faces.PEOPLE}
                        rejects[name] += distances[person] > args.threshold
                        accepts[name] += sum(d <= args.threshold for q, d in distances.items() if q != person)
            probes = len(faces.PEOPLE) * args.probes_per_size
            row = {"found": found / probes, "ms_p50": percentile(wall_ms, 50), "ms_p95": percentile(wall_ms, 95),
                   "cpu_ms_mean": sum(cpu_ms) / len(cpu_ms), "frr": rejects["own"] / probes,
                   "far": accepts["own"] / (probes * (len(faces.PEOPLE) - 1)),
                   "frr_hog_enrolled": rejects["hog"] / probes,
                   "far_hog_enrolled": accepts["hog"] / (probes * (len(faces.PEOPLE) - 1))}
            rows.append((label, face_px, row))
            figures.update({f"sim_{key}_{face_px}px_{name}": value for name, value in row.items()})
        analyzer.close()
    print(f"\n[face] sim distances: {args.probes_per_size} probes per person and face width, "
          f"{len(faces.PEOPLE)} people, 640x480 frames (320x240 doubled), threshold {args.threshold}")
    print("| detector | face px (~distance) | found | ms/frame p50 | p95 | CPU ms/frame | FRR | FAR | "
          "FRR, HOG-enrolled | FAR, HOG-enrolled |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, face_px, row in rows:
        print(f"| {label} | {face_px} (~{0.15 * 320 / face_px:.1f} m) | {row['found']:.2f} | {row['ms_p50']:.1f} | "
              f"{row['ms_p95']:.1f} | {row['cpu_ms_mean']:.1f} | {row['frr']:.2f} | {row['far']:.3f} | "
              f"{row['frr_hog_enrolled']:.2f} | {row['far_hog_enrolled']:.3f} |", flush=True)
    return figures


def equal_error_threshold(genuine, impostor) -> float:
    """The threshold where FAR and FRR are closest (midpoint of the gap when the distributions do not overlap)."""
    if max(genuine) < min(impostor):
        return (max(genuine) + min(impostor)) / 2
    candidates = sorted(genuine + impostor)
    rates = [(abs(sum(d <= t for d in impostor) / len(impostor) - sum(d > t for d in genuine) / len(genuine)), t)
             for t in candidates]
    return min(rates)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detector", default="hog", help="hog, mediapipe or cnn (the face_auth node's parameter)")
    parser.add_argument("--threshold", type=float, default=0.5, help="match threshold (the node's default: 0.5)")
    parser.add_argument("--enroll", type=int, default=5, help="enrollment views per person")
    parser.add_argument("--probes", type=int, default=20, help="probe views per person")
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--compare-detectors", action="store_true", help="also time the other CPU detector")
    parser.add_argument("--sim-distances", action="store_true",
                        help="only the detectors at the sim camera's operator distances (see above)")
    parser.add_argument("--probes-per-size", type=int, default=8, help="--sim-distances: probes per person and size")
    args = parser.parse_args()
    if args.sim_distances:
        load = os.getloadavg()[0]
        print(f"[face] load average (1 min) at the start: {load:.2f}", flush=True)
        figures = sim_distance_table(args)
        figures.update({"load_average_1min_start": load, "load_average_1min_end": os.getloadavg()[0]})
        print(f"[face] load average (1 min) at the end: {figures['load_average_1min_end']:.2f}")
        emit(figures)
        return 0

    print(f"[face] {len(faces.PEOPLE)} people ({', '.join(faces.PEOPLE)}), {args.enroll} enrollment + "
          f"{args.probes} probe views each, {faces.FRAME_SIZE[0]}x{faces.FRAME_SIZE[1]}, detector {args.detector}, "
          f"threshold {args.threshold}", flush=True)
    r = run_detector(args.detector, args)
    genuine, impostor = r["genuine"], r["impostor"]
    far = r["false_accepts"] / len(impostor)
    frr = r["false_rejects"] / r["genuine_trials"]
    print(f"[face] per frame: detect p50 {percentile(r['detect_ms'], 50):.1f} ms (p90 "
          f"{percentile(r['detect_ms'], 90):.1f}), embed p50 {percentile(r['embed_ms'], 50):.1f} ms per face (p90 "
          f"{percentile(r['embed_ms'], 90):.1f}), whole frame p50 {percentile(r['frame_ms'], 50):.1f} ms")
    print(f"[face] genuine distances ({len(genuine)}): min {min(genuine):.3f} p50 {percentile(genuine, 50):.3f} "
          f"p95 {percentile(genuine, 95):.3f} max {max(genuine):.3f}")
    print(f"[face] impostor distances ({len(impostor)}): min {min(impostor):.3f} p5 {percentile(impostor, 5):.3f} "
          f"p50 {percentile(impostor, 50):.3f} max {max(impostor):.3f}")
    print("[face] genuine histogram:")
    print("\n".join(histogram(genuine, 0.0, 1.0)))
    print("[face] impostor histogram:")
    print("\n".join(histogram(impostor, 0.0, 1.0)))
    for t in (0.4, 0.5, 0.6):
        t_far = sum(d <= t for d in impostor) / len(impostor)
        t_frr = (sum(d > t for d in genuine) + r["failures_to_detect"]) / r["genuine_trials"]
        print(f"[face] threshold {t:.2f}: FAR {t_far:.4f}, FRR {t_frr:.4f}")
    eer_t = equal_error_threshold(genuine, impostor)
    print(f"[face] chosen threshold {args.threshold}: FAR {far:.4f} ({r['false_accepts']}/{len(impostor)}, 95 % upper "
          f"{wilson_upper(r['false_accepts'], len(impostor)):.3f}), FRR {frr:.4f} ({r['false_rejects']}/"
          f"{r['genuine_trials']}, 95 % upper {wilson_upper(r['false_rejects'], r['genuine_trials']):.3f}); "
          f"equal-error threshold {eer_t:.3f}; no face found in {r['failures_to_detect']} probe(s)")

    figures = {
        "detector": args.detector,
        "frames": len(r["frame_ms"]),
        "detect_ms_p50": percentile(r["detect_ms"], 50),
        "detect_ms_p90": percentile(r["detect_ms"], 90),
        "embed_ms_p50": percentile(r["embed_ms"], 50),
        "embed_ms_p90": percentile(r["embed_ms"], 90),
        "frame_ms_p50": percentile(r["frame_ms"], 50),
        "threshold": args.threshold,
        "far": far,
        "frr": frr,
        "far_upper95": wilson_upper(r["false_accepts"], len(impostor)),
        "frr_upper95": wilson_upper(r["false_rejects"], r["genuine_trials"]),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "failures_to_detect": r["failures_to_detect"],
        "genuine_distance_p50": percentile(genuine, 50),
        "genuine_distance_max": max(genuine),
        "impostor_distance_min": min(impostor),
        "impostor_distance_p50": percentile(impostor, 50),
        "equal_error_threshold": eer_t,
    }
    if args.compare_detectors:
        other = "mediapipe" if args.detector != "mediapipe" else "hog"
        o = run_detector(other, args)
        o_far = o["false_accepts"] / len(o["impostor"])
        o_frr = o["false_rejects"] / o["genuine_trials"]
        print(f"[face] {other}: detect p50 {percentile(o['detect_ms'], 50):.1f} ms, embed p50 "
              f"{percentile(o['embed_ms'], 50):.1f} ms, FAR {o_far:.4f}, FRR {o_frr:.4f}")
        figures.update({f"{other}_detect_ms_p50": percentile(o["detect_ms"], 50),
                        f"{other}_embed_ms_p50": percentile(o["embed_ms"], 50),
                        f"{other}_far": o_far, f"{other}_frr": o_frr})
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
