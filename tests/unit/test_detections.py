"""Detector backends, detections → messages (and back, for the follow node), tracker wrapper, tracking metrics."""
from pathlib import Path

import cv2
import numpy as np
import pytest
from std_msgs.msg import Header

from mmchat_ros.backends.detectors import (Detections, DetectorError, HogPeopleDetector, MediaPipePersonDetector,
                                           WeightsNotFoundError, make_detector, parse_class_filter, resolve_weights)
from mmchat_ros.backends.tracking import RegionDetector, Track, draw_tracks, grow_box, merge_regions
from mmchat_ros.core.tracking_metrics import clear_mot_id_switches, iou_matrix, proxy_id_switches
from mmchat_ros.msg import Detection, DetectionArray
from mmchat_ros.nodes.follow import boxes_from_msg
from mmchat_ros.nodes.tracker import detections_to_msg

ROOT = Path(__file__).resolve().parents[2]
TEXTURE = ROOT / "sim" / "worlds" / "textures" / "pedestrian_vtest.png"
NAMES = {0: "person", 1: "bicycle", 2: "car"}


def detections(boxes, scores=None, classes=None):
    n = len(boxes)
    return Detections.from_arrays(boxes, scores if scores is not None else [0.9] * n,
                                  classes if classes is not None else [0] * n, NAMES)


# ---------------------------------------------------------------------------------------- detections → messages

def test_tracks_and_untracked_detections_become_one_detection_array():
    dets = detections([[10, 20, 50, 120], [200, 40, 240, 90], [100, 100, 110, 130]], [0.9, 0.6, 0.3], [0, 2, 0])
    tracks = [Track(7, (11.0, 21.0, 51.0, 119.0), 0.9, 0, "person", detection_index=0),
              Track(3, (199.0, 40.0, 241.0, 90.0), 0.6, 2, "car", detection_index=1)]
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 42
    msg = detections_to_msg(tracks, dets, header, 320, 240)
    assert (msg.image_width, msg.image_height, msg.header.frame_id, msg.header.stamp.sec) == \
        (320, 240, "camera_optical", 42)
    assert [d.track_id for d in msg.detections] == [7, 3, -1]
    person = msg.detections[0]
    assert (person.class_id, person.class_name) == (0, "person")
    assert (person.center_x, person.center_y, person.width, person.height) == (31.0, 70.0, 40.0, 98.0)
    assert person.score == pytest.approx(0.9)
    untracked = msg.detections[2]
    assert (untracked.center_x, untracked.center_y, untracked.width, untracked.height) == (105.0, 115.0, 10.0, 30.0)
    assert untracked.score == pytest.approx(0.3) and untracked.class_name == "person"
    only_tracks = detections_to_msg(tracks, dets, header, 320, 240, untracked=False)
    assert len(only_tracks.detections) == 2


def test_follow_reads_back_tracked_detections_normalised_and_skips_bad_ones():
    msg = DetectionArray(image_width=320, image_height=240)
    msg.detections = [Detection(class_name="person", center_x=160.0, center_y=120.0, width=32.0, height=120.0,
                                score=0.8, track_id=5),
                      Detection(class_name="person", center_x=10.0, center_y=10.0, width=5.0, height=5.0,
                                track_id=-1),
                      Detection(class_name="person", center_x=float("nan"), center_y=1.0, width=5.0, height=5.0,
                                track_id=6),
                      Detection(class_name="person", center_x=1.0, center_y=1.0, width=0.0, height=5.0,
                                track_id=8)]
    boxes = boxes_from_msg(msg)
    assert len(boxes) == 1
    b = boxes[0]
    assert (b.track_id, b.class_name, b.center_x, b.center_y, b.width, b.height) == (5, "person", 0.5, 0.5, 0.1, 0.5)
    with pytest.raises(ValueError, match="image size"):
        boxes_from_msg(DetectionArray(detections=msg.detections))


def test_debug_image_draws_tracks_without_touching_the_input():
    image = np.zeros((120, 160, 3), np.uint8)
    out = draw_tracks(image, [Track(2, (20.0, 30.0, 60.0, 100.0), 0.8, 0, "person")],
                      detections([[100, 10, 140, 50]]))
    assert image.max() == 0 and out.shape == image.shape
    assert out[30:100, 20].any() and out[10:50, 100].any()       # box edges of the track and the detection
    assert not out[60, 40].any()                                 # the inside stays untouched


# ------------------------------------------------------------------------------------------------- detectors

