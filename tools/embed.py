#!/usr/bin/python3
"""Turns a text file into a C header holding it as a string constant.

Usage: embed.py INPUT OUTPUT NAME. Used to compile the Python harness into the binary, so
the zygote never reads it from a path someone else could write. c_literal() is shared with
tools/embed-assets.py."""
import sys


def c_literal(data: bytes, indent="        "):
    """`data` as adjacent C string literals, one per input line. Every byte outside
    printable ASCII, and '"', '\\' and '?' (no trigraphs), is a three-digit octal escape,
    which can never swallow the digit after it."""
    out = []
    for line in data.splitlines(True):
        esc = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}"
                      for b in line)
        out.append(f'{indent}"{esc}"\n')
    return "".join(out) or f'{indent}""\n'


def main():
    src, dst, name = sys.argv[1:4]
    data = open(src, "rb").read()
    out = [f"/* Generated from {src.rsplit('/', 1)[-1]} by tools/embed.py: do not edit. */\n",
           "#pragma once\n", f"static const char {name}[] =\n", c_literal(data), "        ;\n"]
    with open(dst, "w") as f:
        f.writelines(out)


if __name__ == "__main__":
    main()
