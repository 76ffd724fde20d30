"""Recording selection, rates, QoS classes, the rosbags type registry (our messages round-trip between rclpy's CDR,
rosbags and the mcap reader), replay timing and progress lines."""
import math

import pytest
from rclpy.serialization import serialize_message

from mmchat_ros.core.bag_topics import (COMMAND, DEFAULT_TOPICS, SENSOR, STATE, RateLimiter, ReplayClock,
                                        TopicSpec, TopicSpecError, human_bytes, make_typestore,
                                        package_message_definitions, parse_topic_arg, qos_class_for_publishers,
                                        recording_progress, replay_progress, select_topics, shifted_stamp)


def test_default_selection_covers_what_the_robot_sees_and_decides_with_images_thinned():
    specs = {spec.name: spec for spec in select_topics(image_rate_hz=4.0, odom_rate_hz=20.0)}
    for topic in ("/camera/image_raw", "/detections", "/gesture", "/speech/transcript", "/planner/plan",
                  "/flight/state", "/odom"):
        assert topic in specs, topic
        assert specs[topic].type, f"{topic} has a known type so it can be recorded before anyone publishes"
    assert specs["/camera/image_raw"].max_rate_hz == 4.0
    assert specs["/camera/camera_info"].max_rate_hz == 4.0
    assert specs["/odom"].max_rate_hz == 20.0
    assert specs["/gesture"].max_rate_hz == 0.0            # events are never thinned
    assert specs["/flight/state"].qos == STATE and specs["/camera/image_raw"].qos == SENSOR
    assert specs["/gesture"].qos == COMMAND


def test_named_topics_replace_the_defaults_unless_asked_for_both():
    only = select_topics(["/camera/image_raw:0", "/imu:100:sensor_msgs/msg/Imu"])
    assert [(s.name, s.max_rate_hz, s.type) for s in only] == [
        ("/camera/image_raw", 0.0, "sensor_msgs/msg/Image"), ("/imu", 100.0, "sensor_msgs/msg/Imu")]
    both = {s.name: s for s in select_topics(["/camera/image_raw:15"], include_defaults=True)}
    assert len(both) == len(DEFAULT_TOPICS) and both["/camera/image_raw"].max_rate_hz == 15.0
    without = {s.name for s in select_topics(exclude=["/odom", "/camera/camera_info"])}
    assert "/odom" not in without and "/gesture" in without


@pytest.mark.parametrize("arg,problem", [
    ("camera/image_raw", "absolute"), ("/a:fast", "not a number"), ("/a:-1", ">= 0"), ("/a:1:Image", "pkg/msg"),
    ("/a:1:b:c", "expected"), ("/a//b", "absolute"),
])
def test_bad_topic_arguments_say_what_is_wrong(arg, problem):
    with pytest.raises(TopicSpecError, match=problem):
        parse_topic_arg(arg)


def test_excluding_what_is_not_selected_or_everything_is_an_error():
    with pytest.raises(TopicSpecError, match="not in the selection"):
        select_topics(exclude=["/nope"])
    with pytest.raises(TopicSpecError, match="no topics"):
        select_topics(["/a"], exclude=["/a"])
    with pytest.raises(TopicSpecError, match="QoS class"):
        TopicSpec("/a", qos="fast")


def test_rate_limiter_thins_a_15_hz_camera_to_every_third_frame():
    limiter = RateLimiter(5.0)
    period = int(1e9 / 15)
    kept = [i for i in range(30) if limiter.accept(1_000_000_000 + i * period + (7_000_000 if i % 2 else 0))]
    assert kept == list(range(0, 30, 3))
    everything = RateLimiter(0.0)
    assert all(everything.accept(t) for t in (0, 1, 1, 2))


def test_qos_class_follows_the_publishers_so_the_subscription_matches():
    assert qos_class_for_publishers([("best_effort", "volatile")]) == SENSOR
    assert qos_class_for_publishers([("reliable", "volatile"), ("best_effort", "volatile")]) == SENSOR
    assert qos_class_for_publishers([("reliable", "transient_local")]) == STATE
    assert qos_class_for_publishers([("reliable", "transient_local"), ("reliable", "volatile")]) == COMMAND
    assert qos_class_for_publishers([]) == COMMAND


