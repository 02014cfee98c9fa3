"""Hostile figures (README, "Figures"). The script shares its process with the harness: it
can replace the function that collects the figures (`_pyexecd_figures.collect`), matplotlib's
`savefig`, or write a frame of its own on the result channel. Whatever it hands over, the
service (api/figures.c) lets only what the contract allows reach a client: at most 16
figures, each exactly {"format": "png", "width", "height", "content"}, content strict base64
of a PNG whose IHDR chunk gives that width and height (1 to 2^31 - 1), all of their base64
within what the result left of --result-limit, figures_truncated a boolean. Anything else is
a frame that is not the harness's: 422 RUNTIME_ERROR, the result discarded, no figure. And
figures that are merely huge or many end as a clean error or a bounded answer; the service
keeps serving."""

import base64
import struct
import textwrap

import pytest

from pyexecd_testing import start_plot_zygote

from .conftest import assert_error, assert_still_serving, result_of


@pytest.fixture(scope="module", autouse=True)
def plot_zygote_up(server):
    """Plots here run in the plot zygote's sandboxes, as on a service that has seen a plot
    (see start_plot_zygote)."""
    start_plot_zygote(server)

CHANNEL_ERROR = ("The script wrote to the harness's private result channel; its result was "
                 "discarded")
FIGURES_MAX = 16
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_RESULT_LIMIT = 4096


def src(text):
    return textwrap.dedent(text).lstrip("\n")


# What every forging script starts with: png() builds a PNG of any header (signature, IHDR
# length and type, width, height: each can lie), with `noise` incompressible bytes in an
# ancillary chunk to set its size; real() is a figure matplotlib drew; fig() one entry of
# "figures"; forge(fields) makes the harness report `fields` as the figures it collected.
FORGERY = src('''
    import base64, io, os, struct, sys, zlib
    import matplotlib.pyplot as plt

    SIGNATURE = b"\\x89PNG\\r\\n\\x1a\\n"

    def chunk(kind, data, length=None):
        length = len(data) if length is None else length
        return (struct.pack(">I", length) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    def png(w, h, noise=0, signature=SIGNATURE, ihdr_length=None, ihdr=b"IHDR"):
        header = chunk(ihdr, struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0), ihdr_length)
        rows = b"".join(b"\\0" + bytes(w) for _ in range(h)) if w * h <= 1 << 20 else b""
        extra = chunk(b"tEXt", b"noise\\0" + os.urandom(noise).hex().encode()[:noise])
        return (signature + header + extra + chunk(b"IDAT", zlib.compress(rows))
                + chunk(b"IEND", b""))

    def real(**figure_kw):
        fig = plt.figure(**figure_kw)
        fig.gca().plot([1, 3, 2])
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    def b64(data):
        return base64.b64encode(data).decode("ascii")

    def fig(data, w, h, format="png", content=None, **extra):
        return {"format": format, "width": w, "height": h,
                "content": b64(data) if content is None else content, **extra}

    def mime(text):
        return "\\n".join(text[i:i + 76] for i in range(0, len(text), 76))

    def padded(data):
        """Data whose base64 ends in "=": one byte more if its length is a multiple of 3."""
        return data + b"\\0" if len(data) % 3 == 0 else data

    def forge(fields):
        sys.modules["_pyexecd_figures"].collect = lambda budget: fields
''')


def forging(fields: str) -> str:
    """A script whose main() makes the harness report `fields` (a Python expression over
    FORGERY's helpers) as its figures, then returns "forged"."""
    return FORGERY + src(f"""
        def main():
            forge({fields})
            return "forged"
        """)


def assert_refused(body):
    """The frame was not the harness's: RUNTIME_ERROR, no result, no figure."""
    assert (body.get("_status"), body.get("code"), body.get("error")) == (
        422, "RUNTIME_ERROR", CHANNEL_ERROR), shorten(body)
    assert not {"result", "figures", "figures_truncated"} & body.keys(), shorten(body)


