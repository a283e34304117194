/*
 * The zygote: a process that imports the app once and forks workers that
 * share it copy-on-write, as uWSGI's --master and Gunicorn's --preload do.
 * Go cannot fork a running runtime, so this runs as a constructor, before
 * the Go runtime starts any thread, and only when GOWSGI_ZYGOTE is set. A
 * forked worker never returns from the constructor: it serves its slots in
 * C (gw_worker_loop.c) and exits, so no Go runtime ever starts in it.
 *
 * The master talks to the zygote over fd 3, a SOCK_SEQPACKET socket (one
 * message per send, descriptors attached with SCM_RIGHTS):
 *
 *   zygote -> master  "R<python version>"   the app is loaded, once, first
 *                     "E<summary>"          the app failed to load, then exit 2
 *                     "P<pid>"              the worker asked for was forked
 *                     "N<error>"            it could not be forked
 *                     "X<pid> <status>"     a worker exited; status as wait(2)
 *   master -> zygote  "F<num> <slots>"      fork worker num with slots slots;
 *                     the control pipe, the scoreboard, the worker's signal
 *                     socket and the slot sockets follow as descriptors
 *                     over this and further messages (a message carries at
 *                     most ZYGOTE_FDS_PER_MSG)
 *                     "S<num>", "M<num>"    fork spooler num or mule num
 *                     (gw_uwsgi_aux.h), its own signal socket attached;
 *                     answered with P or N,
 *                     and its exit reported with X, as a worker's
 *
 * The socket every process of the generation shares with the master for
 * uWSGI's signals (gw_uwsgi_signal.c) is the descriptor GOWSGI_APP_SIGNAL_FD
 * names; the workers inherit it by the fork.
 *
 * The app spec, and what uWSGI's Python API tells of the server
 * (gw_uwsgi.c), come in GOWSGI_APP_* variables (pyembed.ZygoteEnv); the
 * generation's shared area (gw_shared.h), on the descriptor
 * GOWSGI_APP_SHARED_FD names, which the zygote maps before the import. With
 * --lazy-apps (GOWSGI_APP_LAZY=1) the zygote starts no Python: it reports
 * ready at once, and each worker it forks starts Python and imports the app
 * itself, reporting a failure on its control pipe as the worker contract
 * says (docs/internals.md).
 */
#include "gw.h"
#include "gw_shared.h"
#include "gw_uwsgi_aux.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ZYGOTE_FD 3
#define ZYGOTE_FDS_PER_MSG GW_ZYGOTE_FDS_PER_MSG
#define ZYGOTE_MSG_CAP GW_ZYGOTE_MSG_CAP
#define ZYGOTE_MAX_PATHS 256
/* Before the slot sockets: the control pipe, the scoreboard and the
 * worker's signal socket. */
#define GW_WORKER_FIXED_FDS 3
#define GW_ZYGOTE_MAX_FDS (GW_WORKER_FIXED_FDS + 1024) /* up to 1024 slots */


