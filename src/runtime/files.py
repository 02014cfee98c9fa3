"""pyexecd's in-sandbox file handling: a job's input (stdin, args, kwargs, input files) and
the files a script leaves, collected for the response ("return_files").

Imported once in the zygote as `_pyexecd_files`, before the harness. Everything runs in
the sandbox: the service never opens a path inside one. Input is written before any code
of the script runs; files are collected after main() returned, while threads or
processes the script started may still run and change the tree, so every path is opened
one component at a time, relative to a directory descriptor opened before the script ran,
never following a symbolic link, and every file is checked to be a regular file after it
was opened. What this module reports is untrusted all the same (the script shares the
process): the service checks it again (api/files.c).

Everything it needs is bound at import time, before any script runs.
"""

import hashlib as _hashlib
import os as _os
import stat as _stat
from binascii import a2b_base64 as _a2b_base64
from binascii import b2a_base64 as _b2a_base64
from json import loads as _json_loads

_open = _os.open
_close = _os.close
_read = _os.read
_write = _os.write
_fstat = _os.fstat
_mkdir = _os.mkdir
_scandir = _os.scandir
_lseek = _os.lseek
_dup2 = _os.dup2
_memfd_create = _os.memfd_create
_sha256 = _hashlib.sha256
_S_ISREG = _stat.S_ISREG

_DIR_FLAGS = _os.O_RDONLY | _os.O_DIRECTORY | _os.O_NOFOLLOW | _os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted where a file was opens at once (and is then skipped).
_FILE_FLAGS = _os.O_RDONLY | _os.O_NOFOLLOW | _os.O_NONBLOCK | _os.O_NOCTTY | _os.O_CLOEXEC
_CREATE_FLAGS = _os.O_WRONLY | _os.O_CREAT | _os.O_EXCL | _os.O_NOFOLLOW | _os.O_CLOEXEC

DEPTH_MAX = 16  # components of a returned path, the file's name included
PATH_MAX = 1024  # bytes of a returned path (the contract's path rules)
WALK_MAX = 10000  # directory entries looked at, at most
OMITTED_MAX = 100  # paths listed in files_omitted, at most
CHUNK = 1 << 20

# A path gone, or replaced by something that is not followed: skipped, not an error.
_GONE = (2, 20, 40, 6)  # ENOENT, ENOTDIR, ELOOP, ENXIO


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = _write(fd, view[:CHUNK])
        view = view[n:]


class Job:
    """One request's input, applied on construction; collect() gathers its files.

    `job_input` is the service's control object (JSON: "return_files" with its limits), a
    newline, and the request body as the client sent it, which the service has checked:
    strict JSON, and every field as the contract says. Its values are read from it here,
    so that they arrive exactly (integers beyond 64 bits, NULs in strings)."""

    def __init__(self, job_input):
        head, _, body = job_input.partition(b"\n")
        control = _json_loads(head)
        request = _json_loads(body)
        self.args = tuple(request.get("args", ()))
        self.kwargs = dict(request.get("kwargs", {}))
        self._inputs = {}  # path -> (size, sha256 digest) of each input file
        self._workdir = None
        self._max_files = self._max_bytes = 0
        wanted = control.get("return_files")
        if wanted is not None:
            self._max_files = wanted["max_files"]
            self._max_bytes = wanted["max_bytes"]
            self._workdir = _open(".", _DIR_FLAGS)
        for entry in request.get("files", ()):
            path, content = entry["path"], entry["content"]
            if entry.get("encoding") == "base64":
                data = _a2b_base64(content, strict_mode=True)
            else:
                data = content.encode("utf-8")
            _write_input(path, data)
            if self._workdir is not None:
                self._inputs[path] = (len(data), _sha256(data).digest())
        stdin = request.get("stdin")
        if stdin:
            _set_stdin(stdin.encode("utf-8"))

    def collect(self):
        """The header fields "files", "files_omitted" and "files_truncated" of the frame,
        each only when it has content; {} when the request did not ask for files."""
        if self._workdir is None:
            return {}
        paths, truncated = _walk(self._workdir)
        files, omitted = [], []
        total = 0
        for path in sorted(paths, key=_path_key):
            text = _utf8(path)
            if text is None or len(text.encode("utf-8")) > PATH_MAX:
                omitted.append(text if text is not None else _repaired(path))
                continue
            try:
                data = self._read_changed(path, total, len(files), omitted)
            except OSError as e:
                if e.errno in _GONE:
                    continue
                omitted.append(text)  # EMFILE and the like: listed, not lost silently
                continue
            if data is None:
                continue
            files.append({"path": text, "size": len(data), "encoding": "base64",
                          "content": _b2a_base64(data, newline=False).decode("ascii")})
            total += len(data)
        fields = {}
        if files:
            fields["files"] = files
        if omitted:
            fields["files_omitted"] = omitted[:OMITTED_MAX]
        if truncated or len(omitted) > OMITTED_MAX:
            fields["files_truncated"] = True
        return fields

    def _read_changed(self, path, total, count, omitted):
        """The content of a file to return; None for one that is not returned (not a regular
        file, an input file left as it was, or one that does not fit: then listed in
        `omitted`)."""
        fd = _open_beneath(self._workdir, path)
        try:
            st = _fstat(fd)
            if not _S_ISREG(st.st_mode):
                return None
            data = None
            original = self._inputs.get(path)
            if original is not None and st.st_size == original[0]:
                data = _read_upto(fd, st.st_size)
                if len(data) == original[0] and _sha256(data).digest() == original[1]:
                    return None
            size = st.st_size if data is None else len(data)
            if count >= self._max_files or size > self._max_bytes - total:
                omitted.append(path)
                return None
            return data if data is not None else _read_upto(fd, size)
        finally:
            _close(fd)


