"""Forwarders that impair what they forward (core.link_impairment), where the kernel has no `tc netem`:

- ImpairedForwarder: the thread both use. It reads packets from its paths' sources, holds each until the path's
  ImpairedLink says it arrives (or drops it), then hands it to the path's sink.
- UdpRelay: UDP routes, each listening on one (address, port) and sending what arrives to one target; for a
  protocol whose peers can be pointed at the relay (not DDS: Fast DDS wants fixed ports to announce another address,
  so tools/impaired_link.py impairs DDS at the IP level instead).
"""
from __future__ import annotations

import heapq
import itertools
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable

from mmchat_ros.core.link_impairment import ImpairedLink, Impairment

Address = tuple[str, int]
MAX_DATAGRAM = 65536


class ImpairedForwarder:
    def __init__(self, name: str = "link-relay"):
        self._selector = selectors.DefaultSelector()
        self._pending: list[tuple[float, int, Callable[[bytes], object], bytes]] = []
        self._order = itertools.count()     # keeps the heap from comparing sinks when times tie
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def add_path(self, source, read: Callable[[], bytes], link: ImpairedLink, sink: Callable[[bytes], object]) -> None:
        """``source`` (a socket or file descriptor, non-blocking) is readable: ``read()`` returns one packet, or
        raises BlockingIOError when there is none left; each packet goes through ``link`` to ``sink``."""
        self._selector.register(source, selectors.EVENT_READ, (read, link, sink))

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._selector.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = 0.05
            if self._pending:
                timeout = min(timeout, max(0.0, self._pending[0][0] - time.monotonic()))
            for key, _ in self._selector.select(timeout):
                self._receive(*key.data)
            now = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                _, _, sink, data = heapq.heappop(self._pending)
                try:
                    sink(data)
                except OSError:     # the far side is gone (a partition, a device down): lost, as on the air
                    pass

    def _receive(self, read: Callable[[], bytes], link: ImpairedLink, sink: Callable[[bytes], object]) -> None:
        while True:
            try:
                data = read()
            except BlockingIOError:
                return
            deliver_at = link.admit(len(data), time.monotonic())
            if deliver_at is not None:
                heapq.heappush(self._pending, (deliver_at, next(self._order), sink, data))


class UdpRelay:
    """A relay's routes share one ImpairedLink, i.e. one direction of one link (its bandwidth cap and queue are shared
    by all of them)."""

    def __init__(self, routes: list[tuple[Address, Address]], impairment: Impairment, seed: int = 0):
        self.link = ImpairedLink(impairment, random.Random(seed))
        self._forwarder = ImpairedForwarder("udp-relay")
        self._sockets: list[socket.socket] = []
        for listen, target in routes:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(listen)
            sock.setblocking(False)
            self._sockets.append(sock)
            self._forwarder.add_path(sock, lambda sock=sock: sock.recv(MAX_DATAGRAM), self.link,
                                     lambda data, sock=sock, target=target: sock.sendto(data, target))

    @property
    def addresses(self) -> list[Address]:
        return [sock.getsockname() for sock in self._sockets]

    def start(self) -> "UdpRelay":
        self._forwarder.start()
        return self

    def close(self) -> None:
        self._forwarder.close()
        for sock in self._sockets:
            sock.close()