def pngs_of(body) -> list:
    """[(width, height)] of the figures of an accepted answer, each checked independently:
    shape, strict base64, PNG signature, IHDR of the dimensions given."""
    out = []
    for f in body.get("figures", []):
        assert set(f) == {"format", "width", "height", "content"} and f["format"] == "png", f
        data = base64.b64decode(f["content"], validate=True)
        assert data[:8] == PNG_SIGNATURE
        assert struct.unpack(">I4sII", data[8:24]) == (13, b"IHDR", f["width"], f["height"])
        out.append((f["width"], f["height"]))
    return out


def shorten(body):
    """A body for a message, without kilobytes of base64."""
    return {k: (f"<{len(v)} figures>" if k == "figures" else v) for k, v in body.items()}


@pytest.fixture(scope="module")
def small_result_server(start_server):
    """--result-limit 4096: figures of a few KB are over the budget, well within the 64 KiB
    the frame's header may take besides."""
    srv = start_server("--result-limit", str(SMALL_RESULT_LIMIT), "--concurrency", "2")
    start_plot_zygote(srv)
    return srv


# -- the forgery works: what the contract allows is returned -------------------------------

ACCEPTED = {
    # (fields, the figures' sizes, figures_truncated)
    "one": ("{'figures': [fig(png(8, 6), 8, 6)]}", [(8, 6)], False),
    "real-and-truncated": ("{'figures': [fig(real(), 640, 480)], 'figures_truncated': True}",
                           [(640, 480)], True),
    "sixteen": ("{'figures': [fig(png(k, 1), k, 1) for k in range(1, 17)]}",
                [(k, 1) for k in range(1, 17)], False),
    "largest-dims": ("{'figures': [fig(png(2**31 - 1, 2**31 - 1), 2**31 - 1, 2**31 - 1)]}",
                     [(2**31 - 1, 2**31 - 1)], False),
    "empty-and-false": ("{'figures': [], 'figures_truncated': False}", [], False),
}


@pytest.mark.parametrize("fields, sizes, truncated", ACCEPTED.values(), ids=list(ACCEPTED))
def test_forged_figures_within_the_contract_are_returned(server, fields, sizes, truncated):
    """The control for the refusals below: the same forgery, within the contract, is a 200
    answer with exactly those figures (so a refusal is the check's doing, not a broken
    forgery)."""
    body = server.execute(forging(fields))
    assert result_of(body) == "forged"
    assert pngs_of(body) == sizes
    assert ("figures" in body) == bool(sizes), shorten(body)
    assert body.get("figures_truncated", False) is truncated, shorten(body)


# -- each rule of the contract, broken alone -----------------------------------------------

