"""
configurator.py: the settings every script shares, and how a script fails well.

A script defines its settings as plain module globals, then calls `configure(globals(), RULES)`
right after them, at the top.
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
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        found = sorted(glob.glob(os.path.join(root, "config", "*.py")))
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
    store in a checkpoint. The command line belongs to the script being run: a script imported as a
    module by another (a test, bench.py, a worker process) keeps its defaults."""
    if argv is None and namespace.get("__name__") != "__main__":
        argv = []
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
            auto_bool = default == "auto" and value in ("True", "False")  # 'auto' settings also take True/False
            value = _parse(value) if type(default) is not str or auto_bool else value
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
