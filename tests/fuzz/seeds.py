#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz corpora (corpus/<target>/seed-*).

The response and config targets read binary layouts (see the comment at the top of
fuzz-response.c and fuzz-config.c); this script is their readable source. Files found by
the fuzzer (named by their SHA-1) sit next to the seeds and are not touched here. Run it
again after changing a layout: `tests/fuzz/seeds.py`.
"""
import base64
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- request: plain POST /execute bodies ------------------------------------------------

SCRIPT = '"def main():\\n    return 1\\n"'
REQUESTS = {
    "ok-minimal": '{"script":' + SCRIPT + '}',
    "ok-all-fields": '{"script":' + SCRIPT + ',"timeout":2.5,"memory_mb":128}',
    "ok-timeout-int": '{"timeout":5,"script":' + SCRIPT + '}',
    "ok-timeout-max": '{"script":"x=1","timeout":10}',
    "ok-timeout-tiny": '{"script":"x=1","timeout":0.0004}',
    "ok-timeout-exp": '{"script":"x=1","timeout":1e-3}',
    "ok-memory-max": '{"script":"x=1","memory_mb":256}',
    "ok-unicode": '{"script":"s = \\"\\u00e9\\ud83d\\ude00\u00e9\U0001F600\\"\\ndef main(): return s"}',
    "ok-whitespace": ' \n\t{ "script" : "pass" }\r\n ',
    "bad-empty": "",
    "bad-truncated": '{"script":',
    "bad-garbage": "garbage",
    "bad-trailing": '{"script":"a"} x',
    "bad-two-objects": '{"script":"a"}{"script":"b"}',
    "bad-array": '["script"]',
    "bad-string": '"script"',
    "bad-number": "1",
    "bad-null": "null",
    "bad-duplicate": '{"script":"a","script":"b"}',
    "bad-unknown-field": '{"script":"a","network":true}',
    "bad-script-number": '{"script":1}',
    "bad-script-null": '{"script":null}',
    "bad-script-array": '{"script":["a"]}',
    "bad-missing-script": '{"timeout":1}',
    "bad-empty-object": "{}",
    "bad-script-empty": '{"script":""}',
    "bad-script-nul": '{"script":"a\\u0000b"}',
    "bad-lone-surrogate": '{"script":"\\ud800"}',
    "bad-timeout-zero": '{"script":"a","timeout":0}',
    "bad-timeout-negative": '{"script":"a","timeout":-1}',
    "bad-timeout-string": '{"script":"a","timeout":"5"}',
    "bad-timeout-huge": '{"script":"a","timeout":1e400}',
    "bad-timeout-over": '{"script":"a","timeout":10.0001}',
    "bad-timeout-bool": '{"script":"a","timeout":true}',
    "bad-memory-zero": '{"script":"a","memory_mb":0}',
    "bad-memory-over": '{"script":"a","memory_mb":257}',
    "bad-memory-real": '{"script":"a","memory_mb":1.5}',
    "bad-memory-string": '{"script":"a","memory_mb":"128"}',
    "bad-memory-int64": '{"script":"a","memory_mb":9223372036854775808}',
    "bad-deep": '{"script":"a","x":' + "[" * 2100 + "]" * 2100 + "}",
    "bad-bom": "\ufeff{\"script\":\"a\"}",
    # stdin, args, kwargs, files, return_files (README "Files in", "Files out")
    "ok-data-all": '{"script":"x","stdin":"in\\n","args":[1,"a",null],"kwargs":{"k":[true]},'
                   '"files":[{"path":"in/a.csv","content":"a,b"},{"path":"b","content":"aGk=",'
                   '"encoding":"base64"}],"return_files":true}',
    "ok-data-bigint-nul": '{"script":"x","args":[1180591620717411303424,"\\u0000"],"memory_mb":8}',
    "ok-data-empty": '{"script":"x","stdin":"","args":[],"kwargs":{},"files":[],'
                     '"return_files":false}',
    "bad-data-path-dotdot": '{"script":"x","files":[{"path":"a/../b","content":""}]}',
    "bad-data-path-conflict": '{"script":"x","files":[{"path":"a/b","content":""},'
                              '{"path":"a.txt","content":""},{"path":"a","content":""}]}',
    "bad-data-duplicate": '{"script":"x","files":[{"path":"a","content":""},'
                          '{"path":"a","content":"1"}]}',
    "bad-data-base64": '{"script":"x","files":[{"path":"a","content":"aGl=","encoding":"base64"}]}',
    "bad-data-key": '{"script":"x","files":[{"path":"a","content":"","mode":1}]}',
    "bad-data-types": '{"script":"x","stdin":1,"args":{},"kwargs":[],"return_files":"yes"}',
    "big-data-files": '{"script":"x","files":[' + ",".join(
        '{"path":"f%d","content":"%s"}' % (i, "x" * 100) for i in range(3)) + ']}',
}
for name, body in REQUESTS.items():
    write("request", name, body.encode())
write("request", "bad-raw-invalid-utf8", b'{"script":"\xff\xfe"}')
write("request", "bad-raw-nul-after", b'{"script":"a"}\x00')
write("request", "bad-raw-nul-inside", b'{"script":"a\x00b"}')
write("request", "bad-raw-control", b'{"script":"a\x01b"}')


# --- response: ExecOutcome header + stdout + stderr + frame -----------------------------

END = {"normal": 0, "timeout": 1, "output": 2, "result": 3, "setup": 4, "internal": 5,
       "expired": 6}
NOT_STARTED = 128  # or'd into the end byte: the sandbox never acknowledged its job
HAVE_STATUS, OUT_TRUNC, ERR_TRUNC, OOM, REQ_ID, WHAT, NULLS, COMPLETE = 1, 2, 4, 8, 16, 32, 64, 128


def outcome(frame=b"", out=b"", err=b"", end="normal", flags=HAVE_STATUS, wait=0,
            stage=0, errno=0, ierrno=0, timeout=10000, duration_us=12345, started=True,
            files=False, no_space=False):
    first = (END[end] | (0 if started else NOT_STARTED) | (64 if files else 0)
             | (32 if no_space else 0))
    return (struct.pack("<BBiBBBIIHH", first, flags, wait, stage & 0xFF, errno, ierrno,
                        timeout, duration_us, len(out), len(err)) + out + err + frame)


OK = b'{"status":"ok"}\n'
FRAMES = {
    "ok-int": OK + b"42",
    "ok-string": OK + b'"hello \\u00e9 \\ud83d\\ude00 \\u0000"',
    "ok-object": OK + b'{"a":[1,2.5,null,true,false],"b":{"c":"d"}}',
    "ok-bigint": OK + b"123456789012345678901234567890",
    "ok-negzero": OK + b"-0.0",
    "ok-exp": OK + b"[1e300,-1E-300,0.1]",
    "ok-whitespace": OK + b" [ 1 , 2 ]\n",
    "ok-dup-keys": OK + b'{"a":1,"a":2}',
    "ok-utf8": OK + '"\u00e9\U0001F600\u2028"'.encode(),
    "nul-key": OK + b'[{"\\\\":1,"k\\u0000":"\\\\u0000"}]',
    "hostile-nul-key-cut": OK + b'{"k\\u0000":1',
    "syntax": b'{"status":"syntax_error","error":"SyntaxError: invalid syntax (line 2, '
              b'column 5)","line":2,"column":5}\n',
    "syntax-bad-line": b'{"status":"syntax_error","line":"2","column":1e3}\n',
    "missing-main": b'{"status":"missing_main","error":"The script does not define a callable '
                    b'main()"}\n',
    "runtime": b'{"status":"runtime_error","error":"ZeroDivisionError: division by zero",'
               b'"traceback":"Traceback (most recent call last):\\n  File \\"<script>\\", '
               b'line 2, in main\\n"}\n',
    "runtime-nul": b'{"status":"runtime_error","error":"a\\u0000b","traceback":"\\u0000"}\n',
    "runtime-types": b'{"status":"runtime_error","error":5,"traceback":[1]}\n',
    "not-serializable": b'{"status":"not_json_serializable","error":"set at result"}\n',
    "memory": b'{"status":"memory_error","error":"Memory limit exceeded","detail":"x"}\n',
    "too-large": b'{"status":"result_too_large","error":"9000000 bytes"}\n',
    "hostile-array-header": b'["ok"]\n1',
    "hostile-empty-header": b"\n1",
    "hostile-cut-header": b'{"status":"ok"\n1',
    "hostile-status-int": b'{"status":1}\n1',
    "hostile-unknown": b'{"status":"pwned"}\n',
    "hostile-upper": b'{"status":"OK"}\n1',
    "hostile-status-nul": b'{"status":"ok\\u0000x"}\n1',
    "hostile-dup-status": b'{"status":"ok","status":"ok"}\n1\n2',
    "hostile-trailing": OK + b"1 2",
    "hostile-two-values": OK + b"{}{}",
    "hostile-inject": OK + b'1,"code":"OK"',
    "hostile-inject-object": OK + b'1},{"x":1',
    "hostile-empty-result": OK,
    "hostile-blank-result": OK + b"   ",
    "hostile-invalid-utf8": OK + b'"\xff"',
    "hostile-surrogate-bytes": OK + b'"\xed\xa0\x80"',
    "hostile-lone-surrogate": OK + b'"\\ud800"',
    "hostile-nul-after-number": OK + b"1\x002",
    "hostile-overflow": OK + b"1e400",
    "hostile-extra-after-error": b'{"status":"runtime_error"}\nextra',
    "hostile-no-newline": b'{"status":"ok"}',
    # The deepest result the body can carry: jansson reads at most 2048 levels, and the
    # body wraps the result in one more.
    "hostile-deep-2047": OK + b"[" * 2047 + b"]" * 2047,
}
for name, frame in FRAMES.items():
    write("response", "frame-" + name, outcome(frame, out=b"hi\n", err=b"warn\n"))

OUTS = {
    "valid": (b"line 1\nline 2 \xc3\xa9\n", 0),
    "invalid": (b"a\xffb\xc0\x80c\xed\xa0\x80d", 0),
    "cut-2of3": (b"x" * 10 + b"\xe2\x82", OUT_TRUNC),
    "cut-3of4": (b"y" * 10 + b"\xf0\x9f\x98", OUT_TRUNC),
    "cut-invalid-tail": (b"z" * 10 + b"\xe0\x80", OUT_TRUNC),
    "nul-bytes": (b"a\x00b\x00", 0),
}
for name, (out, flags) in OUTS.items():
    write("response", "stdout-" + name,
          outcome(OK + b"1", out=out, err=out, flags=HAVE_STATUS | flags | (flags << 1)))

write("response", "no-frame-exit1", outcome(wait=1 << 8))
write("response", "no-frame-exit0", outcome(wait=0, out=b"bye"))
write("response", "corrupt-frame", outcome(b"garbage", wait=0))
write("response", "complete-corrupt-sigkill", outcome(b"garbage\n", wait=9,
                                                      flags=HAVE_STATUS | COMPLETE))
write("response", "complete-empty-no-status", outcome(flags=COMPLETE))
write("response", "sigkill", outcome(wait=9))
write("response", "sigsegv", outcome(wait=11, err=b"Segmentation fault"))
write("response", "sigxcpu", outcome(wait=24))
write("response", "signal-unknown", outcome(wait=0x7E))
write("response", "oom-killed", outcome(wait=9, flags=HAVE_STATUS | OOM))
write("response", "oom-with-ok-frame", outcome(OK + b"1", flags=HAVE_STATUS | OOM))
write("response", "no-status", outcome(flags=REQ_ID))
write("response", "no-status-frame", outcome(OK + b"1", flags=0))
write("response", "nulls", outcome(flags=HAVE_STATUS | NULLS))
write("response", "timeout", outcome(end="timeout", timeout=2500, out=b"partial"))
write("response", "timeout-max", outcome(end="timeout", timeout=0xFFFFFFFF))
write("response", "output-limit", outcome(end="output", out=b"x" * 64 + b"\xe2\x82",
                                          flags=HAVE_STATUS | OUT_TRUNC))
write("response", "output-limit-untruncated", outcome(end="output"))
write("response", "result-limit", outcome(end="result"))
write("response", "setup-failed", outcome(end="setup", stage=5, errno=13, flags=REQ_ID))
write("response", "setup-failed-stage-bad", outcome(end="setup", stage=-1, errno=255))
write("response", "setup-failed-stage-high", outcome(end="setup", stage=99, errno=0))
write("response", "internal", outcome(end="internal", ierrno=12, flags=REQ_ID | WHAT))
write("response", "expired", outcome(end="expired", flags=REQ_ID))
write("response", "internal-bare", outcome(end="internal", ierrno=200, flags=0))
write("response", "unstarted-limits", outcome(wait=125 << 8, started=False,
                                            flags=HAVE_STATUS | REQ_ID | WHAT))
write("response", "unstarted-signal", outcome(wait=11, started=False))
write("response", "unstarted-oom", outcome(wait=9, started=False, flags=HAVE_STATUS | OOM))
# return_files: a frame's files, checked (at most 3 files, 64 bytes in all) or dropped
FILES = (b'"files":[{"path":"a","size":2,"encoding":"base64","content":"aGk="},'
         b'{"path":"b/c","size":0,"encoding":"base64","content":""}],'
         b'"files_omitted":["big"],"files_truncated":true')
write("response", "files-ok", outcome(b'{"status":"ok",' + FILES + b'}\n1', files=True))
write("response", "files-not-asked", outcome(b'{"status":"ok",' + FILES + b'}\n1'))
write("response", "files-runtime-error",
      outcome(b'{"status":"runtime_error","error":"E","traceback":"",' + FILES + b'}\n',
              files=True))
write("response", "files-bad-order",
      outcome(b'{"status":"ok","files":[{"path":"b","size":0,"encoding":"base64","content":""},'
              b'{"path":"a","size":0,"encoding":"base64","content":""}]}\n1', files=True))
write("response", "files-escape",
      outcome(b'{"status":"ok","files":[{"path":"../x","size":0,"encoding":"base64",'
              b'"content":""}]}\n1', files=True))
write("response", "input-no-space", outcome(wait=121 << 8, started=False, no_space=True))


# figures: an "ok" frame's PNGs (api/figures.c), valid and broken one rule at a time. The
# target sets no result limit, so every figure is over its budget: these reach each check
# before that one.
def png_head(w, h, extra=10, signature=b"\x89PNG\r\n\x1a\n", length=13, kind=b"IHDR"):
    """A PNG's first bytes: signature, IHDR (CRC left 0), `extra` bytes of what follows."""
    return (signature + struct.pack(">I", length) + kind + struct.pack(">II", w, h)
            + bytes([8, 0, 0, 0, 0]) + bytes(4) + bytes(range(extra)))


