"""POST /execute: request validation, every documented outcome code, the
result encoding and the environment a script runs in."""

import datetime
import json

import pytest

from .conftest import (DEFAULT_MAX_BODY, LIMITS, TRIVIAL_SCRIPT, assert_error,
                       assert_ok, assert_still_serving, run_ok, traceback_files)

# -- request validation --------------------------------------------------------

NOT_JSON_BODIES = {
    "not-json": b"this is not json",
    "empty": b"",
    "truncated": b'{"script": "def main():\\n    return 1"',
    "trailing-garbage": b'{"script": "def main():\\n    return 1"} x',
    "invalid-utf8": b'{"script": "def main():\\n    return \'\xff\'"}',
    "nan-token": b'{"script": "def main():\\n    return 1", "timeout": NaN}',
}


@pytest.mark.parametrize("body", NOT_JSON_BODIES.values(), ids=list(NOT_JSON_BODIES))
def test_body_not_json(server, body):
    assert_error(server.post(body), 400, "INVALID_REQUEST")


@pytest.mark.parametrize("body", [[], ["def main(): return 1"], "def main(): return 1", 42, None, True],
                         ids=["empty-array", "array", "string", "number", "null", "bool"])
def test_body_not_an_object(server, body):
    assert_error(server.post(body), 400, "INVALID_REQUEST")


BAD_SCRIPTS = {
    "missing": {},
    "number": {"script": 5},
    "null": {"script": None},
    "list": {"script": ["def main():", "    return 1"]},
    "object": {"script": {"code": "def main(): return 1"}},
    "empty": {"script": ""},
    "nul-byte": {"script": "def main():\n    return 1\n\x00"},
}


@pytest.mark.parametrize("body", BAD_SCRIPTS.values(), ids=list(BAD_SCRIPTS))
def test_bad_script_field(server, body):
    assert_error(server.post(body), 400, "INVALID_REQUEST")


def test_unknown_field(server):
    resp = server.execute(TRIVIAL_SCRIPT, language="python")
    assert_error(resp, 400, "INVALID_REQUEST")


BAD_LIMITS = {
    "timeout-zero": {"timeout": 0},
    "timeout-negative": {"timeout": -1},
    "timeout-string": {"timeout": "5"},
    "timeout-bool": {"timeout": True},
    "timeout-list": {"timeout": [5]},
    "timeout-above-max": {"timeout": 10 ** 9},
    "memory-zero": {"memory_mb": 0},
    "memory-negative": {"memory_mb": -256},
    "memory-string": {"memory_mb": "256"},
    "memory-fraction": {"memory_mb": 255.5},
    "memory-bool": {"memory_mb": True},
    "memory-above-max": {"memory_mb": 10 ** 9},
}


@pytest.mark.parametrize("fields", BAD_LIMITS.values(), ids=list(BAD_LIMITS))
def test_bad_limit_field(server, fields):
    assert_error(server.execute(TRIVIAL_SCRIPT, **fields), 400, "INVALID_REQUEST")


def test_timeout_above_the_server_max(limited_server):
    resp = limited_server.execute(TRIVIAL_SCRIPT, timeout=LIMITS["timeout"] + 1)
    assert_error(resp, 400, "INVALID_REQUEST")


@pytest.mark.parametrize("fields", [{"timeout": 4.5}, {"timeout": 5}, {"memory_mb": 256},
                                    {"timeout": 5, "memory_mb": 256}],
                         ids=["fractional-timeout", "int-timeout", "memory", "both"])
def test_valid_lower_limits_are_accepted(server, fields):
    body = run_ok(server, TRIVIAL_SCRIPT, **fields)
    assert body["result"] == {"alive": True}


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "Application/JSON",
])
def test_json_content_type_variants_accepted(server, content_type):
    resp = server.post({"script": TRIVIAL_SCRIPT}, content_type=content_type)
    assert assert_ok(resp)["result"] == {"alive": True}


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/jsonx", "text/json", "",
])
def test_unsupported_media_type(server, content_type):
    resp = server.post({"script": TRIVIAL_SCRIPT}, content_type=content_type)
    assert_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_body_over_default_max_is_rejected(server):
    body = {"script": TRIVIAL_SCRIPT + "#" * DEFAULT_MAX_BODY}
    assert_error(server.post(body), 413, "PAYLOAD_TOO_LARGE")
    assert_still_serving(server)


