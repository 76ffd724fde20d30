"""The camera sources (fast, in process: reconnect with back-off, looping, skipping, conversions) and the camera
node as a real process over DDS: folder, video file and topic-relay sources; size, encoding, rate, capture stamps
and CameraInfo; a corrupt image, a corrupt video replaced by a good one, a missing device."""
from __future__ import annotations

import math
import os
import time

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from mmchat_ros.backends.camera_sources import (EndOfStream, Frame, ImageFolderSource, ReconnectingSource,
                                                SourceError, V4L2Source, VideoFileSource, bgr_to_rgb, fit_frame,
                                                make_source)
from mmchat_ros.nodes.common import SENSOR_QOS, stamp_to_seconds
from mmchat_ros.nodes.image_conversion import (camera_info_from_fov, image_to_numpy, numpy_to_image,
                                               scaled_camera_info, to_rgb)
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd

COLOURS_RGB = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def start_camera(spawn, **params):
    camera = spawn(python_cmd("mmchat_ros.nodes.camera", *ros_args({"retry_initial_s": 0.2, "retry_max_s": 0.5,
                                                                       **params})), name="camera")
    camera.wait_for_line("camera ready", timeout=30)
    return camera


def write_video(path, frames: int, size=(320, 240)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), COLOURS_RGB[i % 3][::-1], np.uint8))
    writer.release()


def nearest_colour(rgb: np.ndarray) -> int:
    """Index in COLOURS_RGB of the frame's colour."""
    mean = rgb.reshape(-1, 3).mean(axis=0)
    return min(range(len(COLOURS_RGB)), key=lambda i: math.dist(COLOURS_RGB[i], mean))


# ------------------------------------------------------------------------------------- sources, in process
class FlakySource:
    """Test double: a device that fails to open ``open_failures`` times, then delivers ``frames`` frames and
    breaks (unplugged)."""
    description = "flaky test device"
    paced = True

    def __init__(self, open_failures: int, frames: int):
        self.open_failures, self.frames, self.opens, self.closes = open_failures, frames, 0, 0

    def open(self):
        self.opens += 1
        if self.open_failures > 0:
            self.open_failures -= 1
            raise SourceError("device busy")

    def read(self):
        if self.frames == 0:
            raise SourceError("device unplugged")
        self.frames -= 1
        return Frame(np.zeros((4, 4, 3), np.uint8), time.time(), 0)

    def close(self):
        self.closes += 1


def test_reconnecting_source_backs_off_reports_once_and_recovers():
    now = [0.0]
    events = []
    flaky = FlakySource(open_failures=3, frames=2)
    source = ReconnectingSource(flaky, lambda level, message: events.append((level, message)), 0.5, 2.0,
                                clock=lambda: now[0])
    attempts = []
    for step in range(60):                   # 6 s in 0.1 s steps
        now[0] = step * 0.1
        before = flaky.opens
        frame = source.read()
        if flaky.opens > before:
            attempts.append(round(now[0], 1))
        if frame is not None:
            break
    assert attempts == [0.0, 0.5, 1.5, 3.5]                        # back-off 0.5, 1, 2 (capped) s
    assert [level for level, _ in events] == ["error", "info"]      # the same failure is reported once
    assert "device busy" in events[0][1] and "recovered after 3 failed attempt(s)" in events[1][1]
    assert source.read() is not None
    assert source.read() is None and source.failures == 1 and flaky.closes >= 1     # unplugged: closed, retrying
    assert "device unplugged" in events[-1][1]


def test_video_file_loops_or_ends(tmp_path):
    video = tmp_path / "three.avi"
    write_video(video, 3)
    looped = VideoFileSource(str(video), loop=True)
    looped.open()
    assert [nearest_colour(looped.read().rgb) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    once = VideoFileSource(str(video), loop=False)
    once.open()
    for _ in range(3):
        assert once.read().rgb.shape == (240, 320, 3)
    with pytest.raises(EndOfStream):
        once.read()
    events = []
    wrapped = ReconnectingSource(VideoFileSource(str(video), loop=False), lambda *e: events.append(e))
    assert sum(wrapped.read() is not None for _ in range(6)) == 3 and wrapped.ended
    assert events[-1] == ("info", f"end of {video}: no more frames")


def test_folder_source_skips_unreadable_images_and_fails_when_none_is_left(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 12), np.uint8))             # grey: converted to RGB
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    skipped = []
    folder = ImageFolderSource(str(tmp_path), loop=True, on_skip=skipped.append)
    folder.open()
    assert [folder.read().rgb.shape for _ in range(3)] == [(10, 12, 3)] * 3
    assert len(skipped) == 1 and "b.jpg" in skipped[0]                               # reported once
    (tmp_path / "a.png").write_bytes(b"broken now")
    with pytest.raises(SourceError, match="no readable image left"):
        folder.read()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="has no images"):
        ImageFolderSource(str(tmp_path / "empty")).open()
    with pytest.raises(SourceError, match="not found"):
        ImageFolderSource(str(tmp_path / "missing")).open()


