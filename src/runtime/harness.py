"""pyexecd's in-sandbox harness: runs one script, calls main(), encodes the outcome.

It is imported once in the zygote (so a request pays nothing for it) and runs in each
freshly forked sandbox. It returns a *result frame* to the C side, which writes it on the
sandbox's private result channel, never on stdout:

    <header JSON object>\n[<result JSON value>]

The header has "status" ("ok", "syntax_error", "missing_main", "runtime_error",
"not_json_serializable", "memory_error", "result_too_large") and, for errors, "error" and
the fields of that status. For "ok" the encoded result follows the newline. The supervisor
treats every byte of the frame as hostile: a script can write to the channel itself, so
the frame is validated there, not trusted.

Everything the harness needs is bound at import time, before any script runs.
"""

import collections as _collections
import datetime as _datetime
import linecache as _linecache
import math as _math
import random as _random  # noqa: F401 - its at-fork hook reseeds every sandbox
import sys as _sys
import traceback as _traceback
import types as _types
from _json import encode_basestring as _c_encode_basestring
from _json import make_encoder as _c_make_encoder

import _pyexecd_figures as _figures
import _pyexecd_files as _files

SCRIPT_FILENAME = "<script>"
MODULE_NAME = "__script__"
MAX_DEPTH = 64
# Integers beyond this cannot be represented by most JSON consumers (or by the
# supervisor's validator); json.dumps would write them, we refuse them instead.
MAX_INT_DIGITS = 300

_isfinite = _math.isfinite
_RenderError = _figures.RenderError
_FIGURE_KEYS = frozenset(("figures", "figures_truncated"))


class _Unencodable(Exception):
    def __init__(self, what, path):
        super().__init__(what)
        self.what = what
        self.path = path


def preload(names):
    """Imports the preload list in the zygote. Returns nothing; raises on failure."""
    for name in names:
        if name == "matplotlib":
            _preload_matplotlib()
        elif name:
            __import__(name)
    np = _sys.modules.get("numpy")
    if np is not None:
        # Touch the code paths every request uses so their pages are resident in the
        # zygote and shared, not faulted in by every child.
        np.asarray([1.0, 2.0]).tolist()
    pd = _sys.modules.get("pandas")
    if pd is not None:
        df = pd.DataFrame({"a": [1, 2, 2], "b": [1.0, 2.0, 3.0]})
        df.groupby("a").sum().to_dict()
    _json_text({"warm": [1, 2.5, None, "x"]})


def _preload_matplotlib():
    """pyplot (its backend is Agg: MPLBACKEND, in the zygote's environment) and what a first
    figure loads. matplotlib wants a writable configuration directory, where it writes its
    font cache on import: a temporary one (the zygote's /tmp is its own tmpfs while it
    preloads), removed again, so that no sandbox sees it; the font list stays in memory."""
    import os
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="pyexecd-matplotlib-")
    os.environ["MPLCONFIGDIR"] = path
    try:
        __import__("matplotlib.pyplot")
        _figures.warm()
    finally:
        del os.environ["MPLCONFIGDIR"]
        shutil.rmtree(path, ignore_errors=True)


def reseed():
    """Called in every sandbox (unless the C side reseeds numpy itself, see
    numpy_rng_probe): the zygote's random state must not be shared by requests. `random`
    needs nothing here: it registered its own at-fork hook (random.seed()), which
    PyOS_AfterFork_Child runs."""
    np = _sys.modules.get("numpy")
    if np is not None:
        np.random.seed()


# numpy's global generator, probed for the C side's reseed: key[i] = i * PROBE_MUL mod 2**32.
PROBE_MUL = 2654435761
PROBE_POS = 321


def numpy_rng_probe():
    """Sets numpy's global legacy generator to a known MT19937 state and returns its bit
    generator's capsule, so that the C side can find the state, check it is where and what
    it expects, and from then on reseed each sandbox with one getrandom() into it:
    np.random.seed() costs 0.85 ms and 166 page faults in a fresh child (measured), most
    of a warm sandbox's reseed. None when numpy is not loaded or differs; then reseed()
    is used. The caller reseeds properly afterwards (which also drops any cached
    gaussian)."""
    np = _sys.modules.get("numpy")
    if np is None:
        return None
    try:
        rs = np.random.mtrand._rand
        bg = rs._bit_generator
        if type(bg).__name__ != "MT19937":
            return None
        key = (np.arange(624, dtype=np.uint64) * PROBE_MUL % (1 << 32)).astype(np.uint32)
        rs.set_state(("MT19937", key, PROBE_POS, 0, 0.0))
        return bg.capsule
    except Exception:  # noqa: BLE001 - any surprise means: use the slow path
        return None