def test_detections_validate_their_shapes_and_select():
    dets = detections([[0, 0, 1, 1], [2, 2, 3, 3]], [0.5, 0.7], [0, 2])
    assert len(dets) == 2 and dets.class_name(2) == "car" and dets.class_name(9) == "9"
    kept = dets.select(dets.class_ids == 2)
    assert len(kept) == 1 and kept.scores[0] == pytest.approx(0.7)
    assert len(Detections.empty(NAMES)) == 0
    with pytest.raises(ValueError, match="inconsistent"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(1, np.float32), np.zeros(2, np.int64), NAMES)


def test_class_filter_takes_names_or_ids():
    assert parse_class_filter("", NAMES) is None
    assert parse_class_filter("person, car", NAMES) == [0, 2]
    assert parse_class_filter("2,0, Person", NAMES) == [0, 2]
    with pytest.raises(DetectorError, match="unknown class 'dog'"):
        parse_class_filter("dog", NAMES)
    with pytest.raises(DetectorError, match="class id 7"):
        parse_class_filter("7", NAMES)


def test_missing_weights_are_a_clear_error_naming_the_file_and_the_remedies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError) as error:
        resolve_weights("yolo11n.pt", models_dir=str(tmp_path / "models"))
    text = str(error.value)
    assert "yolo11n.pt" in text and str(tmp_path / "models" / "yolo11n.pt") in text
    assert "copy yolo11n.pt" in text and "allow_download" in text and "export" in text
    with pytest.raises(WeightsNotFoundError, match="empty"):
        resolve_weights("")
    # Found in models_dir; bare names pass through to ultralytics only when downloading is allowed.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "yolo11n.pt").write_bytes(b"x")
    assert resolve_weights("yolo11n.pt", models_dir=str(tmp_path / "models")) == \
        str(tmp_path / "models" / "yolo11n.pt")
    assert resolve_weights("yolo11s.pt", allow_download=True) == "yolo11s.pt"
    (tmp_path / "empty_openvino_model").mkdir()
    with pytest.raises(WeightsNotFoundError, match="without an OpenVINO model"):
        resolve_weights("empty_openvino_model")


def test_the_yolo_detector_refuses_a_missing_file_before_ultralytics_could_download_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="yolo11n.pt"):
        make_detector("yolo", weights="yolo11n.pt")
    assert not (tmp_path / "yolo11n.pt").exists()
    with pytest.raises(DetectorError, match="unknown detector 'ssd'"):
        make_detector("ssd")


def billboard_frame(size=(320, 240)):
    """The sim's pedestrian billboard photo (a person from vtest.avi) on a grey 320x240 frame, resized to size."""
    photo = cv2.cvtColor(cv2.imread(str(TEXTURE)), cv2.COLOR_BGR2RGB)
    frame = np.full((240, 320, 3), 110, np.uint8)
    frame[30:30 + photo.shape[0], 110:110 + photo.shape[1]] = photo
    return cv2.resize(frame, size) if size != (320, 240) else frame


def test_hog_finds_the_person_on_the_sim_billboard_photo_and_nothing_on_a_blank_frame():
    frame = billboard_frame()
    found = HogPeopleDetector().detect(frame)
    assert len(found) == 1 and found.names[int(found.class_ids[0])] == "person"
    x1, y1, x2, y2 = found.xyxy[0]
    assert 100 <= x1 < x2 <= 215 and 20 <= y1 < y2 <= 215, found.xyxy
    assert 0.5 < found.scores[0] < 1.0
    assert len(HogPeopleDetector().detect(np.full((240, 320, 3), 110, np.uint8))) == 0
    upscaled = HogPeopleDetector(upscale=1.5).detect(frame)      # boxes come back in input pixels
    assert len(upscaled) == 1 and iou_matrix(upscaled.xyxy, found.xyxy)[0, 0] > 0.5


@pytest.mark.parametrize("options,message", [(dict(upscale=0.0), "upscale"), (dict(scale=1.0), "scale"),
                                             (dict(win_stride=5), "win_stride")])
def test_hog_options_are_checked(options, message):
    with pytest.raises(DetectorError, match=message):
        HogPeopleDetector(**options)


def test_hog_refuses_images_that_are_not_rgb():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        HogPeopleDetector().detect(np.zeros((240, 320), np.uint8))


def test_hog_sees_nobody_in_an_image_smaller_than_its_window():
    assert len(HogPeopleDetector().detect(np.full((100, 200, 3), 110, np.uint8))) == 0


