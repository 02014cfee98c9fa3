"""Figures (README, "Figures"): every pyplot figure still open when main() returns comes back
in a 200 answer as `"figures": [{"format": "png", "width", "height", "content"}]`, in
pyplot's order, at most 16 and within --result-limit together with the result (a prefix of
the open ones, then `"figures_truncated": true`); no key when there is none; a figure that
fails to draw is the script's RUNTIME_ERROR. Over HTTP only; each PNG is decoded and its
header read here, independently of the service's own check."""

import base64
import struct
import textwrap

import pytest

from pyexecd_testing import start_plot_zygote

from .conftest import SUCCESS_KEYS, assert_error, assert_ok, metric, run_ok

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES_MAX = 16
FIGURE_KEYS = {"format", "width", "height", "content"}
# A server whose result limit one default 640x480 figure (about 22 KB of base64) exceeds,
# while a small one (a few hundred bytes) fits.
SMALL_RESULT_LIMIT = 4096


def src(text):
    return textwrap.dedent(text).lstrip("\n")


def png_of(figure) -> tuple:
    """(width, height, png bytes) of one entry of `figures`, after checking its shape, its
    strict base64 (the canonical encoding of what it decodes to), the PNG signature and
    the IHDR chunk, whose width and height must be the ones the entry gives."""
    assert set(figure) == FIGURE_KEYS, figure.keys()
    assert figure["format"] == "png", figure["format"]
    width, height, content = figure["width"], figure["height"], figure["content"]
    assert type(width) is int and type(height) is int, (width, height)
    png = base64.b64decode(content, validate=True)
    assert base64.b64encode(png).decode("ascii") == content, "not canonical base64"
    assert png[:8] == PNG_SIGNATURE, png[:16]
    length, kind, png_width, png_height = struct.unpack(">I4sII", png[8:24])
    assert (length, kind) == (13, b"IHDR"), (length, kind)
    assert (png_width, png_height) == (width, height), ((png_width, png_height), figure)
    return width, height, png


def sizes_of(body) -> list:
    """[(width, height), ...] of a response's figures, each checked by png_of()."""
    assert body.get("figures", None) != [], "an empty `figures` must be left out"
    return [png_of(f)[:2] for f in body.get("figures", [])]


def without_content(body) -> dict:
    """The body for an assertion message, without kilobytes of base64."""
    return {k: (f"<{len(v)} figures>" if k == "figures" else v) for k, v in body.items()}


@pytest.fixture(scope="module", autouse=True)
def plot_zygote_up(server):
    """The plots here run as on a service that has seen a plot: in its plot zygote (see
    start_plot_zygote). bare_server and numpy_pandas_server test the other way."""
    start_plot_zygote(server)


@pytest.fixture(scope="module")
def bare_server(start_server):
    """Nothing preloaded (and no plot zygote): pyplot is never imported unless the script
    does."""
    return start_server("--preload", "", "--plot-zygote", "false")


@pytest.fixture(scope="module")
def numpy_pandas_server(start_server):
    """matplotlib left out of the preloads and no plot zygote: the script imports it. 1 GiB
    of memory: in the sanitizer build (make test-asan) ASan's quarantine of freed blocks
    keeps the import's garbage, which took the default 256 MiB there (MEMORY_LIMIT)."""
    return start_server("--preload", "numpy,pandas", "--plot-zygote", "false",
                        "--memory-mb", "1024")


@pytest.fixture(scope="module")
def small_result_server(start_server):
    srv = start_server("--result-limit", str(SMALL_RESULT_LIMIT))
    start_plot_zygote(srv)
    return srv


# -- one figure, sizes, order --------------------------------------------------------------

LINE_PLOT = src("""
    import matplotlib.pyplot as plt
    def main():
        plt.plot([1, 2, 3], [2, 4, 1])
        plt.title("A line plot")
        return "drawn"
    """)


def test_one_figure_default_size(server):
    """A line plot left open: one 640x480 PNG (savefig's defaults), nothing else changes."""
    body = run_ok(server, LINE_PLOT)
    assert body.keys() == SUCCESS_KEYS | {"figures"}, without_content(body)
    assert body["result"] == "drawn"
    assert len(body["figures"]) == 1
    width, height, png = png_of(body["figures"][0])
    assert (width, height) == (640, 480)
    assert len(png) > 1000, "a plot with axes, a line and a title is more than a blank image"


