"""mmchat_ros: fly a drone or drive a robot with face, hands and voice over ROS 2.

The ROS interfaces generated from msg/, srv/ and action/ are installed as the subpackages ``mmchat_ros.msg``,
``.srv`` and ``.action`` of this same package. When the sources run from a development checkout (``pip -e``),
the generated part lives in the venv's site-packages and this ``__path__`` extension joins the two halves.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