static void zygote_send(const char *kind, const char *text)
{
    char msg[ZYGOTE_MSG_CAP];
    int n = snprintf(msg, sizeof msg, "%s%s", kind, text);
    if (n >= (int)sizeof msg)
        n = sizeof msg - 1;
    while (send(ZYGOTE_FD, msg, (size_t)n, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "1") == 0;
}

static const char *env_str(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? v : "";
}

static long env_long(const char *name)
{
    return strtol(env_str(name), NULL, 10);
}

/* GIL held. Moves every object the import made into the collector's
 * permanent generation (gc.freeze, Python 3.7+): a collection in a worker
 * would otherwise write to each one's header and so copy every page of
 * the shared heap into the worker. */
static void zygote_freeze_gc(void)
{
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *done = gc != NULL ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (done == NULL)
        PyErr_Print(); /* workers then share less, and still serve */
    Py_XDECREF(done);
    Py_XDECREF(gc);
}

/* GIL held. Turns on faulthandler for the workers, which inherit its
 * signal handlers: a worker that crashes in C (an extension module, ctypes,
 * abort()) logs the Python traceback of where it happened and then dies by
 * the signal, which the master reports. Only here, where no Go runtime runs
 * or will: installed in a Go process it would replace the handlers Go
 * relies on. */
static void zygote_enable_faulthandler(void)
{
    PyObject *fh = PyImport_ImportModule("faulthandler");
    PyObject *done = fh != NULL ? PyObject_CallMethod(fh, "enable", "(i)", STDERR_FILENO) : NULL;
    if (done == NULL)
        PyErr_Print(); /* workers then die without the traceback, and still serve */
    Py_XDECREF(done);
    Py_XDECREF(fh);
}

/* Takes gowsgi's own variables (GOWSGI_ZYGOTE, GOWSGI_APP_*) out of the
 * environment before Python copies it into os.environ, so the app sees the
 * environment gowsgi was started with. Values read before stay valid:
 * unsetenv(3) drops the entries, not the strings of the initial
 * environment they point to. */
static void zygote_hide_own_env(void)
{
    extern char **environ;
    char names[64][64];
    int n = 0;
    for (char **e = environ; *e != NULL && n < 64; e++) {
        size_t len = strcspn(*e, "=");
        if ((strncmp(*e, "GOWSGI_APP_", 11) == 0 || strncmp(*e, "GOWSGI_ZYGOTE=", 14) == 0) && len < sizeof names[0]) {
            memcpy(names[n], *e, len);
            names[n++][len] = '\0';
        }
    }
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
}

/* What the workers load, read from GOWSGI_APP_* before those are hidden;
 * its strings live as long as the process. */
static gw_spec zygote_spec;
/* --lazy-apps: each forked worker imports the app itself, as in uWSGI, so
 * what an import opens or starts (connections, threads) is its own. */
static int zygote_lazy;
static const char *zygote_argv0; /* the program, for Python's sys.argv */

static void zygote_read_spec(void)
{
    static char *paths[ZYGOTE_MAX_PATHS];
    int npaths = 0;
    char *paths_env = strdup(env_str("GOWSGI_APP_PYTHONPATH"));
    /* Entries are separated by newlines: unlike ':' they never occur in a
     * directory anyone puts on sys.path. */
    for (char *save = NULL, *p = strtok_r(paths_env, "\n", &save); p != NULL && npaths < ZYGOTE_MAX_PATHS;
         p = strtok_r(NULL, "\n", &save))
        paths[npaths++] = p;
    zygote_spec = (gw_spec){
        .module = env_str("GOWSGI_APP_MODULE"),
        .wsgi_file = env_str("GOWSGI_APP_WSGI_FILE"),
        .callable = env_str("GOWSGI_APP_CALLABLE"),
        .paths = paths,
        .npaths = npaths,
        .mounts = env_str("GOWSGI_APP_MOUNTS"),
        .home = env_str("GOWSGI_APP_HOME"),
        .module_list = env_str("GOWSGI_APP_MODULE_LIST"),
        .paste = env_str("GOWSGI_APP_PASTE"),
        .no_file_wrapper = env_flag("GOWSGI_APP_NO_FILE_WRAPPER"),
        .manage_script_name = env_flag("GOWSGI_APP_MANAGE_SCRIPT_NAME"),
        .multithread = env_flag("GOWSGI_APP_MULTITHREAD"),
        .multiprocess = env_flag("GOWSGI_APP_MULTIPROCESS"),
    };
    zygote_lazy = env_flag("GOWSGI_APP_LAZY");
    gw_proctitle_configure(env_flag("GOWSGI_APP_PROCNAME_AUTO"), env_str("GOWSGI_APP_PROCNAME_PREFIX"),
                           env_str("GOWSGI_APP_PROCNAME"), env_str("GOWSGI_APP_PROCNAME_APPEND"));
    gw_spooler_read_env();
    gw_mule_read_env();
    /* The zygote is the master's child for life (it dies with it). */
    gw_uwsgi_configure(&(gw_uwsgi_info){
        .opt_json = env_str("GOWSGI_APP_UWSGI_OPT"),
        .numproc = (int)env_long("GOWSGI_APP_PROCESSES"),
        .cores = (int)env_long("GOWSGI_APP_THREADS"),
        .buffer_size = (int)env_long("GOWSGI_APP_BUFFER_SIZE"),
        .websockets_max_size = env_long("GOWSGI_APP_WEBSOCKETS_MAX_SIZE"),
        .websockets_ping_freq = env_long("GOWSGI_APP_WEBSOCKETS_PING_FREQ"),
        .websockets_pong_tolerance = env_long("GOWSGI_APP_WEBSOCKETS_PONG_TOLERANCE"),
        .is_reload = env_flag("GOWSGI_APP_RELOAD"),
        .started_on = env_long("GOWSGI_APP_STARTED_ON"),
        .masterpid = (long)getppid(),
    });
    if (*env_str("GOWSGI_APP_SIGNAL_FD") != '\0')
        gw_signal_set_hub((int)env_long("GOWSGI_APP_SIGNAL_FD"));
    /* Mapped before the app's import, which may use the cache already, and
     * inherited by every worker forked from here. */
    /* The request table and the generation's queue, inherited by every
     * worker forked from here (gw_worker_requests.c). */
    const char *table_fd = getenv("GOWSGI_APP_REQUESTS_FD"), *queue_fd = getenv("GOWSGI_APP_QUEUE_FD");
    if (table_fd != NULL && queue_fd != NULL && gw_requests_attach(atoi(table_fd), atoi(queue_fd)) < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot map the request table: %s", strerror(errno));
        zygote_send("E", why);
        _exit(2);
    }
    const char *shared_fd = getenv("GOWSGI_APP_SHARED_FD");
    if (shared_fd != NULL && gw_shared_attach(atoi(shared_fd)) < 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot map the shared area (caches, locks, metrics): %s", strerror(errno));
        zygote_send("E", why);
        _exit(2);
    }
}

/* Starts Python and imports the app. Returns 0 with the GIL held, or -1
 * with a one-line summary (the traceback went to stderr). */
static int zygote_import(char *summary, size_t cap)
{
    int rc = gw_start(zygote_argv0, zygote_spec.home, summary, cap) < 0 || gw_load(&zygote_spec, summary, cap) < 0
                 ? -1
                 : 0;
    fflush(stderr);
    return rc;
}

/* Loads the app, unless each worker will (--lazy-apps), and tells the
 * master; exits 2 on failure after telling it. Returns with the GIL held
 * when it imported. */
static void zygote_load(void)
{
    char summary[1024];
    zygote_read_spec();
    zygote_hide_own_env();
    gw_proctitle_role("uWSGI zygote"); /* uWSGI has none: its master imports the app */
    /* Before the import, so the queues are there for any process the app
     * starts; every fork inherits them. */
    if (gw_spooler_setup() < 0 || gw_mule_setup() < 0) {
        snprintf(summary, sizeof summary, "cannot set up the spooler and mules: %s", strerror(errno));
        zygote_send("E", summary);
        _exit(2);
    }
    if (!zygote_lazy) {
        if (zygote_import(summary, sizeof summary) < 0) {
            zygote_send("E", summary);
            _exit(2);
        }
        zygote_enable_faulthandler();
        zygote_freeze_gc();
    }
    char version[64]; /* Py_GetVersion needs no running interpreter */
    snprintf(version, sizeof version, "%s", Py_GetVersion());
    version[strcspn(version, " ")] = '\0';
    zygote_send("R", version);
}

/* In a lazy worker: imports the app, or writes the failure's summary to the
 * control pipe as the worker contract asks and exits 2. Returns with the
 * GIL held. */
static void zygote_worker_import(int control)
{
    char summary[1024], line[1100];
    if (zygote_import(summary, sizeof summary) == 0) {
        zygote_enable_faulthandler();
        return;
    }
    summary[strcspn(summary, "\n")] = '\0';
    int n = snprintf(line, sizeof line, "E%s\n", summary);
    if (n >= (int)sizeof line)
        n = sizeof line - 1;
    while (write(control, line, (size_t)n) < 0 && errno == EINTR)
        ;
    _exit(2);
}

/* Receives one message with up to cap - *nfds descriptors appended to fds.
 * Returns its length, 0 at EOF, -1 on error. */
static ssize_t zygote_recv(char *buf, size_t len, int *fds, int *nfds, int cap)
{
    char control[CMSG_SPACE(ZYGOTE_FDS_PER_MSG * sizeof(int))];
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n;
    while ((n = recvmsg(ZYGOTE_FD, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); n >= 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *got = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < cap)
                fds[(*nfds)++] = got[i];
            else
                close(got[i]);
        }
    }
    return n;
}