def test_body_just_under_default_max_is_accepted(server):
    padding = "#" * (DEFAULT_MAX_BODY - 1024)
    body = run_ok(server, TRIVIAL_SCRIPT + padding + "\n")
    assert body["result"] == {"alive": True}


def test_body_over_configured_max_is_rejected(limited_server):
    body = {"script": TRIVIAL_SCRIPT + "#" * LIMITS["max_body"]}
    assert_error(limited_server.post(body), 413, "PAYLOAD_TOO_LARGE")
    assert_still_serving(limited_server)


def test_chunked_body_over_configured_max_is_rejected(limited_server):
    body = {"script": TRIVIAL_SCRIPT + "#" * LIMITS["max_body"]}
    assert_error(limited_server.post(body, chunked=True), 413, "PAYLOAD_TOO_LARGE")


def test_body_under_configured_max_is_accepted(limited_server):
    script = TRIVIAL_SCRIPT + "#" * (LIMITS["max_body"] - 200) + "\n"
    body = run_ok(limited_server, script)
    assert body["result"] == {"alive": True}


def test_chunked_request_body(server):
    resp = server.post({"script": "def main():\n    return 'chunked'\n"}, chunked=True)
    assert assert_ok(resp)["result"] == "chunked"


# -- SYNTAX_ERROR ----------------------------------------------------------------


@pytest.mark.parametrize("script,line", [
    ("def main():\n    return 1\n\nx = = 2\n", 4),
    ("def main(:\n    return 1\n", 1),
    ("def main():\nreturn 1\n", 2),  # IndentationError is a SyntaxError
    ("def main():\n    return (1,\n", 2),
])
def test_syntax_error(server, script, line):
    body = assert_error(server.execute(script), 400, "SYNTAX_ERROR")
    for key in ("line", "column"):
        assert type(body.get(key)) is int, body
    assert body["line"] == line, body
    assert str(line) in body["error"], body


def test_syntax_error_does_not_run_anything(server):
    body = assert_error(server.execute("print('ran')\ndef main(:\n    pass\n"), 400, "SYNTAX_ERROR")
    assert "ran" not in body.get("stdout", "")


def test_syntax_error_raised_at_run_time_is_a_runtime_error(server):
    script = "def main():\n    compile('x = = 1', 'inner', 'exec')\n"
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert "SyntaxError" in body["error"], body


# -- MISSING_MAIN ----------------------------------------------------------------


@pytest.mark.parametrize("script", [
    "x = 1\n",
    "main = 5\n",
    "main = 'main'\n",
    "def main():\n    return 1\ndel main\n",
    "# only a comment\n",
], ids=["no-main", "int-main", "str-main", "deleted-main", "comment-only"])
def test_missing_main(server, script):
    assert_error(server.execute(script), 400, "MISSING_MAIN", ran=True)


def test_missing_main_keeps_output(server):
    script = "import sys\nprint('module out')\nsys.stderr.write('module err\\n')\n"
    body = assert_error(server.execute(script), 400, "MISSING_MAIN", ran=True)
    assert body["stdout"] == "module out\n"
    assert "module err" in body["stderr"]


@pytest.mark.parametrize("script", [
    "main = lambda: 7\n",
    "class _M:\n    def __call__(self):\n        return 7\nmain = _M()\n",
], ids=["lambda", "callable-object"])
def test_any_callable_main(server, script):
    assert run_ok(server, script)["result"] == 7


# -- RUNTIME_ERROR ---------------------------------------------------------------


def assert_script_traceback(body, *expected_lines):
    tb = body.get("traceback")
    assert isinstance(tb, str) and tb, body
    files = traceback_files(tb)
    assert files and files[0] == "<script>", f"first frame is not the script's:\n{tb}"
    for expected in expected_lines:
        assert expected in tb, tb
    return tb


def test_runtime_error_in_main(server):
    body = assert_error(server.execute("def main():\n    return 1 / 0\n"),
                        422, "RUNTIME_ERROR", ran=True)
    assert body["error"] == "ZeroDivisionError: division by zero"
    assert_script_traceback(body, 'File "<script>", line 2, in main',
                            "ZeroDivisionError: division by zero")


def test_runtime_error_in_module_body(server):
    script = "x = 1\nraise ValueError('boom')\ndef main():\n    return 1\n"
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert body["error"] == "ValueError: boom"
    assert_script_traceback(body, 'File "<script>", line 2, in <module>', "ValueError: boom")


