"""The plot zygote (--plot-zygote, on by default): matplotlib makes every sandbox cloned from
a zygote that preloaded it ~1 ms of CPU dearer, so only the scripts that name matplotlib
run in sandboxes of a zygote of their own that did. It starts at the first such script.
A script sees which it got by whether matplotlib was imported before it ran."""

import time

from pyexecd_testing import wait_for

from .conftest import metric, run_ok

# These scripts must not name the module themselves, or they would go to the plot zygote.
PROBE = "import sys\ndef main():\n    return ('matplot' + 'lib') in sys.modules\n"
PLOT_PROBE = "# uses matplotlib\n" + PROBE
PLOT = ("import matplotlib.pyplot as plt\n"
        "def main():\n    plt.plot([1, 2, 3])\n    return 1\n")


# The first plot imports matplotlib in its own sandbox: 1 GiB, since that takes more than
# 256 MiB in the sanitizer build (ASan's quarantine keeps the import's garbage).
def test_plot_scripts_get_the_plot_zygote_once_it_is_up(start_server):
    srv = start_server("--zygotes", "1", "--pool-size", "1", "--memory-mb", "1024",
                       shared_ok=False)
    assert run_ok(srv, PROBE)["result"] is False
    assert metric(srv, "pyexecd_zygotes_up") == 1  # not started before a plot
    # The first plot runs at once where it can, importing matplotlib itself.
    body = srv.execute(PLOT).json
    assert body["result"] == 1 and len(body["figures"]) == 1, body
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 2, 120)
    for _ in range(3):
        assert run_ok(srv, PLOT_PROBE)["result"] is True
        assert run_ok(srv, PROBE)["result"] is False
    body = srv.execute(PLOT).json
    assert body["result"] == 1 and len(body["figures"]) == 1, body
    assert metric(srv, "pyexecd_zygote_restarts_total") == 0


def test_frequent_plots_keep_a_warm_plot_sandbox(start_server):
    srv = start_server("--zygotes", "1", "--pool-size", "2", shared_ok=False)
    run_ok(srv, PLOT_PROBE)
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 2, 120)
    for _ in range(6):
        run_ok(srv, PLOT_PROBE)
    # Adopted, not cold: a warm sandbox's set-up was off the request path (setup_ms 0 in
    # the log line of the answer).
    wait_for(lambda: metric(srv, "pyexecd_sandboxes_warm") == 2, 60)
    mark = len(srv.log_lines)
    assert run_ok(srv, PLOT_PROBE)["result"] is True
    wait_for(lambda: any("answered" in line for line in list(srv.log_lines)[mark:]), 10)
    answered = [line for line in list(srv.log_lines)[mark:] if "answered" in line]
    assert '"setup_ms":0.000' in answered[0], answered


def test_back_to_back_plots_wait_for_an_exiting_sandbox_not_a_plain_one(start_server):
    """The answer goes before the sandbox's exit (cgroup.kill on v2; PID 1 alone on v1), so
    a client that sends its next script at once finds the previous sandbox still holding
    its slot, and the pool's other slots held by plain warm sandboxes. A plot script then
    waits the ~2 ms for that slot and gets the plot zygote: a plain warm sandbox would cost
    it the import of matplotlib (~400 ms; more than 256 MiB in the sanitizer build)."""
    srv = start_server("--zygotes", "1", "--pool-size", "2", shared_ok=False)
    run_ok(srv, PLOT_PROBE)
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 2, 120)
    got = []
    for _ in range(10):
        for _ in range(3):
            run_ok(srv, PROBE)  # plain traffic keeps plain sandboxes warm
        got += [run_ok(srv, PLOT_PROBE)["result"] for _ in range(3)]
    assert got == [True] * len(got)


def test_switched_off_no_plot_zygote(start_server):
    srv = start_server("--plot-zygote", "false", "--pool-size", "1", "--memory-mb", "1024",
                       shared_ok=False)
    assert run_ok(srv, PLOT_PROBE)["result"] is False
    body = srv.execute(PLOT).json
    assert body["result"] == 1 and len(body["figures"]) == 1, body
    time.sleep(1)
    assert metric(srv, "pyexecd_zygotes_up") == 1


def test_preloaded_everywhere_no_plot_zygote(start_server):
    srv = start_server("--preload", "numpy,pandas,matplotlib", "--pool-size", "1",
                       shared_ok=False)
    assert run_ok(srv, PROBE)["result"] is True
    assert run_ok(srv, PLOT_PROBE)["result"] is True
    time.sleep(1)
    assert metric(srv, "pyexecd_zygotes_up") == 1
