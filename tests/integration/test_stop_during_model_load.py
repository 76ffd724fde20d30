"""Ctrl-C while a node is still loading its model: the node stops cleanly (exit 0, no traceback) at every moment of
the load. A thread left inside a native model load (CTranslate2, torch) when the interpreter finalizes aborts the
process ('terminate called without an active exception', exit -6), so the stop must wait for the load."""
import signal
import time

import pytest

from tests.helpers.processes import python_cmd

pytestmark = pytest.mark.slow

SIGNAL_AFTER_S = (0.0, 0.3, 0.8, 1.5)   # after the node says it is loading (the load takes seconds)


@pytest.mark.parametrize("module, loading, ready", [
    ("mmchat_ros.nodes.asr", "loading ASR model", "asr ready"),
])
def test_sigint_during_the_model_load_exits_cleanly(spawn, module, loading, ready):
    during_load = 0
    for delay in SIGNAL_AFTER_S:
        node = spawn(python_cmd(module), name=f"{module.rsplit('.', 1)[1]}-{delay}")
        node.wait_for_line(loading, timeout=60)
        time.sleep(delay)
        during_load += ready not in node.output
        node.signal(signal.SIGINT)
        started = time.monotonic()
        node.proc.wait(timeout=60)
        output = node.output
        assert node.proc.returncode == 0, f"SIGINT {delay} s into the load: exit {node.proc.returncode}\n{output}"
        assert "Traceback" not in output and "terminate called" not in output, output
        print(f"SIGINT {delay} s into the load: exit 0 {time.monotonic() - started:.1f} s later")
    assert during_load >= 2, "the load ended before most signals: the test did not test a stop during the load"
