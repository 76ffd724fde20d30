"""The tracker's YOLO through each CPU runtime, measured against PyTorch on the same vtest.avi frames.

    python bench/detector_runtimes.py                          # yolo11n architecture, untrained (see below)
    python bench/detector_runtimes.py --weights yolo11n.pt     # a trained model: detection agreement too
    python bench/detector_runtimes.py --out models/            # keep the exported and quantised models

For each input size (320 and 640 px) the weights run through
  pytorch   ultralytics' PyTorch model (the .pt the tracker loads by default);
  onnx      its ONNX export (``detectors export --format onnx``) in ONNX Runtime, fp32;
  int8      that export quantised statically to INT8 (``detectors.quantize_onnx_int8``), its activation ranges
            calibrated on vtest frames apart from the measured ones, in ONNX Runtime;
  openvino  the OpenVINO export (``--format openvino``), fp32, and
  openvino_int8  the same INT8 ONNX model compiled by OpenVINO (it runs ONNX Runtime's quantised graph as int8:
            no NNCF needed) -- both only where the optional ``openvino`` package is installed.
Every runtime gets the same input tensor (each frame letterboxed to S x S as ultralytics does), so differences
are the runtime's alone. Per runtime: network ms per frame (p50, p95) with one thread and with the runtime's
default threads; agreement with PyTorch's raw output (max / mean absolute difference of the (1, 4 + classes, N)
tensor; box rows in pixels, class-score rows 0..1); and agreement of detections after the same NMS at a low
confidence (``--conf``): boxes of one class paired by IoU >= 0.5, F1 against PyTorch's boxes. Then the tracker's
own detector class (``UltralyticsDetector``: letterbox + network + NMS) on each model file: what a frame costs the
tracker with that runtime.

Untrained weights (the default: no registry ships trained YOLO weights and nothing is downloaded): yolo11n's
architecture with random weights whose BatchNorm statistics are set from the calibration frames
(``build_untrained_model(normalise_on=...)``); with BatchNorm's initial statistics the random network gives nearly
the same output for every image, which any runtime reproduces and which says nothing. Normalised, its outputs
depend on the input with realistic activation ranges, so timings and raw-output differences are meaningful, though
a random network is harder to quantise than a trained one (no regular weight and activation ranges): its int8
error is a pessimistic proxy. Its few boxes above ``--conf`` are arbitrary: the detection F1 then says only how far
a runtime keeps this network's decisions. Only ``--weights`` of a trained model says whether int8 keeps the
detections that matter.
Ends with one JSON line (units in the key names).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import emit, percentile  # noqa: E402

from mmchat_ros.backends.detectors import (Detections, UltralyticsDetector, build_untrained_model,  # noqa: E402
                                           detection_agreement, export_model, missing_packages, network_input,
                                           quantize_onnx_int8)
from mmchat_ros.backends.tracking import video_frames  # noqa: E402

VTEST_AVI = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
VTEST_FRAMES = 795
NMS_IOU = 0.7              # the tracker's default
WARMUP_FRAMES = 3


def pytorch_runner(weights: Path):
    import torch
    from ultralytics import YOLO
    model = YOLO(str(weights), task="detect").model.float().fuse().eval()    # as ultralytics' predictor runs it

    def make(threads: int):
        torch.set_num_threads(threads)

        def run(tensor):
            with torch.inference_mode():
                out = model(torch.from_numpy(tensor))
            return (out[0] if isinstance(out, (tuple, list)) else out).numpy()
        return run
    return make


def onnxruntime_runner(model: Path):
    import onnxruntime

    def make(threads: int):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads if threads == 1 else 0     # 0: ONNX Runtime's default
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda tensor: session.run(None, {name: tensor})[0]
    return make


def openvino_runner(model: Path):
    import openvino

    core = openvino.Core()

    def make(threads: int):
        config = {"PERFORMANCE_HINT": "LATENCY"}                 # as ultralytics compiles it
        if threads == 1:
            config["INFERENCE_NUM_THREADS"] = 1
        compiled = core.compile_model(str(model), "CPU", config)
        return lambda tensor: next(iter(compiled(tensor).values()))
    return make


def time_in_turn(calls: dict, items) -> dict[str, tuple[list[float], list[float], list]]:
    """Each item through every call in turn (so all see the same load on a shared machine; single-threaded calls):
    per call the wall ms, the process CPU ms (all threads: what the frame costs the robot's cores, spinning
    included) and the results."""
    for item in items[:WARMUP_FRAMES]:
        for call in calls.values():
            call(item)
    measured = {name: ([], [], []) for name in calls}
    for item in items:
        for name, call in calls.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = call(item)
            measured[name][0].append((time.perf_counter() - wall) * 1000.0)
            measured[name][1].append((time.process_time() - cpu) * 1000.0)
            measured[name][2].append(result)
    return measured


def separately(calls: dict, items) -> dict[str, tuple[list[float], list[float], list]]:
    """``time_in_turn`` one call at a time: runtimes with thread pools (ONNX Runtime's spin after each run) would
    slow the next call down if taken in turn."""
    return {name: time_in_turn({name: call}, items)[name] for name, call in calls.items()}


def decode(outputs, confidence: float, names) -> list[Detections]:
    """The same NMS for every runtime's raw output (boxes in network-input pixels)."""
    import torch
    from ultralytics.utils.nms import non_max_suppression
    found = []
    for output in outputs:
        boxes = non_max_suppression(torch.from_numpy(output), conf_thres=confidence, iou_thres=NMS_IOU)[0].numpy()
        found.append(Detections.from_arrays(boxes[:, :4], boxes[:, 4], boxes[:, 5].astype(int), names))
    return found


def output_differences(reference, outputs) -> dict[str, float]:
    ref, out = np.concatenate(reference), np.concatenate(outputs)
    diff = np.abs(out.astype(np.float64) - ref)
    return {"output_max_abs_diff": float(diff.max()), "output_mean_abs_diff": float(diff.mean()),
            "box_max_abs_diff_px": float(diff[:, :4].max()), "score_max_abs_diff": float(diff[:, 4:].max())}


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="", help="a trained YOLO .pt (default: untrained yolo11n)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 640], help="network input sizes, px")
    parser.add_argument("--frames", type=int, default=100, help="measured vtest frames, from frame 0")
    parser.add_argument("--calibration-frames", type=int, default=32,
                        help="int8 calibration frames, every 4th from frame 600 (apart from the measured ones)")
    parser.add_argument("--detect-frames", type=int, default=30,
                        help="frames for the tracker's detector class on each model file")
    parser.add_argument("--conf", type=float, default=0.1, help="NMS confidence for the detection agreement")
    parser.add_argument("--out", default="", help="keep the exported models in this folder")
    args = parser.parse_args(argv)
    calibration_start = 600
    if args.frames > calibration_start or calibration_start + 4 * args.calibration_frames > VTEST_FRAMES:
        parser.error(f"--frames at most {calibration_start} and --calibration-frames at most "
                     f"{(VTEST_FRAMES - calibration_start) // 4}: calibration takes every 4th frame from "
                     f"{calibration_start}, apart from the measured ones")

    import torch
    default_threads = torch.get_num_threads()
    frames = list(video_frames(VTEST_AVI, args.frames))
    calibration = list(video_frames(VTEST_AVI, 4 * args.calibration_frames, calibration_start))[::4]
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mmchat-runtimes-"))
    work.mkdir(parents=True, exist_ok=True)
    source = Path(args.weights) if args.weights else build_untrained_model(work / "yolo11n.pt",
                                                                           normalise_on=calibration)
    has_openvino = not missing_packages(["openvino"])
    print(f"{len(frames)} vtest frames measured, {len(calibration)} calibration frames; weights "
          f"{args.weights or 'yolo11n architecture, UNTRAINED (BatchNorm from calibration frames; boxes arbitrary)'}"
          f"; threads: 1 and "
          f"{default_threads} (torch default); OpenVINO {'installed' if has_openvino else 'not installed: skipped'}")
    figures = {"frames": len(frames), "calibration_frames": len(calibration), "weights": args.weights or "untrained",
               "default_threads": default_threads, "conf": args.conf}
    try:
        for size in args.sizes:
            folder = work / f"{size}px"
            folder.mkdir(exist_ok=True)
            weights = Path(shutil.copy(source, folder / source.name))
            onnx_model = export_model(str(weights), "onnx", size)
            start = time.perf_counter()
            int8_model = quantize_onnx_int8(onnx_model, calibration)
            figures[f"int8_quantize_s_{size}"] = time.perf_counter() - start
            models = {"pytorch": weights, "onnx": onnx_model, "int8": int8_model}
            runners = {"pytorch": pytorch_runner(weights), "onnx": onnxruntime_runner(onnx_model),
                       "int8": onnxruntime_runner(int8_model)}
            if has_openvino:
                models["openvino"] = export_model(str(weights), "openvino", size)
                runners["openvino"] = openvino_runner(next(models["openvino"].glob("*.xml")))
                runners["openvino_int8"] = openvino_runner(int8_model)
            measure_size(size, frames, runners, models, default_threads, args, figures)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)
    emit(figures)
    return 0


