/* libFuzzer target: config_parse(), flags and environment -> Config.
 *
 * Input: parts separated by NUL bytes. The first byte of each part says where the rest
 * goes: odd (e.g. 'e') into the environment, even (e.g. 'f') onto the command line after
 * argv[0]. So "ePORT=80\0f--timeout\0f2.5s" is PORT=80 pyexecd --timeout 2.5s.
 *
 * Checked: the result is 0 or positive (nothing here can fail internally); a refusal comes
 * with a non-empty NUL-terminated message and leaves *ret and *ret_inv untouched; an
 * accepted Config is within every bound --help documents (the options table of
 * config.c), its strings are NUL-terminated and valid (an address inet_pton reads, a
 * preload list of module names), and --print-config prints it as one JSON object whose
 * numbers are the Config's. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>

#include "config/config.h"

#include "fuzz.h"

#define KiB       1024ULL
#define MiB       (1024ULL * KiB)
#define GiB       (1024ULL * MiB)
#define MAX_PARTS 64

#define check_range(v, lo, hi)                                                        \
        fuzz_check((uint64_t) (v) >= (lo) && (uint64_t) (v) <= (hi), "%s = %llu", #v, \
                   (unsigned long long) (v))

static bool module_list(const char *s)
{
        /* Comma-separated dotted names: letters, digits (not first), underscores. */
        bool start = true;

        for (; *s; s++) {
                if (*s == ',' || *s == '.') {
                        if (start)
                                return false;
                        start = true;
                } else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
                           (!start && *s >= '0' && *s <= '9'))
                        start = false;
                else
                        return false;
        }
        return !start;
}

static bool streq(const char *a, const char *b)
{
        return a && strcmp(a, b) == 0;
}

static void check_number(const json_t *j, const char *key, double want)
{
        const json_t *v = json_object_get(j, key);

        fuzz_check(json_is_number(v), "--print-config has no number \"%s\"", key);
        fuzz_check(json_number_value(v) == want, "--print-config \"%s\" is %g, not %g", key,
                   json_number_value(v), want);
}

static void check_print(const Config *c)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        json_t *j;

        if (!f)
                abort();
        config_print_json(c, f);
        if (fclose(f) != 0)
                abort();
        j = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, NULL);
        fuzz_check(json_is_object(j), "--print-config is not a JSON object: %s", text);
        fuzz_check(streq(json_string_value(json_object_get(j, "listen")), c->listen) &&
                           streq(json_string_value(json_object_get(j, "preload")), c->preload),
                   "--print-config strings differ");
        check_number(j, "port", c->port);
        check_number(j, "memory_mb", c->memory_mb);
        check_number(j, "output_limit", (double) c->output_limit);
        check_number(j, "result_limit", (double) c->result_limit);
        check_number(j, "max_body", (double) c->max_body);
        check_number(j, "concurrency", c->concurrency);
        check_number(j, "pool_size", c->pool_size);
        check_number(j, "queue_size", c->queue_size);
        check_number(j, "max_connections", c->max_connections);
        check_number(j, "uid_base", c->uid_base);
        check_number(j, "tmp_size", (double) c->tmp_size);
        check_number(j, "pids_max", c->pids_max);
        check_number(j, "zygotes", c->zygotes);
        check_number(j, "zygote_max_spawns", c->zygote_max_spawns);
        fuzz_check(json_is_boolean(json_object_get(j, "plot_zygote")) &&
                           json_is_true(json_object_get(j, "plot_zygote")) == c->plot_zygote,
                   "--print-config \"plot_zygote\" differs");
        fuzz_check(json_is_boolean(json_object_get(j, "playground")) &&
                           json_is_true(json_object_get(j, "playground")) == c->playground,
                   "--print-config \"playground\" differs");
        json_decref(j);
        free(text);
}