def test_runtime_error_through_nested_calls(server):
    script = ("def helper(d):\n    return d['missing']\n"
              "def main():\n    return helper({})\n")
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert body["error"] == "KeyError: 'missing'"
    tb = assert_script_traceback(body, 'line 4, in main', 'line 2, in helper')
    assert tb.index("in main") < tb.index("in helper"), tb


def test_runtime_error_inside_library_code(server):
    script = "import json\ndef main():\n    return json.loads('{')\n"
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert "JSONDecodeError" in body["error"], body
    assert_script_traceback(body, 'File "<script>", line 3, in main', "JSONDecodeError")


def test_runtime_error_custom_exception(server):
    script = ("class QuotaExceeded(Exception):\n    pass\n"
              "def main():\n    raise QuotaExceeded('too many')\n")
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert "QuotaExceeded" in body["error"] and "too many" in body["error"], body


def test_runtime_error_keeps_output(server):
    script = ("import sys\ndef main():\n    print('before')\n"
              "    sys.stderr.write('warned\\n')\n    raise RuntimeError('after')\n")
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert body["stdout"] == "before\n"
    assert "warned" in body["stderr"]


def test_main_that_needs_arguments(server):
    body = assert_error(server.execute("def main(x):\n    return x\n"), 422, "RUNTIME_ERROR", ran=True)
    assert body["error"].startswith("TypeError"), body


def test_stdin_is_empty(server):
    body = assert_error(server.execute("def main():\n    return input()\n"),
                        422, "RUNTIME_ERROR", ran=True)
    assert "EOFError" in body["error"], body
    assert run_ok(server, "import sys\ndef main():\n    return sys.stdin.read()\n")["result"] == ""


# -- NOT_JSON_SERIALIZABLE ---------------------------------------------------------

UNSERIALIZABLE = {
    "set": "set([1, 2, 3])",
    "frozenset": "frozenset({1})",
    "bytes": "b'abc'",
    "bytearray": "bytearray(b'abc')",
    "complex": "complex(1, 2)",
    "object": "object()",
    "function": "main",
    "module": "__import__('os')",
    "set-in-dict": "{'a': [1, {2}]}",
    "tuple-key": "{(1, 2): 'x'}",
    "circular-list": "(lambda l: (l.append(l), l)[1])([])",
    "circular-dict": "(lambda d: (d.__setitem__('self', d), d)[1])({})",
    "numpy-complex": "__import__('numpy').complex128(1 + 2j)",
    "too-deep": "(lambda: [x := [], [x := [x] for _ in range(200)]][-1] and x)()",
    "very-deep": "(lambda: [x := [], [x := [x] for _ in range(100000)]][-1] and x)()",
}


@pytest.mark.parametrize("expr", UNSERIALIZABLE.values(), ids=list(UNSERIALIZABLE))
def test_not_json_serializable(server, expr):
    script = f"def main():\n    print('ran')\n    return {expr}\n"
    body = assert_error(server.execute(script), 422, "NOT_JSON_SERIALIZABLE", ran=True)
    assert body["stdout"] == "ran\n"


def test_moderate_nesting_is_fine(server):
    script = "def main():\n    x = 0\n    for _ in range(32):\n        x = [x]\n    return x\n"
    expected = 0
    for _ in range(32):
        expected = [expected]
    assert run_ok(server, script)["result"] == expected


# -- TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT, CRASHED ------------------------------------


def test_request_timeout(server):
    script = "import sys\ndef main():\n    print('started', flush=True)\n    while True:\n        pass\n"
    body = assert_error(server.execute(script, timeout=1), 422, "TIMEOUT", ran=True)
    assert "started" in body["stdout"]
    assert_still_serving(server)


def test_server_timeout_applies_without_request_timeout(limited_server):
    script = "import time\ndef main():\n    time.sleep(3600)\n"
    assert_error(limited_server.execute(script), 422, "TIMEOUT", ran=True)
    assert_still_serving(limited_server)


def test_timeout_in_module_body(server):
    assert_error(server.execute("while True:\n    pass\n", timeout=1), 422, "TIMEOUT", ran=True)