def measure_size(size, frames, runners, models, default_threads, args, figures) -> None:
    import torch
    inputs = [network_input(frame, size) for frame in frames]
    names = UltralyticsDetector(str(models["pytorch"]), image_size=size).names
    outputs, p50 = {}, {}
    for threads in (1, default_threads):
        calls = {name: make(threads) for name, make in runners.items()}
        measured = time_in_turn(calls, inputs) if threads == 1 else separately(calls, inputs)
        suffix = "_1thread" if threads == 1 else ""
        for name, (wall, cpu, out) in measured.items():
            figures[f"{name}{suffix}_ms_p50_{size}"] = p50[name, threads] = percentile(wall, 50)
            figures[f"{name}{suffix}_ms_p95_{size}"] = percentile(wall, 95)
            figures[f"{name}{suffix}_cpu_ms_p50_{size}"] = percentile(cpu, 50)
            outputs.setdefault(name, out)
    reference = decode(outputs["pytorch"], args.conf, names)
    figures[f"pytorch_boxes_per_frame_{size}"] = sum(len(d) for d in reference) / len(reference)
    print(f"\n{size} px (input 1x3x{size}x{size}) | wall ms p50 / p95, CPU ms p50: 1 thread | the same, default "
          "threads | max / mean |out - pytorch| | detection F1 vs pytorch | model MB")
    for name in runners:
        for threads in (1, default_threads):
            suffix = "_1thread" if threads == 1 else ""
            figures[f"{name}{suffix}_speedup_x_{size}"] = p50["pytorch", threads] / p50[name, threads]
        if name != "pytorch":
            for key, value in output_differences(outputs["pytorch"], outputs[name]).items():
                figures[f"{name}_{key}_{size}"] = value
            figures[f"{name}_detection_f1_{size}"] = detection_agreement(
                reference, decode(outputs[name], args.conf, names)).f1
        if name in models:
            figures[f"{name}_model_mb_{size}"] = size_mb(Path(models[name]))
        f1 = figures.get(f"{name}_detection_f1_{size}")
        timing = " | ".join(f"{figures[f'{name}{sfx}_ms_p50_{size}']:6.1f} / "
                            f"{figures[f'{name}{sfx}_ms_p95_{size}']:6.1f}, "
                            f"{figures[f'{name}{sfx}_cpu_ms_p50_{size}']:6.1f}" for sfx in ("_1thread", ""))
        print(f"  {name:14s} | {timing} | "
              + (f"{figures[f'{name}_output_max_abs_diff_{size}']:.4g} / "
                 f"{figures[f'{name}_output_mean_abs_diff_{size}']:.3g}" if name != "pytorch" else "reference")
              + f" | {'-' if f1 is None else f'{f1:.3f}'} | "
              + (f"{figures[f'{name}_model_mb_{size}']:.1f}" if name in models else "(the int8 .onnx)"))
    print(f"  PyTorch boxes per frame at conf {args.conf}: {figures[f'pytorch_boxes_per_frame_{size}']:.1f}"
          + ("  (untrained weights: arbitrary boxes)" if not args.weights else ""))
    torch.set_num_threads(default_threads)
    detectors = {name: UltralyticsDetector(str(model), image_size=size, confidence=args.conf, iou=NMS_IOU).detect
                 for name, model in models.items()}
    print(f"  the tracker's detector class (letterbox + network + NMS), default threads, {args.detect_frames} frames:")
    for name, (wall, cpu, _) in separately(detectors, frames[:args.detect_frames]).items():
        figures[f"{name}_detect_ms_p50_{size}"] = percentile(wall, 50)
        figures[f"{name}_detect_ms_p95_{size}"] = percentile(wall, 95)
        figures[f"{name}_detect_cpu_ms_p50_{size}"] = percentile(cpu, 50)
        print(f"    {name:10s} {Path(models[name]).name:28s} wall p50 {percentile(wall, 50):6.1f} ms, "
              f"p95 {percentile(wall, 95):6.1f} ms; CPU p50 {percentile(cpu, 50):6.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