def test_mediapipe_person_detector_boxes_the_billboard_person_as_hog_does():
    frame = billboard_frame((640, 480))
    detector = make_detector("mediapipe")
    try:
        found = detector.detect(frame)
        assert len(found) == 1 and found.names[int(found.class_ids[0])] == "person" and found.scores[0] > 0.5
        hog = HogPeopleDetector().detect(frame)
        assert iou_matrix(found.xyxy, hog.xyxy)[0, 0] > 0.6, (found.xyxy, hog.xyxy)
        assert len(detector.detect(np.full((480, 640, 3), 110, np.uint8))) == 0
    finally:
        detector.close()
    with pytest.raises(DetectorError, match="min_score"):
        MediaPipePersonDetector(min_score=1.5)


# ---------------------------------------------------------------------------------------- regions of interest

class RecordingDetector:
    """Finds the given boxes (image coordinates) that lie wholly inside what it is shown, and records its inputs."""
    name = "recording"
    names = {0: "person"}

    def __init__(self, boxes):
        self.boxes, self.shown = boxes, []

    def detect(self, image):
        self.shown.append(image.shape[:2])
        return detections(self.boxes) if image.shape[:2] == (240, 320) else Detections.empty(self.names)


def test_region_boxes_grow_within_the_image_and_overlapping_ones_merge():
    assert grow_box((100, 50, 140, 150), 0.5, 320, 240) == (80, 0, 160, 200)
    assert grow_box((300, 200, 320, 240), 1.0, 320, 240) == (280, 160, 320, 240)
    merged = merge_regions([(0, 0, 50, 50), (200, 0, 250, 50), (40, 40, 100, 100), (90, 90, 120, 120), (5, 5, 5, 9)])
    assert sorted(merged) == [(0, 0, 120, 120), (200, 0, 250, 50)]


def test_region_detector_looks_at_the_whole_frame_every_n_frames_and_else_around_what_it_saw():
    image = np.zeros((240, 320, 3), np.uint8)
    image[60:160, 40:80] = 255                      # what the crops must show: the region's own pixels
    inner = RecordingDetector([(40.0, 60.0, 80.0, 160.0)])
    regions = RegionDetector(inner, full_frame_every=3, margin=0.5)
    first = regions.detect(image)                  # frame 0: whole
    assert inner.shown == [(240, 320)] and regions.last_regions is None and len(first) == 1
    track = Track(7, (40.0, 60.0, 80.0, 160.0), 0.9, 0, "person", 0)
    regions.follow([track], first)

    crops = []
    inner.detect = lambda crop: (crops.append(crop.copy()), Detections.empty(inner.names))[1]
    assert len(regions.detect(image)) == 0         # frame 1: the track's region only, grown by half its size
    assert regions.last_regions == [(20, 10, 100, 210)] and crops[0].shape == (200, 80, 3)
    assert crops[0][50:150, 20:60].min() == 255 and crops[0][:50].max() == 0

    moved = Track(7, (50.0, 60.0, 90.0, 160.0), 0.9, 0, "person", -1)
    # frame 2: it moved 10 px right last frame, so it should be 10 px further: the region moves with it, and
    # a detection no track took gets a region too (a newcomer, confirmed on the next frame)
    regions.follow([moved], detections([(250.0, 20.0, 270.0, 60.0)]))
    regions.detect(image)
    assert sorted(regions.last_regions) == [(40, 10, 120, 210), (240, 0, 280, 80)]
    regions.follow([], Detections.empty(inner.names))
    inner.detect = RecordingDetector.detect.__get__(inner)
    regions.detect(image)                          # frame 3: whole again
    assert regions.last_regions is None and inner.shown[-1] == (240, 320)
    regions.follow([], Detections.empty(inner.names))
    regions.detect(image)                          # nobody seen on the whole frame: nothing to look at
    assert regions.last_regions == []


def test_region_detector_offsets_crop_detections_into_the_frame():
    class CropFinder:
        name, names = "crop", {0: "person"}

        def detect(self, crop):
            return detections([(5.0, 10.0, 25.0, 50.0)]) if crop.shape[:2] != (240, 320) else detections(
                [(100.0, 100.0, 120.0, 140.0)])
    regions = RegionDetector(CropFinder(), full_frame_every=5, margin=0.5)
    image = np.zeros((240, 320, 3), np.uint8)
    regions.follow([], regions.detect(image))      # whole frame: one untracked detection
    found = regions.detect(image)                  # its region (90, 80, 130, 160): the crop's box moves there
    assert found.xyxy.tolist() == [[95.0, 90.0, 115.0, 130.0]]
    with pytest.raises(DetectorError, match="full_frame_every"):
        RegionDetector(CropFinder(), full_frame_every=0)


# -------------------------------------------------------------------------------------------------- metrics