/* In the forked worker: serves its slots and exits. fds are the control
 * pipe, the scoreboard, the worker's signal socket and the slot sockets. */
static void zygote_become_worker(pid_t zygote, int sigfd, const sigset_t *oldmask, int num, int slots, int *fds)
{
    if (!zygote_lazy)
        PyOS_AfterFork_Child();
    char role[32];
    snprintf(role, sizeof role, "uWSGI worker %d", num);
    gw_proctitle_role(role);
    close(sigfd);
    close(ZYGOTE_FD);
    /* The descriptors stay where recvmsg put them, above anything the app's
     * import opened; moving them onto fixed numbers could replace a file the
     * app holds. */
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    /* Killed with the zygote, as the zygote is with its master. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != zygote)
        _exit(1);
    size_t board_len = (size_t)slots * GW_SLOT_RECORD_LEN;
    void *board = mmap(NULL, board_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
    close(fds[1]);
    if (board == MAP_FAILED) {
        fprintf(stderr, "gowsgi worker %d (pid %d): worker cannot start: mapping the scoreboard: %s\n", num,
                (int)getpid(), strerror(errno));
        _exit(1);
    }
    gw_uwsgi_set_worker(num);
    gw_signal_set_own(fds[2]);
    if (zygote_lazy)
        zygote_worker_import(fds[0]);
    else
        gw_uwsgi_post_fork(); /* the app set it when the zygote imported it */
    /* The slots' threads take the GIL with their own thread states. */
    PyEval_SaveThread();
    _exit(gw_worker_serve(num, fds[0], board, fds + GW_WORKER_FIXED_FDS, slots));
}

