"""Live parameters on a real flight controller process: a live envelope parameter set at run time changes the
envelope it enforces and publishes on /flight/envelope (what the planner checks plans against); a start-up
parameter, a value out of range and one beyond the airframe's hard limit are refused with the reason; and
`mmchat param get/set` does the same from the command line."""
import json
import subprocess

import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from std_msgs.msg import String

from mmchat_ros.nodes.common import STATE_QOS
from tests.helpers.flight import ros_args
from tests.helpers.processes import python_cmd


def set_parameter(ros, name, value):
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return ros.call(SetParameters, "/flight_controller/set_parameters", request).results[0]


def mmchat(env, *args):
    return subprocess.run(python_cmd("mmchat_ros.tools.cli", "param", *args), env=env, text=True,
                          capture_output=True, timeout=60)


@pytest.mark.slow
def test_live_envelope_parameters_on_a_running_flight_controller(spawn, ros, ros_env):
    fc = spawn(python_cmd("mmchat_ros.nodes.flight_controller", *ros_args({"require_authorisation": False})),
               name="flight_controller")
    fc.wait_for_line("flight controller ready", timeout=30)
    envelopes = ros.collect(String, "/flight/envelope", STATE_QOS)
    latest = lambda: json.loads(envelopes[-1][1].data)  # noqa: E731
    ros.wait_for(lambda: envelopes, 10, "the envelope (transient local: sent before we subscribed)")
    assert latest()["max_speed_xy"] == 2.0

    result = set_parameter(ros, "max_speed_xy", 0.8)
    assert result.successful, result.reason
    ros.wait_for(lambda: latest()["max_speed_xy"] == 0.8, 5, "the slower envelope on /flight/envelope")
    fc.wait_for_line("parameters changed: max_speed_xy 2.0 -> 0.8", timeout=5)

    result = set_parameter(ros, "control_rate_hz", 100.0)
    assert not result.successful
    assert result.reason == "control_rate_hz is read at start-up only: restart the node with the new value"

    result = set_parameter(ros, "max_speed_z", 50.0)            # the descriptor's range: rclpy refuses it
    assert not result.successful and "out of range" in result.reason, result.reason

    result = set_parameter(ros, "max_speed_xy", 3.0)            # inside the range, beyond the x500's limit
    assert not result.successful
    assert result.reason == "max_speed_xy=3 is above the airframe 'x500' hard limit 2"

    result = set_parameter(ros, "geofence_max", [-19.8, 20.0, 10.0])   # x: narrower than twice the margin
    assert not result.successful and "geofence" in result.reason, result.reason
    assert latest()["max_speed_xy"] == 0.8 and latest()["geofence_max"] == [20.0, 20.0, 10.0]

    out = mmchat(ros_env, "set", "flight_controller", "geofence_max", "[50, 50, 30]")
    assert out.returncode == 0, out.stderr
    ros.wait_for(lambda: latest()["geofence_max"] == [50.0, 50.0, 30.0], 5, "the wider geofence")
    out = mmchat(ros_env, "get", "flight_controller", "geofence_max")
    assert out.returncode == 0 and out.stdout.strip() == "[50.0, 50.0, 30.0]", (out.stdout, out.stderr)
    out = mmchat(ros_env, "set", "flight_controller", "airframe", "crazyflie")
    assert out.returncode == 1 and "airframe is read at start-up only" in out.stderr, out.stderr
