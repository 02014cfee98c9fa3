"""The learned prefault set (src/sandbox/prefault.h): at start the zygote learns which of
its pages the README's examples write, and warm sandboxes take those pages before their
request while most recent requests use pandas (warm.c, warm_prefault_wanted). Observed from
outside: the log line with the set's size, and the private memory of the warm sandboxes
waiting in the pool, which grows by the set while pandas requests dominate and shrinks back
when they stop. Memory sizes only, no timing."""

import os
import re
import time

import pytest

from .conftest import children_of, find_zygotes, metric, run_ok

POOL = 2
PANDAS = ("import pandas as pd\ndef main():\n"
          "    df = pd.DataFrame({'A': [1, 2, 3], 'B': [4, 5, 6]})\n"
          "    return {'mean_A': df['A'].mean(), 'sum_B': df['B'].sum()}\n")
HELLO = "def main():\n    return 1\n"
ROUNDS = 40  # more than enough to move the moving average (1/16 per request) past 2/3


def private_dirty_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(re.search(r"^Private_Dirty:\s+(\d+) kB", f.read(), re.M).group(1))


def warm_sandboxes_private_kb(srv, timeout=60):
    """The private memory of the pool's warm sandboxes, once the zygote's children are just
    those (an answered sandbox may still be exiting for a moment): bounded wait."""
    deadline = time.monotonic() + timeout
    zygote = find_zygotes(srv.pid)[0]
    while True:
        kids = children_of(zygote)
        if metric(srv, "pyexecd_sandboxes_warm") == POOL and len(kids) == POOL:
            try:
                return [private_dirty_kb(pid) for pid in kids]
            except (FileNotFoundError, ProcessLookupError):
                pass
        assert time.monotonic() < deadline, "the warm pool did not settle"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pooled(start_server):
    if os.geteuid() != 0:
        pytest.skip("reading another uid's smaps_rollup needs root")
    return start_server("--pool-size", str(POOL), "--log-level", "info", "--zygotes", "1",
                        shared_ok=False)


def learned_pages(srv):
    assert srv.wait_for_log("prefault:", timeout=30), srv.stderr_text()
    text = srv.stderr_text()
    if "MADV_POPULATE_WRITE refused" in text:
        pytest.skip("this kernel has no MADV_POPULATE_WRITE (Linux < 5.14)")
    m = re.search(r"prefault: learned (\d+) pages in (\d+) ranges", text)
    assert m, text
    return int(m.group(1))


@pytest.mark.skipif(bool(os.environ.get("PYEXECD_SANITIZED")), reason=(
    "the sanitizer build: ASan's shadow and allocator pages make the learned set larger than "
    "the cap (the zygote logs E2BIG and warm sandboxes take no set, as designed)"))
def test_the_set_is_learned_and_taken_only_while_pandas_dominates(pooled):
    pages = learned_pages(pooled)
    # The README's numpy and pandas examples copy hundreds of pages; under the cap.
    assert 100 < pages <= 2048

    for _ in range(ROUNDS):
        run_ok(pooled, HELLO)
    without = warm_sandboxes_private_kb(pooled)

    for _ in range(ROUNDS):
        assert run_ok(pooled, PANDAS)["result"] == {"mean_A": 2.0, "sum_B": 15}
    with_set = warm_sandboxes_private_kb(pooled)
    # Each warm sandbox now holds its copy of (most of) the set: at least half of it.
    half_set_kb = pages * 4 // 2
    for kb in with_set:
        assert kb >= max(without) + half_set_kb, (without, with_set, pages)

    for _ in range(ROUNDS):
        run_ok(pooled, HELLO)
    again = warm_sandboxes_private_kb(pooled)
    for kb in again:
        assert kb < min(with_set) - half_set_kb, (with_set, again, pages)
