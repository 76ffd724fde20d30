"""Managed (ROS 2 lifecycle) mmchat_ros nodes: ``MmchatLifecycleNode``, for nodes whose work costs CPU worth saving
when nobody needs it (trackers, recognisers), and its entry point ``run_lifecycle_node``.

A lifecycle node is unconfigured when made (its parameters are declared, nothing else); ``configure`` loads what
is slow to load (models, devices) and makes its publishers and services; ``activate`` starts the work (camera
subscriptions, worker threads, timers); ``deactivate`` stops it, so the node costs no CPU while it keeps its models
for a fast ``activate``; ``cleanup`` releases what ``configure`` made; ``shutdown`` releases everything. The
standard services (``<node>/get_state``, ``<node>/change_state``, ``<node>/get_available_transitions``) take it
from one state to another: ``ros2 lifecycle``, ``mmchat lifecycle`` or the activation policy (nodes/activation.py).
At start the node takes itself to its ``start_state`` parameter (active unless told otherwise), so a graph
launched without a lifecycle manager runs as it always did.

What a subclass writes (docs/architecture.md, "A lifecycle node"):
  * ``configure()``: load models, ``publish_to`` its topics (lifecycle publishers: silent while inactive), make
    services. Everything made here with the node's ``create_*`` lives until cleanup. Raising refuses the
    transition, with the reason logged; at start the node then exits with the error, as a node failing in its
    constructor does.
  * ``activate()``: ``subscribe_to`` the inputs, ``start_worker`` the threads, timers. Everything made here lives
    until deactivate.
  * ``deactivate()`` (optional): a last word after the work stopped (publishers still enabled), e.g. a state saying
    the node is paused.
  * ``release()``: free what ``configure`` loaded (models, devices); runs at cleanup and when the node stops.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifecycle_msgs.msg import State
from rclpy.lifecycle import LifecycleNodeMixin, LifecyclePublisher, TransitionCallbackReturn

from mmchat_ros.nodes.base import MmchatNode, Worker
from mmchat_ros.nodes.common import Param, run_node

# Where a node takes itself right after it is made, by the transitions that lead there.
START_STATES = {"unconfigured": (), "inactive": ("configure",), "active": ("configure", "activate")}

LIFECYCLE_PARAMS = {
    "start_state": Param("active", "lifecycle state taken at start: active (working), inactive (models loaded, "
                                   "waiting for 'activate') or unconfigured (nothing loaded); later `mmchat "
                                   "lifecycle NODE set TRANSITION` or the activation policy moves it"),
}

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class _Scope:
    """What the node made during one phase (configure or activate): undone newest first when the phase ends."""

    def __init__(self):
        self.undo: list[Callable[[], Any]] = []
        self.workers: list[Worker] = []

    def stop_workers(self) -> None:
        while self.workers:
            self.workers.pop().stop()

    def close(self) -> None:
        self.stop_workers()
        while self.undo:
            self.undo.pop()()


class MmchatLifecycleNode(LifecycleNodeMixin, MmchatNode):
    """An MmchatNode (declared parameters, the graph's topics, worker threads stopped before the context goes) that
    is also a ROS 2 lifecycle node: subclasses fill ``configure``, ``activate``, ``release`` (and, rarely,
    ``deactivate``); this class keeps what each phase made and undoes it when the phase ends."""

    _making: _Scope | None = None   # the scope entities made now belong to (configure or activate); rclpy's own
    #                                 publishers, made while the node is made, belong to none

    def __init__(self, name: str, params: dict[str, Param],
                 on_change: Callable[[dict[str, Any]], str | None] | None = None, **node_options):
        MmchatNode.__init__(self, name, params, on_change, **node_options)
        LifecycleNodeMixin.__init__(self)
        if self.p.start_state not in START_STATES:
            raise ValueError(f"start_state '{self.p.start_state}' is not one of {', '.join(START_STATES)}")
        self._configured_scope = _Scope()
        self._active_scope = _Scope()
        self._configured = False
        self._failure: Exception | None = None

    # ------------------------------------------------------------------------------------ for subclasses
    def configure(self) -> None:
        """Load models, make publishers and services (kept until cleanup)."""

    def activate(self) -> None:
        """Subscribe, start workers and timers (kept until deactivate)."""

    def deactivate(self) -> None:
        """After the work stopped, before the publishers go silent."""

    def release(self) -> None:
        """Free what ``configure`` loaded."""

    def stop_refusal(self) -> str | None:
        """Why the node must not stop working now (a driver whose vehicle flies), or None: deactivate and cleanup
        are refused meanwhile, and a shutdown transition leaves the work running (the state machine cannot refuse
        one). Stopping the process is never refused."""
        return None

    @property
    def lifecycle_state(self) -> str:
        """'unconfigured', 'inactive', 'active', 'finalized' (or a transition's label while one runs)."""
        return self._state_machine.current_state[1]

    # ------------------------------------------------------------------ entities made in a phase are its own
    def create_publisher(self, *args, **kwargs):
        if self._making is None:
            return super().create_publisher(*args, **kwargs)
        publisher = super().create_publisher(*args, **kwargs, publisher_class=LifecyclePublisher)
        self.add_managed_entity(publisher)   # enabled on activate, silent while inactive
        return self._own(publisher, self.destroy_lifecycle_publisher)

    def create_subscription(self, *args, **kwargs):
        return self._own(super().create_subscription(*args, **kwargs), self.destroy_subscription)

    def create_timer(self, *args, **kwargs):
        return self._own(super().create_timer(*args, **kwargs), self.destroy_timer)

    def create_service(self, *args, **kwargs):
        return self._own(super().create_service(*args, **kwargs), self.destroy_service)

    def _own(self, entity, destroy: Callable[[Any], Any]):
        """The entity belongs to the phase being entered, if any: destroyed when that phase ends."""
        if self._making is not None:
            self._making.undo.append(lambda: destroy(entity))
        return entity

    def start_worker(self, worker: Worker) -> None:
        """Start a worker thread for the phase being entered (activate): stopped when the node deactivates."""
        if self._making is None:
            raise RuntimeError("start_worker belongs in activate() (or configure()) of a lifecycle node")
        self._making.workers.append(worker)
        worker.start()

    # ------------------------------------------------------------------------------- the transitions
    def _enter(self, scope: _Scope, phase: Callable[[], None], what: str) -> bool:
        """Run a phase; when it raises, undo what it made, log why and keep the exception for go_to_start_state."""
        self._making = scope
        try:
            phase()
            return True
        except Exception as exc:
            self._failure = exc
            scope.close()
            self.get_logger().error(f"{what} failed: {type(exc).__name__}: {exc}")
            return False
        finally:
            self._making = None

    def on_configure(self, state) -> TransitionCallbackReturn:
        if not self._enter(self._configured_scope, self.configure, "configure"):
            return FAILURE
        self._configured = True
        return SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        super().on_activate(state)   # publishers on first: work that starts now may publish at once
        if not self._enter(self._active_scope, self.activate, "activate"):
            super().on_deactivate(state)
            return FAILURE
        self.get_logger().info("active: working")
        return SUCCESS

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        if self._refused("deactivate"):
            return FAILURE
        self._leave_active(state)
        self.get_logger().info("inactive: work stopped")
        return SUCCESS

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        if self._refused("cleanup"):
            return FAILURE
        self._release_all()
        self.get_logger().info("unconfigured: released")
        return SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        if self._refused("shutdown"):
            return FAILURE   # finalized all the same (rcl), but still working until the process stops
        if state.state_id == State.PRIMARY_STATE_ACTIVE:
            self._leave_active(state)
        self._release_all()
        return SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        """A transition raised outside a phase (rclpy turns that into an error): back to unconfigured, clean."""
        self._stop_work()
        self._release_all()
        return SUCCESS

    def _refused(self, transition: str) -> bool:
        reason = self.stop_refusal() if self._configured else None
        if reason:
            self.get_logger().error(f"{transition} refused: {reason}")
        return bool(reason)

    def _stop_work(self) -> None:
        self._active_scope.close()

    def _leave_active(self, state) -> None:
        """The work stops, the node has its last word, then its publishers go silent."""
        self._stop_work()
        self.deactivate()
        super().on_deactivate(state)

    def _release_all(self) -> None:
        self._configured_scope.close()
        if self._configured:
            self._configured = False
            self.release()

    def go_to_start_state(self) -> None:
        """The transitions to ``start_state``; a refused one raises the phase's error (the node cannot start)."""
        for transition in START_STATES[self.p.start_state]:
            trigger = self.trigger_configure if transition == "configure" else self.trigger_activate
            if trigger() != SUCCESS:
                raise self._failure or RuntimeError(f"{transition} refused")
        if self.p.start_state != "active":
            self.get_logger().info(f"{self.lifecycle_state} (start_state): waiting for a lifecycle transition")

    def close(self) -> None:
        """The process stops (SIGINT/SIGTERM or the context's end): workers first, then what configure loaded. No
        transitions: the context may already be going."""
        self._active_scope.stop_workers()
        if self._configured:
            self._configured = False
            self.release()


def run_lifecycle_node(factory: Callable[[], MmchatLifecycleNode], args: list[str] | None = None,
                       **options) -> int:
    """run_node for a lifecycle node: made, taken to its start_state, then spun until SIGINT/SIGTERM."""
    def started() -> MmchatLifecycleNode:
        node = factory()
        node.go_to_start_state()
        return node
    return run_node(started, args, **options)