def test_memory_limit(server):
    script = "def main():\n    blob = b'x' * (2 * 1024 ** 3)\n    return len(blob)\n"
    body = assert_error(server.execute(script, memory_mb=256), 422, "MEMORY_LIMIT")
    assert body["error"] == "Memory limit exceeded"
    assert_still_serving(server)


def test_small_allocation_under_lowered_memory_limit(server):
    script = "def main():\n    blob = b'x' * (16 * 1024 ** 2)\n    return len(blob)\n"
    assert run_ok(server, script, memory_mb=256)["result"] == 16 * 1024 ** 2


def test_memory_error_raised_by_script(server):
    body = assert_error(server.execute("def main():\n    raise MemoryError()\n"),
                        422, "MEMORY_LIMIT")
    assert body["error"] == "Memory limit exceeded"


def test_exception_claiming_to_be_a_memory_error_is_a_runtime_error(server):
    # isinstance() believes __class__; the harness goes by the exception's real type.
    script = ("class Fake(Exception):\n"
              "    __class__ = property(lambda self: MemoryError)\n"
              "def main():\n    raise Fake('not out of memory')\n")
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert body["error"] == "__script__.Fake: not out of memory", body


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_limit(limited_server, stream):
    limit = LIMITS["output_limit"]
    script = f"import sys\ndef main():\n    sys.{stream}.write('y' * {limit * 3})\n    return 1\n"
    body = assert_error(limited_server.execute(script), 422, "OUTPUT_LIMIT", ran=True)
    assert body.get("truncated") is True, body
    assert 0 < len(body[stream].encode("utf-8")) <= limit, len(body[stream])
    assert set(body[stream]) == {"y"}
    assert_still_serving(limited_server)


def test_output_at_the_limit_is_fine(limited_server):
    limit = LIMITS["output_limit"]
    script = f"import sys\ndef main():\n    sys.stdout.write('z' * {limit})\n    return 1\n"
    body = run_ok(limited_server, script)
    assert body["stdout"] == "z" * limit
    assert "truncated" not in body or body["truncated"] is False


def test_output_limit_cuts_inside_a_multibyte_character(limited_server):
    limit = LIMITS["output_limit"]
    script = f"def main():\n    print('x' + '\u00e9' * {limit})\n"
    body = assert_error(limited_server.execute(script), 422, "OUTPUT_LIMIT", ran=True)
    assert body["truncated"] is True
    assert len(body["stdout"].encode("utf-8")) <= limit
    assert body["stdout"].startswith("x\u00e9\u00e9")


def test_large_output_under_the_default_limit(server):
    size = 512 * 1024  # several pipe buffers
    script = f"import sys\ndef main():\n    sys.stdout.write('o' * {size})\n    sys.stderr.write('e' * {size})\n    return 2\n"
    body = run_ok(server, script)
    assert body["result"] == 2
    assert body["stdout"] == "o" * size
    assert body["stderr"] == "e" * size


@pytest.mark.parametrize("script,signames", [
    ("import ctypes\ndef main():\n    return ctypes.string_at(0)\n", {"SIGSEGV"}),
    # The script is PID 1 of its pid namespace: the kernel drops the SIGABRT that abort()
    # sends itself, and glibc's fallback then faults (documented in README/THREAT-MODEL).
    ("import os\ndef main():\n    os.abort()\n", {"SIGABRT", "SIGSEGV"}),
], ids=["segfault", "abort"])
def test_crash_by_signal(server, script, signames):
    body = assert_error(server.execute(script), 422, "CRASHED")
    assert body.get("signal") in signames, body
    assert body["signal"] in body["error"], body
    assert_still_serving(server)


# -- result encoding ----------------------------------------------------------------

PLAIN_RESULTS = {
    "none": ("None", None),
    "true": ("True", True),
    "zero": ("0", 0),
    "negative": ("-17", -17),
    "big-int": ("2 ** 70", 2 ** 70),
    "float": ("0.1", 0.1),
    "huge-float": ("1e300", 1e300),
    "string": ("'plain'", "plain"),
    "unicode": ("'h\u00e9llo \u2603 \U0001F600'", "h\u00e9llo \u2603 \U0001F600"),
    "escapes": ("'q\"uote\\\\back\\nline\\ttab\\x1f'", 'q"uote\\back\nline\ttab\x1f'),
    "nul-in-string": ("'a\\x00b'", "a\x00b"),
    "tuple": ("(1, (2, 3))", [1, [2, 3]]),
    "empty-dict": ("{}", {}),
    "empty-list": ("[]", []),
    "nested": ("{'a': [1, {'b': None}], 'c': {'d': 1.5}}", {"a": [1, {"b": None}], "c": {"d": 1.5}}),
    "non-str-keys": ("{1: 'a', 2.5: 'b', False: 'c', None: 'd'}",
                     {"1": "a", "2.5": "b", "false": "c", "null": "d"}),
    "nan": ("float('nan')", None),
    "infinities": ("[float('inf'), -float('inf'), 1.0, float('nan')]", [None, None, 1.0, None]),
    "nan-in-dict": ("{'x': float('nan')}", {"x": None}),
}


