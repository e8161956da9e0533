#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct { const char *name; cs_test_fn *fn; } s_tests [MAX_TESTS];
static size_t s_count;
static int s_failures;
static char s_dir [256];

void
cs_test_register (const char *name, cs_test_fn *fn)
{
    if (s_count == MAX_TESTS) {
        fprintf (stderr, "harness: more than %d tests in one binary\n", MAX_TESTS);
        abort ();
    }
    s_tests [s_count].name = name;
    s_tests [s_count].fn = fn;
    s_count++;
}

void
cs_test_fail (const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf (stdout, "    %s:%d: ", file, line);
    va_start (ap, fmt);
    vfprintf (stdout, fmt, ap);
    va_end (ap);
    fputc ('\n', stdout);
    fflush (stdout);
    s_failures++;
}

const char *
cs_test_dir (void)
{
    if (!s_dir [0]) {
        const char *base = getenv ("TMPDIR");
        snprintf (s_dir, sizeof s_dir, "%s/cs-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp (s_dir)) {
            perror ("mkdtemp");
            exit (1);
        }
    }
    return s_dir;
}

const char *
cs_test_write (const char *name, const char *text)
{
    static char paths [4][512];
    static int next;
    char *path = paths [next++ % 4];
    snprintf (path, sizeof paths [0], "%s/%s", cs_test_dir (), name);
    FILE *f = fopen (path, "w");
    if (!f || fputs (text, f) < 0 || fclose (f) != 0) {
        perror (path);
        exit (1);
    }
    return path;
}

static int
remove_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st; (void) flag; (void) ftw;
    return remove (path);
}

static int
run_one (size_t i)
{
    s_failures = 0;
    s_dir [0] = 0;
    alarm (120);
    s_tests [i].fn ();
    if (s_dir [0])
        nftw (s_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return s_failures ? 1 : 0;
}

int
main (int argc, char **argv)
{
    const char *only = argc > 1 ? argv [1] : NULL;
    const char *module = strrchr (argv [0], '/');
    module = module ? module + 1 : argv [0];
    if (strncmp (module, "test_", 5) == 0)
        module += 5;
    int no_fork = getenv ("CS_TEST_NOFORK") != NULL;

    setvbuf (stdout, NULL, _IOLBF, 0);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < s_count; i++) {
        if (only && strcmp (only, s_tests [i].name) != 0)
            continue;
        int ok;
        if (no_fork)
            ok = run_one (i) == 0;
        else {
            fflush (stdout);
            pid_t pid = fork ();
            if (pid < 0) {
                perror ("fork");
                return 2;
            }
            if (pid == 0)
                exit (run_one (i));
            int status;
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
            if (WIFSIGNALED (status))
                printf ("    killed by signal %d (%s)\n", WTERMSIG (status),
                        WTERMSIG (status) == SIGALRM ? "timeout" : strsignal (WTERMSIG (status)));
            else if (!ok)
                printf ("    exit status %d\n", WEXITSTATUS (status));
        }
        printf ("%s %s.%s\n", ok ? "PASS" : "FAIL", module, s_tests [i].name);
        if (ok) passed++; else failed++;
    }
    return failed ? 1 : 0;
}
