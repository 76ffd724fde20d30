"""sim node: the embedded MuJoCo quadrotor as a vehicle driver.

Motor commands in (/motor_command); /odom, /imu, /battery, /camera/image_raw + /camera/camera_info and /clock out.
Physics runs in a PacedLoop, paced to real_time_factor x wall time (<= 0: as fast as possible; up to 0.5 s behind
is caught up, so sim time keeps step with wall time); the camera renders in a QueueWorker from a snapshot of the
physics state, so rendering never stalls the physics. A failing physics step ends the node (exit status 1).
While the motors are disarmed and the vehicle stands still, the loop advances in steps of idle_odom_rate_hz (the
physics keeps its rate inside each step): /odom and /imu, and everything their nodes do, come that much less often
until an armed motor command or motion brings back odom_rate_hz at once (core/idle_rate.py).
"""
from __future__ import annotations

import math
import sys
import threading
import time

import mujoco
import numpy as np
from geometry_msgs.msg import Pose, PoseArray
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import BatteryState, CameraInfo, Image, Imu
from std_srvs.srv import Trigger

from mmchat_ros.backends.sim.quadrotor import QuadrotorSim
from mmchat_ros.core import topics
from mmchat_ros.core.airframe import load_airframe
from mmchat_ros.core.geometry import world_to_body
from mmchat_ros.core.idle_rate import IdleRate, at_rest
from mmchat_ros.core.paths import share_dir
from mmchat_ros.msg import MotorCommand
from mmchat_ros.nodes.base import MmchatNode, PacedLoop, QueueWorker
from mmchat_ros.nodes.common import Param, run_node, seconds_to_stamp
from mmchat_ros.nodes.image_conversion import numpy_to_image
from mmchat_ros.nodes.ros_conversions import quat_msg_from_wxyz, vector_to_msg
from mmchat_ros.nodes.scheduling import raise_thread_priority

PARAMS = {
    "airframe": Param("x500", "airframe name in config/airframes.yaml"),
    "airframes_file": Param("", "airframes file; empty = the package's config/airframes.yaml"),
    "world_file": Param("", "world description (boxes, targets); empty = sim/worlds/default.yaml"),
    "physics_rate_hz": Param(500.0, "MuJoCo physics rate, Hz"),
    "odom_rate_hz": Param(250.0, "rate of /odom and /imu, Hz (the physics advances in steps of this period)"),
    "idle_odom_rate_hz": Param(15.0, "rate of /odom, /imu and /clock (at most) while the motors are disarmed and the "
                                     "vehicle stands still for idle_settle_s: the physics then advances in steps of "
                                     "this period (the camera renders at most once a step: keep it >= "
                                     "camera_rate_hz); an armed motor command or motion brings back odom_rate_hz at "
                                     "once; 0 = never idle (nor with real_time_factor <= 0), Hz",
                               value_range=(0.0, 250.0)),
    "idle_settle_s": Param(1.0, "disarmed and still this long before the simulator slows to idle_odom_rate_hz, s",
                           value_range=(0.0, 60.0)),
    "battery_rate_hz": Param(2.0, "rate of /battery, Hz"),
    "clock_rate_hz": Param(100.0, "rate of /clock, Hz (sim time, for nodes with use_sim_time)"),
    "camera_enabled": Param(True, "render the onboard camera"),
    "camera_rate_hz": Param(15.0, "onboard camera frame rate (sim time), Hz"),
    "real_time_factor": Param(1.0, "sim seconds per wall second; <= 0 runs as fast as possible"),
    "realtime_priority": Param(10, "SCHED_FIFO priority (1..99) of the physics thread while it is paced in real time "
                                   "(real_time_factor > 0), below the flight controller's: the simulated world must "
                                   "not pause because the robot's software loads the CPU (a stall longer than "
                                   "odom_timeout_s reads as odometry lost); 0 = normal scheduling. Needs "
                                   "CAP_SYS_NICE or an rtprio limit; without it the physics runs at normal priority "
                                   "and says so"),
    "stamp_with_sim_time": Param(False, "stamp messages with sim time (set when the graph uses use_sim_time) "
                                        "instead of the node clock"),
    "start_position": Param([0.0, 0.0, 0.0], "start position x, y, z in the odom frame, m (z 0 = on the ground)"),
    "start_yaw_deg": Param(0.0, "start heading, degrees"),
    "motor_timeout_s": Param(0.5, "no motor command for this long → motors stop, like an ESC losing its signal, s"),
    "odom_frame": Param("odom", "frame of /odom poses"),
    "base_frame": Param("base_link", "the vehicle body frame"),
    "camera_frame": Param("camera_optical", "optical frame of the onboard camera"),
    "seed": Param(0, "random seed (IMU noise)"),
    "imu_noise": Param([0.0, 0.0], "IMU white noise std: accelerometer m/s^2, gyro rad/s"),
}


