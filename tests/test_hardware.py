import pytest
import torch

from utils.runtime.hardware import Hardware, check_fits, choose_dtype, detect_hardware, preflight
from utils.runtime.profiles import PROFILES, Profile, get_profile


@pytest.mark.parametrize(
    "capability, dtype",
    [
        ((7, 5), torch.float16),
        ((7, 0), torch.float16),
        ((8, 0), torch.bfloat16),
        ((8, 9), torch.bfloat16),
        ((9, 0), torch.bfloat16),
    ],
)
def test_gpu_dtype_follows_compute_capability(capability, dtype):
    assert choose_dtype("cuda", capability) == dtype


def test_cpu_is_always_fp32():
    assert choose_dtype("cpu") == torch.float32
    assert choose_dtype("cpu", (9, 0)) == torch.float32


def test_cuda_without_capability_is_an_error():
    with pytest.raises(ValueError, match="compute capability"):
        choose_dtype("cuda")


def _hw(device="cpu", ram=24.0, vram=None):
    return Hardware(
        device,
        "Tesla T4" if device == "cuda" else None,
        (7, 5) if device == "cuda" else None,
        torch.float16 if device == "cuda" else torch.float32,
        ram,
        vram,
        2,
    )


def test_gpu_profile_on_cpu_fails_with_advice():
    with pytest.raises(RuntimeError, match="Change runtime type"):
        check_fits(PROFILES["t4"], _hw())


def test_too_little_memory_fails_with_numbers():
    with pytest.raises(
        RuntimeError, match=r"needs about 38 GB of GPU memory; this machine has 15.0 GB"
    ):
        check_fits(PROFILES["a100"], _hw("cuda", vram=15.0))
    with pytest.raises(RuntimeError, match="RAM"):
        check_fits(PROFILES["cpu"], _hw(ram=1.0))


def test_t4_fits_t4():
    check_fits(PROFILES["t4"], _hw("cuda", vram=16.0))


def test_preflight_on_this_machine_prints_everything(capsys):
    hw = preflight("cpu")
    out = capsys.readouterr().out
    for word in ("device=cpu", "dtype=float32", "RAM=", "CPU threads=", "[preflight] OK"):
        assert word in out
    assert hw == detect_hardware()


def test_unknown_profile_and_bad_fields():
    with pytest.raises(ValueError, match="Unknown profile 'h100'"):
        get_profile("h100")
    with pytest.raises(ValueError, match="device"):
        Profile("x", "m", "tpu", False, 1.0, 128, "")
    with pytest.raises(ValueError, match="min_memory_gb"):
        Profile("x", "m", "cpu", False, 0, 128, "")


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("FTKIT_PROFILE", "A100")
    assert get_profile().name == "a100"
