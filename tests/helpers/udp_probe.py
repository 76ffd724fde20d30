"""One end of a UDP measurement across a link, run inside a network namespace (no ROS):

  receive PORT SECONDS                      print one JSON line: {sequence number: one-way delay in s} received
  send ADDRESS PORT COUNT INTERVAL_S SIZE   send COUNT datagrams of SIZE bytes, one every INTERVAL_S

Each datagram carries its sequence number and send time (time.monotonic: one clock for all namespaces of a machine),
so the receiver measures one-way delays and which datagrams were lost.
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import time

HEADER = struct.Struct("!Id")


def receive(port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("READY", flush=True)
    delays: dict[int, float] = {}
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        sequence, sent = HEADER.unpack_from(data)
        delays[sequence] = time.monotonic() - sent
    print(json.dumps(delays), flush=True)


def send(address: str, port: int, count: int, interval_s: float, size: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    padding = bytes(max(0, size - HEADER.size))
    next_send = time.monotonic()
    for sequence in range(count):
        sock.sendto(HEADER.pack(sequence, time.monotonic()) + padding, (address, port))
        next_send += interval_s
        time.sleep(max(0.0, next_send - time.monotonic()))


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "receive":
        receive(int(args[0]), float(args[1]))
    else:
        send(args[0], int(args[1]), int(args[2]), float(args[3]), int(args[4]))
