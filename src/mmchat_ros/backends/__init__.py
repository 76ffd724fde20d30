"""Real implementations of each capability (hands, faces, detector, VAD, ASR, TTS, LLM, vehicle) behind small interfaces."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path | None:
    """Where an installed package's files are, found without importing it (model packages print or load on
    import); None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