def test_nul_in_dict_key_is_refused(server):
    # Valid JSON, but most consumers (jansson, C-string keyed maps) cannot carry it: the
    # contract refuses it rather than deliver a key that gets cut.
    body = assert_error(server.execute("def main():\n    return {'k\\x00': 1}\n"), 422,
                        "NOT_JSON_SERIALIZABLE", ran=True)
    assert "NUL" in body["error"]


@pytest.mark.parametrize("expr,expected", PLAIN_RESULTS.values(), ids=list(PLAIN_RESULTS))
def test_plain_result_encoding(server, expr, expected):
    result = run_ok(server, f"def main():\n    return {expr}\n")["result"]
    assert result == expected
    assert type(result) is type(expected)


NUMPY_RESULTS = {
    "int64": ("np.int64(5)", 5),
    "int8": ("np.int8(-3)", -3),
    "uint64": ("np.uint64(2 ** 63)", 2 ** 63),
    "float32": ("np.float32(1.5)", 1.5),
    "float64-nan": ("np.float64('nan')", None),
    "bool": ("np.bool_(True)", True),
    "array-1d": ("np.array([1, 2, 3])", [1, 2, 3]),
    "array-2d": ("np.arange(6).reshape(2, 3)", [[0, 1, 2], [3, 4, 5]]),
    "array-float-nan": ("np.array([1.0, np.nan, np.inf, 2.5])", [1.0, None, None, 2.5]),
    "array-bool": ("np.array([True, False])", [True, False]),
    "array-empty": ("np.array([])", []),
    "array-in-dict": ("{'v': np.zeros(2)}", {"v": [0.0, 0.0]}),
    "scalars-in-list": ("[np.int32(1), np.float64(2.5)]", [1, 2.5]),
}


@pytest.mark.parametrize("expr,expected", NUMPY_RESULTS.values(), ids=list(NUMPY_RESULTS))
def test_numpy_result_encoding(server, expr, expected):
    result = run_ok(server, f"import numpy as np\ndef main():\n    return {expr}\n")["result"]
    assert result == expected
    assert json.dumps(result) == json.dumps(expected)  # ints stay ints, bools stay bools


PANDAS_RESULTS = {
    "series-labels": ("pd.Series([1, 2, 3], index=['a', 'b', 'c'])", {"a": 1, "b": 2, "c": 3}),
    "series-default-index": ("pd.Series([10, 20])", {"0": 10, "1": 20}),
    "series-nan": ("pd.Series([1.5, float('nan')])", {"0": 1.5, "1": None}),
    "dataframe": ("pd.DataFrame({'A': [1, 2], 'B': [3.5, 4.5]})",
                  {"A": {"0": 1, "1": 2}, "B": {"0": 3.5, "1": 4.5}}),
    "dataframe-index": ("pd.DataFrame({'v': [1, 2]}, index=['x', 'y'])", {"v": {"x": 1, "y": 2}}),
    "dataframe-strings-nan": ("pd.DataFrame({'s': ['a', None], 'f': [float('nan'), 1.0]})",
                              {"s": {"0": "a", "1": None}, "f": {"0": None, "1": 1.0}}),
    "len-and-columns": ("{'n': len(pd.DataFrame({'a': [1]})), 'cols': list(pd.DataFrame({'a': [1]}).columns)}",
                         {"n": 1, "cols": ["a"]}),
}


@pytest.mark.parametrize("expr,expected", PANDAS_RESULTS.values(), ids=list(PANDAS_RESULTS))
def test_pandas_result_encoding(server, expr, expected):
    result = run_ok(server, f"import pandas as pd\ndef main():\n    return {expr}\n")["result"]
    assert result == expected
    assert json.dumps(result, sort_keys=True) == json.dumps(expected, sort_keys=True)