def test_missing_inputs_are_source_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        V4L2Source(99).open()
    with pytest.raises(SourceError, match="not found"):
        VideoFileSource(str(tmp_path / "none.avi")).open()
    (tmp_path / "junk.avi").write_bytes(b"\x00" * 4096)
    with pytest.raises(SourceError, match="cannot decode|no readable frame"):
        VideoFileSource(str(tmp_path / "junk.avi")).open()
    with pytest.raises(ValueError, match="unknown camera source 'webcam'"):
        make_source("webcam")
    with pytest.raises(ValueError, match="needs a path"):
        make_source("video")


def test_frame_conversions_and_camera_info():
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0] = 255                                                              # blue
    assert tuple(bgr_to_rgb(bgra)[0, 0]) == (0, 0, 255)
    assert bgr_to_rgb(np.full((2, 3), 7, np.uint8)).shape == (2, 3, 3)
    big = np.zeros((480, 640, 3), np.uint8)
    assert fit_frame(big, 320, 240).shape == (240, 320, 3) and fit_frame(big, 0, 0) is big
    for encoding, pixel in (("bgr8", (255, 0, 0)), ("rgb8", (0, 0, 255)), ("mono8", (9,)), ("rgba8", (0, 0, 255, 1))):
        array = np.zeros((2, 2, len(pixel)), np.uint8) if len(pixel) > 1 else np.zeros((2, 2), np.uint8)
        array[...] = pixel if len(pixel) > 1 else pixel[0]
        rgb = to_rgb(numpy_to_image(array, encoding))
        assert rgb.shape == (2, 2, 3) and tuple(rgb[0, 0]) == ((9, 9, 9) if encoding == "mono8" else (0, 0, 255))
    info = camera_info_from_fov(640, 480, 90.0)
    assert info.k[0] == pytest.approx(320.0) and info.k[4] == pytest.approx(320.0)
    half = scaled_camera_info(info, 320, 240)
    assert (half.width, half.height) == (320, 240)
    assert (half.k[0], half.k[2], half.p[0]) == pytest.approx((160.0, 159.75, 160.0))


# ------------------------------------------------------------------------------------ the node, over DDS
@pytest.mark.slow
def test_folder_source_publishes_sized_stamped_frames_in_order_and_skips_a_corrupt_image(spawn, ros, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, colour in enumerate(COLOURS_RGB):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((480, 640, 3), colour[::-1], np.uint8))
    (folder / "01b.png").write_bytes(b"\x89PNG not really")
    images = ros.collect(Image, "/camera/image_raw", "sensor")
    infos = ros.collect(CameraInfo, "/camera/camera_info", "sensor")
    camera = start_camera(spawn, source="folder", path=str(folder), rate_hz=10.0, width=320, height=240,
                          horizontal_fov_deg=90.0)
    ros.wait_for(lambda: len(images) >= 25, 20, "25 frames")
    camera.wait_for_line(r"skipping unreadable image .*01b\.png", timeout=5)
    received = list(images)[-20:]
    for arrival, msg in received:
        assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (320, 240, "rgb8", "camera_optical")
        # Stamped at capture (system clock), delivered within a moment.
        assert 0.0 <= time.time() - (time.monotonic() - arrival) - stamp_to_seconds(msg.header.stamp) < 0.25
    stamps = [stamp_to_seconds(m.header.stamp) for _, m in received]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert 8.0 < rate < 12.0, rate
    # Looped in name order: red, green, blue, red, ... (the corrupt image between green and blue is skipped).
    order = [nearest_colour(image_to_numpy(m)) for _, m in received]
    assert all(b == (a + 1) % 3 for a, b in zip(order, order[1:])), order
    info = infos[-1][1]
    assert (info.width, info.height) == (320, 240)
    assert info.k[0] == pytest.approx(160.0) and info.k[2] == pytest.approx(159.5)   # fx = (w/2)/tan(fov/2)
    assert camera.alive()