REFUSED = {
    # figures / figures_truncated themselves
    "figures-object": "{'figures': {'0': fig(png(8, 8), 8, 8)}}",
    "figures-string": "{'figures': b64(png(8, 8))}",
    "figures-null": "{'figures': None}",
    "seventeen": "{'figures': [fig(png(k, 1), k, 1) for k in range(1, 18)]}",
    "truncated-string": "{'figures': [fig(png(8, 8), 8, 8)], 'figures_truncated': 'yes'}",
    "truncated-one": "{'figures_truncated': 1}",
    "truncated-null": "{'figures_truncated': None}",
    # the entry's shape
    "entry-string": "{'figures': [b64(png(8, 8))]}",
    "extra-key": "{'figures': [fig(png(8, 8), 8, 8, dpi=100)]}",
    "missing-format": "{'figures': [{'width': 8, 'height': 8, 'content': b64(png(8, 8))}]}",
    "format-svg": "{'figures': [fig(png(8, 8), 8, 8, format='svg')]}",
    "format-upper": "{'figures': [fig(png(8, 8), 8, 8, format='PNG')]}",
    "format-number": "{'figures': [fig(png(8, 8), 8, 8, format=1)]}",
    "format-null": "{'figures': [fig(png(8, 8), 8, 8, format=None)]}",
    "content-number": "{'figures': [fig(b'', 8, 8, content=12345)]}",
    # the dimensions
    "width-differs": "{'figures': [fig(real(), 641, 480)]}",
    "height-differs": "{'figures': [fig(real(), 640, 479)]}",
    "dims-swapped": "{'figures': [fig(real(), 480, 640)]}",
    "width-0": "{'figures': [fig(png(0, 8), 0, 8)]}",
    "height-0": "{'figures': [fig(png(8, 0), 8, 0)]}",
    "width-2^31": "{'figures': [fig(png(2**31, 1), 2**31, 1)]}",
    "height-2^32-1": "{'figures': [fig(png(1, 2**32 - 1), 1, 2**32 - 1)]}",
    "width-real": "{'figures': [fig(png(8, 8), 8.0, 8)]}",
    "width-string": "{'figures': [fig(png(8, 8), '8', 8)]}",
    "width-negative": "{'figures': [fig(png(8, 8), -8, 8)]}",
    # the PNG
    "not-png": "{'figures': [fig(b'GIF89a' + bytes(40), 8, 8)]}",
    "gif-signature": "{'figures': [fig(png(8, 8, signature=b'GIF89a\\0\\0'), 8, 8)]}",
    "ihdr-length-14": "{'figures': [fig(png(8, 8, ihdr_length=14), 8, 8)]}",
    "ihdr-type-lowercase": "{'figures': [fig(png(8, 8, ihdr=b'iHDR'), 8, 8)]}",
    "idat-first": "{'figures': [fig(png(8, 8, ihdr=b'IDAT'), 8, 8)]}",
    "empty-content": "{'figures': [fig(b'', 8, 8)]}",
    "signature-only": "{'figures': [fig(png(8, 8)[:8], 8, 8)]}",
    # 23 bytes: the PNG cut inside its height. A decoder reading 24 bytes anyway would read
    # the padded group as 0xFFFFFF, which makes the height claimed here.
    "cut-in-ihdr": "{'figures': [fig(png(8, 0x00ABCDEF)[:23], 8, 0x00FFFFFF)]}",
    # the base64
    "base64-mime-lines": "{'figures': [fig(b'', 640, 480, content=mime(b64(real())))]}",
    "base64-trailing-newline": "{'figures': [fig(b'', 8, 8, content=b64(png(8, 8)) + '\\n')]}",
    "base64-space": "{'figures': [fig(b'', 8, 8, content=b64(png(8, 8)) + ' ')]}",
    "base64-no-padding": ("{'figures': [fig(b'', 8, 8, "
                          "content=b64(padded(png(8, 8))).rstrip('='))]}"),
    "base64-extra-padding": "{'figures': [fig(b'', 8, 8, content=b64(png(8, 8)) + '====')]}",
    "base64-urlsafe": ("{'figures': [fig(b'', 640, 480, content=b64(real())"
                       ".replace('+', '-').replace('/', '_'))]}"),
    "base64-nul": "{'figures': [fig(b'', 8, 8, content=b64(png(8, 8)) + '\\0AAA')]}",
    # one bad figure among good ones
    "bad-third": ("{'figures': [fig(png(1, 1), 1, 1), fig(png(2, 1), 2, 1), "
                  "fig(png(3, 1), 4, 1)]}"),
}


@pytest.mark.parametrize("fields", REFUSED.values(), ids=list(REFUSED))
def test_figures_breaking_the_contract_are_refused(server, fields):
    """Each forgery breaks one rule of the contract: refused, nothing reaches the client."""
    assert_refused(server.execute(forging(fields)))
    assert_still_serving(server)


def test_format_with_a_nul_is_refused(server):
    """"png" followed by a NUL and anything else is not "png"."""
    body = server.execute(forging("{'figures': [fig(png(8, 8), 8, 8, "
                                  "format='png\\0<svg onload=alert(1)>')]}"))
    assert_refused(body)


# -- the result limit ----------------------------------------------------------------------

BUDGET = {
    # (fields, refused): base64 lengths against 4096 - len('"forged"') = 4088 bytes
    "one-over": ("{'figures': [fig(png(8, 8, noise=3200), 8, 8)]}", True),
    "two-over-together": ("{'figures': [fig(png(8, 8, noise=1600), 8, 8), "
                          "fig(png(8, 8, noise=1600), 8, 8)]}", True),
    "sixteen-over-together": ("{'figures': [fig(png(8, 8, noise=200), 8, 8)] * 16}", True),
    "real-default-figure": ("{'figures': [fig(real(), 640, 480)]}", True),
    "two-within": ("{'figures': [fig(png(8, 8, noise=1200), 8, 8), "
                   "fig(png(8, 8, noise=1200), 8, 8)]}", False),
}


