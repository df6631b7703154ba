/* execl, execle and execlp: the exec calls whose arguments come as a variadic list.
 *
 * glibc's own versions call its internal execve, which a preloaded library cannot intercept,
 * so the events recorded just before the exec would be lost (up to 100 ms of them). Stable
 * Rust cannot define a variadic function: hooks.rs exports each name as a jump to the function
 * here, which gathers the list into an array and calls execve or execvp, i.e. the library's own
 * hooks (they write out what is pending, then exec). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define LEAKSIFT_INTERNAL __attribute__((visibility("hidden")))

extern char **environ;

/* How many arguments follow `first` up to the terminating NULL (not counted); -1 past INT_MAX. */
static long count_after(const char *first, va_list *list) {
    long count = 0;
    if (first == NULL) return 0;
    while (va_arg(*list, const char *) != NULL) {
        if (++count >= INT_MAX) return -1;
    }
    return count;
}

/* Fills argv with `first`, the `count` arguments after it and NULL, leaving `list` after the
 * NULL that ends them (where execle's environment is). */
static void gather(char **argv, const char *first, long count, va_list *list) {
    argv[0] = (char *)first;
    if (first == NULL) return;
    for (long i = 1; i <= count; i++) argv[i] = va_arg(*list, char *);
    argv[count + 1] = NULL;
    (void)va_arg(*list, char *);
}

/* Declares `argv` (the arguments from `arg` on, then NULL) and `list`, started after them;
 * returns -1 with E2BIG for more than INT_MAX arguments, as glibc does. */
#define GATHER_ARGV(arg)                   \
    va_list list;                          \
    va_start(list, arg);                   \
    long count = count_after(arg, &list);  \
    va_end(list);                          \
    if (count < 0) {                       \
        errno = E2BIG;                     \
        return -1;                         \
    }                                      \
    char *argv[count + 2];                 \
    va_start(list, arg);                   \
    gather(argv, arg, count, &list)

LEAKSIFT_INTERNAL int leaksift_execl(const char *path, const char *arg, ...) {
    GATHER_ARGV(arg);
    va_end(list);
    return execve(path, argv, environ);
}

LEAKSIFT_INTERNAL int leaksift_execle(const char *path, const char *arg, ...) {
    GATHER_ARGV(arg);
    char *const *envp = va_arg(list, char *const *);
    va_end(list);
    return execve(path, argv, envp);
}

LEAKSIFT_INTERNAL int leaksift_execlp(const char *file, const char *arg, ...) {
    GATHER_ARGV(arg);
    va_end(list);
    return execvp(file, argv);
}
