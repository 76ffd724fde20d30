"""Calls to one running node's services from a temporary participant: what `mmchat param` and `mmchat lifecycle`
share (``ros2 param`` and ``ros2 lifecycle`` do the same through ros2cli)."""
from __future__ import annotations

SERVICE_WAIT_S = 10.0


class NodeServiceClient:
    """A temporary node calling ``<target>/<service>``; ``close`` ends it."""

    def __init__(self, node_name: str, wait_s: float = SERVICE_WAIT_S):
        from mmchat_ros.tools.introspect import _init
        self.rclpy, self.node = _init()
        self.target = node_name if node_name.startswith("/") else f"/{node_name}"
        self.wait_s = wait_s

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()

    def call(self, srv_type, service: str, request):
        client = self.node.create_client(srv_type, f"{self.target}/{service}")
        if not client.wait_for_service(timeout_sec=self.wait_s):
            raise SystemExit(f"node '{self.target}' not found (no {service} service after {self.wait_s:.0f} s)")
        future = client.call_async(request)
        self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=self.wait_s)
        if not future.done():
            raise SystemExit(f"no answer from {self.target}/{service} within {self.wait_s:.0f} s")
        return future.result()
