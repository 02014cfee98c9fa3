"""What the product promises a script inside the sandbox: `os`, `subprocess`, `threading`,
`multiprocessing` and numpy/pandas keep working under every isolation layer."""

from .conftest import run_ok


def test_subprocess_runs_commands_and_a_fresh_python(server):
    script = (
        "import subprocess\n"
        "def main():\n"
        "    echo = subprocess.run(['echo', 'hi'], capture_output=True, text=True, check=True)\n"
        "    py = subprocess.run(['python3', '-c', 'import numpy; print(numpy.arange(3).sum())'],\n"
        "                        capture_output=True, text=True, check=True)\n"
        "    return [echo.stdout, py.stdout]\n"
    )
    assert run_ok(server, script)["result"] == ["hi\n", "3\n"]


def test_threads_run_and_join(server):
    script = (
        "import threading\n"
        "def main():\n"
        "    out = []\n"
        "    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
        "    for t in ts: t.start()\n"
        "    for t in ts: t.join()\n"
        "    return sorted(out)\n"
    )
    assert run_ok(server, script)["result"] == list(range(8))


def test_multiprocessing_pool_of_two(server):
    script = (
        "import multiprocessing\n"
        "def square(x):\n"
        "    return x * x\n"
        "def main():\n"
        "    with multiprocessing.Pool(2) as pool:\n"
        "        return pool.map(square, range(6))\n"
    )
    assert run_ok(server, script)["result"] == [0, 1, 4, 9, 16, 25]


def test_os_and_tmp_files(server):
    script = (
        "import os, tempfile\n"
        "def main():\n"
        "    with tempfile.NamedTemporaryFile('w', delete=False) as f:\n"
        "        f.write('data')\n"
        "    size = os.path.getsize(f.name)\n"
        "    os.makedirs('/tmp/a/b')\n"
        "    return [size, os.listdir('/tmp/a'), os.getcwd(), os.cpu_count() > 0]\n"
    )
    assert run_ok(server, script)["result"] == [4, ["b"], "/tmp", True]


def test_pandas_beyond_the_preload(server):
    # Modules the zygote did not import, and pandas' numexpr path with one thread.
    script = (
        "import pandas as pd, numpy as np, sqlite3, decimal, zoneinfo\n"
        "def main():\n"
        "    df = pd.DataFrame({'k': ['a', 'b', 'a'], 'v': np.arange(3.0)})\n"
        "    big = pd.DataFrame({'x': np.arange(200000.0)})\n"
        "    s = big.eval('x * 2 + 1').sum()\n"
        "    con = sqlite3.connect(':memory:')\n"
        "    n = con.execute('select 40 + 2').fetchone()[0]\n"
        "    return [df.groupby('k')['v'].sum().to_dict(), float(s), n,\n"
        "            str(decimal.Decimal('1.10') + decimal.Decimal('2.20'))]\n"
    )
    result = run_ok(server, script)["result"]
    assert result == [{"a": 2.0, "b": 1.0}, 40000000000.0, 42, "3.30"]