def _write_input(path, data):
    """Creates one input file (and its parent directories) below the working directory."""
    parts = path.split("/")
    d = _open(".", _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                _mkdir(part, 0o755, dir_fd=d)
            except FileExistsError:
                pass
            sub = _open(part, _DIR_FLAGS, dir_fd=d)
            _close(d)
            d = sub
        fd = _open(parts[-1], _CREATE_FLAGS, 0o644, dir_fd=d)
        try:
            _write_all(fd, data)
        finally:
            _close(fd)
    finally:
        _close(d)


def _set_stdin(data):
    """Makes `data` the process's standard input (fd 0, inherited by child processes)."""
    fd = _memfd_create("stdin", _os.MFD_CLOEXEC)
    try:
        _write_all(fd, data)
        _lseek(fd, 0, _os.SEEK_SET)
        _dup2(fd, 0)
    finally:
        _close(fd)


def _walk(workdir):
    """The relative paths of the regular files below `workdir` (as the directory entries
    say: checked again when opened), at most DEPTH_MAX components deep. Returns (paths,
    truncated), truncated when the walk stopped at WALK_MAX entries."""
    paths = []
    seen = 0
    stack = [("", 1)]  # (directory path, depth of its entries)
    while stack:
        prefix, depth = stack.pop()
        try:
            fd = _open_beneath(workdir, prefix, directory=True) if prefix else _open(".", _DIR_FLAGS, dir_fd=workdir)
        except OSError as e:
            if e.errno in _GONE:
                continue
            raise
        try:
            with _scandir(fd) as it:
                for entry in it:
                    seen += 1
                    if seen > WALK_MAX:
                        return paths, True
                    path = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        if depth < DEPTH_MAX:
                            stack.append((path + "/", depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        paths.append(path)
        finally:
            _close(fd)
    return paths, False


def _open_beneath(workdir, path, directory=False):
    """Opens `path` below `workdir` one component at a time, following no symbolic link."""
    parts = path.rstrip("/").split("/")
    d = workdir
    try:
        for part in parts[:-1]:
            sub = _open(part, _DIR_FLAGS, dir_fd=d)
            if d != workdir:
                _close(d)
            d = sub
        return _open(parts[-1], _DIR_FLAGS if directory else _FILE_FLAGS, dir_fd=d)
    finally:
        if d != workdir:
            _close(d)


def _read_upto(fd, size):
    """At most `size` bytes from the start of fd: a file that grows meanwhile is cut at the
    size it had when it was looked at, one that shrinks is read to its end."""
    chunks = []
    left = size
    while left > 0:
        chunk = _read(fd, min(left, CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _path_key(path):
    """Byte order of the UTF-8 path (names that are not UTF-8 keep their own bytes)."""
    return path.encode("utf-8", "surrogateescape")


def _utf8(path):
    """The path if it is valid UTF-8 (os gives undecodable bytes as surrogates), else None."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return None


def _repaired(path):
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
