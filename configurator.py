"""
configurator.py: what every script shares about settings, devices and failing well.

A script defines its settings as plain module globals, then calls `configure(globals(), RULES)`.
Each argument is either a config file (a Python file of `key = value` lines, e.g. config/train_cpu.py)
or `--key=value`; later arguments win. Values are parsed as Python literals where they are one
(`--dropout=0.1`, `--compile=False`); a text setting keeps the text as typed (`--out_dir=2024`).
RULES maps a setting to the range it must be in; a value outside it stops with one line.
"""
import ast
import difflib
import glob
import os
import sys


def die(message):
    """Stop with one line on stderr naming the fix: bad input should never end in a traceback."""
    raise SystemExit(f"error: {message}")


# Ranges for RULES: (test, what the value must be)
POSITIVE = (lambda v: v >= 1, "at least 1")
COUNT = (lambda v: v >= 0, "0 or more")
FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")
POSITIVE_NUMBER = (lambda v: 0 < v < float("inf"), "a number above 0")  # nan fails every comparison


def one_of(*choices):
    return (lambda v: v in choices, "one of " + ", ".join(map(repr, choices)))


def _parse(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _read_config(path):
    try:
        source = open(path, encoding="utf-8").read()
    except OSError:
        found = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "*.py")))
        names = ", ".join(os.path.join("config", os.path.basename(f)) for f in found)
        die(f"config file '{path}' not found; pass one of {names}, or --key=value")
    except UnicodeDecodeError:
        die(f"config file '{path}' is not UTF-8 text; save it as UTF-8")
    values = {}
    try:
        exec(compile(source, path, "exec"), {}, values)
    except SyntaxError as e:
        die(f"config file '{path}' line {e.lineno}: {e.msg}; it must hold Python lines like n_layer = 2")
    except Exception as e:  # noqa: BLE001 - any error in the user's file is theirs to fix, in one line
        die(f"config file '{path}' failed: {type(e).__name__}: {e}")
    return {k: v for k, v in values.items() if not k.startswith("_")}


def _overrides(argv):
    """[(key, value, where)] from config files and --key=value arguments, in order."""
    out = []
    for arg in argv:
        if arg.startswith("--"):
            key, eq, text = arg[2:].partition("=")
            if not eq:
                die(f"'{arg}' has no value; write --{key}=VALUE")
            out.append((key, text, f"'{arg}'"))
        else:
            out += [(k, v, arg) for k, v in _read_config(arg).items()]
    return out


def given(argv=None):
    """The settings the command line (or a config file on it) set, whatever their values."""
    return {key for key, _, _ in _overrides(sys.argv[1:] if argv is None else argv)}


def configure(namespace, rules=None, argv=None):
    """Apply overrides from argv (default sys.argv[1:]) to the simple-typed globals in `namespace`,
    then check `rules` ({name: (test, what it must be)}). Returns the settings as a dict, e.g. to
    store in a checkpoint."""
    defaults = {k: v for k, v in namespace.items() if not k.startswith("_") and not k.isupper()
                and isinstance(v, (bool, int, float, str, type(None)))}
    settings = dict(defaults)
    for key, value, where in _overrides(sys.argv[1:] if argv is None else argv):
        if key not in defaults:
            hint = difflib.get_close_matches(key, defaults, n=1)
            die(f"unknown setting '{key}' in {where}" + (f"; did you mean '{hint[0]}'?" if hint else
                f"; known settings: {', '.join(sorted(defaults))}"))
        default = defaults[key]
        if where.startswith("'--"):  # typed text: a literal where it is one, but a text setting keeps the text
            value = value if type(default) is str else _parse(value)
        ok = (default is None or type(value) is type(default)
              or (type(default) is float and type(value) is int)  # --learning_rate=1 means 1.0
              or (default == "auto" and isinstance(value, bool)))  # 'auto' settings also take True/False
        if not ok:
            hint = "; put text in quotes in a config file" if type(default) is str else ""
            die(f"{where} sets {key}={value!r}, but {key} must be of type {type(default).__name__} "
                f"(default {default!r}){hint}")
        settings[key] = namespace[key] = float(value) if type(default) is float else value
    for key, (test, what) in (rules or {}).items():
        try:
            ok = test(settings[key])
        except TypeError:
            ok = False
        if not ok:
            die(f"{key}={settings[key]!r} is out of range: it must be {what}")
    return settings


def resolve_device(device):
    """'auto' -> the fastest device here: cuda, then Apple's mps, then cpu; a device asked for by
    name must be there."""
    import torch  # here, not at the top: prepare.py configures itself without needing torch
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
    import torch
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
    import torch
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
    import time
    import torch
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


def atomic_write(path, write, mode="w"):
    """write(f) into path + '.tmp', then rename it onto path: a kill mid-write leaves the old file
    whole, never a half one. A full disk or a folder that cannot be written stops with one line,
    and the .tmp goes too."""
    tmp = path + ".tmp"
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            result = write(f)
        os.replace(tmp, path)
        return result
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        die(f"cannot write {path} ({e.strerror or e}); free some disk space or choose a writable folder")