/* In a forked spooler or mule: becomes it and exits. */
static void zygote_become_aux(pid_t zygote, int sigfd, const sigset_t *oldmask, char kind, int num, int signal_fd)
{
    gw_signal_set_own(signal_fd); /* polled by its wait loop: uwsgi._signal_fd */
    if (!zygote_lazy)
        PyOS_AfterFork_Child();
    char role[32] = "uWSGI spooler"; /* uWSGI's spoolers share one name */
    if (kind == 'M')
        snprintf(role, sizeof role, "uWSGI mule %d", num);
    gw_proctitle_role(role);
    close(sigfd);
    close(ZYGOTE_FD);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != zygote)
        _exit(1);
    if (zygote_lazy) {
        char summary[1024];
        if (zygote_import(summary, sizeof summary) < 0) {
            fprintf(stderr, "gowsgi %s %d (pid %d): cannot import the app: %s\n", kind == 'S' ? "spooler" : "mule",
                    num, (int)getpid(), summary);
            _exit(2);
        }
        zygote_enable_faulthandler();
    }
    /* The post-fork hook runs as in a worker: not after a lazy import. */
    _exit(kind == 'S' ? gw_spooler_run(num, !zygote_lazy) : gw_mule_run(num, !zygote_lazy));
}

/* Forks the spooler or mule that cmd ("S<num>", "M<num>") asks for, with
 * signal_fd (-1: none) as its own signal socket; closes it here. */
static void zygote_fork_aux(pid_t self, int sigfd, const sigset_t *oldmask, const char *cmd, size_t len,
                            int signal_fd)
{
    char buf[32];
    int num = 0;
    if (len >= sizeof buf) {
        zygote_send("N", "malformed fork command");
        goto done;
    }
    memcpy(buf, cmd, len);
    buf[len] = '\0';
    if (sscanf(buf + 1, "%d", &num) != 1 || num < 1) {
        zygote_send("N", "malformed fork command");
        goto done;
    }
    fflush(NULL);
    if (!zygote_lazy)
        PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0)
        zygote_become_aux(self, sigfd, oldmask, buf[0], num, signal_fd);
    int saved = errno;
    if (!zygote_lazy)
        PyOS_AfterFork_Parent();
    if (pid < 0) {
        zygote_send("N", strerror(saved));
        goto done;
    }
    char text[32];
    snprintf(text, sizeof text, "%d", (int)pid);
    zygote_send("P", text);
