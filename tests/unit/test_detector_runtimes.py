"""YOLO on other runtimes (bench/detector_runtimes.py): the detection agreement measure, and the ONNX fp32 and
static-int8 exports of the untrained yolo11n loading through the tracker's detector class."""
import shutil

import numpy as np
import pytest

from mmchat_ros.backends.detectors import DetectionAgreement, Detections, detection_agreement

NAMES = {0: "person", 1: "bicycle"}


def frame(boxes, classes=None):
    return Detections.from_arrays(boxes, [0.9] * len(boxes), classes if classes is not None else [0] * len(boxes),
                                  NAMES)


def test_boxes_pair_one_to_one_by_iou_within_a_class_and_f1_sums_over_frames():
    reference = [frame([(0, 0, 10, 10), (20, 0, 30, 10)]), frame([(0, 0, 10, 10)], [1])]
    other = [frame([(1, 0, 11, 10), (0, 0, 10, 10), (50, 50, 60, 60)]),   # two on the first box: one pairs
             frame([(0, 0, 10, 10)], [0])]                                 # same place, another class
    agreement = detection_agreement(reference, other)
    assert agreement == DetectionAgreement(matched=1, reference_boxes=3, other_boxes=4)
    assert agreement.f1 == pytest.approx(2 / 7)
    shifted = [frame([(3, 0, 13, 10)])]                                    # IoU 7/13 = 0.54
    assert detection_agreement([frame([(0, 0, 10, 10)])], shifted).matched == 1
    assert detection_agreement([frame([(0, 0, 10, 10)])], shifted, iou_threshold=0.6).matched == 0
    assert detection_agreement(reference, reference).f1 == 1.0


def test_no_boxes_on_either_side_is_no_figure_and_frame_counts_must_match():
    empty = Detections.empty(NAMES)
    assert detection_agreement([empty, empty], [empty, empty]).f1 is None
    assert detection_agreement([empty], [frame([(0, 0, 10, 10)])]).f1 == 0.0
    with pytest.raises(ValueError, match="2 reference frames against 1"):
        detection_agreement([empty, empty], [empty])


@pytest.mark.slow
def test_onnx_export_and_its_static_int8_copy_load_through_the_trackers_detector(tmp_path):
    import torch
    from ultralytics import YOLO

    from mmchat_ros.backends.detectors import (UltralyticsDetector, export_model, network_input,
                                               quantize_onnx_int8)
    from tests.helpers.yolo import vtest, yolo11n_weights
    weights = tmp_path / "yolo11n.pt"
    shutil.copy(yolo11n_weights(), weights)
    exported = export_model(str(weights), "onnx", image_size=320)
    assert exported == tmp_path / "yolo11n.onnx"
    int8 = quantize_onnx_int8(exported, vtest(4, start=600))
    assert int8 == tmp_path / "yolo11n_int8.onnx" and int8.stat().st_size < exported.stat().st_size / 2
    image = vtest(1, start=470)[0]
    for model in (exported, int8):
        # Untrained weights score every box ~1e-4: confidence 0 lets boxes through NMS to the tracker's format.
        detector = UltralyticsDetector(str(model), image_size=320, confidence=0.0)
        assert len(detector.names) == 80 and detector.names[0] == "person"
        found = detector.detect(image)
        assert 0 < len(found) <= 300 and (found.xyxy[:, [0, 2]] <= 768).all() and (found.xyxy[:, [1, 3]] <= 576).all()
    # The fp32 export computes what PyTorch computes on the same input tensor.
    import onnxruntime
    tensor = network_input(image, 320)
    assert tensor.shape == (1, 3, 320, 320) and tensor.dtype == np.float32 and 0 <= tensor.min() <= tensor.max() <= 1
    network = YOLO(str(weights), task="detect").model.float().fuse().eval()
    with torch.inference_mode():
        expected = network(torch.from_numpy(tensor))[0].numpy()
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": tensor})[0]
    assert got.shape == expected.shape == (1, 84, 2100)
    assert np.abs(got - expected).max() < 0.05             # box rows are pixels 0..320


def test_an_int8_onnx_export_asks_for_calibration_frames_and_takes_them_spread_over_a_video():
    from mmchat_ros.backends.detectors import DetectorError, calibration_frames, export_model
    from tests.helpers.yolo import VTEST_AVI
    with pytest.raises(DetectorError, match="needs calibration frames.*--calibration-video"):
        export_model("yolo11n.pt", "onnx", int8=True)
    frames = calibration_frames(VTEST_AVI, 3)
    assert len(frames) == 3 and frames[0].shape == (576, 768, 3)
    assert not np.array_equal(frames[0], frames[1])
    with pytest.raises(DetectorError, match="cannot open calibration video"):
        calibration_frames("/nonexistent.avi", 3)


@pytest.mark.slow
def test_batchnorm_statistics_from_real_frames_make_the_random_networks_output_depend_on_the_image(tmp_path):
    import torch
    from ultralytics import YOLO

    from mmchat_ros.backends.detectors import build_untrained_model, network_input
    from tests.helpers.yolo import vtest
    first, other = (network_input(vtest(1, start=start)[0], 320) for start in (100, 400))

    def spread(weights):
        network = YOLO(str(weights), task="detect").model.float().fuse().eval()
        with torch.inference_mode():
            a, b = (network(torch.from_numpy(x))[0].numpy() for x in (first, other))
        return np.abs(a - b)[:, :4].mean()         # box rows, pixels
    plain = build_untrained_model(tmp_path / "plain.pt")
    normalised = build_untrained_model(tmp_path / "normalised.pt", normalise_on=vtest(4, start=600))
    assert spread(plain) < 0.01 < spread(normalised)
