/* Included before every meshgate source file (see Makefile BANNED).
 * Unsafe string calls fail the build: use snprintf / memcpy with sizes. */
#ifndef MESHGATE_BANNED_H
#define MESHGATE_BANNED_H
#include <string.h>
#include <stdio.h>
#undef strcpy
#define strcpy(d, s) meshgate_banned_strcpy_use_snprintf
#undef strcat
#define strcat(d, s) meshgate_banned_strcat_use_snprintf
#undef sprintf
#define sprintf(...) meshgate_banned_sprintf_use_snprintf
#undef vsprintf
#define vsprintf(...) meshgate_banned_vsprintf_use_vsnprintf
#undef gets
#define gets(s) meshgate_banned_gets
#endif