_WARMUP = b"""
def main():
    print("", end="")
    values = {"n": [1, 2.5, None, True, "x"], "t": (1, 2)}
    return values
"""


# The job's input (stdin, args, kwargs, files) and how to collect its files, set by
# prepare() before the script runs; None when the request had none of them.
_job = None


def prepare(job_input):
    """Called before the script runs (before the sandbox acknowledges its job) with the
    job's input, a JSON object from the service. Writes the input files into the working
    directory and makes stdin readable. Returns 0, or the errno of what failed."""
    global _job
    try:
        _job = _files.Job(job_input)
    except OSError as e:
        return e.errno or 5  # EIO
    return 0


def warmup():
    """Runs a throw-away script in a warm sandbox before its request arrives: compile,
    exec, main(), encoding and their first-touch page faults are then paid off the
    request path. Leaves no trace a script could see (no module, no cache entry, no
    output)."""
    run(_WARMUP, 1 << 20)
    _sys.modules.pop(MODULE_NAME, None)
    _linecache.cache.pop(SCRIPT_FILENAME, None)


def _text(s):
    """An exact str `s` that is guaranteed to encode as UTF-8 (lone surrogates become
    U+FFFD)."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


# The result is encoded from what its values are, never from what they say about
# themselves. The script's objects can override any method (a str subclass its
# __contains__, __str__ or encode(), a list subclass its __iter__, a dict subclass its
# items()) and claim any __class__ (which isinstance() believes), so every value is
# dispatched on type() and read through the built-in type's own slots, bound here:
# str.__str__ of a str subclass is an exact copy of its characters, whatever the subclass
# defines. That is what json.dumps encodes too. No code of the script runs while a value
# is read, except the documented conversions of library types (isoformat(),
# ndarray.tolist(), DataFrame.to_dict()), whose results are read the same way.
_exact_str = str.__str__
_exact_int = int.__int__
_exact_float = float.__float__
_float_repr = float.__repr__
_list_copy = list.copy
_tuple_iter = tuple.__iter__
_dict_items = dict.items
_odict_items = _collections.OrderedDict.items  # its own order, not the dict's
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_INT_BOUND = 10**MAX_INT_DIGITS
_INF = float("inf")
_NOT_SCALAR = object()


def _name_text(v):
    return _exact_str(v) if issubclass(type(v), str) else ""


def _type_name(obj):
    """The name of obj's type, read from the type (no metaclass or __module__ object of
    the script's is asked)."""
    t = type(obj)
    name = _name_text(_type_qualname(t)) or "?"
    mod = _name_text(_type_module(t))
    return name if mod in ("builtins", "") else f"{mod}.{name}"


def _check_int(v, path):
    """An exact int `v`, refused when most JSON consumers cannot represent it."""
    if abs(v) >= _INT_BOUND:
        raise _Unencodable(f"integer with more than {MAX_INT_DIGITS} digits", path)
    return v


def _isoformat(obj, path):
    text = obj.isoformat()
    if not issubclass(type(text), str):
        raise _Unencodable(f"{_type_name(obj)}.isoformat() returned {_type_name(text)}", path)
    return _exact_str(text)


def _scalar(obj, path):
    """obj as an exact None, bool, int, float or str (numpy scalars are numbers, datetimes
    ISO-8601 strings, NaT None), or _NOT_SCALAR."""
    t = type(obj)
    if obj is None or t is bool or t is str or t is int or t is float:
        return obj
    if issubclass(t, str):
        return _exact_str(obj)
    if issubclass(t, int):
        return _exact_int(obj)
    if issubclass(t, float):
        return _exact_float(obj)
    np = _sys.modules.get("numpy")
    if np is not None and issubclass(t, np.generic):
        if issubclass(t, (np.bool_, np.integer)):
            return np.generic.item(obj)
        if issubclass(t, np.floating):
            return float(np.generic.item(obj))  # a long double's item() is itself
        if issubclass(t, np.datetime64):
            return None if np.isnat(obj) else _exact_str(np.datetime_as_string(obj))
        return _NOT_SCALAR
    pd = _sys.modules.get("pandas")
    if pd is not None and obj is pd.NaT:
        return None
    if issubclass(t, (_datetime.datetime, _datetime.date)):
        return _isoformat(obj, path)
    return _NOT_SCALAR