@pytest.mark.slow
def test_video_file_played_once_stops_and_looped_keeps_going(spawn, ros, tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, 150)
    images = ros.collect(Image, "/camera/image_raw", "sensor")
    once = start_camera(spawn, source="video", path=str(video), loop=False, rate_hz=30.0, width=0, height=0)
    once.wait_for_line("end of .*clip.avi: no more frames", timeout=30)
    # The first frames may go before the subscription is matched (seconds on a busy machine); never more than the
    # file holds.
    ros.wait_for(lambda: len(images) >= 10, 5, "the played frames")
    assert 10 <= len(images) <= 150 and (images[-1][1].width, images[-1][1].height) == (320, 240)
    assert once.alive()
    once.stop()
    short = tmp_path / "short.avi"
    write_video(short, 5)
    images.clear()
    start_camera(spawn, source="video", path=str(short), loop=True, rate_hz=20.0, width=160, height=120)
    ros.wait_for(lambda: len(images) >= 15, 20, "15 frames from a 5-frame looped video")
    assert images[-1][1].width == 160


@pytest.mark.slow
def test_corrupt_video_is_reported_and_retried_until_a_good_one_replaces_it(spawn, ros, tmp_path):
    video = tmp_path / "feed.avi"
    video.write_bytes(os.urandom(20000))
    images = ros.collect(Image, "/camera/image_raw", "sensor")
    camera = start_camera(spawn, source="video", path=str(video), rate_hz=10.0)
    camera.wait_for_line(r"feed\.avi.*(cannot decode|no readable frame).*retrying", timeout=15)
    time.sleep(1.5)     # a negative check: retrying, it publishes nothing and does not repeat the message
    assert camera.alive() and not images
    assert camera.output.count("cannot decode") + camera.output.count("no readable frame") == 1   # said once
    good = tmp_path / "good.avi"
    write_video(good, 3)
    os.replace(good, video)
    camera.wait_for_line("recovered after", timeout=15)
    ros.wait_for(lambda: images, 10, "frames after the file was replaced")
    assert (images[-1][1].width, images[-1][1].height) == (640, 480)


@pytest.mark.slow
def test_missing_device_is_reported_and_the_node_stays_up(spawn, ros):
    camera = start_camera(spawn, source="device", device_index=57)
    camera.wait_for_line(r"/dev/video57 does not exist \(V4L2 devices present: .*\); retrying", timeout=15)
    time.sleep(2.0)     # a negative check: retrying, it does not give up and exit
    assert camera.alive()


@pytest.mark.slow
def test_topic_source_relays_resized_with_the_input_stamps_and_survives_bad_frames(spawn, ros):
    images = ros.collect(Image, "/camera/image_raw", "sensor")
    infos = ros.collect(CameraInfo, "/camera/camera_info", "sensor")
    camera = start_camera(spawn, source="topic", input_topic="/sim/camera/image_raw",
                          input_info_topic="/sim/camera/camera_info", rate_hz=30.0, width=640, height=480)
    image_pub = ros.node.create_publisher(Image, "/sim/camera/image_raw", SENSOR_QOS)
    info_pub = ros.node.create_publisher(CameraInfo, "/sim/camera/camera_info", SENSOR_QOS)
    ros.wait_for_subscribers(image_pub, timeout=15)
    ros.wait_for_subscribers(info_pub, timeout=15)
    source_info = CameraInfo(width=320, height=240)
    source_info.k = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]
    source_info.p = [200.0, 0.0, 160.0, 0.0, 0.0, 200.0, 120.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    blue_bgr = np.zeros((240, 320, 3), np.uint8)
    blue_bgr[:, :, 0] = 255
    sent = []

    def send(count, bad=False):
        for _ in range(count):
            stamp = ros.node.get_clock().now().to_msg()
            if bad:
                msg = Image(height=240, width=320, encoding="yuv422", step=640, data=bytes(240 * 640))
            else:
                msg = numpy_to_image(blue_bgr, "bgr8")
                sent.append(stamp_to_seconds(stamp))
            msg.header.stamp = stamp
            info_pub.publish(source_info)
            image_pub.publish(msg)
            time.sleep(0.1)

    send(10)
    ros.wait_for(lambda: len(images) >= 5, 10, "relayed frames")
    send(3, bad=True)
    camera.wait_for_line(r"ignored a frame from /sim/camera/image_raw: cannot convert 'yuv422' images to RGB", 5)
    before = len(images)
    send(5)
    ros.wait_for(lambda: len(images) >= before + 3, 10, "frames relayed after the bad ones")
    for _, msg in list(images):
        assert (msg.width, msg.height, msg.encoding) == (640, 480, "rgb8")
        assert stamp_to_seconds(msg.header.stamp) in sent               # the input's capture stamp, kept
        assert tuple(image_to_numpy(msg)[240, 320]) == (0, 0, 255)       # bgr8 blue is rgb8 blue
    info = infos[-1][1]
    assert info.k[0] == pytest.approx(400.0) and info.k[5] == pytest.approx(240.0)   # scaled to 640x480
    assert camera.alive()
