"""--precision: what auto picks on which hardware, and a trained model turned back to float32."""
import keras
import numpy as np
import pytest

from training import precision


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: a CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\nprocessor\t: 1\n")
    return path


@pytest.mark.parametrize("flags, policy", [("avx512f avx512_bf16", "mixed_bfloat16"),
                                           ("amx_bf16 amx_tile", "mixed_bfloat16"), ("avx512f avx512_vnni", "float32")])
def test_auto_on_a_cpu_uses_bfloat16_only_where_the_cpu_computes_it(tmp_path, no_gpu, flags, policy):
    chosen, why = precision.resolve("auto", cpuinfo=_cpuinfo(tmp_path, flags))
    assert chosen == policy and why.startswith("auto: no GPU")


def test_auto_without_cpu_flags_to_read_is_float32(tmp_path, no_gpu):
    assert precision.resolve("auto", cpuinfo=tmp_path / "absent")[0] == "float32"


@pytest.mark.parametrize("capabilities, policy", [([(7, 5)], "mixed_float16"), ([(8, 0), (9, 0)], "mixed_float16"),
                                                  ([(8, 6), (6, 1)], "float32")])
def test_auto_on_gpus_uses_float16_where_every_one_has_tensor_cores(tmp_path, monkeypatch, capabilities, policy):
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: capabilities)
    assert precision.resolve("auto", cpuinfo=_cpuinfo(tmp_path, "avx512_bf16"))[0] == policy


def test_a_named_policy_is_used_as_given(tmp_path, no_gpu):
    assert precision.resolve("float32", cpuinfo=_cpuinfo(tmp_path, "avx512_bf16")) == ("float32", "--precision")
    assert precision.resolve("mixed_float16")[0] == "mixed_float16"


def test_a_model_trained_in_bfloat16_predicts_as_float32_with_its_weights():
    x = np.random.default_rng(0).normal(size=(64, 30)).astype("float32")

    def network():
        inputs = keras.Input(shape=(30,))
        hidden = keras.layers.Dense(40, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(7, activation="softmax", dtype="float32")(hidden))

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = network()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    plain = network()
    plain.set_weights(mixed.get_weights())
    expected = plain.predict(x, verbose=0)
    assert not np.allclose(mixed.predict(x, verbose=0), expected, atol=1e-4)   # bfloat16 keeps 8 bits
    precision.to_float32([mixed])
    assert {layer.dtype_policy.name for layer in mixed.layers} == {"float32"}
    np.testing.assert_allclose(mixed.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert mixed.get_config()["layers"][1]["config"]["dtype"]["config"]["name"] == "float32"   # as saved
