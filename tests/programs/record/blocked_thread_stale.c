/* A thread still alive at exit, blocked in a system call, with a stale pointer below its stack
 * pointer: memcheck never reads memory below a thread's stack pointer (less a 128-byte red
 * zone), so the block only that stale word points at is definitely lost, while the block a
 * live frame above the stack pointer holds is still reachable.
 *
 * The worker calls `leave_stale` (a deep frame whose lowest slot gets a 321-byte block, then
 * returns), keeps a 654-byte block in a local of its own frame, tells main it is about to block,
 * and blocks reading a pipe nobody writes. main waits for it, lets it reach the read, and
 * returns: the process exits with the worker still blocked. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int ready[2];
static int never[2];

/* Fills a 4 KiB frame, its lowest slot pointing at a fresh block, then drops it. */
__attribute__((noinline)) static void leave_stale(void) {
    void *volatile slots[512];
    memset((void *)slots, 0, sizeof slots);
    slots[0] = malloc(321);
    memset(slots[0], 1, 321);
}

/* Overwrites the caller-saved registers that may still hold the block's address (memset returns
 * it, for one): memcheck reads every thread's registers too. */
__attribute__((noinline)) static void clobber(void) {
    char buf[256];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
    __asm__ volatile("xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\t"
                     "xor %%esi, %%esi\n\txor %%edi, %%edi\n\txor %%r8d, %%r8d\n\t"
                     "xor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\txor %%r11d, %%r11d"
                     :
                     :
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11");
}

static void *worker(void *arg) {
    (void)arg;
    leave_stale();
    clobber();
    void *volatile kept = malloc(654);
    char byte = 'r';
    if (write(ready[1], &byte, 1) != 1)
        return NULL;
    /* Blocks forever: nobody writes to `never`. */
    if (read(never[0], &byte, 1) < 0)
        return NULL;
    free(kept);
    return NULL;
}

int main(void) {
    if (pipe(ready) != 0 || pipe(never) != 0)
        return 1;
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    char byte;
    if (read(ready[0], &byte, 1) != 1)
        return 1;
    /* Time for the worker to enter read(). */
    usleep(200 * 1000);
    return 0;
}
