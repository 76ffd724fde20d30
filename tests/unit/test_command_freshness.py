"""core.command_freshness: a stalled publisher's backlog and commands from a jumped clock are refused."""
from mmchat_ros.core.command_freshness import command_stamp_problem


def test_fresh_stale_future_and_unstamped_commands():
    assert command_stamp_problem(99.8, 100.0, 1.0) == ""
    assert command_stamp_problem(100.5, 100.0, 1.0) == ""          # another clock reading a little ahead
    assert command_stamp_problem(0.0, 100.0, 1.0) == ""            # unstamped: counts from its arrival
    stale = command_stamp_problem(97.0, 100.0, 1.0)
    assert stale.startswith("stale command: stamped 3.00 s ago")
    assert "future" in command_stamp_problem(100.0 + 3600.0, 100.0, 1.0)
    assert command_stamp_problem(float("nan"), 100.0, 1.0) == "command stamp is not a finite number"
    assert command_stamp_problem(100.0 - 3600.0, 100.0, 1.0).startswith("stale")
