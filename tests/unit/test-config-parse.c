/* Unit tests for config/config: defaults, then environment, then flags; every type's
 * parser and bounds; the positional `exec FILE`; and the promise that invalid input gives
 * a positive code, a message, and leaves the caller's structs untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"

#define ARGS(...) ((const char *const[]){"pyexecd", __VA_ARGS__, NULL})
#define ENV(...)  ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS   ((const char *const[]){"pyexecd", NULL})
#define NO_ENV    ((const char *const[]){NULL})

static char errbuf[512];

static int count(const char *const *v)
{
        int n = 0;
        while (v[n])
                n++;
        return n;
}

static int parse(const char *const *argv, const char *const *envp, Config *c, ConfigInvocation *inv)
{
        errbuf[0] = '\0';
        return config_parse(count(argv), (char *const *) argv, (char *const *) envp, c, inv, errbuf,
                            sizeof(errbuf));
}

/* Parses and requires success. */
static Config ok(const char *const *argv, const char *const *envp)
{
        Config c;
        ConfigInvocation inv;
        int r = parse(argv, envp, &c, &inv);

        if (r != 0)
                fail_msg("config_parse failed (%d): %s", r, errbuf);
        return c;
}

/* Parses and requires a positive code with a message; the out-params stay as they were. */
static void bad(const char *const *argv, const char *const *envp)
{
        Config c, before;
        ConfigInvocation inv, inv_before;
        int r;

        memset(&c, 0xA5, sizeof(c));
        memset(&inv, 0x5A, sizeof(inv));
        before = c, inv_before = inv;
        r = parse(argv, envp, &c, &inv);
        if (r <= 0)
                fail_msg("config_parse returned %d for %s %s", r, argv[1] ? argv[1] : "(none)",
                         argv[1] && argv[2] ? argv[2] : "");
        assert_true(strlen(errbuf) > 0);
        assert_memory_equal(&c, &before, sizeof(c));
        assert_memory_equal(&inv, &inv_before, sizeof(inv));
}

