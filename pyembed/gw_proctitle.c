/*
 * The process title ps shows, as uWSGI's --procname, --procname-prefix,
 * --procname-prefix-spaced, --procname-append, --procname-master and
 * --auto-procname set it: Linux shows a process's command line from the
 * memory its argv strings were started in, so a new title is written over
 * that memory. uWSGI does this and leaves the kernel's name (comm, which
 * top shows) alone; so does gowsgi.
 *
 * The strings of argv and of the initial environment sit one after the
 * other; a title longer than argv runs on into the environment's. So that
 * nothing reads them after they are overwritten, a constructor copies
 * every one of them to the heap before main, and points the argv and
 * environ arrays (which glibc, Go's runtime and Python read) at the
 * copies.
 */
#include "gw.h" /* Python.h asks for _GNU_SOURCE: program_invocation_name */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *gw_title_area;       /* where argv[0] started */
static size_t gw_title_argv_len;  /* argv's strings, with their NULs */
static size_t gw_title_area_len;  /* argv's and the environment's */

/* Points every pointer in strings[0..n) whose string lies in the area
 * ending at *end at a heap copy, and grows *end over the strings that
 * follow it. -1 when a copy cannot be made. */
static int gw_title_take(char **strings, int n, char **end)
{
    for (int i = 0; i < n; i++) {
        if (strings[i] != *end)
            break; /* not contiguous: the title stops before it */
        size_t len = strlen(strings[i]) + 1;
        char *copy = malloc(len);
        if (copy == NULL)
            return -1;
        memcpy(copy, strings[i], len);
        strings[i] = copy;
        *end += len;
    }
    return 0;
}

/* glibc passes init functions the program's arguments. Priority 101 runs
 * this before the zygote's constructor (gw_zygote.c), which reads them. */
__attribute__((constructor(101))) static void gw_proctitle_init(int argc, char **argv, char **envp)
{
    if (argc < 1 || argv[0] == NULL)
        return;
    char *start = argv[0], *end = argv[0];
    int nenv = 0;
    while (envp != NULL && envp[nenv] != NULL)
        nenv++;
    if (gw_title_take(argv, argc, &end) < 0)
        return;
    char *argv_end = end;
    if (gw_title_take(envp, nenv, &end) < 0)
        end = argv_end; /* what was copied already is safe; the rest is not the title's */
    program_invocation_name = argv[0];
    const char *slash = strrchr(argv[0], '/');
    program_invocation_short_name = (char *)(slash != NULL ? slash + 1 : argv[0]);
    gw_title_area = start;
    gw_title_argv_len = (size_t)(argv_end - start);
    gw_title_area_len = (size_t)(end - start);
}

/* GIL: any. Makes prefix, name and append (each may be NULL) the process
 * title, cut to the room there is. After the NUL that ends it, what is
 * left of argv's room is filled with spaces: a last byte of argv that is
 * not NUL tells Linux the title was rewritten, and it then reads the title
 * up to its NUL, into the environment's room if it ran on there
 * (proc(5), /proc/pid/cmdline). */
void gw_proctitle_set(const char *prefix, const char *name, const char *append)
{
    if (gw_title_area == NULL || gw_title_area_len < 2)
        return;
    int n = snprintf(gw_title_area, gw_title_area_len, "%s%s%s", prefix ? prefix : "", name ? name : "",
                     append ? append : "");
    size_t len = n < 0 ? 0 : (size_t)n < gw_title_area_len ? (size_t)n : gw_title_area_len - 1;
    size_t room = len < gw_title_argv_len ? gw_title_argv_len : gw_title_area_len;
    memset(gw_title_area + len + 1, ' ', room - (len + 1));
}

/* How the zygote's processes are named: uWSGI names them only when one
 * of the procname options is given (auto); then each gets the fixed name
 * (--procname) or its role's. */
static struct {
    int on;
    const char *prefix, *name, *append;
} gw_title_names;

/* GIL: any. The names; the strings must live as long as the process. */
void gw_proctitle_configure(int on, const char *prefix, const char *name, const char *append)
{
    gw_title_names.on = on;
    gw_title_names.prefix = prefix;
    gw_title_names.name = name != NULL && *name != '\0' ? name : NULL;
    gw_title_names.append = append;
}

/* GIL: any. Names this process for its role ("uWSGI worker 1"), as
 * gw_proctitle_configure said. */
void gw_proctitle_role(const char *role)
{
    if (gw_title_names.on)
        gw_proctitle_set(gw_title_names.prefix, gw_title_names.name ? gw_title_names.name : role,
                         gw_title_names.append);
}

/* GIL: any. uwsgi.setprocname(name): name, with the prefix and the suffix
 * the options gave, as uWSGI's. */
void gw_proctitle_rename(const char *name)
{
    gw_proctitle_set(gw_title_names.prefix, name, gw_title_names.append);
}