done:
    if (signal_fd >= 0)
        close(signal_fd);
}

/* Collects the rest of a fork command's descriptors and forks. Returns 0,
 * or -1 when the master is gone; the child never returns. */
static int zygote_handle(pid_t self, int sigfd, const sigset_t *oldmask, const char *cmd, size_t len, int *fds,
                         int nfds)
{
    int num = 0, slots = 0;
    char buf[64];
    if (len > 0 && nfds <= 1 && (cmd[0] == 'S' || cmd[0] == 'M')) {
        zygote_fork_aux(self, sigfd, oldmask, cmd, len, nfds == 1 ? fds[0] : -1);
        return 0;
    }
    if (len == 0 || len >= sizeof buf || cmd[0] != 'F')
        goto malformed;
    memcpy(buf, cmd, len);
    buf[len] = '\0';
    if (sscanf(buf, "F%d %d", &num, &slots) != 2 || num < 1 || slots < 1 || slots > GW_ZYGOTE_MAX_FDS - GW_WORKER_FIXED_FDS)
        goto malformed;
    while (nfds < GW_WORKER_FIXED_FDS + slots) {
        char more[8];
        int before = nfds;
        ssize_t n = zygote_recv(more, sizeof more, fds, &nfds, GW_WORKER_FIXED_FDS + slots);
        if (n <= 0)
            return -1;
        if (nfds == before)
            goto malformed;
    }
    fflush(NULL);
    if (!zygote_lazy)
        PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0)
        zygote_become_worker(self, sigfd, oldmask, num, slots, fds);
    int saved = errno;
    if (!zygote_lazy)
        PyOS_AfterFork_Parent();
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (pid < 0) {
        zygote_send("N", strerror(saved));
        return 0;
    }
    char text[32];
    snprintf(text, sizeof text, "%d", (int)pid);
    zygote_send("P", text);
    return 0;
malformed:
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    zygote_send("N", "malformed fork command");
    return 0;
}

/* Reports every exited worker. */
static void zygote_reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char text[48];
        snprintf(text, sizeof text, "%d %d", (int)pid, status);
        zygote_send("X", text);
    }
}

/* Serves the master's fork commands until it goes away, then exits (and
 * the workers die with the zygote through their death signal). */
static void zygote_serve(int sigfd, const sigset_t *oldmask)
{
    pid_t self = getpid();
    for (;;) {
        struct pollfd p[2] = {{.fd = ZYGOTE_FD, .events = POLLIN}, {.fd = sigfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            _exit(1);
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            while (read(sigfd, &info, sizeof info) > 0)
                ;
        }
        zygote_reap();
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        char cmd[64];
        int fds[GW_ZYGOTE_MAX_FDS], nfds = 0;
        ssize_t n = zygote_recv(cmd, sizeof cmd, fds, &nfds, GW_ZYGOTE_MAX_FDS);
        if (n <= 0)
            _exit(0);
        if (zygote_handle(self, sigfd, oldmask, cmd, (size_t)n, fds, nfds) < 0)
            _exit(0);
    }
}

/* glibc passes init functions the program's arguments. */
__attribute__((constructor)) static void gw_zygote_main(int argc, char **argv, char **envp)
{
    (void)envp;
    if (getenv("GOWSGI_ZYGOTE") == NULL || argc < 1)
        return;
    /* The master owns Ctrl-C, reloads and stops, which a terminal or
     * systemd sends to every process of the group; the master ends the
     * zygote itself, and its workers ignore these signals too. */
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    /* Python ignores SIGPIPE when it starts, so that writing to a closed
     * pipe or socket raises BrokenPipeError; gowsgi starts it without its
     * signal handlers (gw_start), so the workers get that from here. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t chld, oldmask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &oldmask);
    int sigfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd < 0) {
        zygote_send("E", "cannot start the zygote: signalfd failed");
        _exit(2);
    }
    /* Python finds its prefix from the program's path: the binary's own,
     * since argv[0] is the master's as typed (for ps), which may be
     * relative to a directory the master has left. */
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    zygote_argv0 = argv[0];
    if (n > 0) {
        exe[n] = '\0';
        zygote_argv0 = exe;
    }
    zygote_load();
    zygote_serve(sigfd, &oldmask);
}
