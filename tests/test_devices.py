"""Which device draws: auto passes over a GPU this torch cannot use, a named device is
checked to exist, and the demo-world recipes choose as the editor does."""

import pytest


@pytest.fixture
def fake_gpu(monkeypatch):
    """A CUDA device as torch reports one, and no cached choice of auto's before or after."""
    import torch

    import editor.core.devices as devices_module

    def clear():
        devices_module.auto_device.cache_clear()
        devices_module.usable_cuda.cache_clear()

    clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "GeForce GTX 1080")
    yield torch.cuda
    clear()


def test_auto_passes_over_a_gpu_this_torch_has_no_kernels_for(fake_gpu, monkeypatch, caplog):
    from editor.core.devices import pick_device

    monkeypatch.setattr(fake_gpu, "get_device_capability", lambda *a: (6, 1))
    monkeypatch.setattr(fake_gpu, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    assert pick_device("auto").type == "cpu"
    assert "GTX 1080 (sm_61) is not supported" in caplog.text


def test_auto_passes_over_a_gpu_a_test_kernel_fails_on(fake_gpu, monkeypatch):
    from editor.core.devices import pick_device

    # a card the build has kernels for; this machine has no driver, so the kernel fails
    monkeypatch.setattr(fake_gpu, "get_device_capability", lambda *a: (8, 9))
    monkeypatch.setattr(fake_gpu, "get_arch_list", lambda: ["sm_80", "sm_86", "sm_90"])
    assert pick_device("auto").type == "cpu"


def test_a_gpu_whose_driver_cannot_start_is_passed_over_not_a_crash(fake_gpu, monkeypatch):
    # is_available() said yes, then current_device() raised "Found no NVIDIA driver":
    # auto, the device menu and the window's start all failed with a traceback
    import torch

    from editor.core.devices import device_choices, pick_device, resolve_device
    from editor.core.errors import AtelierError

    def no_driver(*args):
        raise RuntimeError("Found no NVIDIA driver on your system.\nPlease check ...")

    for name in ("current_device", "get_device_name", "get_device_capability"):
        monkeypatch.setattr(fake_gpu, name, no_driver)
    choice, device, note = resolve_device("auto")
    assert (choice, device) == ("auto", torch.device("cpu"))
    assert note == "rendering on the CPU: CUDA could not start: Found no NVIDIA driver on " \
        "your system."
    for choice in ("cuda", "cuda:0"):
        with pytest.raises(AtelierError, match=f"device '{choice}' cannot be used: .*Found "
                                               "no NVIDIA driver on your system[.]$"):
            pick_device(choice)
    assert device_choices()[2] == ("cuda:0", "CUDA 0")  # its name unknown, still listed


def test_a_cpu_with_a_number_is_the_cpu():
    import torch

    from editor.core.devices import resolve_device

    assert resolve_device("cpu:5")[:2] == ("cpu", torch.device("cpu"))


def test_compiled_kernels_run_on_the_same_major_version_and_ptx_on_newer_ones():
    from editor.core.devices import _has_kernels_for

    assert _has_kernels_for(89, ["sm_80", "sm_86", "sm_90"])  # sm_86 code on sm_89
    assert not _has_kernels_for(80, ["sm_86", "sm_90"])  # not on an older minor
    assert not _has_kernels_for(61, ["sm_75", "sm_80"])  # a GTX 1080 under a cu13 build
    assert _has_kernels_for(120, ["sm_90", "compute_90"])  # PTX the driver compiles
    assert _has_kernels_for(100, ["sm_100a"])


def test_the_demo_world_recipes_pass_over_a_gpu_as_the_editor_does(fake_gpu, monkeypatch,
                                                                   tmp_path):
    # they chose CUDA whenever torch said it was available, and training then failed on
    # its first kernel ("no kernel image is available") on a card this build cannot run
    import argparse

    import torch

    from editor.toyfaces.training import prepare

    monkeypatch.setattr(fake_gpu, "get_device_capability", lambda *a: (6, 1))
    monkeypatch.setattr(fake_gpu, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    threads = torch.get_num_threads()
    try:
        args = argparse.Namespace(threads=threads, device="auto", out=str(tmp_path),
                                  force=False)
        assert prepare(args, ["generator.safetensors"]) == (tmp_path, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
