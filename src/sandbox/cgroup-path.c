/* Where this process's cgroup is, from the text of /proc/self/cgroup and
 * /proc/self/mountinfo. No I/O here: cgroup.c reads the files, and the unit tests feed
 * these functions the v1, v2, hybrid and container layouts they must handle.
 *
 * /proc/self/cgroup (cgroups(7)): one line per hierarchy, "ID:CONTROLLERS:PATH". v2 is
 * the line "0::PATH" (empty controller list); v1 lines name their controllers, comma-
 * separated ("4:memory:/a", "6:cpu,cpuacct:/a", "1:name=systemd:/a"). PATH is the rest of
 * the line and may itself contain ':'.
 *
 * /proc/self/mountinfo (proc(5)): "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS...] -
 * FSTYPE SOURCE SUPEROPTS". ROOT is the cgroup that the mount shows as its top: "/" in a
 * container with its own cgroup namespace, "/docker/<id>" (v1) or
 * "/system.slice/docker-<id>.scope" (v2) in one without, where PATH still names the
 * host's path. Fields escape space, tab, newline and backslash as \ooo. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "util/macro.h"

/* The next line of *text, newline dropped, in a copy the caller frees. Returns 1, 0 at
 * the end, or -ENOMEM. */
static int next_line(const char **text, char **ret)
{
        const char *s = *text, *nl = strchr(s, '\n');
        size_t n = nl ? (size_t) (nl - s) : strlen(s);

        if (!*s)
                return 0;
        *ret = strndup(s, n);
        if (!*ret)
                return -ENOMEM;
        *text = nl ? nl + 1 : s + n;
        return 1;
}

static bool has_token(char *list, const char *word)
{
        char *save = NULL;

        for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if (strcmp(tok, word) == 0)
                        return true;
        return false;
}

static int copy_out(char *ret, size_t len, const char *a, const char *b)
{
        int n = snprintf(ret, len, "%s%s", a, b);
        return n < 0 || (size_t) n >= len ? -ENAMETOOLONG : 0;
}

int cgroup_parse_own_path(const char *proc_cgroup, const char *controller, char *ret, size_t len)
{
        int k;

        for (;;) {
                _cleanup_free_ char *line = NULL;
                if ((k = next_line(&proc_cgroup, &line)) <= 0)
                        break;
                char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c1 = '\0';
                *c2 = '\0';
                char *ctrls = c1 + 1, *path = c2 + 1;
                bool match = controller ? has_token(ctrls, controller)
                                        : strcmp(line, "0") == 0 && *ctrls == '\0';
                if (!match || path[0] != '/')
                        continue;
                return copy_out(ret, len, "", strcmp(path, "/") == 0 ? "" : path);
        }
        return k < 0 ? k : -ENOENT;
}

/* Decodes mountinfo's \ooo escapes in place. */
static void unescape(char *s)
{
        char *w = s;

        for (const char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else
                        *w++ = *r;
        }
        *w = '\0';
}

int cgroup_parse_mount_dir(const char *mountinfo, const char *controller, const char *own,
                           const char *v2_mount_point, char *ret, size_t len)
{
        int r = -ENOENT, k;

        for (;;) {
                _cleanup_free_ char *line = NULL;
                if ((k = next_line(&mountinfo, &line)) <= 0)
                        break;
                char *field[64], *save = NULL;
                int n = 0, dash = -1;

                for (char *t = strtok_r(line, " ", &save); t && n < (int) ELEMENTSOF(field);
                     t = strtok_r(NULL, " ", &save))
                        field[n++] = t;
                for (int i = 6; i < n; i++)
                        if (strcmp(field[i], "-") == 0) {
                                dash = i;
                                break;
                        }
                if (dash < 0 || dash + 3 >= n)
                        continue;
                char *root = field[3], *mnt = field[4], *fstype = field[dash + 1];
                unescape(root);
                unescape(mnt);
                if (controller) {
                        if (strcmp(fstype, "cgroup") != 0 ||
                            !has_token(field[dash + 3], controller))
                                continue;
                } else if (strcmp(fstype, "cgroup2") != 0 || strcmp(mnt, v2_mount_point) != 0)
                        continue;

                /* own is "" for the root cgroup. A mount whose root is not an ancestor of
                 * own (another container's cgroup bind-mounted in) shows own nowhere. */
                const char *rel = own;
                size_t rl = strlen(root);
                if (strcmp(root, "/") != 0) {
                        if (strncmp(own, root, rl) != 0 || (own[rl] != '\0' && own[rl] != '/'))
                                continue;
                        rel = own + rl;
                }
                /* No break: a later line mounted on the same point hides the earlier one. */
                r = copy_out(ret, len, mnt, rel);
        }
        return k < 0 ? k : r;
}