@pytest.mark.parametrize("figsize, dpi, size", [
    ((3, 2), 50, (150, 100)),
    ((4, 1), 100, (400, 100)),
    ((2, 3), 72, (144, 216)),
], ids=["150x100", "400x100", "144x216"])
def test_figsize_and_dpi_set_the_size(server, figsize, dpi, size):
    """figsize (inches) times dpi is the PNG's size in pixels."""
    script = src(f"""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize={figsize!r}, dpi={dpi})
            plt.plot([0, 1], [1, 0])
            return 1
        """)
    assert sizes_of(run_ok(server, script)) == [size]


def test_several_figures_in_pyplot_order(server):
    """Figures come in pyplot's order (by figure number), not in the order they were made;
    each is the one of its number (told apart by their sizes)."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(3, figsize=(3, 1), dpi=50)
            plt.plot([1, 3])
            plt.figure(1, figsize=(1, 1), dpi=50)
            plt.bar(["a", "b"], [1, 2])
            plt.figure(2, figsize=(2, 1), dpi=50)
            plt.scatter([1, 2], [2, 1])
            return plt.get_fignums()
        """)
    body = run_ok(server, script)
    assert body["result"] == [1, 2, 3]
    assert sizes_of(body) == [(50, 50), (100, 50), (150, 50)]
    assert "figures_truncated" not in body, without_content(body)


CLOSERS = {
    "close": "plt.close()",
    "close-all": 'plt.close("all")',
    "close-fig": "plt.close(fig)",
    "clf-then-close": "plt.clf(); plt.close(plt.gcf())",
}


@pytest.mark.parametrize("closer", CLOSERS.values(), ids=list(CLOSERS))
def test_closed_figures_are_not_returned(server, closer):
    """A figure closed before main() returns is no figure: no `figures` key at all."""
    script = src(f"""
        import matplotlib.pyplot as plt
        def main():
            fig = plt.figure()
            plt.plot([1, 2])
            {closer}
            return plt.get_fignums()
        """)
    body = run_ok(server, script)
    assert body["result"] == []
    assert body.keys() == SUCCESS_KEYS, without_content(body)


def test_only_the_figures_left_open_are_returned(server):
    """Of three figures, the one closed is left out; the others keep their order."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            for k in (1, 2, 3):
                plt.figure(k, figsize=(k, 1), dpi=40)
            plt.close(2)
            return 1
        """)
    assert sizes_of(run_ok(server, script)) == [(40, 40), (120, 40)]


def test_no_matplotlib_no_figures_key(server, bare_server):
    """A script that does not plot gets no `figures` key: on the default server (pyplot
    preloaded, no figure open) and on one where pyplot was never imported."""
    for srv in (server, bare_server):
        body = run_ok(srv, "import sys\ndef main():\n"
                           "    return 'matplotlib.pyplot' in sys.modules\n")
        assert body["result"] is (srv is server)
        assert body.keys() == SUCCESS_KEYS, without_content(body)


def test_figures_do_not_outlive_their_request(server):
    """A figure left open by one request is not in the next one's answer."""
    run_ok(server, LINE_PLOT)
    body = run_ok(server, "import matplotlib.pyplot as plt\n"
                          "def main():\n    return plt.get_fignums()\n")
    assert body["result"] == []
    assert body.keys() == SUCCESS_KEYS, without_content(body)


# -- the bounds: 16 figures, the result limit ----------------------------------------------


def test_seventeen_figures_give_the_first_sixteen(server):
    """17 open figures: the first 16 in order (each of its own size), figures_truncated."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            for k in range(1, 18):
                plt.figure(figsize=(1, 1), dpi=10 + k)
            return len(plt.get_fignums())
        """)
    body = run_ok(server, script)
    assert body["result"] == 17
    assert sizes_of(body) == [(10 + k, 10 + k) for k in range(1, FIGURES_MAX + 1)]
    assert body.get("figures_truncated") is True, without_content(body)