def figure(data=None, w=8, h=8, fmt='"png"', content=None, more=""):
    if content is None:
        content = base64.b64encode(png_head(w, h) if data is None else data).decode()
    return ('{"format":%s,"width":%s,"height":%s,"content":"%s"%s}'
            % (fmt, w, h, content, more)).encode()


def figures_frame(*entries, extra=b"", status=b"ok"):
    return (b'{"status":"' + status + b'","figures":[' + b",".join(entries) + b"]"
            + extra + b"}\n" + (b"1" if status == b"ok" else b""))


GOOD = base64.b64encode(png_head(8, 8)).decode()
FIGURE_FRAMES = {
    "ok": figures_frame(figure(), figure(w=640, h=480), extra=b',"figures_truncated":true'),
    "ok-max-dims": figures_frame(figure(w=2**31 - 1, h=2**31 - 1)),
    "head-only": figures_frame(figure(png_head(7, 9)[:24], w=7, h=9)),
    "empty-list": figures_frame(extra=b',"figures_truncated":false'),
    "truncated-only": b'{"status":"ok","figures_truncated":true}\n1',
    "sixteen": figures_frame(*[figure(w=k, h=1) for k in range(1, 17)]),
    "seventeen": figures_frame(*[figure(w=k, h=1) for k in range(1, 18)]),
    "not-a-list": b'{"status":"ok","figures":{"0":' + figure() + b"}}\n1",
    "truncated-string": figures_frame(figure(), extra=b',"figures_truncated":"yes"'),
    "entry-string": figures_frame(b'"' + GOOD.encode() + b'"'),
    "extra-key": figures_frame(figure(more=',"dpi":100')),
    "format-svg": figures_frame(figure(fmt='"svg"')),
    "format-number": figures_frame(figure(fmt="1")),
    "format-nul": figures_frame(figure(fmt='"png\\u0000<svg>"')),
    "width-real": figures_frame(figure(content=GOOD, w="8.0")),
    "width-string": figures_frame(figure(content=GOOD, w='"8"')),
    "dims-differ": figures_frame(figure(png_head(640, 480), w=641, h=480)),
    "width-0": figures_frame(figure(w=0)),
    "height-over": figures_frame(figure(h=2**31)),
    "signature": figures_frame(figure(png_head(8, 8, signature=b"GIF89a\0\0"))),
    "ihdr-length": figures_frame(figure(png_head(8, 8, length=14))),
    "ihdr-kind": figures_frame(figure(png_head(8, 8, kind=b"iHDR"))),
    # 23 bytes, cut inside the height: a decoder reading 24 anyway gets 0x00FFFFFF
    "cut-23": figures_frame(figure(png_head(8, 0xABCDEF)[:23], h=0xFFFFFF)),
    "base64-newline": figures_frame(figure(content=GOOD[:40] + "\\n" + GOOD[40:])),
    "base64-no-padding": figures_frame(figure(content=GOOD.rstrip("="))),
    "base64-nul": figures_frame(figure(content=GOOD + "\\u0000AAA")),
    "base64-urlsafe": figures_frame(figure(content=GOOD[:36] + "-_" + GOOD[38:])),
    "error-frame": figures_frame(figure(), status=b"runtime_error"),
}
for name, frame in FIGURE_FRAMES.items():
    write("response", "figures-" + name, outcome(frame))
