/* lwIP architecture glue for Linux/x86-64 user space. */
#ifndef MESHGATE_ARCH_CC_H
#define MESHGATE_ARCH_CC_H
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <arpa/inet.h>
#define LWIP_ERRNO_INCLUDE <errno.h>
#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x) do { fprintf(stderr, "lwip assert: %s\n", x); abort(); } while (0)
#define LWIP_RAND() meshgate_lwip_rand()
#endif
