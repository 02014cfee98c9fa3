/* The zygote's own memory image: what /proc/self/status says of it, and its heap backed by
 * huge pages before any sandbox is cloned from it. */
#pragma once

#include <stdint.h>

/* Reads a "Key:   <number>" line of /proc/self/status (kB values are returned in bytes).
 * Returns 0 or -errno (-ENOENT: no such key). */
int image_status_value(const char *key, uint64_t *ret);

/* Backs the private anonymous mappings with huge pages where it can (see image.c). Returns
 * the bytes now in huge pages. */
uint64_t image_collapse_heap(void);
