#!/usr/bin/env bash
# One command from a fresh checkout to a working mmchat_ros: venv, ROS 2 Jazzy wheels, our interfaces built into
# the venv, the package with its console scripts, a health check and the simulated demo.
# Idempotent: each step keeps a stamp of its inputs and is skipped when they have not changed.
#   ./setup.sh            everything, then the simulated demo
#   ./setup.sh --no-demo  everything but the demo (CI)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${MMCHAT_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
RUN_DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --no-demo)" >&2; exit 2 ;;
  esac
done

# DDS stays on loopback on these machines (docs/running.md, "DDS on these machines"); the demo below starts real nodes.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1

step() { printf '\n[setup] %s\n' "$*"; }
STAMPS="$VENV/.mmchat-stamps"
# stamp_ok NAME FILES...: true when FILES hash to what the last successful run of step NAME recorded.
stamp_hash() { cat "$@" 2>/dev/null | sha256sum | cut -c1-64; }
stamp_ok() { local name=$1; shift; [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$(stamp_hash "$@")" ]; }
stamp_set() { local name=$1; shift; mkdir -p "$STAMPS"; stamp_hash "$@" > "$STAMPS/$name"; }

# 0. System packages: test media and tools that only Debian ships (opencv-doc videos/images, espeak-ng, sox).
# ignition-tools + libsdformat-dev + sdformat-sdf: `ign sdf -k` validates the Gazebo world (tests/unit/test_gazebo_files.py)
# chromium + chromium-driver: the operator panel's browser test (Playwright drives Debian's chromium, no download)
APT_PACKAGES="cmake g++ opencv-doc espeak-ng sox libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 ignition-tools libsdformat-dev sdformat-sdf chromium chromium-driver"
missing=$(for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  step "Debian packages: $(echo $missing)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
else
  step "Debian packages: present"
fi

# 1. The venv.
if [ ! -x "$VENV/bin/python" ]; then
  step "creating venv at $VENV ($("$PYTHON" --version))"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
fi
PY="$VENV/bin/python"
PIP="$PY -m pip --disable-pip-version-check"

# 2. Pinned Python dependencies: ROS 2 Jazzy wheels, then the rest.
if stamp_ok pip requirements/*.txt; then
  step "Python packages: up to date"
else
  step "Python packages: installing (pinned in requirements/; the first run compiles llama.cpp, ~7 min)"
  $PIP install -q -c requirements/constraints.txt -r requirements/ros-jazzy.txt -r requirements/base.txt
  $PIP install -q --no-deps -c requirements/constraints.txt -r requirements/no-deps.txt
  stamp_set pip requirements/*.txt
fi

# 3. Interfaces: CMake build of msg/ srv/ action/ into the venv, after the wheels' platform fixes.
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
IFACE_INPUTS=(CMakeLists.txt package.xml entry_points.txt msg/* srv/* action/* src/mmchat_ros/__init__.py)
if stamp_ok interfaces "${IFACE_INPUTS[@]}" && "$PY" -c "import mmchat_ros.msg" 2>/dev/null; then
  step "interfaces: up to date"
else
  step "interfaces: building with CMake into $VENV"
  # Fix 2: the wheels' CMake exports name the wheel build machine's Python and numpy include paths.
  py_include=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  np_include=$("$PY" -c "import numpy; print(numpy.get_include())")
  { grep -rl --include='*.cmake' -e '/opt/python/cp3' "$VENV/share" 2>/dev/null || true; } | while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$np_include#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$py_include#g" "$f"
  done
  mkdir -p build
  cmake -S . -B build/venv -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" \
    -DMMCHAT_INSTALL_PYTHON_SOURCES=OFF -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >build/cmake-configure.log 2>&1 \
    || { tail -30 build/cmake-configure.log; echo "setup.sh: CMake configure failed (log: build/cmake-configure.log)" >&2; exit 1; }
  cmake --build build/venv -j"$(nproc)" >build/cmake-build.log 2>&1 \
    || { tail -30 build/cmake-build.log; echo "setup.sh: interface build failed (log: build/cmake-build.log)" >&2; exit 1; }
  cmake --install build/venv >build/cmake-install.log 2>&1
  stamp_set interfaces "${IFACE_INPUTS[@]}"
fi

# 4. The package itself, editable, with its console scripts (mmchat, one per node).
if stamp_ok package setup.py entry_points.txt && [ -x "$VENV/bin/mmchat" ]; then
  step "mmchat_ros package: up to date"
else
  step "mmchat_ros package: installing (editable) with console scripts"
  $PIP install -q --no-deps --no-build-isolation -e .
  stamp_set package setup.py entry_points.txt
fi

# 5. Health check, then the simulated demo.
step "mmchat doctor"
"$VENV/bin/mmchat" doctor
if [ "$RUN_DEMO" = 1 ]; then
  step "simulated demo (mmchat demo)"
  "$VENV/bin/mmchat" demo
fi
step "done. Activate with: source $VENV/bin/activate"
