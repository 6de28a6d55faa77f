"""The GPU check at the start of an attempt."""
import pytest

from training.cloud.gpu import GpuUnavailableError, check_gpu, has_gpu


@pytest.mark.parametrize("instance_type, gpu", [("g5.xlarge", True), ("g4dn.2xlarge", True), ("p3.2xlarge", True),
                                                ("c5.large", False), ("m7g.large", False), (None, False)])
def test_has_gpu(instance_type, gpu):
    assert has_gpu(instance_type) is gpu


def test_gpu_type_without_tensorflow_gpu_fails_clearly():
    lines = []
    with pytest.raises(GpuUnavailableError, match="g5.xlarge has a GPU but TensorFlow sees none"):
        check_gpu("g5.xlarge", lines.append, smi=lambda: "NVIDIA A10G", visible=lambda: [])
    assert any("NVIDIA A10G" in line for line in lines)


def test_gpu_seen_and_cpu_instance_pass():
    lines = []
    assert check_gpu("g5.xlarge", lines.append, smi=lambda: "A10G", visible=lambda: ["/physical_device:GPU:0"])
    assert check_gpu("c5.large", lines.append, smi=lambda: pytest.fail("no nvidia-smi on CPU types"),
                     visible=lambda: []) == []
    assert lines[-1] == "TensorFlow GPUs: none"
