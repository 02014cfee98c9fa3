"""The worked examples of the contract, verbatim, with their exact results."""

import pytest

from .conftest import assert_error, run_ok


def test_plain_dict_result(server):
    script = ('def main():\n    x = 10\n    y = 20\n'
              '    return {"sum": x + y, "product": x * y}')
    body = run_ok(server, script)
    assert body["result"] == {"sum": 30, "product": 200}
    assert body["stdout"] == ""


def test_pandas_mean_and_sum(server):
    script = ("import pandas as pd\ndef main():\n"
              "    df = pd.DataFrame({'A': [1, 2, 3], 'B': [4, 5, 6]})\n"
              "    return {\"mean_A\": df['A'].mean(), \"sum_B\": df['B'].sum()}")
    body = run_ok(server, script)
    assert body["result"] == {"mean_A": 2.0, "sum_B": 15.0}


@pytest.mark.parametrize("wrap", ["float", ""], ids=["python-floats", "numpy-scalars"])
def test_numpy_mean_and_std(server, wrap):
    script = ("import numpy as np\ndef main():\n"
              "    arr = np.array([1, 2, 3, 4, 5])\n"
              f"    return {{\"mean\": {wrap}(np.mean(arr)), \"std\": {wrap}(np.std(arr))}}")
    body = run_ok(server, script)
    assert body["result"] == {"mean": 3.0, "std": 1.4142135623730951}


def test_print_and_result(server):
    script = 'def main():\n    print("Hello, World!")\n    return {"message": "Success"}'
    body = run_ok(server, script)
    assert body["result"] == {"message": "Success"}
    assert body["stdout"] == "Hello, World!\n"


def test_no_main_is_missing_main(server):
    resp = server.execute("def some_function():\n    return 1")
    assert_error(resp, 400, "MISSING_MAIN", ran=True)


def test_set_result_is_not_serializable(server):
    resp = server.execute("def main():\n    return set([1, 2, 3])")
    assert_error(resp, 422, "NOT_JSON_SERIALIZABLE", ran=True)


@pytest.mark.parametrize("expr", ['int(df["n"].max())', 'df["n"].max()'],
                         ids=["python-int", "numpy-int64"])
def test_pandas_max_is_an_integer(server, expr):
    script = ("import pandas as pd\ndef main():\n"
              "    df = pd.DataFrame({'n': [3, 41, 7]})\n"
              f"    return {expr}")
    body = run_ok(server, script)
    assert body["result"] == 41
    assert type(body["result"]) is int, body["result"]


def test_stdin_args_kwargs_example(server):
    """The README's stdin/args/kwargs example, verbatim."""
    resp = server.post({"script": 'def main(greeting, n=1):\n    name = input()\n'
                                  '    return [greeting + ", " + name] * n',
                        "stdin": "Ada\n", "args": ["Hello"], "kwargs": {"n": 2}})
    assert resp.status == 200, resp
    assert resp.json["result"] == ["Hello, Ada", "Hello, Ada"]


def test_files_in_and_out_example(server):
    """The README's files example: a CSV in, pandas' summary of it back as a file."""
    import base64
    resp = server.post({"script": 'import pandas as pd\ndef main():\n'
                                  '    df = pd.read_csv("in/data.csv")\n'
                                  '    df.describe().to_csv("summary.csv")\n'
                                  '    return int(df["x"].sum())',
                        "files": [{"path": "in/data.csv", "content": "x,y\n1,2\n3,4\n"}],
                        "return_files": True})
    assert resp.status == 200, resp
    assert resp.json["result"] == 4
    [summary] = resp.json["files"]  # the unchanged input is not returned
    assert summary["path"] == "summary.csv" and summary["encoding"] == "base64"
    text = base64.b64decode(summary["content"], validate=True).decode()
    assert text.startswith(",x,y\ncount,2.0,2.0\nmean,2.0,3.0\n"), text
    assert summary["size"] == len(text)


def test_escaping_path_example(server):
    resp = server.post({"script": "def main():\n    return 1",
                        "files": [{"path": "../etc/x", "content": ""}]})
    assert resp.status == 400 and resp.json["code"] == "INVALID_REQUEST", resp
    assert resp.json["error"] == 'files[0] ("../etc/x"): the path has a "." or ".." component'
