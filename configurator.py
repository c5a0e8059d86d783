"""
configurator.py: the `--key=value` and config-file overrides that every script shares.

A script defines its settings as plain module globals, then calls `configure(globals())`.
Each argument is either a config file (a Python file of `key = value` lines, e.g. config/cpu.py)
or `--key=value`; later arguments win. Values are parsed as Python literals where they are one
(`--dropout=0.1`, `--compile=False`), else kept as strings (`--dataset=synthetic`).
"""
import ast
import difflib
import sys


def die(message):
    """Stop with one line on stderr naming the fix: bad input should never end in a traceback."""
    raise SystemExit(f"error: {message}")


def _parse(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _check(settings, key, value, where):
    if key not in settings:
        hint = difflib.get_close_matches(key, settings, n=1)
        die(f"unknown setting '{key}' in {where}" + (f"; did you mean '{hint[0]}'?" if hint else
            f"; known settings: {', '.join(sorted(settings))}"))
    default = settings[key]
    ok = (default is None or type(value) is type(default)
          or (type(default) is float and type(value) is int)  # --learning_rate=1 means 1.0
          or (default in ("auto",) and isinstance(value, bool)))  # 'auto' settings also take True/False
    if not ok:
        die(f"{where} sets {key}={value!r}, but {key} must be of type {type(default).__name__} (default {default!r})")
    return float(value) if type(default) is float else value


def configure(namespace, argv=None):
    """Apply overrides from argv (default sys.argv[1:]) to the simple-typed globals in `namespace`.
    Returns the resulting settings as a dict, e.g. to store in a checkpoint."""
    settings = {k: v for k, v in namespace.items() if not k.startswith("_")
                and isinstance(v, (bool, int, float, str, type(None)))}
    for arg in sys.argv[1:] if argv is None else argv:
        if arg.startswith("--"):
            key, eq, text = arg[2:].partition("=")
            if not eq:
                die(f"'{arg}' has no value; write --{key}=VALUE")
            updates = {key: (_parse(text), f"'{arg}'")}
        else:
            try:
                source = open(arg).read()
            except OSError:
                die(f"config file '{arg}' not found; pass a path such as config/cpu.py, or --key=value")
            file_vars = {}
            exec(compile(source, arg, "exec"), {}, file_vars)
            updates = {k: (v, arg) for k, v in file_vars.items() if not k.startswith("_")}
        for key, (value, where) in updates.items():
            settings[key] = namespace[key] = _check(settings, key, value, where)
    return settings


def resolve_device(device):
    """'auto' -> the fastest device here: cuda, then Apple's mps, then cpu."""
    if device != "auto":
        return device
    import torch  # here, not at the top: prepare.py configures itself without needing torch
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def resolve_dtype(dtype, device):
    """'auto' -> bfloat16 where the hardware computes it natively (recent GPUs; CPUs with AVX512-BF16
    or AMX, measured 1.2-1.6x over float32), float16 on older GPUs (train.py adds a GradScaler), else float32."""
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
