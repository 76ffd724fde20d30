"""An impaired IP link between two Linux network namespaces, transparent to DDS (issue 17): a TUN device in each
namespace, point-to-point on link-local addresses, and this process forwarding the IP packets between them through
core.link_impairment (delay with jitter, random loss, a bandwidth cap with a bounded queue), where the kernel has no
`tc netem`. Every protocol and port crosses it as it would cross a radio link, so DDS needs nothing special: each side
binds to its own address and names the other as its peer (core.rosenv.network_profile).

Nothing leaves the machine: the devices are moved into the two namespaces before they get an address or go up, and a
packet read from one is only ever written to the other. The TUN file descriptors stay with this process when the
devices move; closing them removes the devices. Needs root and /dev/net/tun.

    python -m mmchat_ros.tools.impaired_link NS_A NS_B --addresses 169.254.10.1 169.254.10.2 \\
        --delay-ms 100 --jitter-ms 20 --loss 0.05 --rate-mbps 5      # until Ctrl-C; counters every 5 s
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

from mmchat_ros.core.link_impairment import ImpairedLink, Impairment
from mmchat_ros.tools.link_relay import ImpairedForwarder

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001        # IP packets, no Ethernet header
IFF_NO_PI = 0x1000      # no 4-byte packet-information prefix: a read is exactly one IP packet
MAX_PACKET = 65536


def open_tun(device: str) -> int:
    """A new TUN device named ``device`` in this process's namespace; its non-blocking file descriptor."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def is_ipv4_multicast(packet: bytes) -> bool:
    return len(packet) >= 20 and packet[0] >> 4 == 4 and 224 <= packet[16] <= 239


@dataclass(frozen=True)
class Side:
    name: str           # names the directions in the counters: "<name>_to_<other name>"
    namespace: str
    device: str         # at most 15 characters (IFNAMSIZ)
    address: str        # IPv4, e.g. 169.254.10.1


class TunLink:
    """Two TUN devices, one per namespace, joined through an ImpairedLink in each direction. ``set_impairment``
    changes either direction or both while packets flow (a link that degrades, or a partition: ``Impairment(loss=1)``).
    """

    def __init__(self, a: Side, b: Side, impairment: Impairment = Impairment(), seed: int = 0):
        self.sides = (a, b)
        rng = random.Random(seed)
        self.links = {f"{src.name}_to_{dst.name}": ImpairedLink(impairment, random.Random(rng.random()))
                      for src, dst in ((a, b), (b, a))}
        self.multicast = dict.fromkeys(self.links, 0)
        self._fds: list[int] = []
        self._forwarder = ImpairedForwarder("tun-link")

    def open(self) -> "TunLink":
        try:
            for side in self.sides:
                self._fds.append(open_tun(side.device))
                _ip("link", "set", side.device, "netns", side.namespace)
            for side, other in (self.sides, self.sides[::-1]):
                # IPv4 only, as the DDS profiles: no IPv6 router solicitations or MLD reports on the link.
                subprocess.run(["ip", "netns", "exec", side.namespace, "sysctl", "-qw",
                                f"net.ipv6.conf.{side.device}.disable_ipv6=1"], capture_output=True, timeout=10)
                _ip("-n", side.namespace, "addr", "add", side.address, "peer", f"{other.address}/32",
                    "dev", side.device)
                _ip("-n", side.namespace, "link", "set", side.device, "up")
        except (OSError, subprocess.CalledProcessError):
            self.close()
            raise
        for (fd_in, fd_out), direction in zip(((self._fds[0], self._fds[1]), (self._fds[1], self._fds[0])),
                                              self.links):
            self._forwarder.add_path(fd_in, lambda fd=fd_in, direction=direction: self._read(fd, direction),
                                     self.links[direction], lambda packet, fd=fd_out: os.write(fd, packet))
        self._forwarder.start()
        return self

    def _read(self, fd: int, direction: str) -> bytes:
        packet = os.read(fd, MAX_PACKET)
        if is_ipv4_multicast(packet):
            self.multicast[direction] += 1
        return packet

    def set_impairment(self, impairment: Impairment, direction: str | None = None) -> None:
        for name in [direction] if direction else self.links:
            self.links[name].impairment = impairment

    def counters(self) -> dict[str, dict[str, int]]:
        """Per direction: packets and bytes admitted (delivered, or in flight), lost at random, dropped at the cap's
        full queue, and IPv4 multicast packets sent into the link (0 when discovery is unicast)."""
        return {direction: {"packets": link.admitted, "bytes": link.admitted_bytes, "lost": link.lost,
                            "overflowed": link.overflowed, "multicast": self.multicast[direction]}
                for direction, link in self.links.items()}

    def close(self) -> None:
        """Stops forwarding; closing the descriptors deletes the devices (wherever they are by then)."""
        self._forwarder.close()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("namespaces", nargs=2, metavar="NAMESPACE", help="the two existing network namespaces")
    parser.add_argument("--addresses", nargs=2, default=["169.254.10.1", "169.254.10.2"],
                        help="each side's link-local address (default: %(default)s)")
    parser.add_argument("--devices", nargs=2, default=["mmtun_a", "mmtun_b"], help="TUN device names")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="fraction of packets lost, each direction")
    parser.add_argument("--rate-mbps", type=float, default=None, help="bandwidth cap, each direction")
    parser.add_argument("--queue-ms", type=float, default=200.0, help="at the cap, longest wait before a drop")
    args = parser.parse_args(argv)
    impairment = Impairment(delay_s=args.delay_ms / 1000, jitter_s=args.jitter_ms / 1000, loss=args.loss,
                            rate_bps=args.rate_mbps * 1e6 if args.rate_mbps else None,
                            max_queue_s=args.queue_ms / 1000)
    sides = [Side(name, ns, device, address) for name, ns, device, address
             in zip("ab", args.namespaces, args.devices, args.addresses)]
    link = TunLink(*sides, impairment=impairment).open()
    try:
        while True:
            time.sleep(5.0)
            print(json.dumps(link.counters()), flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        link.close()


if __name__ == "__main__":
    sys.exit(main())
