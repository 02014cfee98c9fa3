#!/usr/bin/python3
"""Turns a text file into a C header holding it as a string constant.

Usage: embed.py INPUT OUTPUT NAME. Used to compile the Python harness into the binary, so
the zygote never reads it from a path someone else could write."""
import sys


def main():
    src, dst, name = sys.argv[1:4]
    data = open(src, "rb").read()
    out = [f"/* Generated from {src.rsplit('/', 1)[-1]} by tools/embed.py: do not edit. */\n",
           "#pragma once\n", f"static const char {name}[] =\n"]
    for line in data.splitlines(True):
        esc = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else f"\\{b:03o}"
                      for b in line)
        out.append(f'        "{esc}"\n')
    out.append("        ;\n")
    with open(dst, "w") as f:
        f.writelines(out)


main()
