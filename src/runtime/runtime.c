/* See runtime.h. The zygote has exactly one interpreter; the references below belong to it
 * and are inherited, unchanged, by every sandbox forked from it. They are set once by
 * runtime_init() in a single-threaded process. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "runtime/figures_py.h"
#include "runtime/files_py.h"
#include "runtime/harness.h"
#include "util/macro.h"
#include "runtime/runtime.h"

static struct {
        PyObject *run;     /* harness.run */
        PyObject *reseed;  /* harness.reseed */
        PyObject *warmup;  /* harness.warmup */
        PyObject *prepare; /* harness.prepare */
} harness;

/* numpy's MT19937 state (numpy/random/src/mt19937/mt19937.h), found and checked by
 * find_numpy_rng(); NULL when the Python-level reseed is used. */
#define MT_KEY_WORDS 624
typedef struct MtState {
        uint32_t key[MT_KEY_WORDS];
        int pos;
} MtState;
static MtState *numpy_rng;

/* Formats the pending Python exception into errbuf and clears it. */
static void take_exception(const char *what, char *errbuf, size_t errlen)
{
        PyObject *type = NULL, *value = NULL, *tb = NULL;
        const char *text = NULL;
        PyObject *str = NULL;

        PyErr_Fetch(&type, &value, &tb);
        if (value)
                str = PyObject_Str(value);
        if (str)
                text = PyUnicode_AsUTF8(str);
        (void) snprintf(errbuf, errlen, "%s: %s: %s", what,
                        type ? ((PyTypeObject *) type)->tp_name : "error", text ? text : "?");
        Py_XDECREF(str);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        PyErr_Clear();
}

static int init_interpreter(char *errbuf, size_t errlen)
{
        PyPreConfig preconfig;
        PyConfig config;
        PyStatus st;

        /* Python objects in glibc's heap rather than in pymalloc's 256 KiB arenas: one
         * large region the zygote can back with huge pages (see zygote.c), which makes
         * every fork copy ~30x fewer page-table entries (docs/design/kernel-costs.md section 2). */
        PyPreConfig_InitIsolatedConfig(&preconfig);
        preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
        /* File names, stdio and the locale encoding are UTF-8 whatever the locale says
         * (PEP 540): an isolated interpreter otherwise takes ASCII from the zygote's
         * environment, and open("é.txt") or an input file named so fails. */
        preconfig.utf8_mode = 1;
        st = Py_PreInitialize(&preconfig);
        if (PyStatus_Exception(st)) {
                (void) snprintf(errbuf, errlen, "Python pre-initialisation failed: %s",
                                st.err_msg ? st.err_msg : "unknown error");
                return -EIO;
        }

        PyConfig_InitIsolatedConfig(&config);
        config.site_import = 1; /* Debian's dist-packages: numpy, pandas */
        config.user_site_directory = 0;
        config.write_bytecode = 0;
        config.buffered_stdio = 1;
        config.install_signal_handlers = 0; /* the C side owns signals */
        config.parse_argv = 0;
        /* sys.executable is what subprocess and multiprocessing start: the real
         * interpreter, not this binary. It also anchors the search for the stdlib. */
        st = PyConfig_SetString(&config, &config.executable, L"/usr/bin/python3");
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.stdio_encoding, L"utf-8");
        if (!PyStatus_Exception(st))
                st = PyConfig_SetString(&config, &config.stdio_errors, L"backslashreplace");
        if (!PyStatus_Exception(st))
                st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st)) {
                (void) snprintf(errbuf, errlen, "Python initialisation failed: %s",
                                st.err_msg ? st.err_msg : "unknown error");
                return -EIO;
        }
        return 0;
}

/* Asks the harness to put numpy's global generator into a known state and hand over its
 * bit generator; accepts the state only where and as expected (numpy's bitgen_t starts
 * with the state pointer). Then reseeds it properly. */
static void find_numpy_rng(PyObject *mod)
{
        PyObject *cap = PyObject_CallMethod(mod, "numpy_rng_probe", NULL), *res;
        long mul = 0, pos = -1;

        if (cap && PyCapsule_CheckExact(cap)) {
                void **bitgen = PyCapsule_GetPointer(cap, "BitGenerator");
                PyObject *m = PyObject_GetAttrString(mod, "PROBE_MUL");
                PyObject *p = PyObject_GetAttrString(mod, "PROBE_POS");
                MtState *st = bitgen ? *bitgen : NULL;
                bool ok = st && m && p;

                if (ok) {
                        mul = PyLong_AsLong(m);
                        pos = PyLong_AsLong(p);
                        ok = st->pos == pos;
                }
                for (uint32_t i = 0; ok && i < MT_KEY_WORDS; i++)
                        ok = st->key[i] == (uint32_t) ((uint64_t) i * (uint64_t) mul);
                if (ok)
                        numpy_rng = st;
                Py_XDECREF(m);
                Py_XDECREF(p);
        }
        PyErr_Clear();
        Py_XDECREF(cap);
        res = PyObject_CallNoArgs(harness.reseed);
        Py_XDECREF(res);
        PyErr_Clear();
}