def walk(track_id, x0, dx, frames, y=50.0, size=(40.0, 100.0)):
    return [(track_id, (x0 + dx * f, y, x0 + dx * f + size[0], y + size[1])) for f in range(frames)]


def as_frames(*tracks, length):
    frames = [dict() for _ in range(length)]
    for track in tracks:
        for f, (tid, box) in enumerate(track):
            if box is not None:
                frames[f][tid] = box
    return frames


def test_proxy_counts_no_switch_for_steady_tracks():
    frames = as_frames(walk(1, 0, 3, 50), walk(2, 200, -2, 50), length=50)
    summary = proxy_id_switches(frames)
    assert summary.id_switches == 0 and summary.tracks == 2 and summary.mean_track_length_frames == 50


def test_proxy_counts_a_relabel_a_swap_and_a_renumbering_after_a_gap():
    track = walk(1, 0, 3, 60)
    relabelled = [(1 if f < 20 else 5, box) for f, (_, box) in enumerate(track)]       # id 1 → 5 at frame 20
    frames = as_frames(relabelled, length=60)
    assert proxy_id_switches(frames).relabels == 1

    gap = [(1 if f < 20 else 9, None if 20 <= f < 25 else box) for f, (_, box) in enumerate(track)]
    summary = proxy_id_switches(as_frames(gap, length=60))
    assert (summary.relabels, summary.fragment_relinks, summary.id_switches) == (0, 1, 1)
    assert summary.id_switches_per_100_frames == pytest.approx(100 / 60)

    a, b = walk(1, 0, 4, 40), walk(2, 300, -4, 40)
    swapped = [(2 if f >= 30 else 1, box) for f, (_, box) in enumerate(a)] + []
    frames = as_frames(swapped, [(1 if f >= 30 else 2, box) for f, (_, box) in enumerate(b)], length=40)
    assert proxy_id_switches(frames).relabels == 2


def test_proxy_does_not_count_a_new_object_far_from_a_vanished_one():
    leaves = [(1, box if f < 20 else None) for f, (_, box) in enumerate(walk(1, 0, 3, 40))]
    enters = [(2, box if f >= 25 else None) for f, (_, box) in enumerate(walk(2, 400, 0, 40))]
    assert proxy_id_switches(as_frames(leaves, enters, length=40)).id_switches == 0


def test_clear_mot_switches_against_ground_truth():
    truth = as_frames(walk(100, 0, 3, 30), walk(200, 200, -3, 30), length=30)
    perfect = as_frames(walk(1, 0, 3, 30), walk(2, 200, -3, 30), length=30)
    assert clear_mot_id_switches(truth, perfect).id_switches == 0
    relabelled = as_frames([(1 if f < 10 else 3, box) for f, (_, box) in enumerate(walk(1, 0, 3, 30))],
                           walk(2, 200, -3, 30), length=30)
    assert clear_mot_id_switches(truth, relabelled).id_switches == 1
    with pytest.raises(ValueError, match="frames"):
        clear_mot_id_switches(truth, perfect[:-1])


def test_iou_matrix():
    iou = iou_matrix([(0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)])
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)


# -------------------------------------------------------------------------------------------- tracker wrapper

def synthetic_walkers(frames=40):
    """Two people crossing each other left-right, as exact detections, with ground truth ids 100 and 200."""
    truth, dets = [], []
    for f in range(frames):
        a = (20.0 + 6 * f, 60.0, 60.0 + 6 * f, 160.0)
        b = (260.0 - 6 * f, 70.0, 300.0 - 6 * f, 170.0)
        truth.append({100: a, 200: b})
        dets.append(detections([a, b], [0.9, 0.8]))
    return truth, dets


@pytest.mark.slow              # the first ultralytics import alone takes seconds
@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_ultralytics_trackers_keep_ids_through_a_crossing(kind):
    from mmchat_ros.backends.tracking import MultiObjectTracker
    truth, dets = synthetic_walkers()
    image = np.full((240, 320, 3), 90, np.uint8)
    tracker = MultiObjectTracker(kind, frame_rate=10.0)
    tracked = []
    for d in dets:
        tracks = tracker.update(d, image)
        assert all(t.class_name == "person" and 0 <= t.detection_index < 2 for t in tracks)
        tracked.append({t.track_id: t.xyxy for t in tracks})
    assert len(tracked[0]) == 2, "the first frame activates its tracks at once"
    summary = clear_mot_id_switches(truth, tracked)
    assert summary.id_switches == 0 and summary.tracks == 2, summary.as_dict()
    tracker.reset()
    assert {t.track_id for t in tracker.update(dets[0], image)} == {1, 2}