class SimNode(MmchatNode):
    def __init__(self):
        super().__init__("sim", PARAMS)
        airframe = load_airframe(self.p.airframe, self.p.airframes_file or None)
        world = self.p.world_file or str(share_dir() / "sim" / "worlds" / "default.yaml")
        self.sim = QuadrotorSim(airframe, world, physics_hz=self.p.physics_rate_hz, camera=False, seed=self.p.seed,
                                imu_noise=tuple(self.p.imu_noise))
        self.sim.reset(position=tuple(self.p.start_position), yaw=math.radians(self.p.start_yaw_deg))
        self.num_motors = airframe.num_motors
        self.odom_origin = np.array([0.0, 0.0, self.sim.rest_height_m])
        self.lock = threading.Lock()
        self.command = (np.zeros(self.num_motors), False)
        self.last_command_wall = None
        self.command_timed_out = False

        self.subscribe_to(topics.MOTOR_COMMAND, MotorCommand, self.on_motor_command)
        self.odom_pub = self.publish_to(topics.ODOM, Odometry)
        self.imu_pub = self.publish_to(topics.IMU, Imu)
        self.battery_pub = self.publish_to(topics.BATTERY, BatteryState)
        self.clock_pub = self.publish_to(topics.CLOCK, Clock)
        self.targets_pub = self.publish_to(topics.SIM_TARGETS, PoseArray)
        self.image_pub = self.publish_to(topics.CAMERA_IMAGE, Image)
        self.info_pub = self.publish_to(topics.CAMERA_INFO, CameraInfo)
        self.create_service(Trigger, "sim/reset", self.on_reset)

        sys.setswitchinterval(0.0002)   # physics pacing thread: see flight_controller.py
        rtf = self.p.real_time_factor
        # Unpaced (rtf <= 0), bigger steps would only run sim time faster: nothing to save.
        self.idle_rate = IdleRate(self.p.odom_rate_hz, self.p.idle_odom_rate_hz if rtf > 0 else 0.0,
                                  self.p.idle_settle_s)
        self.set_step_rate(self.p.odom_rate_hz)
        self.renderer: QueueWorker | None = None
        if self.p.camera_enabled:
            self.snapshot = mujoco.MjData(self.sim.model)   # the renderer's one copy of the state
            self.camera_info = self.make_camera_info()
            # the GL context belongs to the thread that rendered: released there
            self.renderer = QueueWorker(self, "camera", self.render, on_end=self.sim.release_camera)
            self.start_worker(self.renderer)
        step_rate = self.p.odom_rate_hz * rtf if rtf > 0 else math.inf
        # Real time only when paced: an unpaced loop at SCHED_FIFO would take a core from everything else.
        priority = self.p.realtime_priority if rtf > 0 else 0
        # When this process is starved, the world must not jump ahead in a burst of steps that all fly the same
        # motor command: no controller could react inside it (a loaded machine flipped the vehicle so). Only a lag
        # of two steps is caught up; a longer stall stretches sim time instead, as if the world had paused too.
        # started last, so stopped first: no render request after the renderer stopped
        self.physics_loop = PacedLoop(self, "physics", step_rate, self.physics_step, max_lag_s=2.0 / step_rate,
                                      end_node_on_error=True,
                                      on_start=lambda: raise_thread_priority(self, priority, "physics thread"))
        self.start_worker(self.physics_loop)
        self.get_logger().info(
            f"simulator ready: {airframe.name} ({airframe.mass_kg} kg), world {world}, physics "
            f"{self.p.physics_rate_hz:.0f} Hz, real-time factor {self.p.real_time_factor}, camera "
            f"{'on at %.0f Hz' % self.p.camera_rate_hz if self.p.camera_enabled else 'off'}")

    def on_motor_command(self, msg: MotorCommand) -> None:
        thrusts = np.asarray(msg.thrust_n, dtype=float)
        if thrusts.shape != (self.num_motors,) or not np.all(np.isfinite(thrusts)):
            self.get_logger().warn(f"ignored motor command: expected {self.num_motors} finite thrusts, got "
                                   f"{list(msg.thrust_n)}", throttle_duration_sec=1.0)
            return
        with self.lock:
            self.command = (thrusts, bool(msg.armed))
            self.last_command_wall = time.monotonic()
            if msg.armed:
                self.pace(self.idle_rate.wake())     # the take-off's first motor command is stepped at full rate

    def on_reset(self, _req, response):
        with self.lock:
            self.sim.reset(position=tuple(self.p.start_position), yaw=math.radians(self.p.start_yaw_deg))
            self.command = (np.zeros(self.num_motors), False)
            self.pace(self.idle_rate.wake())
        response.success, response.message = True, "vehicle reset to its start pose"
        return response

    def stamp(self, sim_time: float):
        return seconds_to_stamp(sim_time) if self.p.stamp_with_sim_time else self.get_clock().now().to_msg()

    # --------------------------------------------------------------------------------------------- physics
    def set_step_rate(self, rate_hz: float) -> None:
        """Steps of 1 / rate_hz sim seconds from now, and how many of them apart the other outputs come."""
        self.step_rate_hz, self.steps = rate_hz, 0
        self.every = {name: max(1, int(round(rate_hz / rate))) for name, rate in (
            ("battery", self.p.battery_rate_hz), ("clock", self.p.clock_rate_hz),
            ("camera", self.p.camera_rate_hz), ("targets", 10.0))}

    def pace(self, rate_hz: float) -> None:
        """Steps at ``rate_hz`` (odometry rate) from now; a faster rate at once. Lock held."""
        if rate_hz == self.step_rate_hz:
            return
        self.set_step_rate(rate_hz)
        rtf = self.p.real_time_factor
        self.physics_loop.set_rate(rate_hz * rtf)
        self.get_logger().info(f"odometry at {rate_hz:g} Hz" + (" (disarmed, at rest)"
                                                               if rate_hz < self.idle_rate.full_hz else ""))

    def physics_step(self) -> None:
        """One odometry period of physics, and what is due after it."""
        count, every = self.steps, self.every
        with self.lock:
            thrusts, armed = self.command
            stale = self.last_command_wall is not None and \
                time.monotonic() - self.last_command_wall > self.p.motor_timeout_s
            if stale and armed:
                if not self.command_timed_out:
                    self.get_logger().error(f"no motor command for {self.p.motor_timeout_s} s: motors stop")
                self.command_timed_out = True
                armed = False
            elif not stale:
                self.command_timed_out = False
            self.sim.set_motor_commands(thrusts, armed)
            sim_time = self.sim.step(1.0 / self.step_rate_hz)
            state = self.sim.state()
            if self.renderer is not None and count % every["camera"] == 0:
                self.request_render(sim_time)
            targets = self.sim.target_positions() if count % every["targets"] == 0 else None
            resting = not armed and at_rest(state.linear_velocity_world, state.angular_velocity_body)
            self.pace(self.idle_rate.rate_hz(resting, time.monotonic()))
        self.publish_state(state)
        if count % every["battery"] == 0:
            self.publish_battery(state)
        if count % every["clock"] == 0:
            self.clock_pub.publish(Clock(clock=seconds_to_stamp(sim_time)))
        if targets:
            self.publish_targets(targets, sim_time)
        self.steps += 1

    def publish_state(self, state) -> None:
        stamp = self.stamp(state.time_s)
        odom = Odometry()
        odom.header.stamp = stamp
        odom.header.frame_id = self.p.odom_frame
        odom.child_frame_id = self.p.base_frame
        # The odom frame sits on the ground under the start pose (as a flight stack's local frame does), so z
        # is the height of the body origin above the take-off surface: 0 when standing on its feet.
        vector_to_msg(state.position - self.odom_origin, odom.pose.pose.position)
        quat_msg_from_wxyz(state.quaternion_wxyz, odom.pose.pose.orientation)
        # REP 105: Odometry twist is expressed in the child (body) frame.
        vector_to_msg(world_to_body(state.quaternion_wxyz, state.linear_velocity_world), odom.twist.twist.linear)
        vector_to_msg(state.angular_velocity_body, odom.twist.twist.angular)
        odom.pose.covariance[0] = odom.pose.covariance[7] = odom.pose.covariance[14] = 1e-6
        odom.twist.covariance[0] = odom.twist.covariance[7] = odom.twist.covariance[14] = 1e-6
        self.odom_pub.publish(odom)
        imu = Imu()
        imu.header.stamp = stamp
        imu.header.frame_id = self.p.base_frame
        quat_msg_from_wxyz(state.quaternion_wxyz, imu.orientation)
        vector_to_msg(state.angular_velocity_body, imu.angular_velocity)
        vector_to_msg(state.specific_force_body, imu.linear_acceleration)
        self.imu_pub.publish(imu)

    def publish_battery(self, state) -> None:
        battery = state.battery
        msg = BatteryState()
        msg.header.stamp = self.stamp(state.time_s)
        msg.voltage = float(battery.voltage_v)
        msg.current = -float(battery.current_a)      # negative while discharging (sensor_msgs convention)
        msg.percentage = float(battery.percentage)
        msg.capacity = msg.design_capacity = float(self.sim.airframe.battery.capacity_mah) / 1000.0
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LIPO
        msg.present = True
        self.battery_pub.publish(msg)

    def publish_targets(self, targets: dict, sim_time: float) -> None:
        msg = PoseArray()
        msg.header.stamp = self.stamp(sim_time)
        msg.header.frame_id = self.p.odom_frame
        for position in targets.values():
            pose = Pose()
            vector_to_msg(position - self.odom_origin, pose.position)
            pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.targets_pub.publish(msg)

    # ---------------------------------------------------------------------------------------------- camera
    def make_camera_info(self) -> CameraInfo:
        intrinsics = self.sim.camera_intrinsics()
        info = CameraInfo()
        info.header.frame_id = self.p.camera_frame
        info.width, info.height = self.sim.camera_width, self.sim.camera_height
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [intrinsics.fx, 0.0, intrinsics.cx, 0.0, intrinsics.fy, intrinsics.cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [intrinsics.fx, 0.0, intrinsics.cx, 0.0, 0.0, intrinsics.fy, intrinsics.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def request_render(self, sim_time: float) -> None:
        """Called with the physics lock held: copy the state for the renderer (microseconds)."""
        if not self.renderer.ready:
            return   # still busy with the previous frame (its snapshot in use), or stopped: drop this one
        mujoco.mj_copyData(self.snapshot, self.sim.model, self.sim.data)
        self.renderer.offer(self.stamp(sim_time))

    def render(self, stamp) -> None:
        try:
            pixels = self.sim.render_camera(data=self.snapshot)
        except Exception as exc:   # no GL: say why once, keep the vehicle flying without a camera
            self.get_logger().error(f"camera disabled: {type(exc).__name__}: {exc}")
            self.renderer.stop()
            return
        image = numpy_to_image(pixels, "rgb8")
        image.header.stamp = stamp
        image.header.frame_id = self.p.camera_frame
        self.camera_info.header.stamp = stamp
        self.image_pub.publish(image)
        self.info_pub.publish(self.camera_info)

    def close(self) -> None:
        self.sim.close()


def main(args=None):
    return run_node(SimNode, args)


if __name__ == "__main__":
    sys.exit(main())
