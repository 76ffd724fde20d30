"""A UDP forwarder that impairs what it forwards (core.link_impairment): put it in the path between two machines'
DDS ports to give the link delay, jitter, loss and a bandwidth cap where the kernel has no `tc netem`.

Each route listens on one (address, port) and sends what arrives to one target; a relay's routes share one
ImpairedLink, i.e. one direction of one link (its bandwidth cap and queue are shared by all of them).
"""
from __future__ import annotations

import heapq
import itertools
import random
import selectors
import socket
import threading
import time

from mmchat_ros.core.link_impairment import ImpairedLink, Impairment

Address = tuple[str, int]
MAX_DATAGRAM = 65536


class UdpRelay:
    def __init__(self, routes: list[tuple[Address, Address]], impairment: Impairment, seed: int = 0):
        self.link = ImpairedLink(impairment, random.Random(seed))
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        for listen, target in routes:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(listen)
            sock.setblocking(False)
            self._sockets.append(sock)
            self._selector.register(sock, selectors.EVENT_READ, target)
        self._pending: list[tuple[float, int, socket.socket, bytes, Address]] = []
        self._order = itertools.count()     # keeps the heap from comparing sockets when times tie
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-relay", daemon=True)

    @property
    def addresses(self) -> list[Address]:
        return [sock.getsockname() for sock in self._sockets]

    def start(self) -> "UdpRelay":
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._selector.close()
        for sock in self._sockets:
            sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = 0.05
            if self._pending:
                timeout = min(timeout, max(0.0, self._pending[0][0] - time.monotonic()))
            for key, _ in self._selector.select(timeout):
                self._receive(key.fileobj, key.data)
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                _, _, sock, data, target = heapq.heappop(self._pending)
                try:
                    sock.sendto(data, target)
                except OSError:     # the far side is gone (a partition): the datagram is lost, as on the air
                    pass

    def _receive(self, sock: socket.socket, target: Address) -> None:
        while True:
            try:
                data = sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            deliver_at = self.link.admit(len(data), time.monotonic())
            if deliver_at is not None:
                heapq.heappush(self._pending, (deliver_at, next(self._order), sock, data, target))
