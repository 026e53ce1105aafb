"""Which device draws: the user's choice ("auto", "cpu", "cuda", "cuda:N") checked to exist
and to run this torch build's kernels, and the list of choices the window's menu offers.
Shared by the engine, the command line and the demo-world recipes (which stand on
editor.core alone).
"""

from __future__ import annotations

import functools
import logging
import re

import torch

from .errors import AtelierError, short_reason

log = logging.getLogger(__name__)


def pick_device(preferred: str | None = None) -> torch.device:
    """The device named ("cpu", "cuda", "cuda:1"; None or "auto": CUDA if it can run this
    torch build's kernels, see auto_device), checked to exist here: AtelierError otherwise."""
    if not preferred or preferred == "auto":
        return auto_device()[0]
    try:
        device = torch.device(preferred)
    except (RuntimeError, ValueError):
        raise AtelierError(f"unknown device {preferred!r}; use auto, cpu, cuda or cuda:N") \
            from None
    if device.type not in ("cpu", "cuda"):
        raise AtelierError(f"device {preferred!r} is not supported; use auto, cpu, cuda or "
                           "cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise AtelierError(f"device {preferred!r} asked for, but no CUDA device is "
                               "available")
        if device.index is not None and device.index >= count:
            raise AtelierError(f"device {preferred!r} asked for, but there are only {count} "
                               "CUDA devices")
        device, reason = usable_cuda(device.index)
        if device is None:
            raise AtelierError(f"device {preferred!r} cannot be used: {reason}")
    return device


@functools.cache
def auto_device() -> tuple[torch.device, str | None]:
    """CUDA if present and usable, else the CPU, with why a GPU present was passed over.
    torch.cuda.is_available() is true for a GPU the wheel has no kernels for (an older
    card under a newer CUDA build), and then every render fails with "no kernel image is
    available". Checked once a process (the probe starts CUDA); the reason is logged."""
    if not torch.cuda.is_available():
        return torch.device("cpu"), None
    device, reason = usable_cuda(None)
    if device is not None:
        return device, None
    reason = f"rendering on the CPU: {reason}"
    log.warning(reason)
    return torch.device("cpu"), reason


@functools.cache
def usable_cuda(index: int | None) -> tuple[torch.device | None, str | None]:
    """(CUDA device `index`, None), the current one for None, where it runs this torch
    build's kernels; else (None, why not). Asked once a process per device: the probe
    starts CUDA, which is what fails with a broken driver (is_available() said yes)."""
    try:
        device = torch.device("cuda", torch.cuda.current_device() if index is None else index)
    except (RuntimeError, AssertionError) as e:
        return None, f"CUDA could not start: {short_reason(e)}"
    reason = _cuda_unusable(device)
    return (device, None) if reason is None else (None, reason)


def _cuda_unusable(device: torch.device) -> str | None:
    """Why this torch build cannot run kernels on `device`, or None."""
    try:
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        arch_list = torch.cuda.get_arch_list()
        if arch_list and not _has_kernels_for(10 * major + minor, arch_list):
            return (f"{name} (sm_{major}{minor}) is not supported by this PyTorch build "
                    f"(it has kernels for {' '.join(arch_list)})")
        # what the arch list does not tell: a driver too old, a card in a bad state
        torch.zeros(1, device=device).add_(1).item()
    except (RuntimeError, AssertionError) as e:
        return f"a test kernel failed on {device}: {short_reason(e)}"
    return None


def _has_kernels_for(capability: int, arch_list: list[str]) -> bool:
    """Whether compiled code for sm_XY runs on a device of `capability` (10 * major +
    minor): a binary for the same major and an older or equal minor, or PTX ("compute_XY")
    for an older or equal capability, which the driver compiles."""
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)[a-z]?", arch)
        if match is None:
            continue
        code = int(match[2])
        if code <= capability and (match[1] == "compute" or code // 10 == capability // 10):
            return True
    return False


def resolve_device(choice: str) -> tuple[str, torch.device, str | None]:
    """A user's device choice ("auto", "cpu", "cuda", "cuda:N") as (the choice as the
    window's menu names it, the device, why auto passed a GPU over or None); AtelierError
    for a device that is not here."""
    if not choice or choice == "auto":
        return ("auto", *auto_device())
    device = pick_device(choice)  # "cuda": the current device, by number as the menu has it
    if device.type == "cpu":  # "cpu:3" is the one CPU
        device = torch.device("cpu")
    return str(device), device, None


def device_choices() -> list[tuple[str, str]]:
    """(choice, label) for each device a user may pick: auto, the CPU, each CUDA device."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [("auto", "Auto"), ("cpu", "CPU"), *(
        (f"cuda:{i}", f"CUDA {i}" + (f": {name}" if (name := cuda_name(i)) else ""))
        for i in range(count))]


def cuda_name(device: torch.device | int) -> str | None:
    try:
        return torch.cuda.get_device_name(device)
    except (RuntimeError, AssertionError):  # a driver that does not answer
        log.debug("no name for %s", device)
        return None