@pytest.mark.parametrize("fields, refused", BUDGET.values(), ids=list(BUDGET))
def test_figures_over_the_result_budget_are_refused(small_result_server, fields, refused):
    """--result-limit 4096: forged figures whose base64 exceeds what the result left are
    refused (the harness would have dropped them and said figures_truncated); figures
    within it are returned."""
    body = small_result_server.execute(forging(fields))
    if refused:
        assert_refused(body)
    else:
        assert result_of(body) == "forged"
        assert pngs_of(body) == [(8, 8), (8, 8)]
        total = sum(len(f["content"]) for f in body["figures"])
        assert total + len('"forged"') <= SMALL_RESULT_LIMIT, total
    assert_still_serving(small_result_server)


# -- a frame of the script's own -----------------------------------------------------------


def writing_frame(header: str, result: bytes) -> str:
    """A script that writes the frame `header` (a Python expression for the header object)
    `\\n` `result` on every descriptor that may be the result channel (as test_answer.py
    does), then sleeps: the service answers from that frame."""
    return FORGERY + src(f"""
        import json, time
        def main():
            body = json.dumps({header}).encode() + b"\\n" + {result!r}
            frame = struct.pack("=Q", len(body)) + body
            for fd in range(3, 64):
                try:
                    os.write(fd, frame)
                except OSError:
                    pass
            time.sleep(60)
            return "slept"
        """)


def test_own_frame_with_a_valid_figure_is_answered(server):
    """Control: a frame of the script's own with a figure within the contract is answered
    with that figure (the script could have left it open instead)."""
    body = server.execute(writing_frame(
        "{'status': 'ok', 'figures': [fig(png(5, 7), 5, 7)]}", b'"own"'), timeout=10)
    assert result_of(body) == "own"
    assert pngs_of(body) == [(5, 7)]


@pytest.mark.parametrize("header", [
    "{'status': 'ok', 'figures': [fig(b'GIF89a' + bytes(40), 8, 8)]}",
    "{'status': 'ok', 'figures': [fig(real(), 640, 481)]}",
    "{'status': 'ok', 'figures': [fig(png(8, 8), 8, 8)] * 17}",
    "{'status': 'ok', 'figures': 'x', 'figures_truncated': True}",
], ids=["not-png", "dims-differ", "seventeen", "not-a-list"])
def test_own_frame_with_bad_figures_is_refused(server, header):
    """A frame of the script's own is held to the same contract."""
    assert_refused(server.execute(writing_frame(header, b'"own"'), timeout=10))
    assert_still_serving(server)


def test_figures_in_an_error_frame_are_dropped(server):
    """Figures come only with a 200: an error frame's figures (even valid ones) are not
    passed on."""
    body = server.execute(writing_frame(
        "{'status': 'runtime_error', 'error': 'E: forged', 'traceback': '', "
        "'figures': [fig(png(5, 7), 5, 7)], 'figures_truncated': True}", b""), timeout=10)
    assert_error(body, "RUNTIME_ERROR")
    assert body["error"] == "E: forged", body
    assert not {"figures", "figures_truncated"} & body.keys(), shorten(body)


# -- matplotlib replaced -------------------------------------------------------------------

SAVEFIG = {
    # (replacement of Figure.savefig, code, what the error names)
    "gif": ("lambda self, f, **kw: f.write(b'GIF89a' + bytes(40))", "RUNTIME_ERROR",
            "ValueError: savefig() did not write a PNG image"),
    "nothing": ("lambda self, f, **kw: None", "RUNTIME_ERROR",
                "ValueError: savefig() did not write a PNG image"),
    "text": ("lambda self, f, **kw: f.write('not bytes')", "RUNTIME_ERROR", "TypeError"),
    "raises": ("lambda self, f, **kw: (_ for _ in ()).throw(OSError(5, 'disk on fire'))",
               "RUNTIME_ERROR", "disk on fire"),
    "memory-error": ("lambda self, f, **kw: (_ for _ in ()).throw(MemoryError())",
                     "MEMORY_LIMIT", None),
}


