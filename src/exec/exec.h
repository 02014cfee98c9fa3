/* The job, between the API (which parses and answers it) and the executor (which runs it):
 * types only, so that api/ and pool/ know each other through this header alone.
 *
 * ExecRequest: what to run. ExecOutcome: what happened to one job, as the executor saw
 * it, the raw material of a response. The
 * byte ranges (frame, stdout, stderr) are untrusted sandbox output. They live in `owned`,
 * which the completion callback takes over: it may keep a copy of the struct and build the
 * response later, on its own thread, then call exec_outcome_release(). `request_id` is
 * valid only during the callback. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* With return_files: paths a frame lists as omitted, at most. */
#define EXEC_FILES_OMITTED_MAX 100

typedef struct ExecRequest {
        char *script; /* malloc'ed, NUL-terminated, valid UTF-8, no NUL inside */
        size_t script_len;
        uint32_t timeout_ms;
        uint32_t memory_mb;
        /* What the harness needs besides the script (stdin, args, kwargs, input files,
         * return_files), as one JSON object; NULL when the request has none of them.
         * malloc'ed, taken by executor_submit() like the script. */
        char *input;
        size_t input_len;
        size_t files_bytes;        /* of the input files, decoded (for the metrics) */
        size_t stdin_bytes;        /* of stdin (for the metrics) */
        bool return_files;         /* the frame may list files for the response */
        unsigned max_output_files; /* with return_files */
        size_t output_files_limit; /* with return_files: bytes in all */
        const char *request_id;    /* for the logs; copied by executor_submit() */
        int client_fd;             /* the client's socket, watched for hang-up; -1: none */
} ExecRequest;

typedef enum ExecEnd {
        EXEC_END_NORMAL,       /* the sandbox exited on its own: see wait_status and frame */
        EXEC_END_TIMEOUT,      /* wall-clock deadline: killed */
        EXEC_END_OUTPUT_LIMIT, /* stdout or stderr over the cap: killed */
        EXEC_END_RESULT_LIMIT, /* result channel over the cap: killed */
        EXEC_END_SETUP_FAILED, /* the sandbox reported a failed set-up stage */
        EXEC_END_INTERNAL,     /* the service failed (zygote died, clone failed, ...) */
        EXEC_END_EXPIRED,      /* waited in the queue longer than its timeout: not run */
        EXEC_END_CLIENT_GONE,  /* the client hung up: killed (nobody reads the answer) */
} ExecEnd;

typedef struct ExecOutcome {
        ExecEnd end;
        const char *request_id;
        bool have_status;
        int wait_status;           /* when have_status */
        const char *setup_stage;   /* with EXEC_END_SETUP_FAILED: the stage's name */
        int setup_errno;           /* with EXEC_END_SETUP_FAILED */
        const char *internal_what; /* with EXEC_END_INTERNAL */
        int internal_errno;
        /* The sandbox acknowledged its job (SANDBOX_JOB_ACK): its limits were applied and
         * the script's code may have run. Without it, only the service's code ran, and any
         * exit is the service's failure. */
        bool script_started;
        /* Not started because the request's input files did not fit in the sandbox's /tmp
         * (the client's 413, not the service's fault). */
        bool input_no_space;
        const char *frame;
        size_t frame_len;
        /* The sandbox sent a whole frame (as long as its length prefix says). The executor
         * then kills the sandbox, so a signal in wait_status may be the service's own. */
        bool frame_complete;
        const char *out;
        size_t out_len;
        bool out_truncated;
        const char *err;
        size_t err_len;
        bool err_truncated;
        bool oom_killed; /* the slot's cgroup counted an OOM kill during the job */
        double duration_ms;
        double setup_ms; /* SPAWN sent -> the sandbox reported every layer in place */
        uint32_t timeout_ms;
        bool return_files; /* the request's: the frame's "files" are checked and returned */
        unsigned max_output_files;
        size_t output_files_limit;
        size_t result_limit; /* bytes of the result and its figures' base64 text together */
        void *owned[3];      /* the heap blocks frame, out and err point into */
} ExecOutcome;

/* Frees the byte ranges of an outcome handed to a completion callback. */
static inline void exec_outcome_release(ExecOutcome *o)
{
        for (size_t i = 0; i < sizeof(o->owned) / sizeof(o->owned[0]); i++) {
                free(o->owned[i]);
                o->owned[i] = NULL;
        }
        o->frame = o->out = o->err = NULL;
        o->frame_len = o->out_len = o->err_len = 0;
}
