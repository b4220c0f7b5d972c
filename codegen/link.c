/*
 * link.c - a model as a self-contained shared object: the generated code,
 * the glue that implements NAME.h (abi.c) and the runtime library, linked by
 * the system C compiler. The link exports only NAME_* (version script and
 * hidden visibility), binds its own symbols (-Bsymbolic), leaves nothing
 * undefined but libc and libm (--no-undefined, -static-libgcc), and keeps
 * it small: unused runtime sections collected, symbols and debug info
 * stripped (docs/performance.md, "Build time and size").
 *
 * The compiler is `cc` from PATH (or $CC); the runtime comes from where seqc
 * was built (SEQC_RUNTIME_INCLUDE, SEQC_RUNTIME_LIB; overridable through the
 * environment variables of the same names). Commands run without a shell.
 * Everything is built in a private temporary directory, and the outputs are
 * renamed into place only when complete. The glue compiles in a process of
 * its own while LLVM builds the code on two threads, into up to three
 * objects (module.c, cg_emit_objects).
 */
#include "abi.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef SEQC_RUNTIME_INCLUDE
#define SEQC_RUNTIME_INCLUDE "."
#endif
#ifndef SEQC_RUNTIME_LIB
#define SEQC_RUNTIME_LIB "build/libseqrt.a"
#endif

static const char *setting(const char *env, const char *fallback) {
  const char *v = getenv(env);
  return v && *v ? v : fallback;
}

/* Starts argv; its output goes to seqc's stderr, where the user sees it. */
static bool start(char *const *argv, pid_t *pid, ir_diag *d) {
  int rc = posix_spawnp(pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0)
    ir_error_at(d, (ir_loc){0}, "cannot run '%s': %s (seqc build needs a C compiler to link the "
                "shared object; install gcc or set CC)", argv[0], strerror(rc));
  return rc == 0;
}

/* Waits for the command `name` started as pid; false with its exit status
 * in the diagnostic. */
