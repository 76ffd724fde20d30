"""Flying a running vehicle from a script: odometry, flight state, motor commands, the flight controller's
services and its plan action. Used by `mmchat demo`, the benches and the simulation tests."""
from __future__ import annotations

import math
import time

from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from std_srvs.srv import Trigger

from mmchat_ros.action import ExecutePlan
from mmchat_ros.core.geometry import tilt_from_quat, yaw_from_quat
from mmchat_ros.msg import ActionPlan, FlightState, MotorCommand, PlanAction
from mmchat_ros.nodes.common import STATE_QOS


class FlightClient:
    """Test-side view of the vehicle: odometry, flight state, motor commands, services and the plan action."""

    def __init__(self, ros, namespace: str = ""):
        """``namespace``: the vehicle's ("/drone1", launched with vehicle_name:=drone1); "" for the root one."""
        self.ros = ros
        self.namespace = namespace.rstrip("/")
        self.odom = ros.collect(Odometry, f"{self.namespace}/odom", "sensor")
        self.states = ros.collect(FlightState, f"{self.namespace}/flight/state", STATE_QOS)
        self.motors = ros.collect(MotorCommand, f"{self.namespace}/motor_command", "sensor")
        self.plan_client = ActionClient(ros.node, ExecutePlan, f"{self.namespace}/execute_plan")
        ros.wait_for(lambda: self.odom and self.states and self.motors, 30, "odometry, flight state and motors")

    # --------------------------------------------------------------------------------------------- readouts
    def position(self):
        p = self.odom[-1][1].pose.pose.position
        return p.x, p.y, p.z

    def state(self) -> FlightState:
        return self.states[-1][1]

    def mode(self) -> str:
        return self.state().mode

    def odom_since(self, t0: float):
        return [msg for t, msg in list(self.odom) if t >= t0]

    def wait_mode(self, mode: str, timeout: float = 30.0) -> FlightState:
        try:
            return self.ros.wait_for(lambda: self.states and self.mode() == mode and self.state(), timeout,
                                     f"flight mode {mode}")
        except TimeoutError as exc:   # say what the mode was when the wait gave up, not when it began
            if not self.states:
                raise
            state = self.state()
            raise TimeoutError(f"{exc} (at the timeout: mode {state.mode}, source '{state.active_source}'; "
                               f"last rejection: {state.last_rejection or 'none'}; {self.describe_motion()})"
                               ) from None

    def describe_motion(self) -> str:
        """Where the vehicle is, how it moves and leans, and what the motors were last told: for timeout messages."""
        if not self.odom:
            return "no odometry"
        odom_at, odom = self.odom[-1]
        p, v, q = odom.pose.pose.position, odom.twist.twist.linear, odom.pose.pose.orientation
        tilt = math.degrees(tilt_from_quat((q.w, q.x, q.y, q.z)))
        text = (f"odometry {time.monotonic() - odom_at:.1f} s old: position ({p.x:.2f}, {p.y:.2f}, {p.z:.2f}) m, "
                f"velocity ({v.x:.2f}, {v.y:.2f}, {v.z:.2f}) m/s, tilt {tilt:.0f} deg")
        if self.motors:
            motors_at, motors = self.motors[-1]
            text += (f"; motors {time.monotonic() - motors_at:.1f} s ago: armed {motors.armed}, thrust "
                     f"{[round(t, 2) for t in motors.thrust_n]} N")
        return text

    def wait_altitude(self, z: float, tol: float = 0.1, timeout: float = 30.0):
        try:
            return self.ros.wait_for(lambda: abs(self.position()[2] - z) < tol, timeout, f"altitude {z}±{tol} m")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc} (at the timeout: {self.describe_motion()})") from None

    # ------------------------------------------------------------------------------------------------ calls
    def trigger(self, name: str) -> Trigger.Response:
        """Call the vehicle's service ``name`` ("/takeoff": /drone1/takeoff in the namespace /drone1)."""
        return self.ros.call(Trigger, self.namespace + name, Trigger.Request(), timeout=15)

    def take_off(self) -> None:
        """Ask for a take-off (to the controller's default height); returns once it is accepted."""
        # Right after start-up the controller may not have fresh odometry yet: ask again for a while.
        deadline = time.monotonic() + 15.0
        response = self.trigger("/takeoff")
        while not response.success and "odometry" in response.message and time.monotonic() < deadline:
            time.sleep(0.5)
            response = self.trigger("/takeoff")
        if not response.success:
            raise RuntimeError(f"take-off refused: {response.message}")

    def take_off_and_settle(self, height: float = 1.5) -> None:
        if self.mode() in ("HOVER", "VELOCITY", "POSITION"):
            return
        self.take_off()
        self.wait_mode("HOVER", timeout=40)
        self.wait_altitude(height, 0.1, timeout=20)

    def land_and_wait(self) -> None:
        if self.mode() == "LANDED":
            return
        response = self.trigger("/land")
        if not response.success:
            raise RuntimeError(f"landing refused: {response.message}")
        self.wait_mode("LANDED", timeout=60)

    def execute(self, actions: list[PlanAction], timeout: float = 90.0, source: str = "test"):
        """Send a plan through the action; returns (result, feedback list)."""
        if not self.plan_client.wait_for_server(timeout_sec=15):
            raise TimeoutError("execute_plan action server not available")
        feedback: list = []
        goal = ExecutePlan.Goal(plan=ActionPlan(id=f"test-{time.monotonic_ns()}", source=source, actions=actions))
        send = self.plan_client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
        self.ros.wait_for(send.done, 15, "goal acceptance")
        handle = send.result()
        if not handle.accepted:
            raise RuntimeError("plan goal rejected")
        result_future = handle.get_result_async()
        self.ros.wait_for(result_future.done, timeout, "plan result")
        return result_future.result().result, feedback


def action(kind: int, **fields) -> PlanAction:
    return PlanAction(type=kind, **fields)


def yaw_of(odom: Odometry) -> float:
    q = odom.pose.pose.orientation
    return yaw_from_quat((q.w, q.x, q.y, q.z))
