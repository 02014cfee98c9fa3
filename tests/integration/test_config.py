"""The command line: configuration layers, --print-config, --help, invalid
values, and the one-shot `pyexecd exec` mode."""

import pytest

from .conftest import (DEFAULT_MAX_BODY, DEFAULT_OUTPUT_LIMIT, LIMITED_ARGS, LIMITS,
                       clean_env, parse_strict_json, run_binary)

CONFIG_KEYS = {"port", "listen", "timeout", "memory_mb", "output_limit", "max_body",
               "concurrency", "preload", "playground"}


def print_config(*args, **env):
    proc = run_binary(*args, "--print-config", env=clean_env(**env))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    config = parse_strict_json(proc.stdout)
    assert isinstance(config, dict), proc.stdout
    return config


def test_print_config_has_every_key():
    config = print_config()
    assert CONFIG_KEYS <= config.keys(), sorted(config)


def test_documented_defaults():
    config = print_config()
    assert config["output_limit"] == DEFAULT_OUTPUT_LIMIT
    assert config["max_body"] == DEFAULT_MAX_BODY


def test_flags_are_reflected():
    config = print_config("--listen", "127.0.0.1", "--port", "4321", *LIMITED_ARGS)
    assert config["listen"] == "127.0.0.1"
    assert config["port"] == 4321
    for key, value in LIMITS.items():
        assert config[key] == value, (key, config)


def test_port_from_environment():
    assert print_config(PORT="1234")["port"] == 1234


def test_timeout_from_environment():
    assert print_config(PYEXECD_TIMEOUT="5")["timeout"] == 5


@pytest.mark.parametrize("flags,env,key,expected", [
    (("--timeout", "3"), {"PYEXECD_TIMEOUT": "5"}, "timeout", 3),
    (("--port", "4321"), {"PORT": "1234"}, "port", 4321),
], ids=["timeout", "port"])
def test_flag_beats_environment(flags, env, key, expected):
    assert print_config(*flags, **env)[key] == expected


def test_help():
    proc = run_binary("--help")
    assert proc.returncode == 0, proc.stderr
    assert b"--port" in proc.stdout


@pytest.mark.parametrize("bad,env", [
    (("--timeout", "abc"), {}),
    (("--timeout", "-1"), {}),
    (("--timeout", "0"), {}),
    (("--memory-mb", "lots"), {}),
    (("--output-limit", "x"), {}),
    (("--max-body", "-5"), {}),
    (("--port", "abc"), {}),
    (("--port", "70000"), {}),
    (("--no-such-flag",), {}),
    ((), {"PYEXECD_TIMEOUT": "abc"}),
    ((), {"PORT": "http"}),
    (("--playground", "maybe"), {}),
    ((), {"PYEXECD_PLAYGROUND": "2"}),
], ids=["timeout-abc", "timeout-negative", "timeout-zero", "memory-word", "output-limit-x",
        "max-body-negative", "port-abc", "port-too-big", "unknown-flag", "env-timeout",
        "env-port", "playground-word", "env-playground"])
def test_invalid_configuration_is_refused(bad, env):
    # A safe address and port in case the value is wrongly accepted and the
    # server starts; run_binary then kills it and the test fails.
    args = ["--listen", "127.0.0.1"]
    if "--port" not in bad and "PORT" not in env:
        args += ["--port", "0"]
    proc = run_binary(*args, *bad, env=clean_env(**env), timeout=30)
    assert proc.returncode != 0
    assert proc.stderr.strip(), "no message on stderr"


# -- pyexecd exec ------------------------------------------------------------------------

EXEC_SCRIPTS = {
    "success": "import pandas as pd\ndef main():\n    print('hi')\n    return {'n': int(pd.Series([1, 2]).sum())}\n",
    "runtime-error": "def main():\n    print('before')\n    return 1 / 0\n",
    "syntax-error": "def main(:\n    return 1\n",
    "missing-main": "print('no main')\n",
    "not-serializable": "def main():\n    return {1, 2}\n",
}


def without_duration(body):
    return {k: v for k, v in body.items() if k != "duration_ms"}


@pytest.mark.parametrize("source", ["file", "stdin"])
@pytest.mark.parametrize("script", EXEC_SCRIPTS.values(), ids=list(EXEC_SCRIPTS))
def test_exec_prints_the_http_body(server, tmp_path, source, script):
    http = server.execute(script)
    assert isinstance(http.json, dict), http
    if source == "file":
        path = tmp_path / "script.py"
        path.write_text(script)
        proc = run_binary("exec", str(path))
    else:
        proc = run_binary("exec", "-", stdin=script.encode())
    body = parse_strict_json(proc.stdout)
    assert isinstance(body, dict), (proc.stdout, proc.stderr)
    assert without_duration(body) == without_duration(http.json)
    assert (proc.returncode == 0) == (http.status == 200), (proc.returncode, http.status)


def test_exec_missing_file_fails(tmp_path):
    proc = run_binary("exec", str(tmp_path / "absent.py"))
    assert proc.returncode != 0
    assert proc.stderr.strip()