/* The harness's modules, besides the harness itself. */
static const struct {
        const char *name, *filename, *source;
} harness_modules[] = {
        {"_pyexecd_files", "<pyexecd-files>", files_source},
        {"_pyexecd_figures", "<pyexecd-figures>", figures_source},
};

static int load_harness(const char *preload, char *errbuf, size_t errlen)
{
        PyObject *code = NULL, *mod = NULL, *names = NULL, *res = NULL, *gc = NULL;
        int r = -EIO;

        /* Its own modules first: the harness imports them. */
        for (size_t i = 0; i < ELEMENTSOF(harness_modules); i++) {
                code = Py_CompileString(harness_modules[i].source, harness_modules[i].filename,
                                        Py_file_input);
                mod = code ? PyImport_ExecCodeModule(harness_modules[i].name, code) : NULL;
                if (!mod) {
                        take_exception(harness_modules[i].filename, errbuf, errlen);
                        goto out;
                }
                Py_CLEAR(mod);
                Py_CLEAR(code);
        }
        code = Py_CompileString(harness_source, "<pyexecd-harness>", Py_file_input);
        if (!code) {
                take_exception("compiling the harness", errbuf, errlen);
                goto out;
        }
        mod = PyImport_ExecCodeModule("_pyexecd_harness", code);
        if (!mod) {
                take_exception("loading the harness", errbuf, errlen);
                goto out;
        }
        harness.run = PyObject_GetAttrString(mod, "run");
        harness.reseed = PyObject_GetAttrString(mod, "reseed");
        harness.warmup = PyObject_GetAttrString(mod, "warmup");
        harness.prepare = PyObject_GetAttrString(mod, "prepare");
        if (!harness.run || !harness.reseed || !harness.warmup || !harness.prepare) {
                take_exception("loading the harness", errbuf, errlen);
                goto out;
        }

        {
                PyObject *s = PyUnicode_FromString(preload), *sep = PyUnicode_FromString(",");
                names = s && sep ? PyUnicode_Split(s, sep, -1) : NULL;
                Py_XDECREF(s);
                Py_XDECREF(sep);
        }
        if (!names) {
                take_exception("preload list", errbuf, errlen);
                goto out;
        }
        res = PyObject_CallMethod(mod, "preload", "O", names);
        if (!res) {
                take_exception("preloading modules", errbuf, errlen);
                goto out;
        }
        Py_CLEAR(res);
        find_numpy_rng(mod);

        /* Everything imported so far lives as long as the zygote: keep the collector from
         * walking (and, in children, copying) it. */
        gc = PyImport_ImportModule("gc");
        res = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
        Py_XDECREF(res);
        res = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
        if (!res) {
                take_exception("gc.freeze", errbuf, errlen);
                goto out;
        }
        r = 0;
out:
        Py_XDECREF(res);
        Py_XDECREF(gc);
        Py_XDECREF(names);
        Py_XDECREF(mod);
        Py_XDECREF(code);
        return r;
}

int runtime_init(const char *preload, char *errbuf, size_t errlen)
{
        int r = init_interpreter(errbuf, errlen);
        if (r < 0)
                return r;
        r = load_harness(preload, errbuf, errlen);
        if (r < 0)
                return r;
        /* Flush what the imports may have buffered, so no child inherits it. */
        PyObject *res = PyRun_String("import sys; sys.stdout.flush(); sys.stderr.flush()",
                                     Py_file_input, PyEval_GetBuiltins(), NULL);
        Py_XDECREF(res);
        PyErr_Clear();
        return 0;
}

void runtime_before_fork(void)
{
        PyOS_BeforeFork();
}

void runtime_after_fork_parent(void)
{
        PyOS_AfterFork_Parent();
}

void runtime_after_fork_child(void)
{
        PyOS_AfterFork_Child();
}

static int call_noargs(PyObject *fn)
{
        PyObject *res = PyObject_CallNoArgs(fn);
        if (!res) {
                PyErr_Clear();
                return -EIO;
        }
        Py_DECREF(res);
        return 0;
}