def _sample_messages():
    """One message of every mmchat_ros type, with values in every kind of field."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point

    from mmchat_ros import msg as m
    stamp = Time(sec=1700000000, nanosec=123456789)
    header = {"header": __import__("std_msgs.msg", fromlist=["Header"]).Header(stamp=stamp, frame_id="camera")}
    detection = m.Detection(class_id=0, class_name="person", score=0.75, center_x=160.5, center_y=120.25,
                            width=40.0, height=90.0, track_id=7)
    action = m.PlanAction(type=m.PlanAction.MOVE_BY, x=2.0, y=-1.0, z=0.5, yaw_deg=90.0, duration_s=1.5, speed=0.8,
                          target_track_id=-1, target_class="person")
    return [
        m.ActionPlan(**header, id="abc", source="grammar", utterance="fly forward", actions=[action, action]),
        m.AudioChunk(**header, sample_rate=16000, channels=1, samples=[0, -32768, 32767, 5]),
        m.AuthState(**header, authorised=True, operator_id="op1", operator_name="Ada", confidence=0.9,
                    expires=Time(sec=5, nanosec=6), reason="face match"),
        detection,
        m.DetectionArray(**header, image_width=320, image_height=240, detections=[detection, detection]),
        m.FlightState(**header, mode="HOVER", armed=True, battery_percentage=float("nan"), active_source="plan",
                      operator_authorised=True, last_rejection="speed", rejection_count=3),
        m.Gesture(**header, name="open_palm", confidence=0.8, is_dynamic=False, stable=True, handedness="right",
                  num_hands=1, landmarks=[Point(x=0.1 * i, y=0.5, z=-0.01) for i in range(21)]),
        m.MotorCommand(**header, armed=True, thrust_n=[1.0, 2.0, 3.0, 4.0]),
        action,
        m.SpeechSegment(**header, start=stamp, end=stamp, sample_rate=16000, samples=[1, 2, 3], truncated=True),
        m.Transcript(**header, text="take off", language="en", confidence=0.6, segment_start=stamp,
                     segment_end=stamp),
    ]


def _same(ours, theirs) -> bool:
    """rclpy message vs rosbags / mcap_ros2 decoded object, field by field."""
    if hasattr(ours, "get_fields_and_field_types"):
        return all(_same(getattr(ours, name), getattr(theirs, name)) for name in ours.get_fields_and_field_types())
    if isinstance(ours, float) or hasattr(ours, "dtype") and not hasattr(ours, "__len__"):
        return (math.isnan(ours) and math.isnan(theirs)) or math.isclose(float(ours), float(theirs), rel_tol=1e-6)
    if hasattr(ours, "__len__") and not isinstance(ours, str):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs))
    return ours == theirs


def test_every_package_message_is_registered_and_reads_back_from_rclpy_cdr():
    definitions = package_message_definitions()
    samples = _sample_messages()
    assert {f"mmchat_ros/msg/{type(s).__name__}" for s in samples} == set(definitions), \
        "a message was added to msg/: add a sample here"
    store = make_typestore()
    for sample in samples:
        type_name = f"mmchat_ros/msg/{type(sample).__name__}"
        decoded = store.deserialize_cdr(serialize_message(sample), type_name)
        assert _same(sample, decoded), type_name


def test_a_bag_written_here_opens_in_the_mcap_reader_with_our_types(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import Image
    samples = [s for s in _sample_messages() if hasattr(s, "header")]
    image = Image(width=2, height=1, encoding="rgb8", step=6, data=bytes(range(6)))
    store = make_typestore()
    with Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for i, msg in enumerate([*samples, image]):
            type_name = f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"
            conn = writer.add_connection(f"/t{i}", type_name, typestore=store)
            writer.write(conn, 1000 + i, serialize_message(msg))
    with open(next((tmp_path / "bag").glob("*.mcap")), "rb") as stream:
        decoded = {channel.topic: (schema.name, message.log_time, obj) for schema, channel, message, obj
                   in make_reader(stream, decoder_factories=[DecoderFactory()]).iter_decoded_messages()}
    assert len(decoded) == len(samples) + 1
    for i, msg in enumerate([*samples, image]):
        schema, log_time, obj = decoded[f"/t{i}"]
        assert schema.endswith(type(msg).__name__) and log_time == 1000 + i
        assert _same(msg, obj), schema


def test_replay_clock_scales_recorded_time():
    clock = ReplayClock(first_log_ns=5_000_000_000, start_wall_s=100.0, rate=2.0)
    assert clock.due(5_000_000_000) == 100.0
    assert clock.due(7_000_000_000) == pytest.approx(101.0)
    assert clock.bag_seconds(101.5) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="rate"):
        ReplayClock(0, 0.0, 0.0)


def test_shifted_stamps_carry_nanoseconds_and_leave_unset_stamps_alone():
    assert shifted_stamp(10, 900_000_000, 200_000_000) == (11, 100_000_000)
    assert shifted_stamp(10, 100_000_000, -200_000_000) == (9, 900_000_000)
    assert shifted_stamp(0, 0, 5_000_000_000) == (0, 0)


def test_progress_lines_name_counts_bytes_and_topics():
    assert human_bytes(999) == "999 B" and human_bytes(12_345_678) == "12.3 MB"
    line = recording_progress(12.04, 321, 2_500_000, {"/odom": 300, "/gesture": 21}, dropped=2)
    assert "12.0 s" in line and "321 messages" in line and "2.5 MB" in line and "/gesture 21" in line
    assert "2 dropped" in line
    assert "50 %" in replay_progress(5.0, 10.0, 40) and "loop 2" in replay_progress(1.0, 10.0, 3, loop=1)


def test_record_and_play_commands_refuse_bad_input_before_touching_ros(tmp_path, capsys):
    import argparse

    from mmchat_ros.tools import observe_cli, player, recorder
    assert recorder.main(["camera/image_raw"]) == 2
    assert "absolute ROS topic name" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert recorder.main(["-o", str(tmp_path / "taken")]) == 2
    assert "exists" in capsys.readouterr().err
    assert player.main([str(tmp_path)]) == 2
    assert "not a rosbag2 folder" in capsys.readouterr().err
    assert recorder.main(["--list-defaults", "--image-rate", "2"]) == 0
    assert "/camera/image_raw" in capsys.readouterr().out
    parser = argparse.ArgumentParser()
    observe_cli.add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["play", "bag", "--rate", "2", "--loop", "--topics", "/camera/image_raw"])
    assert (args.rate, args.loop, args.topics) == (2.0, True, ["/camera/image_raw"])
    args = parser.parse_args(["panel", "--port", "9000", "max_frame_rate_hz:=5.0"])
    assert observe_cli._node_args(args) == ["mmchat_panel", "--ros-args", "-p", "host:=127.0.0.1", "-p", "port:=9000",
                                            "-p", "max_frame_rate_hz:=5.0"]
    assert parser.parse_args(["view"]).port == 8765
