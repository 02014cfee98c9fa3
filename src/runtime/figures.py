"""pyexecd's figures: every matplotlib figure still open when main() returns, rendered to
PNG for the response ("figures").

Imported once in the zygote as `_pyexecd_figures`, before the harness. It never imports
matplotlib itself: a script that did not import pyplot has no figure, and pays nothing.
What it reports is untrusted all the same (the script shares the process and can replace
any of matplotlib's functions): the service checks every figure again (api/figures.c).
"""

import sys as _sys
from binascii import b2a_base64 as _b2a_base64
from io import BytesIO as _BytesIO

MAX = 16  # figures in a response, at most
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class RenderError(Exception):
    """Drawing figure number `index` (1-based, in the response's order) raised `cause`."""

    def __init__(self, index, cause):
        super().__init__(index)
        self.index = index
        self.cause = cause


def _png_size(png):
    """(width, height) of a PNG's IHDR chunk; ValueError when `png` is not a PNG."""
    if (type(png) is not bytes or len(png) < 24 or png[:8] != _PNG_SIGNATURE
            or png[12:16] != b"IHDR"):
        raise ValueError("savefig() did not write a PNG image")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def collect(budget):
    """The header fields for the figures pyplot still has open: {"figures": [...]} and
    {"figures_truncated": True} when there were more than MAX, or when the next one's
    base64 text did not fit in `budget` bytes (the figures are always a prefix of the open
    ones, in pyplot's order). {} when pyplot was never imported or no figure is open.
    Raises RenderError when drawing one fails (the script's figure, the script's error)."""
    plt = _sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return {}
    numbers = list(plt.get_fignums())
    figures = []
    truncated = len(numbers) > MAX
    for index, number in enumerate(numbers[:MAX], 1):
        try:
            buf = _BytesIO()
            plt.figure(number).savefig(buf, format="png")
            png = buf.getvalue()
            width, height = _png_size(png)
        except BaseException as e:  # noqa: B036 - whatever drawing raised is reported
            raise RenderError(index, e) from e
        content = _b2a_base64(png, newline=False).decode("ascii")
        if len(content) > budget:
            truncated = True
            break
        budget -= len(content)
        figures.append({"format": "png", "width": width, "height": height, "content": content})
    fields = {"figures": figures} if figures else {}
    if truncated:
        fields["figures_truncated"] = True
    return fields


def warm():
    """In the zygote, after matplotlib was preloaded: draws and encodes one small line plot,
    so that what every figure needs (pyplot's Agg canvas, the default font's glyphs, PIL's
    PNG writer, lazily imported) is loaded once and shared, not loaded by each request."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    fig.gca().plot([0, 1], [1, 0], label="x")
    fig.gca().set_title("warm")
    buf = _BytesIO()
    fig.savefig(buf, format="png")
    plt.close("all")
    _png_size(buf.getvalue())