@pytest.mark.parametrize("replacement, code, needle", SAVEFIG.values(), ids=list(SAVEFIG))
def test_savefig_replaced(server, replacement, code, needle):
    """savefig replaced by the script to write something else than a PNG, or to fail: the
    harness's own check makes it the script's error, naming figure 1 (a MemoryError is
    MEMORY_LIMIT); no figure."""
    script = src(f"""
        import matplotlib.figure
        import matplotlib.pyplot as plt
        def main():
            plt.plot([1, 2])
            matplotlib.figure.Figure.savefig = {replacement}
            return 1
        """)
    body = assert_error(server.execute(script), code)
    if needle:
        assert body["error"].startswith("Drawing figure 1, left open by main(), failed:"), body
        assert needle in body["error"], body["error"]
    assert "figures" not in body, shorten(body)
    assert_still_serving(server)


def test_savefig_writing_a_png_header_that_lies(server):
    """savefig replaced to write a PNG header of width 0: past the harness's check (a PNG
    by its signature), refused by the service's."""
    script = FORGERY + src("""
        import matplotlib.figure
        def main():
            plt.plot([1, 2])
            matplotlib.figure.Figure.savefig = lambda self, f, **kw: f.write(png(0, 8))
            return 1
        """)
    assert_refused(server.execute(script))
    assert_still_serving(server)


# -- huge and many -------------------------------------------------------------------------


def test_figure_over_the_pixel_limit_is_a_runtime_error(server):
    """figsize (1000000, 1) at 100 dpi: 10^8 px wide, which Agg refuses before allocating
    anything (below 2^16 px a side in matplotlib 3.6, Debian 12's; below 2^23 in later
    ones, Debian 13's: 100000 px a side passes there and ends as MEMORY_LIMIT, see below):
    the script's RUNTIME_ERROR naming figure 1."""
    script = ("import matplotlib.pyplot as plt\ndef main():\n"
              "    plt.figure(figsize=(1000000, 1), dpi=100)\n    return 1\n")
    body = assert_error(server.execute(script), "RUNTIME_ERROR")
    assert body["error"].startswith(
        "Drawing figure 1, left open by main(), failed: ValueError"), body["error"]
    assert "too large" in body["error"], body["error"]
    assert_still_serving(server)


def test_figure_of_a_billion_pixels_is_a_memory_limit(server):
    """figsize (300, 300) at 100 dpi: 30000x30000 px, a 3.6 GB canvas. A MemoryError
    while drawing: MEMORY_LIMIT (not a service fault, not a crash)."""
    script = ("import matplotlib.pyplot as plt\ndef main():\n"
              "    plt.figure(figsize=(300, 300), dpi=100)\n    plt.plot([1, 2])\n"
              "    return 1\n")
    body = assert_error(server.execute(script, timeout=10), "MEMORY_LIMIT")
    assert "figures" not in body
    assert_still_serving(server)


def test_many_open_figures(server):
    """200 figures left open: the first 16 drawn and returned, figures_truncated, within
    the request's time limit (the rest are never drawn). (1000 took more than the 10 s
    limit just to be created under qemu's TCG in the docker lane, before any was drawn.)"""
    script = src("""
        import matplotlib.pyplot as plt
        def main():
            for k in range(200):
                plt.figure(figsize=(1, 1), dpi=10 + k % 50)
            return len(plt.get_fignums())
        """)
    body = server.execute(script, timeout=10)
    assert result_of(body) == 200
    assert pngs_of(body) == [(10 + k, 10 + k) for k in range(FIGURES_MAX)]
    assert body.get("figures_truncated") is True, shorten(body)
    assert_still_serving(server)


def test_forged_collect_cannot_blame_the_service(server):
    """collect() replaced by one that raises, or returns what the harness cannot use: the
    script's RUNTIME_ERROR, never INTERNAL."""
    for fields in ("1 / 0", "[1]", "{'status': 'ok'}"):
        script = FORGERY + src(f"""
            def main():
                sys.modules["_pyexecd_figures"].collect = lambda budget: {fields}
                return 1
            """)
        body = assert_error(server.execute(script), "RUNTIME_ERROR")
        assert "figures" not in body, shorten(body)
        # main() did return: the blame is the figures', not an early exit's.
        assert body["error"].startswith("Collecting the figures left open by main() failed: "), \
            shorten(body)
    assert_still_serving(server)