int runtime_reseed(void)
{
        uint32_t key[MT_KEY_WORDS];

        if (!numpy_rng)
                return call_noargs(harness.reseed);
        /* What np.random.set_state() with a fresh random key does, without the Python
         * code paths (and their copy-on-write faults). getrandom() of this size from an
         * initialised pool returns it whole. */
        if (getrandom(key, sizeof(key), 0) != (ssize_t) sizeof(key))
                return -EIO;
        key[0] |= 0x80000000u; /* never the all-zero state, as init_by_array does */
        memcpy(numpy_rng->key, key, sizeof(key));
        numpy_rng->pos = MT_KEY_WORDS;
        return 0;
}

int runtime_warmup(void)
{
        return call_noargs(harness.warmup);
}

int runtime_prepare(const char *input, size_t len)
{
        PyObject *src, *res;
        long err = EIO;

        if (len == 0)
                return 0;
        src = PyBytes_FromStringAndSize(input, (Py_ssize_t) len);
        res = src ? PyObject_CallOneArg(harness.prepare, src) : NULL;
        if (res && PyLong_Check(res))
                err = PyLong_AsLong(res);
        PyErr_Clear();
        Py_XDECREF(res);
        Py_XDECREF(src);
        return err == 0 ? 0 : err > 0 && err < 4096 ? (int) -err : -EIO;
}

int runtime_run(const char *script, size_t len, size_t result_limit, char **ret_frame,
                size_t *ret_len)
{
        PyObject *src = NULL, *res = NULL;
        char *data, *copy;
        Py_ssize_t n;
        int r = -EPROTO;

        src = PyBytes_FromStringAndSize(script, (Py_ssize_t) len);
        if (!src)
                goto out;
        res = PyObject_CallFunction(harness.run, "On", src, (Py_ssize_t) result_limit);
        if (!res || PyBytes_AsStringAndSize(res, &data, &n) < 0)
                goto out;
        copy = malloc((size_t) n);
        if (!copy) {
                r = -ENOMEM;
                goto out;
        }
        memcpy(copy, data, (size_t) n);
        *ret_frame = copy;
        *ret_len = (size_t) n;
        r = 0;
out:
        PyErr_Clear();
        Py_XDECREF(res);
        Py_XDECREF(src);
        return r;
}

/* The representative requests of runtime_probe(): the README's examples, each run only if
 * its module is preloaded (an import in the probe would be learned as pages every sandbox
 * should take). Not a plot: measured, a line plot adds ~3000 pages (12 MiB) to the set,
 * more CPU for every warm sandbox than a plot's faults cost (docs/PERFORMANCE.md). */
static const struct {
        const char *module;
        const char *script;
} probe_scripts[] = {
        {NULL, "def main():\n    print('Hello, World!')\n    return {'message': 'Success'}\n"},
        {NULL,
         "def main():\n    x = 10\n    y = 20\n    return {'sum': x + y, 'product': x * y}\n"},
        {"numpy", "import numpy as np\ndef main():\n    arr = np.array([1, 2, 3, 4, 5])\n"
                  "    return {'mean': float(np.mean(arr)), 'std': float(np.std(arr))}\n"},
        {"pandas", "import pandas as pd\ndef main():\n"
                   "    df = pd.DataFrame({'A': [1, 2, 3], 'B': [4, 5, 6]})\n"
                   "    return {'mean_A': df['A'].mean(), 'sum_B': df['B'].sum()}\n"},
};

int runtime_probe(void)
{
        int out[2];

        /* What the scripts print goes to a pipe of the probe's own, not the service's
         * output (the zygote's root has no /dev/null). */
        if (pipe2(out, O_CLOEXEC) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
                return -errno;
        runtime_after_fork_child();
        if (runtime_warmup() < 0 || runtime_reseed() < 0)
                return -EIO;
        for (size_t i = 0; i < sizeof(probe_scripts) / sizeof(probe_scripts[0]); i++) {
                char *frame = NULL;
                size_t len = 0;

                if (probe_scripts[i].module) {
                        PyObject *name = PyUnicode_FromString(probe_scripts[i].module);
                        PyObject *mod = name ? PyImport_GetModule(name) : NULL;
                        Py_XDECREF(name);
                        PyErr_Clear();
                        if (!mod)
                                continue;
                        Py_DECREF(mod);
                }
                if (runtime_run(probe_scripts[i].script, strlen(probe_scripts[i].script), 1 << 20,
                                &frame, &len) < 0)
                        return -EIO;
                free(frame);
        }
        return 0;
}
