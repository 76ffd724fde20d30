"""Headless OpenGL for the simulator's onboard camera: which backend this process renders with (EGL, else OSMesa,
each probed in a throw-away child process) and a minimal MuJoCo offscreen renderer on a context of it. No display
is needed; nothing here knows about the quadrotor."""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import weakref

import mujoco
import numpy as np

__all__ = ["GLUnavailableError", "OffscreenRenderer", "gl_backend"]


class GLUnavailableError(RuntimeError):
    """Neither EGL nor OSMesa can create an OpenGL context in this process."""


_GL_LOCK = threading.Lock()
_GL_CHOICE: str | None = None
_GL_ERRORS: dict[str, str] = {}

_PROBE = r"""
import os, sys
backend = sys.argv[1]
os.environ["MUJOCO_GL"] = backend
os.environ["PYOPENGL_PLATFORM"] = backend
import mujoco
mod = __import__("mujoco." + backend, fromlist=["GLContext"])
ctx = mod.GLContext(32, 32)
ctx.make_current()
m = mujoco.MjModel.from_xml_string(
    '<mujoco><visual><global offwidth="32" offheight="32"/></visual><worldbody><light pos="0 0 2"/>'
    '<geom type="sphere" size="0.5" rgba="1 0 0 1"/><camera name="c" pos="0 -2 0" xyaxes="1 0 0 0 0 1"/>'
    '</worldbody></mujoco>')
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
con = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_100)
mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
scn, cam = mujoco.MjvScene(m, maxgeom=10), mujoco.MjvCamera()
cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, 0
mujoco.mjv_updateScene(m, d, mujoco.MjvOption(), None, cam, mujoco.mjtCatBit.mjCAT_ALL, scn)
rect = mujoco.MjrRect(0, 0, 32, 32)
mujoco.mjr_render(rect, scn, con)
import numpy as np
rgb = np.zeros((32, 32, 3), np.uint8)
mujoco.mjr_readPixels(rgb, None, rect, con)
con.free()
ctx.free()
assert rgb[..., 0].max() > 100, "rendered a blank frame"
print("ok")
"""


def _probe(backend: str) -> str | None:
    """Try backend in a child process (PyOpenGL's platform is fixed per process). None on success, else why."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, backend], env=env, capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"probe failed to run: {exc}"
    if proc.returncode == 0 and "ok" in proc.stdout:
        return None
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return tail[-1] if tail else f"exit status {proc.returncode}"


def gl_backend() -> str:
    """The headless OpenGL backend this process renders with: 'egl' or 'osmesa'.

    MUJOCO_GL=egl|osmesa in the environment is used as given. Otherwise EGL is tried first, then OSMesa (Debian
    package libosmesa6), each in a throw-away child process, because PyOpenGL binds one platform per process and
    a failed EGL import could not be undone. The choice is exported as MUJOCO_GL / PYOPENGL_PLATFORM.
    """
    global _GL_CHOICE
    with _GL_LOCK:
        if _GL_CHOICE is not None:
            return _GL_CHOICE
        requested = os.environ.get("MUJOCO_GL", "").strip().lower()
        bound = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
        if bound in ("egl", "osmesa"):
            candidates = [bound]          # PyOpenGL may already be bound to this platform in this process
        elif requested in ("egl", "osmesa"):
            candidates = [requested]
        else:
            candidates = ["egl", "osmesa"]
        for backend in candidates:
            if len(candidates) > 1:
                why = _probe(backend)
                if why is not None:
                    _GL_ERRORS[backend] = why
                    continue
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            _GL_CHOICE = backend
            return backend
        details = "; ".join(f"{k}: {v}" for k, v in _GL_ERRORS.items()) or "no backend tried"
        raise GLUnavailableError(
            "no headless OpenGL for the simulator camera: EGL and OSMesa both failed "
            f"({details}). Install Mesa's EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri) or OSMesa "
            "(Debian: libosmesa6), or set MUJOCO_GL=egl|osmesa to force one.")


def _gl_context_class():
    backend = gl_backend()
    try:
        if backend == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.osmesa import GLContext
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError, AttributeError from PyOpenGL's loaders
        raise GLUnavailableError(f"cannot load the {backend} OpenGL backend in this process: {exc} "
                                 f"(PYOPENGL_PLATFORM={os.environ.get('PYOPENGL_PLATFORM')!r})") from exc
    return GLContext


_LIVE_RENDERERS: "weakref.WeakSet[OffscreenRenderer]" = weakref.WeakSet()


@atexit.register
def _close_renderers() -> None:
    # Free GL contexts while PyOpenGL is still importable (OSMesa's __del__ fails during interpreter teardown).
    for renderer in list(_LIVE_RENDERERS):
        try:
            renderer.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class OffscreenRenderer:
    """Minimal offscreen renderer on an EGL/OSMesa context (mujoco.Renderer would pick GLFW when MUJOCO_GL was
    unset at `import mujoco`, which has no display here)."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        context_class = _gl_context_class()
        try:
            self._ctx = context_class(width, height)
            self._ctx.make_current()
        except Exception as exc:  # noqa: BLE001 - EGL/OSMesa raise ImportError, RuntimeError or GLError
            raise GLUnavailableError(f"cannot create a {gl_backend()} OpenGL context for the simulator camera: "
                                     f"{exc}") from exc
        self.model = model
        self.width, self.height = width, height
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._buf = np.empty((height, width, 3), np.uint8)
        _LIVE_RENDERERS.add(self)

    def render(self, data: mujoco.MjData, camera: mujoco.MjvCamera, option: mujoco.MjvOption) -> np.ndarray:
        self._ctx.make_current()
        mujoco.mjv_updateScene(self.model, data, option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._con)
        mujoco.mjr_readPixels(self._buf, None, self._rect, self._con)
        return np.ascontiguousarray(self._buf[::-1])      # OpenGL rows run bottom-up

    def close(self) -> None:
        if self._ctx is not None:
            try:
                self._ctx.make_current()
                self._con.free()
            finally:
                self._ctx.free()
                self._ctx = None