static void test_defaults(void **state)
{
        Config c, d;
        ConfigInvocation inv;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        assert_int_equal(parse(NO_ARGS, NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_SERVE);
        assert_string_equal(c.listen, "0.0.0.0");
        assert_int_equal(c.port, 8080);
        assert_int_equal(c.timeout_ms, 10000);
        assert_int_equal(c.memory_mb, 256);
        assert_int_equal(c.output_limit, 1048576);
        assert_int_equal(c.result_limit, 8 * 1048576);
        assert_int_equal(c.max_body, 1048576);
        assert_int_equal(c.concurrency, ncpu > 1024 ? 1024 : ncpu > 0 ? ncpu : 1);
        assert_int_equal(c.queue_size, 100);
        assert_int_equal(c.max_connections, 1024);
        assert_string_equal(c.preload, "numpy,pandas");
        assert_true(c.plot_zygote);
        assert_int_equal(c.uid_base, 100000);
        assert_int_equal(c.log_format, LOG_FORMAT_AUTO);
        assert_int_equal(c.log_level, LOG_LEVEL_INFO);
        assert_int_equal(c.tmp_size, 64 * 1048576);
        assert_int_equal(c.pids_max, 128);
        assert_int_equal(c.disabled_layers, 0);

        /* A NULL environment is an empty one. */
        assert_int_equal(
                config_parse(1, (char *const *) NO_ARGS, NULL, &c, &inv, errbuf, sizeof(errbuf)),
                0);
        config_defaults(&d);
        assert_string_equal(c.listen, d.listen);
        assert_int_equal(c.port, d.port);
        assert_int_equal(c.timeout_ms, d.timeout_ms);
        assert_int_equal(c.concurrency, d.concurrency);
        assert_string_equal(c.preload, d.preload);
}

static void test_environment_overrides(void **state)
{
        Config c = ok(NO_ARGS,
                      ENV("PORT=9000", "PYEXECD_LISTEN=::1", "PYEXECD_TIMEOUT=2.5s",
                          "PYEXECD_MEMORY_MB=512", "PYEXECD_OUTPUT_LIMIT=512K",
                          "PYEXECD_RESULT_LIMIT=2M", "PYEXECD_MAX_BODY=1G", "PYEXECD_CONCURRENCY=3",
                          "PYEXECD_QUEUE_SIZE=0", "PYEXECD_MAX_CONNECTIONS=10",
                          "PYEXECD_PRELOAD=json,os.path", "PYEXECD_UID_BASE=200000",
                          "PYEXECD_LOG_FORMAT=json", "PYEXECD_LOG_LEVEL=debug"));

        assert_int_equal(c.port, 9000);
        assert_string_equal(c.listen, "::1");
        assert_int_equal(c.timeout_ms, 2500);
        assert_int_equal(c.memory_mb, 512);
        assert_int_equal(c.output_limit, 512 * 1024);
        assert_int_equal(c.result_limit, 2 * 1048576);
        assert_int_equal(c.max_body, 1073741824);
        assert_int_equal(c.concurrency, 3);
        assert_int_equal(c.queue_size, 0);
        assert_int_equal(c.max_connections, 10);
        assert_string_equal(c.preload, "json,os.path");
        assert_int_equal(c.uid_base, 200000);
        assert_int_equal(c.log_format, LOG_FORMAT_JSON);
        assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
}

static void test_environment_names_are_exact(void **state)
{
        /* Only KEY=value with exactly the variable's name counts. */
        Config c = ok(NO_ARGS, ENV("PORTS=1", "XPORT=2", "PORT", "PYEXECD_PORT=3",
                                   "pyexecd_timeout=5", "PYEXECD_TIMEOUTS=7"));

        assert_int_equal(c.port, 8080);
        assert_int_equal(c.timeout_ms, 10000);
        /* An empty value is a value, and not a valid one. */
        bad(NO_ARGS, ENV("PORT="));
        bad(NO_ARGS, ENV("PYEXECD_TIMEOUT="));
}

static void test_invalid_environment(void **state)
{
        bad(NO_ARGS, ENV("PORT=abc"));
        assert_non_null(strstr(errbuf, "PORT"));
        bad(NO_ARGS, ENV("PYEXECD_TIMEOUT=0"));
        assert_non_null(strstr(errbuf, "PYEXECD_TIMEOUT"));
        bad(NO_ARGS, ENV("PYEXECD_LOG_LEVEL=loud"));
        /* A valid flag does not rescue an invalid environment. */
        bad(ARGS("--port", "80"), ENV("PORT=70000"));
}

static void test_flags_override_environment(void **state)
{
        Config c = ok(ARGS("--port", "9001", "--timeout=500ms", "--log-level", "error"),
                      ENV("PORT=9000", "PYEXECD_TIMEOUT=3", "PYEXECD_MEMORY_MB=100"));

        assert_int_equal(c.port, 9001);
        assert_int_equal(c.timeout_ms, 500);
        assert_int_equal(c.memory_mb, 100); /* not given as a flag: the environment's */
        assert_int_equal(c.log_level, LOG_LEVEL_ERROR);

        /* The last of repeated flags wins. */
        c = ok(ARGS("--port", "1", "--port=2"), NO_ENV);
        assert_int_equal(c.port, 2);
}

static void test_both_flag_forms(void **state)
{
        Config a = ok(ARGS("--memory-mb", "64", "--listen", "127.0.0.1", "--preload", ""), NO_ENV);
        Config b = ok(ARGS("--memory-mb=64", "--listen=127.0.0.1", "--preload="), NO_ENV);

        assert_int_equal(a.memory_mb, 64);
        assert_int_equal(b.memory_mb, 64);
        assert_string_equal(a.listen, "127.0.0.1");
        assert_string_equal(b.listen, "127.0.0.1");
        assert_string_equal(a.preload, "");
        assert_string_equal(b.preload, "");
        /* A value may itself contain '=' or start with "--" in the two-word form. */
        bad(ARGS("--preload=a=b"), NO_ENV);
        bad(ARGS("--log-format", "--port"), NO_ENV);
}

static void test_durations(void **state)
{
        static const struct {
                const char *text;
                uint32_t ms;
        } good[] = {
                {"10", 10000},          {"2.5", 2500},     {"2.5s", 2500},
                {"500ms", 500},         {".5", 500},       {"1ms", 1},
                {"250ms", 250},         {"3600", 3600000}, {"3600s", 3600000},
                {"3600000ms", 3600000}, {"0.25s", 250},    {"0.001", 1},
        };
        static const char *const invalid[] = {
                "abc",       "0",     "0s",  "0ms", "0.0001", "-1",  "-0.5s",    "10x",
                "10 s",      " 10",   "",    "ms",  "s",      "1h",  "10sec",    "3601",
                "3600001ms", "1e300", "nan", "inf", "+5",     "5s5", "4294968s",
        };
        char flag[64];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                Config c;
                (void) snprintf(flag, sizeof(flag), "--timeout=%s", good[i].text);
                c = ok(ARGS(flag), NO_ENV);
                if (c.timeout_ms != good[i].ms)
                        fail_msg("--timeout %s gave %u ms, expected %u", good[i].text,
                                 (unsigned) c.timeout_ms, (unsigned) good[i].ms);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                bad(ARGS("--timeout", invalid[i]), NO_ENV);
}

static void test_sizes(void **state)
{
        static const struct {
                const char *text;
                size_t bytes;
        } good[] = {
                {"1", 1},           {"100", 100},          {"512K", 524288},
                {"512k", 524288},   {"1M", 1048576},       {"1m", 1048576},
                {"1MiB", 1048576},  {"1MB", 1048576},      {"3KiB", 3072},
                {"1G", 1073741824}, {"1024M", 1073741824}, {"1073741824", 1073741824},
        };
        static const char *const invalid[] = {
                "2X",
                "M",
                "K",
                "-1",
                "1.5M",
                "1KK",
                "",
                "1 M",
                " 1",
                "1iB",
                "1B",
                "1Mi",
                "0",
                "2G",
                "1073741825",
                "1025M",
                "18446744073709551615K",
                "99999999999999999999",
                "0x10",
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                Config c = ok(ARGS("--output-limit", good[i].text), NO_ENV);
                if (c.output_limit != good[i].bytes)
                        fail_msg("--output-limit %s gave %zu, expected %zu", good[i].text,
                                 c.output_limit, good[i].bytes);
        }
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                bad(ARGS("--output-limit", invalid[i]), NO_ENV);

        /* Each size setting has its own lower bound. */
        assert_int_equal(ok(ARGS("--result-limit", "64"), NO_ENV).result_limit, 64);
        bad(ARGS("--result-limit", "63"), NO_ENV);
        assert_int_equal(ok(ARGS("--max-body", "64"), NO_ENV).max_body, 64);
        bad(ARGS("--max-body", "63"), NO_ENV);
        bad(ARGS("--max-body", "2G"), NO_ENV);
}

static void test_integers_and_bounds(void **state)
{
        assert_int_equal(ok(ARGS("--port", "0"), NO_ENV).port, 0);
        assert_int_equal(ok(ARGS("--port", "65535"), NO_ENV).port, 65535);
        bad(ARGS("--port", "65536"), NO_ENV);
        bad(ARGS("--port", "70000"), NO_ENV);
        assert_non_null(strstr(errbuf, "65535")); /* the message gives the range */
        bad(ARGS("--port", "-1"), NO_ENV);
        bad(ARGS("--port", "80x"), NO_ENV);
        bad(ARGS("--port", "8e3"), NO_ENV);
        bad(ARGS("--port", "99999999999999999999999"), NO_ENV);

        assert_int_equal(ok(ARGS("--memory-mb", "16"), NO_ENV).memory_mb, 16);
        assert_int_equal(ok(ARGS("--memory-mb", "1048576"), NO_ENV).memory_mb, 1048576);
        bad(ARGS("--memory-mb", "1"), NO_ENV);
        bad(ARGS("--memory-mb", "15"), NO_ENV);
        bad(ARGS("--memory-mb", "1048577"), NO_ENV);
        bad(ARGS("--memory-mb", "64M"), NO_ENV);

        assert_int_equal(ok(ARGS("--concurrency", "1"), NO_ENV).concurrency, 1);
        assert_int_equal(ok(ARGS("--concurrency", "1024"), NO_ENV).concurrency, 1024);
        bad(ARGS("--concurrency", "0"), NO_ENV);
        bad(ARGS("--concurrency", "1025"), NO_ENV);
        assert_int_equal(ok(ARGS("--queue-size", "100000"), NO_ENV).queue_size, 100000);
        bad(ARGS("--queue-size", "100001"), NO_ENV);
        bad(ARGS("--max-connections", "0"), NO_ENV);
        assert_int_equal(ok(ARGS("--max-connections", "1"), NO_ENV).max_connections, 1);

        assert_int_equal(ok(ARGS("--uid-base", "1"), NO_ENV).uid_base, 1);
        assert_int_equal(ok(ARGS("--uid-base", "4294901759"), NO_ENV).uid_base, 4294901759u);
        bad(ARGS("--uid-base", "0"), NO_ENV);
        bad(ARGS("--uid-base", "4294901760"), NO_ENV);
        bad(ARGS("--uid-base", "4294967296"), NO_ENV);
}

static void test_addresses(void **state)
{
        static const char *const good[] = {
                "0.0.0.0", "127.0.0.1", "::", "::1", "2001:db8::42", "::ffff:10.0.0.1"};
        static const char *const invalid[] = {
                "1.2.3",
                "256.1.1.1",
                "localhost",
                "",
                "1.2.3.4 ",
                " 1.2.3.4",
                "::1%lo",
                "1.2.3.4:80",
                "[::1]",
                "0x7f.1",
                /* 64 characters: longer than any address */
                "1111111111111111111111111111111111111111111111111111111111111111",
        };

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_string_equal(ok(ARGS("--listen", good[i]), NO_ENV).listen, good[i]);
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                bad(ARGS("--listen", invalid[i]), NO_ENV);
}

static void test_preload(void **state)
{
        static const char *const good[] = {"", "os", "numpy,pandas", "os.path,json", "_x1,a_b.c2"};
        static const char *const invalid[] = {
                "os;import x", "os,", ",os", "a,,b",          "a..b", ".a",       "a.",
                "1a",          "a b", "a-b", "os,import os;", "a.1b", "\xC3\xA9", "a\nb",
        };
        char longest[CONFIG_PRELOAD_MAX + 1];

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                assert_string_equal(ok(ARGS("--preload", good[i]), NO_ENV).preload, good[i]);
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                bad(ARGS("--preload", invalid[i]), NO_ENV);

        /* Up to CONFIG_PRELOAD_MAX - 1 characters fit; one more does not. */
        memset(longest, 'a', sizeof(longest));
        longest[CONFIG_PRELOAD_MAX - 1] = '\0';
        assert_string_equal(
                ok(ARGS("--plot-zygote", "false", "--preload", longest), NO_ENV).preload, longest);
        longest[CONFIG_PRELOAD_MAX - 1] = 'a';
        longest[CONFIG_PRELOAD_MAX] = '\0';
        bad(ARGS("--plot-zygote", "false", "--preload", longest), NO_ENV);

        /* With the plot zygote, ",matplotlib" must fit after it as well. */
        longest[CONFIG_PRELOAD_MAX - 1 - strlen("," CONFIG_PLOT_MODULE)] = '\0';
        assert_string_equal(ok(ARGS("--preload", longest), NO_ENV).preload, longest);
        longest[CONFIG_PRELOAD_MAX - 1 - strlen("," CONFIG_PLOT_MODULE)] = 'a';
        longest[CONFIG_PRELOAD_MAX - strlen("," CONFIG_PLOT_MODULE)] = '\0';
        bad(ARGS("--preload", longest), NO_ENV);
}

/* The plot zygote: there unless switched off or matplotlib is in every zygote's preload,
 * with --preload and matplotlib. */
static void test_plot_zygote(void **state)
{
        char buf[CONFIG_PRELOAD_MAX];
        Config c;
        (void) state;

        c = ok(NO_ARGS, NO_ENV);
        assert_true(config_plot_lane(&c));
        assert_int_equal(config_plot_preload(&c, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "numpy,pandas,matplotlib");
        c = ok(ARGS("--preload", ""), NO_ENV);
        assert_int_equal(config_plot_preload(&c, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "matplotlib");
        c = ok(ARGS("--preload", "matplotlib.pyplot,os"), NO_ENV);
        assert_false(config_plot_lane(&c));
        c = ok(ARGS("--preload", "matplotlibx,os"), NO_ENV);
        assert_true(config_plot_lane(&c));
        c = ok(ARGS("--preload", "os,matplotlib"), NO_ENV);
        assert_false(config_plot_lane(&c));
        c = ok(ARGS("--preload", "matplotlib,os"), NO_ENV);
        assert_false(config_plot_lane(&c));
        c = ok(ARGS("--plot-zygote", "false"), NO_ENV);
        assert_false(config_plot_lane(&c));
        c = ok(NO_ARGS, ENV("PYEXECD_PLOT_ZYGOTE=off"));
        assert_false(c.plot_zygote);
        bad(ARGS("--plot-zygote", "maybe"), NO_ENV);
        c = ok(ARGS("--zygotes", "16"), NO_ENV);
        assert_int_equal(c.zygotes, 16);
        bad(ARGS("--zygotes", "0"), NO_ENV);
        bad(ARGS("--zygotes", "17"), NO_ENV);
}

static void test_log_names(void **state)
{
        assert_int_equal(ok(ARGS("--log-format", "auto"), NO_ENV).log_format, LOG_FORMAT_AUTO);
        assert_int_equal(ok(ARGS("--log-format", "json"), NO_ENV).log_format, LOG_FORMAT_JSON);
        assert_int_equal(ok(ARGS("--log-format", "text"), NO_ENV).log_format, LOG_FORMAT_TEXT);
        bad(ARGS("--log-format", "JSON"), NO_ENV);
        bad(ARGS("--log-format", "xml"), NO_ENV);
        bad(ARGS("--log-format", ""), NO_ENV);
        assert_int_equal(ok(ARGS("--log-level", "debug"), NO_ENV).log_level, LOG_LEVEL_DEBUG);
        assert_int_equal(ok(ARGS("--log-level", "info"), NO_ENV).log_level, LOG_LEVEL_INFO);
        assert_int_equal(ok(ARGS("--log-level", "warning"), NO_ENV).log_level, LOG_LEVEL_WARNING);
        assert_int_equal(ok(ARGS("--log-level", "error"), NO_ENV).log_level, LOG_LEVEL_ERROR);
        bad(ARGS("--log-level", "warn"), NO_ENV);
        bad(ARGS("--log-level", "infos"), NO_ENV);
}

static void test_sandbox_settings(void **state)
{
        Config c = ok(ARGS("--tmp-size", "1M", "--pids-max", "8"), NO_ENV);

        assert_int_equal(c.tmp_size, 1048576);
        assert_int_equal(c.pids_max, 8);
        c = ok(ARGS("--tmp-size=64G", "--pids-max=65536"), NO_ENV);
        assert_int_equal(c.tmp_size, 64ULL << 30);
        assert_int_equal(c.pids_max, 65536);
        assert_int_equal(ok(NO_ARGS, ENV("PYEXECD_TMP_SIZE=2M")).tmp_size, 2 * 1048576);
        assert_int_equal(ok(NO_ARGS, ENV("PYEXECD_PIDS_MAX=16")).pids_max, 16);
        bad(ARGS("--tmp-size", "1023K"), NO_ENV);
        bad(ARGS("--tmp-size", "65G"), NO_ENV);
        bad(ARGS("--tmp-size", "0"), NO_ENV);
        bad(ARGS("--tmp-size", "big"), NO_ENV);
        bad(ARGS("--pids-max", "7"), NO_ENV);
        bad(ARGS("--pids-max", "65537"), NO_ENV);
        bad(ARGS("--pids-max", "-1"), NO_ENV);
}

static void test_disable_layers(void **state)
{
        static const struct {
                const char *name;
                Layer bit;
        } layers[] = {
                {"pidns", LAYER_PIDNS},
                {"netns", LAYER_NETNS},
                {"mountns", LAYER_MOUNTNS},
                {"ipcns", LAYER_IPCNS},
                {"utsns", LAYER_UTSNS},
                {"cgroupns", LAYER_CGROUPNS},
                {"cgroups", LAYER_CGROUPS},
                {"rlimits", LAYER_RLIMITS},
                {"credentials", LAYER_CREDENTIALS},
                {"seccomp", LAYER_SECCOMP},
        };
        static const char *const invalid[] = {
                "bogus",         "Seccomp", "seccomp,bogus", ",seccomp", "seccomp,,netns",
                "seccomp netns", "sec",     "seccomps",      "all",      ",",
        };
        uint32_t all = 0;
        char flag[64], list[256] = "";
        Config c;

        for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
                (void) snprintf(flag, sizeof(flag), "--disable-layers=%s", layers[i].name);
                assert_int_equal(ok(ARGS(flag), NO_ENV).disabled_layers, layers[i].bit);
                assert_string_equal(layer_name(layers[i].bit), layers[i].name);
                all |= layers[i].bit;
                (void) strcat(list, i ? "," : "");
                (void) strcat(list, layers[i].name);
        }
        assert_int_equal(all, _LAYER_ALL);
        assert_int_equal(ok(ARGS("--disable-layers", list), NO_ENV).disabled_layers, _LAYER_ALL);

        c = ok(ARGS("--disable-layers", "seccomp,netns"), NO_ENV);
        assert_int_equal(c.disabled_layers, LAYER_SECCOMP | LAYER_NETNS);
        assert_int_equal(ok(ARGS("--disable-layers", "seccomp,seccomp"), NO_ENV).disabled_layers,
                         LAYER_SECCOMP);
        assert_int_equal(ok(ARGS("--disable-layers", ""), NO_ENV).disabled_layers, 0);
        /* The flag replaces the environment's list; it does not add to it. */
        c = ok(ARGS("--disable-layers", "rlimits"), ENV("PYEXECD_DISABLE_LAYERS=seccomp"));
        assert_int_equal(c.disabled_layers, LAYER_RLIMITS);
        assert_int_equal(ok(NO_ARGS, ENV("PYEXECD_DISABLE_LAYERS=pidns")).disabled_layers,
                         LAYER_PIDNS);
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                bad(ARGS("--disable-layers", invalid[i]), NO_ENV);
}

static void test_layer_names(void **state)
{
        char buf[256];

        assert_null(layer_name(0));
        assert_null(layer_name(LAYER_PIDNS | LAYER_NETNS));
        assert_null(layer_name((Layer) (1u << 10)));

        layers_format(0, buf, sizeof(buf));
        assert_string_equal(buf, "");
        layers_format(LAYER_SECCOMP | LAYER_PIDNS | LAYER_CGROUPS, buf, sizeof(buf));
        assert_string_equal(buf, "pidns,cgroups,seccomp");
        layers_format(_LAYER_ALL, buf, sizeof(buf));
        assert_string_equal(buf, "pidns,netns,mountns,ipcns,utsns,cgroupns,cgroups,rlimits,"
                                 "credentials,seccomp");
        /* Bits beyond the known layers are not names. */
        layers_format(1u << 20, buf, sizeof(buf));
        assert_string_equal(buf, "");

        /* A small buffer stays NUL-terminated and is not overrun. */
        for (size_t len = 1; len < 24; len++) {
                memset(buf, 'X', sizeof(buf));
                layers_format(_LAYER_ALL, buf, len);
                assert_true(strnlen(buf, len) < len);
                assert_int_equal(buf[len], 'X');
                assert_memory_equal(buf, "pidns,netns,mountns,ipcns", strlen(buf));
        }
        layers_format(_LAYER_ALL, buf, 0); /* nothing written, no crash */
}

static void test_print_json_layers(void **state)
{
        Config c = ok(ARGS("--disable-layers", "seccomp,netns"), NO_ENV);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        json_t *j;

        assert_non_null(f);
        config_print_json(&c, f);
        assert_int_equal(fclose(f), 0);
        j = json_loadb(text, len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "disabled_layers")),
                            "netns,seccomp");
        json_decref(j);
        free(text);
}

