"""Device and precision choice at the boundary: validated device strings, amp by compute capability, cache keys."""

from __future__ import annotations

import pytest
import torch

from aclecg import runtime
from aclecg.errors import ConfigError


def test_device_strings_are_validated_at_the_boundary(monkeypatch):
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        runtime.resolve_device("gpu0")
    with pytest.raises(ConfigError, match="unsupported device"):
        runtime.resolve_device("meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"only 2 GPU\(s\) are visible"):
        runtime.resolve_device("cuda:7")


def test_cuda_request_without_cuda_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        runtime.resolve_device("cuda:0")


@pytest.mark.parametrize(
    "capability, expected",
    [((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16), ((6, 1), torch.float16)],
)
def test_amp_auto_follows_the_chosen_devices_compute_capability(monkeypatch, capability, expected):
    seen = []
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: seen.append(i) or capability)
    assert runtime.resolve_amp("auto", torch.device("cuda", 1)) == expected
    assert seen == [1]  # the chosen device, not the current one


def test_amp_on_cpu_is_explicit():
    cpu = torch.device("cpu")
    assert runtime.resolve_amp("auto", cpu) is None
    assert runtime.resolve_amp("off", cpu) is None
    assert runtime.resolve_amp("bf16", cpu) == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        runtime.resolve_amp("fp16", cpu)


def test_precision_tags_separate_cpu_fp32_from_gpu_results():
    assert runtime.precision_tag(torch.device("cpu"), None) == ""
    assert runtime.precision_tag(torch.device("cpu"), torch.bfloat16) == "cpu-bf16"
    assert runtime.precision_tag(torch.device("cuda", 0), torch.bfloat16) == "cuda-bf16"
    assert runtime.precision_tag(torch.device("cuda", 0), torch.float16) == "cuda-fp16"
    assert runtime.precision_tag(torch.device("cuda", 0), None) == "cuda-fp32"


def test_embedding_cache_and_sweep_keys_differ_by_device_and_precision(monkeypatch):
    from aclecg import evaluation

    assert evaluation.precision_key(torch.device("cpu")) == ""  # CPU float32: keys as they always were
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: (8, 0))
    assert evaluation.precision_key(torch.device("cuda", 0)) == "cuda-bf16"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: (7, 0))
    assert evaluation.precision_key(torch.device("cuda", 0)) == "cuda-fp16"
    assert runtime.training_dtype(torch.device("cuda", 0)) is None  # no fp16 training without loss scaling


def test_pretraining_auto_amp_on_cpu_is_bf16_only_where_native(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("ACLECG_CPU_BF16", "1")
    assert runtime.cpu_native_bf16()
    assert runtime.resolve_amp("auto", cpu, cpu_auto_bf16=True) == torch.bfloat16
    assert runtime.resolve_amp("auto", cpu) is None  # evaluation keeps CPU float32 (and its cache keys)
    assert runtime.resolve_amp("off", cpu, cpu_auto_bf16=True) is None
    monkeypatch.setenv("ACLECG_CPU_BF16", "0")
    assert runtime.resolve_amp("auto", cpu, cpu_auto_bf16=True) is None


def test_cpu_bf16_detection_reads_the_cpu_flags(monkeypatch, tmp_path):
    monkeypatch.delenv("ACLECG_CPU_BF16", raising=False)
    flags = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    expected = any(f" {flag}" in flags for flag in ("avx512_bf16", "amx_bf16"))
    assert runtime.cpu_native_bf16() == expected