write("response", "figures-and-files",
      outcome(b'{"status":"ok",' + FILES + b',"figures":[' + figure() + b"]}\n1", files=True))


# --- config: NUL-separated parts, 'e' = environment, 'f' = command line ------------------

def cfg(*parts):
    return b"\x00".join(p.encode() for p in parts)


CONFIGS = {
    "empty": cfg(),
    "port": cfg("f--port", "f0"),
    "port-eq": cfg("f--port=65535"),
    "listen6": cfg("f--listen", "f::1", "f--port=8080"),
    "listen4": cfg("f--listen=127.0.0.1"),
    "durations": cfg("f--timeout=2.5s", "f--zygote-max-age", "f500ms"),
    "duration-plain": cfg("f--timeout", "f10"),
    "duration-dot": cfg("f--timeout=.5"),
    "duration-max": cfg("f--zygote-max-age=604800s"),
    "sizes": cfg("f--output-limit=1M", "f--result-limit=512K", "f--max-body=1MiB",
                 "f--tmp-size=1GB"),
    "size-bytes": cfg("f--result-limit=64", "f--tmp-size=1048576"),
    "counts": cfg("f--concurrency=1", "f--pool-size=0", "f--queue-size=100000",
                  "f--max-connections=1", "f--pids-max=8", "f--zygote-max-spawns=0",
                  "f--memory-mb=16"),
    "preload": cfg("f--preload=numpy,pandas,os.path"),
    "preload-empty": cfg("f--preload="),
    "uid-base": cfg("f--uid-base=1"),
    "layers": cfg("f--disable-layers=pidns,netns,mountns,ipcns,utsns,cgroupns,cgroups,"
                  "rlimits,credentials,seccomp"),
    "layers-empty": cfg("f--disable-layers="),
    "log": cfg("f--log-format=json", "f--log-level=debug"),
    "playground-off": cfg("f--playground=false"),
    "playground-env": cfg("ePYEXECD_PLAYGROUND=0", "f--playground", "fon"),
    "bad-playground": cfg("f--playground=maybe"),
    "exec": cfg("fexec", "fscript.py"),
    "exec-stdin": cfg("fexec", "f-", "f--timeout=1"),
    "print": cfg("f--print-config", "f--port=1"),
    "help": cfg("f--help"),
    "help-short": cfg("f-h"),
    "version": cfg("f--version"),
    "env-all": cfg("ePORT=9000", "ePYEXECD_LISTEN=::", "ePYEXECD_TIMEOUT=30",
                   "ePYEXECD_MEMORY_MB=512", "ePYEXECD_OUTPUT_LIMIT=2M",
                   "ePYEXECD_RESULT_LIMIT=16M", "ePYEXECD_MAX_BODY=4M",
                   "ePYEXECD_CONCURRENCY=4", "ePYEXECD_POOL_SIZE=2",
                   "ePYEXECD_QUEUE_SIZE=10", "ePYEXECD_MAX_CONNECTIONS=64",
                   "ePYEXECD_PRELOAD=json", "ePYEXECD_UID_BASE=200000",
                   "ePYEXECD_TMP_SIZE=128M", "ePYEXECD_PIDS_MAX=64",
                   "ePYEXECD_ZYGOTE_MAX_SPAWNS=5", "ePYEXECD_ZYGOTE_MAX_AGE=60s",
                   "ePYEXECD_DISABLE_LAYERS=seccomp", "ePYEXECD_LOG_FORMAT=text",
                   "ePYEXECD_LOG_LEVEL=error"),
    "env-and-flag": cfg("ePORT=9000", "f--port=9001", "eHOME=/root", "ePORTX=1"),
    "env-no-equals": cfg("ePORT", "ePYEXECD_TIMEOUT="),
    "bad-env-port": cfg("ePORT=65536"),
    "bad-port": cfg("f--port=-1"),
    "bad-timeout-zero": cfg("f--timeout=0"),
    "bad-timeout-huge": cfg("f--timeout=1e10"),
    "bad-timeout-nan": cfg("f--timeout=nan"),
    "bad-timeout-unit": cfg("f--timeout=5m"),
    "bad-memory": cfg("f--memory-mb=15"),
    "bad-size-overflow": cfg("f--output-limit=18446744073709551615K"),
    "bad-size-unit": cfg("f--max-body=1T"),
    "bad-unknown": cfg("f--frobnicate"),
    "bad-missing-value": cfg("f--port"),
    "bad-listen": cfg("f--listen=1.2.3"),
    "bad-listen-name": cfg("f--listen=localhost"),
    "bad-preload": cfg("f--preload=os;rm"),
    "bad-preload-comma": cfg("f--preload=,a"),
    "bad-preload-digit": cfg("f--preload=1a"),
    "bad-layers": cfg("f--disable-layers=seccomp,,netns"),
    "bad-log-format": cfg("f--log-format=xml"),
    # The highest uids the bounds allow: still inside the uid range.
    "uid-highest": cfg("f--uid-base=4294901759", "f--concurrency=1024", "f--pool-size=1024"),
    "uid-highest-help": cfg("f--uid-base=4294901759", "f--concurrency=1024",
                            "f--pool-size=1024", "f--help"),
    "bad-uid-base": cfg("f--uid-base=4294901760"),
    "bad-exec-no-file": cfg("fexec"),
    "bad-exec-two-files": cfg("fexec", "fa", "fb"),
    "bad-exec-long": cfg("fexec", "f" + "p" * 4096),
    "bad-positional": cfg("fserve"),
    "bad-dashdash": cfg("f--"),
    "bad-empty-arg": cfg("f"),
}
for name, data in CONFIGS.items():
    write("config", name, data)

# --- http: raw request bytes (http/parse.c) ------------------------------------------------
BODY = b'{"script":"def main():\\n    return 1\\n"}'
H = b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
CHUNKED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
HTTP = {
    "get": b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "get-10": b"GET /health HTTP/1.0\r\n\r\n",
    "absolute": b"GET http://x:8080/ready?a=b HTTP/1.1\r\nHost: x\r\n\r\n",
    "leading-crlf": b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "length": H + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY,
    "chunked": H + b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED,
    "chunked-ext-trailer": H + b"Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n"
                           b"0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\n",
    "pipelined": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3,
    "bad-cl-te": H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED,
    "bad-two-cl": H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "bad-obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    "bad-space-colon": b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    "bad-bare-lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "bad-chunk-lf": H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    "bad-chunk-size": H + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
    "bad-version": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    "bad-te-gzip": H + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + CHUNKED,
}
for name, data in HTTP.items():
    write("http", name, data)

sys.exit(0)
