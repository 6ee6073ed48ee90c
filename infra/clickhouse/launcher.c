/*
 * Runs a ClickHouse server from the chDB package's libchdb.so: clickhouse-local's LocalServer,
 * driven through chdb_query_cmdline(argc, argv) exactly like the clickhouse-local command line.
 *   launcher LIBCHDB [clickhouse-local arguments...]
 * infra/clickhouse/local-server.ts compiles this once (gcc) and passes the arguments: the
 * listen ports on 127.0.0.1, the data path, and a query that starts the listeners and then
 * blocks on a FIFO until stop is wanted. The server dies with its parent (PR_SET_PDEATHSIG).
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>

typedef void *(*query_cmdline_fn)(int, char **);

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s LIBCHDB [clickhouse-local arguments...]\n", argv[0]);
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
  if (lib == NULL) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 3;
  }
  query_cmdline_fn query_cmdline = (query_cmdline_fn)dlsym(lib, "chdb_query_cmdline");
  if (query_cmdline == NULL) {
    fprintf(stderr, "%s has no chdb_query_cmdline: %s\n", argv[1], dlerror());
    return 3;
  }
  /* argv[1] stands in for the program name clickhouse-local expects as argv[0] */
  query_cmdline(argc - 1, argv + 1);
  return 0;
}