DATETIME_RESULTS = {
    "datetime": ("datetime.datetime(2024, 1, 2, 3, 4, 5)", datetime.datetime(2024, 1, 2, 3, 4, 5)),
    "datetime-micro": ("datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)",
                       datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    "datetime-utc": ("datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)",
                     datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)),
    "date": ("datetime.date(2024, 1, 2)", datetime.date(2024, 1, 2)),
    "timestamp": ("pd.Timestamp('2024-01-02 03:04:05')", datetime.datetime(2024, 1, 2, 3, 4, 5)),
}


def parse_iso(value, like):
    assert isinstance(value, str), value
    if type(like) is datetime.date:
        return datetime.date.fromisoformat(value)
    return datetime.datetime.fromisoformat(value)


@pytest.mark.parametrize("expr,expected", DATETIME_RESULTS.values(), ids=list(DATETIME_RESULTS))
def test_datetime_result_encoding(server, expr, expected):
    script = f"import datetime\nimport pandas as pd\ndef main():\n    return {expr}\n"
    result = run_ok(server, script)["result"]
    assert parse_iso(result, expected) == expected, result


def test_datetime_values_inside_series(server):
    # Both strings in one format: pandas 2 infers the format from the first element and
    # refuses the rest if it differs (pandas 1.5 parsed each on its own).
    script = ("import pandas as pd\ndef main():\n"
              "    return pd.Series(pd.to_datetime(['2024-01-02 00:00:00',\n"
              "                                     '2024-03-04 05:06:07']))\n")
    result = run_ok(server, script)["result"]
    assert set(result) == {"0", "1"}, result
    assert parse_iso(result["0"], datetime.datetime.min) == datetime.datetime(2024, 1, 2)
    assert parse_iso(result["1"], datetime.datetime.min) == datetime.datetime(2024, 3, 4, 5, 6, 7)


# -- the environment a script runs in --------------------------------------------------


def test_name_is_not_main(server):
    script = ('def main():\n    print("main ran")\n    return __name__\n'
              'if __name__ == "__main__":\n    main()\n')
    body = run_ok(server, script)
    assert body["stdout"] == "main ran\n"
    assert body["result"] != "__main__"


def test_crlf_line_endings(server):
    assert run_ok(server, "def main():\r\n    x = 2\r\n    return x * 21\r\n")["result"] == 42


def test_module_body_runs_before_main(server):
    script = "print('body')\nstate = []\ndef main():\n    print('main')\n    return state + [1]\n"
    body = run_ok(server, script)
    assert body["stdout"] == "body\nmain\n"
    assert body["result"] == [1]


def test_each_request_gets_a_fresh_process(server):
    mutate = ("import sys, builtins, json\n"
              "def main():\n"
              "    sys.pyexecd_leak = 'A'\n"
              "    builtins.pyexecd_leak = 'A'\n"
              "    json.pyexecd_leak = 'A'\n"
              "    return 'mutated'\n")
    observe = ("import sys, builtins, json\n"
               "def main():\n"
               "    return [getattr(m, 'pyexecd_leak', None) for m in (sys, builtins, json)]\n")
    assert run_ok(server, mutate)["result"] == "mutated"
    assert run_ok(server, observe)["result"] == [None, None, None]


@pytest.mark.parametrize("expr", ["float(numpy.random.rand())", "random.random()",
                                  "numpy.random.randint(0, 2 ** 62)",
                                  "float(numpy.random.randn())",
                                  "numpy.random.get_state()[1][:8].tolist()"])
def test_random_state_differs_between_requests(server, expr):
    script = f"import numpy\nimport random\ndef main():\n    return {expr}\n"
    first = run_ok(server, script)["result"]
    second = run_ok(server, script)["result"]
    assert first != second


@pytest.mark.parametrize("fd,field", [(1, "stdout"), (2, "stderr")])
def test_invalid_utf8_output_is_replaced(server, fd, field):
    script = f"import os\ndef main():\n    os.write({fd}, b'a\\xffb\\xc3')\n    return 1\n"
    resp = server.execute(script)
    body = assert_ok(resp)  # strict JSON, so the body is valid UTF-8
    assert body[field].startswith("a\ufffdb"), body[field]
    assert body["result"] == 1