static bool finish(pid_t pid, const char *name, ir_diag *d) {
  int status = 0;
  pid_t got;
  while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (got < 0) {
    ir_error_at(d, (ir_loc){0}, "cannot wait for '%s' while building the shared object: %s", name, strerror(errno));
    return false;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  ir_error_at(d, (ir_loc){0}, "'%s' failed (status %d) while building the shared object", name,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return false;
}

static bool run(char *const *argv, ir_diag *d) {
  pid_t pid;
  return start(argv, &pid, d) && finish(pid, argv[0], d);
}

static bool write_in(const char *dir, const char *file, const void *data, size_t n, ir_buf *path,
                     ir_diag *d) {
  path->len = 0;
  ir_buf_printf(path, "%s/%s", dir, file);
  ir_buf err = {0};
  bool ok = ir_write_file_atomic(path->s, data, n, &err);
  if (!ok) ir_error_at(d, (ir_loc){0}, "%s", err.s);
  ir_buf_free(&err);
  return ok;
}

static void remove_dir(const char *dir, const char *const *files, int n) {
  ir_buf p = {0};
  for (int i = 0; i < n; i++) {
    p.len = 0;
    ir_buf_printf(&p, "%s/%s", dir, files[i]);
    unlink(p.s);
  }
  ir_buf_free(&p);
  rmdir(dir);
}

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

/* A fingerprint of the compiled graphs: their printed IR. A saved stream
 * state names it, so it covers the step graph too. */
static uint64_t fingerprint(const cg_model *m) {
  ir_buf text = {0};
  ir_print_graph(m->forward_graph, &(ir_print_opts){false}, &text);
  if (m->step_graph) ir_print_graph(m->step_graph, &(ir_print_opts){false}, &text);
  uint64_t h = fnv1a(text.s, text.len);
  ir_buf_free(&text);
  return h;
}

bool cg_emit_header(const cg_model *m, ir_buf *out, ir_diag *d) {
  abi_plan plan = {0};
  bool ok = abi_plan_make(&plan, m, d);
  if (ok) abi_write_header(&plan, out);
  abi_plan_free(&plan);
  return ok;
}

static const char *const object_files[CG_OBJECTS_MAX] = {"code.o", "code1.o", "code2.o"};

/* The generated code: its objects written in dir, their paths in paths;
 * how many (0 after an error). */
static int32_t write_code(const cg_model *m, const char *dir, ir_buf paths[CG_OBJECTS_MAX], ir_diag *d) {
  ir_buf objs[CG_OBJECTS_MAX] = {{0}};
  /* Forward and step in one module: they share their kernels (issue 10). */
  int32_t n = cg_emit_objects(m->forward, m->step, objs, d);
  bool ok = n > 0;
  for (int32_t i = 0; i < n; i++) {
    ok = ok && write_in(dir, object_files[i], objs[i].s, objs[i].len, &paths[i], d);
    ir_buf_free(&objs[i]);
  }
  return ok ? n : 0;
}

enum { LINK_ARGS = 16 + CG_OBJECTS_MAX }; /* the arguments link_command writes, and room for one more */

/* cc's arguments to link the objects, the glue and the runtime into the
 * shared object so_tmp (argv has room for LINK_ARGS). */
static void link_command(const char *cc, const char *so_tmp, const ir_buf *objs, int32_t n_objs,
                         const char *glue_o, const char *version_script, char **argv) {
  IR_ASSERT(n_objs <= CG_OBJECTS_MAX);
  int k = 0;
  argv[k++] = (char *)cc;
  argv[k++] = "-shared";
  argv[k++] = "-o";
  argv[k++] = (char *)so_tmp;
  for (int32_t i = 0; i < n_objs; i++) argv[k++] = objs[i].s;
  argv[k++] = (char *)glue_o;
  argv[k++] = (char *)setting("SEQC_RUNTIME_LIB", SEQC_RUNTIME_LIB);
  argv[k++] = (char *)version_script;
  argv[k++] = "-Wl,-Bsymbolic";
  argv[k++] = "-Wl,--no-undefined";
  /* Size (issue 10): drop the runtime's functions this model never calls
   * (it is compiled with one section per function), its debug info and the
   * symbol table (the exports stay in the dynamic one), and the page of
   * padding that would keep headers and read-only data off the code pages. */
  argv[k++] = "-Wl,--gc-sections";
  argv[k++] = "-Wl,--strip-all";
  argv[k++] = "-Wl,-z,noseparate-code";
  argv[k++] = "-static-libgcc";
  argv[k++] = "-lm";
  argv[k] = NULL;
}

/* Compiles the glue (which includes `header`, NAME.h) and links the shared
 * object at so_tmp, working in dir. The glue compiles in a process of its
 * own while LLVM builds the code (issue 10: it took 60-100 ms). */
static bool compile_and_link(const cg_model *m, const abi_plan *plan, const ir_buf *header,
                             const char *dir, const char *so_tmp, ir_diag *d) {
  const char *cc = setting("CC", "cc");
  ir_buf glue = {0}, map = {0}, header_file = {0};
  ir_buf hpath = {0}, gpath = {0}, mpath = {0}, glue_o = {0}, inc = {0}, inc2 = {0}, vs = {0};
  ir_buf opaths[CG_OBJECTS_MAX] = {{0}};
  abi_write_glue(plan, fingerprint(m), &glue);
  ir_buf_printf(&map, "{\n  global: %s_*;\n  local: *;\n};\n", plan->name);
  ir_buf_printf(&header_file, "%s.h", plan->name);
  bool ok = write_in(dir, header_file.s, header->s, header->len, &hpath, d) &&
            write_in(dir, "glue.c", glue.s, glue.len, &gpath, d) &&
            write_in(dir, "exports.map", map.s, map.len, &mpath, d);
  ir_buf_printf(&glue_o, "%s/glue.o", dir);
  ir_buf_printf(&inc, "-I%s", dir);
  ir_buf_printf(&inc2, "-I%s", setting("SEQC_RUNTIME_INCLUDE", SEQC_RUNTIME_INCLUDE));
  ir_buf_printf(&vs, "-Wl,--version-script=%s", mpath.s ? mpath.s : "");
  /* -O1: the glue only checks and passes arguments; -O2 took a quarter
   * longer to compile it for the same code size (issue 10). */
  char *compile[] = {(char *)cc, "-std=c11", "-O1", "-fPIC", "-fvisibility=hidden", "-w",
                     inc.s, inc2.s, "-c", gpath.s, "-o", glue_o.s, NULL};
  pid_t glue_pid;
  bool compiling = ok && start(compile, &glue_pid, d);
  int32_t n_objs = compiling ? write_code(m, dir, opaths, d) : 0;
  ok = compiling && finish(glue_pid, cc, d) && n_objs > 0;
  char *link[LINK_ARGS];
  link_command(cc, so_tmp, opaths, n_objs, glue_o.s, vs.s, link);
  ok = ok && run(link, d);
  ir_buf *bufs[] = {&glue, &map, &header_file, &hpath, &gpath, &mpath, &glue_o, &inc, &inc2, &vs};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ir_buf_free(bufs[i]);
  for (int i = 0; i < CG_OBJECTS_MAX; i++) ir_buf_free(&opaths[i]);
  return ok;
}

static bool runtime_present(ir_diag *d) {
  const char *lib = setting("SEQC_RUNTIME_LIB", SEQC_RUNTIME_LIB);
  ir_buf h = {0};
  ir_buf_printf(&h, "%s/runtime/model.h", setting("SEQC_RUNTIME_INCLUDE", SEQC_RUNTIME_INCLUDE));
  struct stat st;
  bool ok = stat(lib, &st) == 0 && stat(h.s, &st) == 0;
  if (!ok)
    ir_error_at(d, (ir_loc){0}, "cannot find the seqc runtime (%s and %s); build it with 'make' "
                "or set SEQC_RUNTIME_LIB and SEQC_RUNTIME_INCLUDE", lib, h.s);
  ir_buf_free(&h);
  return ok;
}

bool cg_emit_shared(const cg_model *m, const char *so_path, ir_buf *header, ir_diag *d) {
  abi_plan plan = {0};
  if (!runtime_present(d) || !abi_plan_make(&plan, m, d)) {
    abi_plan_free(&plan);
    return false;
  }
  ir_buf dir = {0}, so_tmp = {0};
  ir_buf_printf(&dir, "%s/seqc-build-XXXXXX", setting("TMPDIR", "/tmp"));
  bool ok = mkdtemp(dir.s) != NULL;
  if (!ok) ir_error_at(d, (ir_loc){0}, "cannot create a temporary directory: %s", strerror(errno));
  ir_buf_printf(&so_tmp, "%s.tmp%ld", so_path, (long)getpid());
  if (ok) abi_write_header(&plan, header);
  ok = ok && compile_and_link(m, &plan, header, dir.s, so_tmp.s, d);
  if (ok && rename(so_tmp.s, so_path) != 0) {
    ir_error_at(d, (ir_loc){0}, "%s: cannot write: %s", so_path, strerror(errno));
    ok = false;
  }
  if (!ok) unlink(so_tmp.s);
  ir_buf header_name = {0};
  ir_buf_printf(&header_name, "%s.h", plan.name);
  const char *files[] = {header_name.s, "glue.c", "glue.o", "exports.map", object_files[0], object_files[1],
                         object_files[2]};
  if (dir.s) remove_dir(dir.s, files, sizeof files / sizeof files[0]);
  ir_buf_free(&header_name);
  ir_buf_free(&dir);
  ir_buf_free(&so_tmp);
  abi_plan_free(&plan);
  return ok;
}