def test_sixteen_figures_are_not_truncated(server):
    """Exactly 16: all of them, and no figures_truncated."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            for k in range(1, 17):
                plt.figure(figsize=(1, 1), dpi=10 + k)
            return 1
        """)
    body = run_ok(server, script)
    assert len(sizes_of(body)) == FIGURES_MAX
    assert "figures_truncated" not in body, without_content(body)


def test_result_limit_keeps_a_prefix(small_result_server):
    """--result-limit 4096: a small figure fits, the default-sized second one does not, and
    the small third one is dropped with it (the figures are a prefix of the open ones)."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize=(1, 1), dpi=20)
            plt.figure()
            plt.plot([1, 2, 3])
            plt.figure(figsize=(1, 1), dpi=30)
            return "three"
        """)
    body = run_ok(small_result_server, script)
    assert body["result"] == "three"
    assert sizes_of(body) == [(20, 20)]
    assert body.get("figures_truncated") is True, without_content(body)


def test_result_that_leaves_no_room(small_result_server):
    """A result of exactly the limit (4094 characters, 4096 bytes encoded) leaves no room:
    no figures, figures_truncated."""
    script = src(f"""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize=(1, 1), dpi=20)
            return "x" * {SMALL_RESULT_LIMIT - 2}
        """)
    body = run_ok(small_result_server, script)
    assert body["result"] == "x" * (SMALL_RESULT_LIMIT - 2)
    assert "figures" not in body and body.get("figures_truncated") is True, without_content(body)


# The script draws its figure once itself to learn its base64 length (Agg draws the same
# figure to the same bytes), then returns a string whose encoding leaves exactly that many
# bytes of the limit, less `short`.
BUDGET_EDGE = src("""
    import base64, io
    import matplotlib.pyplot as plt
    def main(limit, short):
        fig = plt.figure(figsize=(1, 1), dpi=20)
        plt.plot([0, 1])
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        need = len(base64.b64encode(buf.getvalue()))
        return "y" * (limit - need + short - 2)
    """)


@pytest.mark.parametrize("short, returned", [(0, True), (1, False)], ids=["exact", "one-short"])
def test_result_limit_edge(small_result_server, short, returned):
    """A figure whose base64 is exactly what the result left fits; one byte less, it does
    not (and figures_truncated says so)."""
    body = run_ok(small_result_server, BUDGET_EDGE, args=[SMALL_RESULT_LIMIT, short])
    figures = body.get("figures", [])
    assert len(body["result"]) + 2 + sum(len(f["content"]) for f in figures) <= SMALL_RESULT_LIMIT
    if returned:
        assert sizes_of(body) == [(20, 20)]
        assert len(body["result"]) + 2 + len(figures[0]["content"]) == SMALL_RESULT_LIMIT
        assert "figures_truncated" not in body, without_content(body)
    else:
        assert "figures" not in body and body.get("figures_truncated") is True, body


# -- how the script ends -------------------------------------------------------------------


def test_show_returns_and_the_figure_stays(server):
    """plt.show() (Agg) returns at once; the figure is still open and returned."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2])
            plt.show()
            plt.show(block=True)
            return plt.get_backend().lower()
        """)
    body = run_ok(server, script, timeout=5)
    assert body["result"] == "agg"
    assert sizes_of(body) == [(640, 480)]


def test_a_figure_that_fails_to_draw_is_a_runtime_error(server):
    """Bad mathtext in figure 2's title: 422 RUNTIME_ERROR naming the figure and the
    exception; no result and no figures (not even figure 1, which drew)."""
    script = src(r"""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize=(1, 1), dpi=20)
            plt.figure()
            plt.title(r"$\frac$")
            print("main returned")
            return 1
        """)
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    prefix = "Drawing figure 2, left open by main(), failed:"
    assert body["error"].startswith(prefix), body["error"]
    assert "ValueError" in body["error"] and "\\frac" in body["error"], body["error"]
    assert "figures" not in body and "figures_truncated" not in body, body
    assert body["stdout"] == "main returned\n"