@pytest.mark.slow
def test_tracker_buffer_follows_the_frame_rate_and_bad_configs_are_refused(tmp_path):
    from mmchat_ros.backends.tracking import MultiObjectTracker
    assert MultiObjectTracker("bytetrack", frame_rate=10.0).args.track_buffer == 10      # 30 frames at 30 fps = 1 s
    assert MultiObjectTracker("bytetrack", 30.0, overrides={"track_buffer": 60}).args.track_buffer == 60
    with pytest.raises(DetectorError, match="unknown tracker 'sort'"):
        MultiObjectTracker("sort")
    with pytest.raises(DetectorError, match="not found"):
        MultiObjectTracker(config_file=str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker_type: deepsort\n")
    with pytest.raises(DetectorError, match="tracker_type must be one of"):
        MultiObjectTracker(config_file=str(bad))
    with pytest.raises(DetectorError, match="with_reid needs"):
        MultiObjectTracker("botsort", overrides={"with_reid": True})


# ---------------------------------------------------------------------------------------------- YOLO backend

@pytest.mark.slow
def test_yolo_backend_runs_a_local_yolo11n_and_its_torchscript_export(tmp_path):
    from mmchat_ros.backends.detectors import UltralyticsDetector, export_model
    from tests.helpers.yolo import vtest, yolo11n_weights
    frame = vtest(1, start=470)[0]
    # Untrained weights score every box ~1e-4: confidence 0 lets them all through NMS, so boxes flow end to end.
    detector = UltralyticsDetector(str(yolo11n_weights()), image_size=320, confidence=0.0)
    assert detector.names[0] == "person" and len(detector.names) == 80
    found = detector.detect(frame)
    assert 0 < len(found) <= 300 and found.xyxy.dtype == np.float32
    assert (found.xyxy[:, [0, 2]] >= 0).all() and (found.xyxy[:, [0, 2]] <= 768).all()
    assert (found.xyxy[:, [1, 3]] >= 0).all() and (found.xyxy[:, [1, 3]] <= 576).all()
    assert ((found.scores >= 0) & (found.scores <= 1)).all()
    assert ((found.class_ids >= 0) & (found.class_ids < 80)).all()
    detector.classes = [0]
    assert set(detector.detect(frame).class_ids.tolist()) == {0}
    # Exported for an edge runtime (TorchScript needs nothing beyond torch), loaded by the same backend.
    weights = tmp_path / "yolo11n.pt"
    weights.write_bytes(yolo11n_weights().read_bytes())
    exported = export_model(str(weights), "torchscript", image_size=320)
    assert exported.is_file() and exported.suffix == ".torchscript"
    loaded = UltralyticsDetector(str(exported), image_size=320, confidence=0.0)
    assert loaded.names == detector.names
    again = loaded.detect(frame)     # a fixed 320x320 input (the .pt letterboxes to 320x256): other anchors
    assert 0 < len(again) <= 300 and (again.xyxy[:, [0, 2]] <= 768).all() and (again.xyxy[:, [1, 3]] <= 576).all()


def test_exported_formats_name_the_packages_they_need_instead_of_installing_them(tmp_path, monkeypatch):
    from mmchat_ros.backends import detectors as backend
    monkeypatch.setattr(backend, "missing_packages", lambda packages: list(packages))
    model = tmp_path / "yolo11n.onnx"
    model.write_bytes(b"onnx")
    with pytest.raises(DetectorError, match="needs the Python package.* onnx, onnxruntime: pip install onnx"):
        backend.UltralyticsDetector(str(model))
    with pytest.raises(DetectorError, match="exporting to openvino needs .*pip install openvino"):
        backend.export_model(str(model), "openvino")


def test_a_newcomer_missed_on_a_region_frame_keeps_its_region_until_a_track_covers_it():
    inner = RecordingDetector([])
    regions = RegionDetector(inner, full_frame_every=10, margin=0.5)
    image = np.zeros((240, 320, 3), np.uint8)
    regions.detect(image)
    regions.follow([], detections([(100.0, 100.0, 120.0, 140.0)]))       # whole frame: a newcomer, no track yet
    for _ in range(2):                                                      # missed twice: still looked for
        regions.detect(image)
        assert regions.last_regions == [(90, 80, 130, 160)]
        regions.follow([], Detections.empty(inner.names))
    regions.detect(image)
    regions.follow([Track(3, (102.0, 100.0, 122.0, 140.0), 0.9, 0, "person", 0)],
                   detections([(102.0, 100.0, 122.0, 140.0)]))             # now a track: one region, the track's
    regions.detect(image)
    assert regions.last_regions == [(92, 80, 132, 160)]
