/* Bump allocator for AST and IR lifetimes: everything a compile makes is freed at once. */
#ifndef ATTNC_ARENA_H
#define ATTNC_ARENA_H
#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;     /* newest block first */
    size_t bytes_used;     /* total bytes handed out, for the check benchmark */
} arena;

void  arena_init(arena *a);
void *arena_alloc(arena *a, size_t size);              /* zeroed, 16-byte aligned; aborts only on OOM */
void *arena_calloc(arena *a, size_t n, size_t size);    /* overflow-checked n*size */
char *arena_strdup(arena *a, const char *s);
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  arena_free(arena *a);

#endif