@pytest.mark.parametrize("ending, code", [
    ("raise ValueError('after plotting')", "RUNTIME_ERROR"),
    ("return {1, 2}", "NOT_JSON_SERIALIZABLE"),
], ids=["exception", "not-serializable"])
def test_no_figures_with_an_error(server, ending, code):
    """main() plots, then fails: the error, and no figures."""
    script = src(f"""
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2])
            {ending}
        """)
    body = assert_error(server.execute(script), 422, code, ran=True)
    assert "figures" not in body and "figures_truncated" not in body, body


def test_no_figures_with_a_result_too_large(small_result_server):
    """A result over the limit is OUTPUT_LIMIT, with no figures."""
    script = src(f"""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize=(1, 1), dpi=20)
            return "x" * {SMALL_RESULT_LIMIT}
        """)
    body = assert_error(small_result_server.execute(script), 422, "OUTPUT_LIMIT", ran=True)
    assert "figures" not in body and "figures_truncated" not in body, body


# -- text, files, metrics, other preloads --------------------------------------------------


def test_non_ascii_title(server):
    """A title with accents, a snowman and Greek: drawn with the default font, no glyph
    missing."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2, 3])
            plt.title("Temp\\u00e9rature \\u2603 \\u03a9\\u03bc")
            plt.xlabel("\\u00e5\\u00e4\\u00f6 \\u20ac")
            return plt.gca().get_title()
        """)
    body = run_ok(server, script)
    assert body["result"] == "Temp\u00e9rature \u2603 \u03a9\u03bc"
    assert sizes_of(body) == [(640, 480)]
    assert "missing from current font" not in body["stderr"], body["stderr"]


def test_return_files_with_a_plot_returns_only_the_scripts_files(server):
    """With return_files, a plot saved by the script comes back as a file and the open
    figure as a figure; matplotlib leaves nothing of its own in /tmp (no .cache,
    .config or font cache)."""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2, 3])
            plt.title("saved and open")
            plt.savefig("plot.png")
            return 1
        """)
    body = run_ok(server, script, return_files=True)
    paths = [f["path"] for f in body.get("files", [])]
    assert paths == ["plot.png"], paths
    saved = base64.b64decode(body["files"][0]["content"])
    assert saved[:8] == PNG_SIGNATURE
    assert sizes_of(body) == [(640, 480)]
    assert "files_omitted" not in body, body["files_omitted"]


def test_metric_counts_the_png_bytes(server):
    """pyexecd_figure_bytes_total grows by the PNG bytes (decoded) returned."""
    name = "pyexecd_figure_bytes_total"
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            plt.figure(figsize=(2, 2), dpi=30)
            plt.plot([1, 2])
            plt.figure()
            return 1
        """)
    before = metric(server, name)
    body = run_ok(server, script)
    pngs = [png_of(f)[2] for f in body["figures"]]
    assert len(pngs) == 2
    assert metric(server, name) - before == sum(map(len, pngs))
    # An error answer adds nothing.
    before = metric(server, name)
    assert_error(server.execute("import matplotlib.pyplot as plt\ndef main():\n"
                                "    plt.plot([1])\n    raise ValueError('x')\n"),
                 422, "RUNTIME_ERROR", ran=True)
    assert metric(server, name) == before


def test_matplotlib_imported_by_the_script(numpy_pandas_server):
    """--preload numpy,pandas: the script imports pyplot itself (Agg, from MPLBACKEND) and
    gets its figure the same way."""
    script = src("""
        import matplotlib
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2, 3], [3, 1, 2])
            return matplotlib.get_backend().lower()
        """)
    body = assert_ok(numpy_pandas_server.execute(script, timeout=10))
    assert body["result"] == "agg"
    assert sizes_of(body) == [(640, 480)]


def test_pandas_dataframe_plot(server):
    """DataFrame.plot() draws through pyplot: its figure is returned."""
    script = src("""
        import pandas as pd
        def main():
            df = pd.DataFrame({"x": [1, 2, 3, 4], "y": [1, 4, 9, 16]})
            ax = df.plot(x="x", y="y", title="squares", figsize=(4, 3))
            return [ax.get_title(), len(ax.get_lines())]
        """)
    body = run_ok(server, script)
    assert body["result"] == ["squares", 1]
    width, height = sizes_of(body)[0]
    assert (width, height) == (400, 300)
