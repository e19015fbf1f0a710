/* Reading a spec file whole (binary-safe; the lexer reports stray bytes itself). */
#ifndef ATTNC_SPEC_FILE_H
#define ATTNC_SPEC_FILE_H
#include <stddef.h>
/* Returns a malloc'd, NUL-terminated buffer and its length, or NULL with errno set. */
char *spec_file_read(const char *path, size_t *len);
#endif
