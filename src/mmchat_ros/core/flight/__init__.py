"""Flight control core: cascaded PID controller and mixer, flight state machine, command mux, safety envelope,
action-plan executor, and the FlightCore that ties them together for the flight_controller node.

Pure Python (numpy, PyYAML); never imports rclpy. Frames are REP 103 (world z up; body x forward,
y left, z up) and every time is an explicit ``now`` in seconds, so wall time and sim time work alike.
"""
from mmchat_ros.core.flight.control import CascadedController, ControlOutput, Setpoint, VehicleState
from mmchat_ros.core.flight.envelope import EnvelopeCheck, EnvelopeConfig, SafetyEnvelope
from mmchat_ros.core.flight.flight_core import FlightCore, FlightCoreConfig, FlightStatus
from mmchat_ros.core.flight.gains import ControlLimits, FlightGains, PidGains, load_gains
from mmchat_ros.core.flight.mixer import Mixer
from mmchat_ros.core.flight.mux import (ActiveCommand, CommandMux, Decision, EmergencyStopCommand, HoverCommand,
                                        LandCommand, PositionCommand, VelocityCommand)
from mmchat_ros.core.flight.plan import (FollowRequest, PlanConfig, PlanExecutor, PlanFeedback, PlanOutput,
                                         PlanState, PlanVehicle)
from mmchat_ros.core.flight.state_machine import (FlightEvent, FlightMode, FlightStateMachine, GuardContext,
                                                  Transition)

__all__ = [
    "ActiveCommand", "CascadedController", "CommandMux", "ControlLimits", "ControlOutput", "Decision",
    "EmergencyStopCommand", "EnvelopeCheck", "EnvelopeConfig", "FlightCore", "FlightCoreConfig", "FlightEvent",
    "FlightGains", "FlightMode", "FlightStateMachine", "FlightStatus", "FollowRequest", "GuardContext",
    "HoverCommand", "LandCommand", "Mixer", "PidGains", "PlanConfig", "PlanExecutor", "PlanFeedback", "PlanOutput",
    "PlanState", "PlanVehicle", "PositionCommand", "SafetyEnvelope", "Setpoint", "Transition",
    "VehicleState", "VelocityCommand", "load_gains",
]
