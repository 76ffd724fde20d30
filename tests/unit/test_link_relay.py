"""The impairment relay delays, drops and caps as told: the pure link model (core.link_impairment) and the UDP
forwarder that applies it (tools/link_relay.py) on loopback sockets. The TUN link between network namespaces
(tools/impaired_link.py) is tested in tests/integration/test_impaired_link.py."""
import random
import socket
import time

import pytest

from mmchat_ros.core.link_impairment import ImpairedLink, Impairment
from mmchat_ros.tools.impaired_link import is_ipv4_multicast
from mmchat_ros.tools.link_relay import UdpRelay


def test_delay_and_jitter_bound_every_delivery():
    link = ImpairedLink(Impairment(delay_s=0.1, jitter_s=0.02), random.Random(1))
    arrivals = [link.admit(100, now=float(i)) - i for i in range(1000)]
    assert all(0.08 <= delay <= 0.12 for delay in arrivals)
    assert max(arrivals) - min(arrivals) > 0.03      # the jitter is used, not just allowed


def test_loss_drops_the_asked_fraction():
    link = ImpairedLink(Impairment(loss=0.05), random.Random(2))
    delivered = [link.admit(100, now=0.0) for _ in range(10000)]
    assert link.dropped == delivered.count(None)
    assert 0.04 < link.dropped / 10000 < 0.06


def test_rate_cap_spaces_packets_and_drops_beyond_the_queue():
    link = ImpairedLink(Impairment(rate_bps=1_000_000, max_queue_s=0.05), random.Random(3))
    times = [link.admit(1250, now=0.0) for _ in range(100)]   # 1250 B = 10 ms at 1 Mbit/s, all arriving at once
    sent = [t for t in times if t is not None]
    assert sent[:3] == pytest.approx([0.01, 0.02, 0.03])
    assert len(sent) == 6 and link.dropped == 94           # 50 ms of queue: the first 6 fit, the burst's rest is lost
    assert link.overflowed == 94 and link.lost == 0 and link.admitted_bytes == 6 * 1250
    assert link.admit(1250, now=1.0) == pytest.approx(1.01)  # an idle link sends at once again


def test_a_link_takes_a_new_impairment_while_in_use():
    link = ImpairedLink(Impairment(), random.Random(5))
    assert link.admit(100, now=0.0) == 0.0
    link.impairment = Impairment(loss=1.0)                 # a partition
    assert link.admit(100, now=1.0) is None and link.lost == 1


def test_ipv4_multicast_is_told_apart_by_destination():
    header = bytearray(20)
    header[0] = 0x45
    header[16:20] = bytes([239, 255, 0, 1])                # DDS's default discovery group
    assert is_ipv4_multicast(bytes(header))
    header[16:20] = bytes([169, 254, 10, 2])
    assert not is_ipv4_multicast(bytes(header))


@pytest.mark.parametrize("bad", [dict(loss=1.5), dict(delay_s=0.01, jitter_s=0.02), dict(rate_bps=0)])
def test_nonsense_is_refused(bad):
    with pytest.raises(ValueError):
        Impairment(**bad)


def test_udp_relay_forwards_with_delay_and_loss():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(1.0)
    relay = UdpRelay([(("127.0.0.1", 0), receiver.getsockname())], Impairment(delay_s=0.1, loss=0.2), seed=4).start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sent_at = {}
        for i in range(50):
            sent_at[i] = time.monotonic()
            sender.sendto(str(i).encode(), relay.addresses[0])
            time.sleep(0.002)
        delays = {}
        try:
            while len(delays) < relay.link.admitted:
                data = receiver.recv(100)
                delays[int(data)] = time.monotonic() - sent_at[int(data)]
        except socket.timeout:
            pass
    finally:
        relay.close()
        sender.close()
        receiver.close()
    assert relay.link.admitted + relay.link.dropped == 50 and 3 <= relay.link.dropped <= 20
    assert len(delays) == relay.link.admitted             # everything admitted arrives, nothing else
    assert all(0.095 <= d < 0.3 for d in delays.values()), sorted(delays.values())