def _float_key(v):
    """The key json.dumps makes of an exact float."""
    if v != v:
        return "NaN"
    if v == _INF:
        return "Infinity"
    if v == -_INF:
        return "-Infinity"
    return _float_repr(v)


def _key(k, path):
    """A dict key as the string json.dumps makes of it (keys that are str, int, float,
    bool or None), plus numpy scalars and datetimes."""
    v = _scalar(k, path)
    t = type(v)
    if t is str:
        if "\x00" in v:
            # Valid JSON, but most JSON libraries (the service's validator among them)
            # store keys as C strings and would cut or refuse them.
            raise _Unencodable("dict key containing a NUL character", path)
        return _text(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(_check_int(v, path))
    if t is float:
        return _float_key(v)
    raise _Unencodable(f"dict key of type {_type_name(k)}", path)


def _convert(obj, path, depth, active):
    """Returns a tree of exact JSON types (dict/list/str/int/float/bool/None)."""
    t = type(obj)
    if t is str:
        return _text(obj)
    if t is int:
        return _check_int(obj, path)
    if t is float:
        return obj if _isfinite(obj) else None
    if obj is None or t is bool:
        return obj
    if depth >= MAX_DEPTH:
        raise _Unencodable(f"nesting deeper than {MAX_DEPTH} levels", path)

    if issubclass(t, (list, tuple, dict)):
        if id(obj) in active:
            raise _Unencodable("circular reference", path)
        active.add(id(obj))
        try:
            if issubclass(t, dict):
                items_of = _odict_items if issubclass(t, _collections.OrderedDict) else _dict_items
                # A snapshot: converting a value may run the script's code (an
                # isoformat() of its own), which may change the dict.
                items = list(items_of(obj))
                out = {}
                for k, v in items:
                    key = _key(k, path)
                    out[key] = _convert(v, f"{path}[{key!r}]", depth + 1, active)
                return out
            values = _list_copy(obj) if issubclass(t, list) else _tuple_iter(obj)
            return [_convert(v, f"{path}[{i}]", depth + 1, active) for i, v in enumerate(values)]
        finally:
            active.discard(id(obj))

    value = _scalar(obj, path)
    if value is not _NOT_SCALAR:
        return _convert(value, path, depth, active)
    # Library types convert through their own methods; a subclass may override them, and
    # what they return is read like any other value, one level deeper (so a conversion
    # that returns its own object ends at the depth limit).
    np = _sys.modules.get("numpy")
    if np is not None and issubclass(t, np.ndarray):
        if obj.dtype.kind not in "biufUMO":
            raise _Unencodable(f"numpy array of dtype {obj.dtype} is not JSON serializable", path)
        if obj.dtype.kind == "M":
            obj = np.datetime_as_string(obj)
        return _convert(obj.tolist(), path, depth + 1, active)
    pd = _sys.modules.get("pandas")
    if pd is not None:
        if issubclass(t, (pd.DataFrame, pd.Series)):
            return _convert(obj.to_dict(), path, depth + 1, active)
        if issubclass(t, pd.Index):
            return _convert(obj.tolist(), path, depth + 1, active)
    raise _Unencodable(f"{_type_name(obj)} is not JSON serializable", path)


def _no_default(obj):
    raise TypeError(f"{_type_name(obj)} is not JSON serializable")


# json.dumps(..., ensure_ascii=False, allow_nan=False, separators=(",", ":")), without
# json.dumps: it looks its JSONEncoder class and that class's methods up at each call, and
# the script can have replaced them. The C encoder never calls back into Python for the
# exact types _convert returns. No circular check: _convert builds a tree.
_encoder = _c_make_encoder(
    None, _no_default, _c_encode_basestring, None, ":", ",", False, False, False
)


def _json_text(plain):
    return "".join(_encoder(plain, 0))


def _frame(status, result_text=None, **fields):
    header = {"status": status}
    header.update(fields)
    head = _json_text(header).encode("utf-8")
    if result_text is None:
        return head + b"\n"
    return head + b"\n" + result_text


def _error_message(exc):
    try:
        text = "".join(_traceback.format_exception_only(type(exc), exc)).strip()
    except BaseException:  # noqa: B036 - a hostile __str__ must not break the harness
        text = _type_name(exc)
    return _text(text or _type_name(exc))


def _script_traceback(exc):
    """The traceback from the first frame of the script on: the harness's own frames are
    not the user's business."""
    try:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != SCRIPT_FILENAME:
            tb = tb.tb_next
        te = _traceback.TracebackException(type(exc), exc, tb, compact=True)
        return _text("".join(te.format()))
    except BaseException:  # noqa: B036
        return _error_message(exc)


def _raised_in_script(exc):
    """True if a frame of the script is in the exception's traceback."""
    try:
        tb = BaseException.__traceback__.__get__(exc)
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
                return True
            tb = tb.tb_next
    except BaseException:  # noqa: B036
        pass
    return False


def _failure(exc, job=None):
    # type(), not isinstance(): an exception can claim to be a MemoryError (__class__).
    if issubclass(type(exc), MemoryError):
        return _frame("memory_error", error="Memory limit exceeded", detail=_error_message(exc))
    return _frame("runtime_error", error=_error_message(exc), traceback=_script_traceback(exc),
                  **_files_of(job))


def _files_of(job):
    """The header fields of the files the script left, when the request asked for them."""
    if job is None:
        return {}
    try:
        return job.collect()
    except BaseException:  # noqa: B036 - MemoryError, or the script's threads broke anything
        return {"files_truncated": True}


def _flush_stdio():
    for stream in (_sys.stdout, _sys.stderr, _sys.__stdout__, _sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: B036 - the script may have closed or replaced them
            pass


def run(source, result_limit):
    """Runs one script (bytes, UTF-8) and returns the result frame (bytes)."""
    try:
        return _run(source, result_limit)
    finally:
        _flush_stdio()


def _run(source, result_limit):
    try:
        text = source.decode("utf-8")
        code = compile(text, SCRIPT_FILENAME, "exec", dont_inherit=True)
    except SyntaxError as e:
        line = e.lineno or 0
        col = e.offset or 0
        return _frame(
            "syntax_error",
            error=_text(f"{type(e).__name__}: {e.msg} (line {line}, column {col})"),
            line=line,
            column=col,
        )
    except MemoryError as e:
        return _failure(e)
    except BaseException as e:  # noqa: B036 - e.g. RecursionError on absurd nesting
        return _frame("syntax_error", error=_error_message(e), line=0, column=0)

    lines = text.splitlines(True)
    _linecache.cache[SCRIPT_FILENAME] = (len(text), None, lines, SCRIPT_FILENAME)
    module = _types.ModuleType(MODULE_NAME)
    module.__file__ = SCRIPT_FILENAME
    # Registered so that pickle (multiprocessing) finds the script's functions.
    _sys.modules[MODULE_NAME] = module

    job = _job
    try:
        exec(code, module.__dict__)
        main = module.__dict__.get("main")
        if not callable(main):
            return _frame("missing_main", error="The script does not define a callable main()")
        value = main() if job is None else main(*job.args, **job.kwargs)
    except BaseException as e:  # noqa: B036 - SystemExit, KeyboardInterrupt included
        return _failure(e, job)

    try:
        plain = _convert(value, "result", 0, set())
        body = _json_text(plain).encode("utf-8")
    except _Unencodable as e:
        return _frame(
            "not_json_serializable",
            error=_text(f"main() returned a value JSON cannot carry: {e.what} at {e.path}"),
            **_files_of(job),
        )
    except MemoryError as e:
        return _failure(e)
    except BaseException as e:  # noqa: B036 - anything a conversion raised
        if _raised_in_script(e):
            return _failure(e, job)  # e.g. from an isoformat() of the script's own
        return _frame(
            "not_json_serializable",
            error=_text(f"main() returned a value JSON cannot carry: {_error_message(e)}"),
            **_files_of(job),
        )
    if len(body) > result_limit:
        return _frame(
            "result_too_large",
            error=f"The result of main() is {len(body)} bytes encoded, over the limit of {result_limit}",
        )
    try:
        figures = _figures.collect(result_limit - len(body))
        # The script can replace collect() (or anything it calls): only these two keys,
        # whatever their values (the service checks those), may reach the frame.
        if type(figures) is not dict or not figures.keys() <= _FIGURE_KEYS:
            raise TypeError("the figures were collected as something other than a dict of "
                            + "/".join(sorted(_FIGURE_KEYS)))
    except BaseException as e:  # noqa: B036 - anything drawing or a replaced collect() raised
        render = type(e) is _RenderError
        cause = e.cause if render else e
        if issubclass(type(cause), MemoryError):
            return _failure(cause)
        what = (f"Drawing figure {e.index}, left open by main()," if render
                else "Collecting the figures left open by main()")
        return _frame(
            "runtime_error",
            error=_text(f"{what} failed: {_error_message(cause)}"),
            traceback=_script_traceback(cause),
            **_files_of(job),
        )
    return _frame("ok", body, **figures, **_files_of(job))