static void check_config(const Config *c, const ConfigInvocation *inv)
{
        unsigned char addr[sizeof(struct in6_addr)];

        fuzz_check(memchr(c->listen, '\0', sizeof(c->listen)), "listen not NUL-terminated");
        fuzz_check(inet_pton(AF_INET, c->listen, addr) == 1 ||
                           inet_pton(AF_INET6, c->listen, addr) == 1,
                   "listen \"%s\" is not an address", c->listen);
        check_range(c->port, 0, 65535);
        check_range(c->timeout_ms, 1, 3600000);
        check_range(c->memory_mb, 16, 1048576);
        check_range(c->output_limit, 1, 1 * GiB);
        check_range(c->result_limit, 64, 1 * GiB);
        check_range(c->max_body, 64, 1 * GiB);
        check_range(c->concurrency, 1, 1024);
        check_range(c->pool_size, 0, 1024);
        check_range(c->queue_size, 0, 100000);
        check_range(c->max_connections, 1, 100000);
        fuzz_check(memchr(c->preload, '\0', sizeof(c->preload)), "preload not NUL-terminated");
        fuzz_check(c->preload[0] == '\0' || module_list(c->preload), "preload \"%s\"", c->preload);
        check_range(c->uid_base, 1, UINT32_MAX - 65536);
        /* --help and --version return before the cross-field checks: that Config is not used. */
        if (inv->action != CONFIG_ACTION_HELP && inv->action != CONFIG_ACTION_VERSION)
                fuzz_check((uint64_t) c->uid_base + config_slots(c) <= UINT32_MAX - 1,
                           "uid range overflows");
        fuzz_check((c->disabled_layers & ~(uint32_t) _LAYER_ALL) == 0, "unknown layer bits");
        check_range(c->tmp_size, 1 * MiB, 64 * GiB);
        check_range(c->pids_max, 8, 65536);
        check_range(c->zygotes, 1, CONFIG_ZYGOTES_MAX);
        check_range(c->zygote_max_spawns, 0, 100000000);
        check_range(c->zygote_max_age_ms, 0, 7 * 86400000ULL);
        check_range(c->log_format, LOG_FORMAT_AUTO, LOG_FORMAT_TEXT);
        check_range(c->log_level, LOG_LEVEL_DEBUG, LOG_LEVEL_ERROR);
        check_range(inv->action, CONFIG_ACTION_SERVE, CONFIG_ACTION_PRINT);
        if (inv->action == CONFIG_ACTION_EXEC)
                fuzz_check(inv->exec_path[0] != '\0' &&
                                   memchr(inv->exec_path, '\0', sizeof(inv->exec_path)),
                           "exec without a NUL-terminated path");
        check_print(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *argv[MAX_PARTS + 2] = {NULL}, *envp[MAX_PARTS + 1] = {NULL};
        char errbuf[512], argv0[] = "pyexecd";
        size_t argc = 1, envc = 0, start = 0;
        Config c, c_before;
        ConfigInvocation inv, inv_before;
        int r;

        argv[0] = argv0;
        while (start < size && argc + envc < MAX_PARTS) {
                const uint8_t *nul = memchr(data + start, '\0', size - start);
                size_t end = nul ? (size_t) (nul - data) : size;

                if (end > start) {
                        char *s = fuzz_dup(data + start + 1, end - start - 1, true);
                        if (data[start] & 1)
                                envp[envc++] = s;
                        else
                                argv[argc++] = s;
                }
                start = end + 1;
        }

        memset(&c, 0xA5, sizeof(c)), c_before = c;
        memset(&inv, 0xA5, sizeof(inv)), inv_before = inv;
        memset(errbuf, 'x', sizeof(errbuf));
        r = config_parse((int) argc, argv, envp, &c, &inv, errbuf, sizeof(errbuf));
        fuzz_check(r >= 0, "config_parse returned %d", r);
        if (r > 0) {
                fuzz_check(memchr(errbuf, '\0', sizeof(errbuf)) && errbuf[0] != '\0',
                           "refused without a message");
                fuzz_check(memcmp(&c, &c_before, sizeof(c)) == 0 &&
                                   memcmp(&inv, &inv_before, sizeof(inv)) == 0,
                           "*ret written on failure");
        } else
                check_config(&c, &inv);

        for (size_t i = 1; i < argc; i++)
                free(argv[i]);
        for (size_t i = 0; i < envc; i++)
                free(envp[i]);
        return 0;
}
