#!/usr/bin/env bash
# The whole test suite: unit, integration (real node processes over DDS) and simulation-in-the-loop tests.
#   ./test.sh                 everything (what CI runs)
#   ./test.sh -m "not slow"   the quick part while developing; any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1
export ROS_LOG_DIR="${ROS_LOG_DIR:-$(mktemp -d -t mmchat-ros-log-XXXX)}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
exec "${MMCHAT_VENV:-.venv}/bin/python" -m pytest "$@"
