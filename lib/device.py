"""
device.py: where a script runs and in what number format, decided in one place for every script,
and the device's measured peak (the yardstick for MFU).

    device, dtype, ptdtype, autocast = precision("auto", "auto")   # e.g. ("cpu", "bfloat16", ...)
"""
import time

import torch

from lib.configurator import die


def resolve_device(device):
    """'auto' -> the fastest device here: cuda, then Apple's mps, then cpu; a device asked for by
    name must be there."""
    kind = device.split(":")[0]
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        die(f"--device={device}, but this torch sees no CUDA GPU here; use --device=cpu (or auto)")
    if kind == "mps" and not torch.backends.mps.is_available():
        die(f"--device={device}, but this torch has no Apple GPU (mps) here; use --device=cpu (or auto)")
    if kind not in ("cpu", "cuda", "mps"):
        die(f"--device={device} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return device


def resolve_dtype(dtype, device):
    """'auto' -> bfloat16 where the hardware computes it natively (recent GPUs; CPUs with AVX512-BF16
    or AMX, measured 1.2-1.6x over float32), float16 on older GPUs (train.py adds a GradScaler), else float32."""
    if dtype not in ("auto", "float32", "bfloat16", "float16"):
        die(f"--dtype={dtype} is not a training precision; use auto, float32, bfloat16 or float16")
    if dtype != "auto":
        return dtype
    kind = device.split(":")[0]
    if kind == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if kind == "cpu":
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:  # not Linux: no cheap way to know, and emulated bf16 is slower than float32
            flags = ""
        return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
    return "float32"


def precision(device, dtype):
    """The one place a script's device and number format are decided: (device, dtype name, torch
    dtype, autocast context). TF32 matmuls are allowed on CUDA (a 3x speed-up, within bf16's error)."""
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    ptdtype = getattr(torch, dtype)
    return device, dtype, ptdtype, torch.autocast(device.split(":")[0], dtype=ptdtype, enabled=dtype != "float32")


def peak_flops(device, dtype, seconds=1.0):
    """This device's matmul FLOP/s at dtype, measured in about `seconds`: MFU against what the hardware
    really does, not a spec sheet for another chip. Matrices grow from 256 while the time allows (a GPU
    needs big ones to reach its peak); where a dtype is only emulated (float16 on a CPU) one small
    matmul already takes the budget, so the measurement never holds a run up."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    size, best, end = 256, 0.0, time.perf_counter() + seconds
    while True:
        a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
        (a @ b).sum().item()  # warm-up at this size
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 8:
            a @ b
            n += 1
            sync()
        took = time.perf_counter() - t0
        best = max(best, 2 * size ** 3 * n / took)
        if size >= (8192 if device.startswith("cuda") else 2048) or time.perf_counter() + 8 * took > end:
            return best
        size *= 2