static void test_unknown_and_malformed_arguments(void **state)
{
        bad(ARGS("--bogus", "1"), NO_ENV);
        assert_non_null(strstr(errbuf, "--bogus"));
        bad(ARGS("--bogus=1"), NO_ENV);
        bad(ARGS("--time", "5"), NO_ENV); /* no prefix matching */
        bad(ARGS("--timeouts", "5"), NO_ENV);
        bad(ARGS("--TIMEOUT", "5"), NO_ENV);
        bad(ARGS("--=5"), NO_ENV);
        bad(ARGS("--"), NO_ENV);
        bad(ARGS("-p", "80"), NO_ENV);
        bad(ARGS("-"), NO_ENV);
        bad(ARGS("serve"), NO_ENV);
        /* A flag needing a value at the end of the line. */
        bad(ARGS("--port"), NO_ENV);
        assert_non_null(strstr(errbuf, "port"));
        bad(ARGS("--timeout", "5", "--memory-mb"), NO_ENV);
        /* "--port=" gives an empty value, which is invalid. */
        bad(ARGS("--port="), NO_ENV);
}

static void test_exec(void **state)
{
        Config c;
        ConfigInvocation inv;
        char longest[CONFIG_PATH_MAX + 1];

        assert_int_equal(parse(ARGS("exec", "script.py"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_EXEC);
        assert_string_equal(inv.exec_path, "script.py");

        assert_int_equal(parse(ARGS("exec", "-"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_EXEC);
        assert_string_equal(inv.exec_path, "-");

        /* Flags before and after the file apply. */
        assert_int_equal(
                parse(ARGS("--memory-mb", "64", "exec", "--timeout", "5", "/tmp/x.py", "--port=1"),
                      NO_ENV, &c, &inv),
                0);
        assert_int_equal(inv.action, CONFIG_ACTION_EXEC);
        assert_string_equal(inv.exec_path, "/tmp/x.py");
        assert_int_equal(c.timeout_ms, 5000);
        assert_int_equal(c.memory_mb, 64);
        assert_int_equal(c.port, 1);

        /* The request's other fields, after exec only, in their order. */
        assert_int_equal(parse(ARGS("exec", "--file", "a.csv", "--file=in/b=/x/b", "--arg", "1",
                                    "--stdin=-", "--kwarg", "k=[2]", "--return-files", "s.py"),
                               NO_ENV, &c, &inv),
                         0);
        assert_string_equal(inv.exec_path, "s.py");
        assert_int_equal(inv.n_exec_inputs, 5);
        assert_int_equal(inv.exec_inputs[0].kind, CONFIG_EXEC_FILE);
        assert_string_equal(inv.exec_inputs[0].value, "a.csv");
        assert_string_equal(inv.exec_inputs[1].value, "in/b=/x/b");
        assert_int_equal(inv.exec_inputs[2].kind, CONFIG_EXEC_ARG);
        assert_int_equal(inv.exec_inputs[3].kind, CONFIG_EXEC_STDIN);
        assert_string_equal(inv.exec_inputs[3].value, "-");
        assert_int_equal(inv.exec_inputs[4].kind, CONFIG_EXEC_KWARG);
        assert_true(inv.exec_return_files);
        assert_int_equal(parse(ARGS("exec", "s.py"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.n_exec_inputs, 0);
        assert_false(inv.exec_return_files);
        bad(ARGS("--file", "a", "exec", "s.py"), NO_ENV); /* not a server option */
        bad(ARGS("exec", "s.py", "--arg"), NO_ENV);
        bad(ARGS("exec", "--stdin", "a", "--stdin", "b", "s.py"), NO_ENV);
        bad(ARGS("exec", "--stdin", "-", "-"), NO_ENV);
        assert_non_null(strstr(errbuf, "stdin"));

        bad(ARGS("exec"), NO_ENV);
        assert_non_null(strstr(errbuf, "exec"));
        bad(ARGS("exec", "--timeout", "5"), NO_ENV);
        bad(ARGS("exec", "a.py", "b.py"), NO_ENV);
        bad(ARGS("a.py", "exec"), NO_ENV);
        bad(ARGS("exec", "a.py", "--timeout", "0"), NO_ENV);

        memset(longest, 'f', sizeof(longest));
        longest[CONFIG_PATH_MAX - 1] = '\0';
        assert_int_equal(parse(ARGS("exec", longest), NO_ENV, &c, &inv), 0);
        assert_string_equal(inv.exec_path, longest);
        longest[CONFIG_PATH_MAX - 1] = 'f';
        longest[CONFIG_PATH_MAX] = '\0';
        bad(ARGS("exec", longest), NO_ENV);
}

static void test_actions(void **state)
{
        Config c;
        ConfigInvocation inv;

        assert_int_equal(parse(ARGS("--print-config"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_PRINT);
        /* --print-config shows the effective configuration: flags after it count. */
        assert_int_equal(
                parse(ARGS("--print-config", "--port", "1234"), ENV("PYEXECD_TIMEOUT=7"), &c, &inv),
                0);
        assert_int_equal(inv.action, CONFIG_ACTION_PRINT);
        assert_int_equal(c.port, 1234);
        assert_int_equal(c.timeout_ms, 7000);
        /* ...and an invalid one is still an error. */
        bad(ARGS("--print-config", "--port", "x"), NO_ENV);

        /* Success writes both out-params, whatever the action. */
        memset(&c, 0xA5, sizeof(c));
        assert_int_equal(parse(ARGS("--help"), ENV("PORT=81"), &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_HELP);
        assert_int_equal(c.port, 81);
        assert_string_equal(c.listen, "0.0.0.0");
        assert_int_equal(parse(ARGS("-h"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_HELP);
        memset(&c, 0xA5, sizeof(c));
        assert_int_equal(parse(ARGS("--version"), NO_ENV, &c, &inv), 0);
        assert_int_equal(inv.action, CONFIG_ACTION_VERSION);
        assert_int_equal(c.port, 8080);
}

static json_t *print_config(const Config *c)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        json_error_t err;
        json_t *j;

        assert_non_null(f);
        config_print_json(c, f);
        assert_int_equal(fclose(f), 0);
        j = json_loadb(text, len, 0, &err);
        if (!j)
                fail_msg("--print-config is not JSON: %s (%s)", text, err.text);
        free(text);
        return j;
}

static void test_print_json(void **state)
{
        Config c = ok(ARGS("--listen", "::1", "--port", "0", "--timeout", "2.5s", "--preload",
                           "os.path,json", "--output-limit", "512K", "--log-format", "text"),
                      NO_ENV);
        json_t *j = print_config(&c);

        assert_true(json_is_object(j));
        assert_string_equal(json_string_value(json_object_get(j, "listen")), "::1");
        assert_int_equal(json_integer_value(json_object_get(j, "port")), 0);
        assert_true(json_number_value(json_object_get(j, "timeout")) == 2.5);
        assert_int_equal(json_integer_value(json_object_get(j, "memory_mb")), 256);
        assert_int_equal(json_integer_value(json_object_get(j, "output_limit")), 524288);
        assert_int_equal(json_integer_value(json_object_get(j, "result_limit")), 8388608);
        assert_int_equal(json_integer_value(json_object_get(j, "max_body")), 1048576);
        assert_int_equal(json_integer_value(json_object_get(j, "concurrency")), c.concurrency);
        assert_int_equal(json_integer_value(json_object_get(j, "queue_size")), 100);
        assert_int_equal(json_integer_value(json_object_get(j, "max_connections")), 1024);
        assert_string_equal(json_string_value(json_object_get(j, "preload")), "os.path,json");
        assert_int_equal(json_integer_value(json_object_get(j, "uid_base")), 100000);
        assert_string_equal(json_string_value(json_object_get(j, "log_format")), "text");
        assert_string_equal(json_string_value(json_object_get(j, "log_level")), "info");
        assert_int_equal(json_integer_value(json_object_get(j, "tmp_size")), 64 * 1048576);
        assert_int_equal(json_integer_value(json_object_get(j, "pids_max")), 128);
        assert_string_equal(json_string_value(json_object_get(j, "disabled_layers")), "");
        json_decref(j);

        /* Milliseconds survive the trip through seconds. */
        c = ok(ARGS("--timeout", "1ms"), NO_ENV);
        j = print_config(&c);
        assert_true(json_number_value(json_object_get(j, "timeout")) == 0.001);
        assert_true(json_is_true(json_object_get(j, "plot_zygote")));
        json_decref(j);

        /* plot_zygote says whether there is one: none with matplotlib in every zygote. */
        c = ok(ARGS("--preload", "numpy,matplotlib.pyplot"), NO_ENV);
        j = print_config(&c);
        assert_true(json_is_false(json_object_get(j, "plot_zygote")));
        json_decref(j);
        c = ok(ARGS("--plot-zygote", "false"), NO_ENV);
        j = print_config(&c);
        assert_true(json_is_false(json_object_get(j, "plot_zygote")));
        json_decref(j);
}

/* --playground and PYEXECD_PLAYGROUND: on by default, a boolean word either way. */
static void test_playground(void **state)
{
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        char env[64];
        Config c;
        json_t *j;

        assert_true(ok(NO_ARGS, NO_ENV).playground);
        for (size_t i = 0; i < 4; i++) {
                assert_true(ok(ARGS("--playground", yes[i]), NO_ENV).playground);
                assert_false(ok(ARGS("--playground", no[i]), NO_ENV).playground);
                (void) snprintf(env, sizeof(env), "PYEXECD_PLAYGROUND=%s", no[i]);
                assert_false(ok(NO_ARGS, ENV(env)).playground);
        }
        assert_true(ok(ARGS("--playground=true"), ENV("PYEXECD_PLAYGROUND=false")).playground);
        bad(ARGS("--playground=maybe"), NO_ENV);
        bad(ARGS("--playground="), NO_ENV);
        bad(ARGS("--playground=TRUE "), NO_ENV);
        bad(NO_ARGS, ENV("PYEXECD_PLAYGROUND=2"));

        c = ok(ARGS("--playground=false"), NO_ENV);
        j = print_config(&c);
        assert_true(json_is_false(json_object_get(j, "playground")));
        json_decref(j);
        c = ok(NO_ARGS, NO_ENV);
        j = print_config(&c);
        assert_true(json_is_true(json_object_get(j, "playground")));
        json_decref(j);
}

static void test_help_lists_every_flag(void **state)
{
        static const char *const flags[] = {
                "--listen",        "--port",
                "--timeout",       "--memory-mb",
                "--output-limit",  "--result-limit",
                "--max-body",      "--concurrency",
                "--queue-size",    "--max-connections",
                "--preload",       "--uid-base",
                "--log-format",    "--log-level",
                "--print-config",  "--tmp-size",
                "--pids-max",      "--disable-layers",
                "--playground",    "PYEXECD_PLAYGROUND",
                "PYEXECD_TIMEOUT", "PORT",
        };
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        assert_non_null(f);
        config_print_help(f, "pyexecd");
        assert_int_equal(fclose(f), 0);
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
                if (!strstr(text, flags[i]))
                        fail_msg("--help does not mention %s", flags[i]);
        free(text);
}

static void test_short_errbuf(void **state)
{
        Config c;
        ConfigInvocation inv;
        char small[8];

        memset(small, 'X', sizeof(small));
        assert_true(config_parse(3, (char *const *) ARGS("--port", "70000"), NULL, &c, &inv, small,
                                 6) > 0);
        assert_int_equal(strnlen(small, 6), 5);
        assert_int_equal(small[6], 'X');
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plot_zygote),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_environment_overrides),
                cmocka_unit_test(test_environment_names_are_exact),
                cmocka_unit_test(test_invalid_environment),
                cmocka_unit_test(test_flags_override_environment),
                cmocka_unit_test(test_both_flag_forms),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_integers_and_bounds),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_preload),
                cmocka_unit_test(test_log_names),
                cmocka_unit_test(test_sandbox_settings),
                cmocka_unit_test(test_disable_layers),
                cmocka_unit_test(test_layer_names),
                cmocka_unit_test(test_print_json_layers),
                cmocka_unit_test(test_unknown_and_malformed_arguments),
                cmocka_unit_test(test_exec),
                cmocka_unit_test(test_playground),
                cmocka_unit_test(test_actions),
                cmocka_unit_test(test_print_json),
                cmocka_unit_test(test_help_lists_every_flag),
                cmocka_unit_test(test_short_errbuf),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
