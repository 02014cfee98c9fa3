"""What a successful /execute answer holds: Execution, its OutputFile and Figure items, and
the parsing of the response's JSON object into them.

The parsers raise ValueError when a field does not hold what the API says (the client turns
that into UnexpectedResponseError). Base64 is decoded strictly (RFC 4648, padding, no white
space), as the service encodes it.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Mapping

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what}: the content is not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValueError(f"{what}: the content is not base64 ({e})") from None


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} is not an integer")
    return value


def safe_relative_path(path: str) -> PurePath:
    """`path`, a service-side relative path ("out/a.csv"), as a relative path of this
    system; ValueError if it could land outside the directory it is saved under: absolute,
    empty, with an empty, "." or ".." component, a NUL, or a component this system would
    split or root (a backslash or a drive on Windows)."""
    parts = path.split("/")
    if not path or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing to save {path!r}: not a plain relative path")
    for part in parts:
        native = PurePath(part)
        if native.name != part or native.anchor or native.drive:
            raise ValueError(f"refusing to save {path!r}: the component {part!r} is not "
                             "a plain file name here")
    return PurePath(*parts)


@dataclass(frozen=True)
class OutputFile:
    """A file the script created or changed (`return_files=True`): its path relative to the
    script's working directory and its content, decoded."""

    path: str
    content: bytes = field(repr=False)
    size: int

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The content decoded as text."""
        return self.content.decode(encoding, errors)

    def save(self, directory: str | os.PathLike[str] = ".") -> Path:
        """Writes the content to `directory`/`path` (creating the parent directories,
        replacing a file already there) and returns that path. Refuses (ValueError) a path
        that could land outside `directory`."""
        target = Path(directory) / safe_relative_path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.content)
        return target


@dataclass(frozen=True)
class Figure:
    """A figure the script drew (matplotlib): its format ("png"), size in pixels, and the
    image's bytes."""

    format: str
    width: int
    height: int
    data: bytes = field(repr=False)

    def png_bytes(self) -> bytes:
        """The PNG image; ValueError if the figure is not a PNG."""
        if self.format != "png" or not self.data.startswith(PNG_SIGNATURE):
            raise ValueError(f"the figure is not a PNG (format {self.format!r})")
        return self.data

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the PNG to `path` and returns it."""
        target = Path(path)
        target.write_bytes(self.png_bytes())
        return target

    def _repr_png_(self) -> bytes | None:
        """Shown as an image by IPython and Jupyter."""
        return self.data if self.format == "png" else None


@dataclass(frozen=True)
class Execution:
    """A successful run: what main() returned (`result`), what the script printed, how long
    it ran, the files it created or changed (with return_files) and the figures it drew.
    `files` and `figures` are empty lists when the response has none. `response` is the
    whole JSON object, `request_id` the service's X-Request-Id for it."""

    result: Any
    stdout: str
    stderr: str
    duration_ms: float
    files: list[OutputFile] = field(default_factory=list)
    files_omitted: list[str] = field(default_factory=list)
    files_truncated: bool = False
    figures: list[Figure] = field(default_factory=list)
    figures_truncated: bool = False
    request_id: str | None = None
    response: dict[str, Any] = field(default_factory=dict, repr=False)

    def save_files(self, directory: str | os.PathLike[str] = ".") -> list[Path]:
        """Saves every returned file under `directory` (see OutputFile.save)."""
        return [f.save(directory) for f in self.files]

    @classmethod
    def from_response(cls, response: Mapping[str, Any],
                      request_id: str | None = None) -> Execution:
        """The Execution of a 200 answer's JSON object; ValueError if it is not one."""
        if "result" not in response:
            raise ValueError("no result")
        stdout, stderr = response.get("stdout"), response.get("stderr")
        duration = response.get("duration_ms")
        if not isinstance(stdout, str) or not isinstance(stderr, str):
            raise ValueError("stdout or stderr is not a string")
        if not isinstance(duration, float):
            duration = _int(duration, "duration_ms")
        return cls(result=response["result"], stdout=stdout, stderr=stderr,
                   duration_ms=float(duration),
                   files=parse_output_files(response.get("files")),
                   files_omitted=parse_str_list(response.get("files_omitted"), "files_omitted"),
                   files_truncated=response.get("files_truncated") is True,
                   figures=parse_figures(response.get("figures")),
                   figures_truncated=response.get("figures_truncated") is True,
                   request_id=request_id, response=dict(response))


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def parse_str_list(value: Any, what: str) -> list[str]:
    """A list of strings (absent: empty)."""
    items = _list(value, what)
    if not all(isinstance(s, str) for s in items):
        raise ValueError(f"{what} holds something other than strings")
    return list(items)


def parse_output_files(value: Any) -> list[OutputFile]:
    """The response's "files": [{"path", "size", "encoding": "base64", "content"}]."""
    files = []
    for i, entry in enumerate(_list(value, "files")):
        what = f"files[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError(f"{what} is not an object with a path")
        if entry.get("encoding", "base64") != "base64":
            raise ValueError(f"{what}: unknown encoding {entry.get('encoding')!r}")
        content = _b64decode(entry.get("content"), what)
        size = _int(entry.get("size", len(content)), f"{what}: size")
        if size != len(content):
            raise ValueError(f"{what}: size {size} is not the content's {len(content)} bytes")
        files.append(OutputFile(path=entry["path"], content=content, size=size))
    return files


def parse_figures(value: Any) -> list[Figure]:
    """The response's "figures": [{"format", "width", "height", "content" (base64)}]."""
    figures = []
    for i, entry in enumerate(_list(value, "figures")):
        what = f"figures[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("format"), str):
            raise ValueError(f"{what} is not an object with a format")
        width = _int(entry.get("width"), f"{what}: width")
        height = _int(entry.get("height"), f"{what}: height")
        figures.append(Figure(format=entry["format"], width=width, height=height,
                              data=_b64decode(entry.get("content"), what)))
    return figures
