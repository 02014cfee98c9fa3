/* `pyexecd exec`'s request: the body an HTTP client would send, built from the command
 * line, so that it goes through exactly the checks of POST /execute. Internal to api/ and
 * main.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct CliFile {
        const char *path; /* in the sandbox's working directory */
        const char *data;
        size_t len;
} CliFile;

typedef struct CliRequest {
        const char *script;
        size_t script_len;
        const char *stdin_data; /* NULL: none */
        size_t stdin_len;
        const char *const *args; /* JSON texts, one per positional argument */
        size_t n_args;
        const char *const *kwargs; /* "NAME=JSON" */
        size_t n_kwargs;
        const CliFile *files;
        size_t n_files;
        bool return_files;
} CliRequest;

/* The JSON body of `cli` (malloc'ed, NUL-terminated). Returns 0, 1 with a message in errbuf
 * (a script or stdin that is not UTF-8, an --arg that is not JSON, a --kwarg without
 * '='), or -ENOMEM. */
int cli_request_body(const CliRequest *cli, char **ret, char *errbuf, size_t errlen);
