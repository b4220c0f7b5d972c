/*
 * module.c - from a verified graph to an optimized LLVM module for a
 * target, and from that module to LLVM IR, assembly or object bytes.
 *
 * LLVM C API hygiene (../shared/STYLE.md): one explicit context per
 * program, every returned message freed with LLVMDisposeMessage, every
 * LLVMBool and LLVMErrorRef checked, objects disposed in reverse order of
 * creation. Target initialization is LLVM's own process-wide state; it is
 * idempotent.
 */
#include "lower.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cg_program {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMTargetMachineRef tm;
  char *name;
  const char **symbols;
  int32_t n_symbols;
  int opt_level;
  bool optimized; /* the LLVM pipeline has run: it runs on first emission */
};

const char *cg_status_message(int32_t code) {
  switch (code) {
  case CG_OK: return "no error";
  case CG_DIM_MISMATCH: return "a dim equality does not hold for these inputs";
  case CG_INDEX_RANGE: return "an index or sequence length is out of range";
  case CG_INT_DIV_ZERO: return "integer division by zero or overflow";
  case CG_CAST_RANGE: return "a value is NaN or out of range for an integer conversion";
  case CG_INT_OVERFLOW: return "an integer result does not fit its dtype";
  default: return "unknown error";
  }
}

/* LLVM reports some bad settings (a --cpu its target lacks) as fatal
 * errors and would then abort: say what happened in seqc's words and exit
 * with status 1 like every other user error. LLVM's state is unusable by
 * then, so nothing else runs. */
static void report_llvm_fatal(const char *reason) {
  fprintf(stderr, "seqc: error: LLVM: %s (check --target and --cpu)\n", reason);
  fflush(stderr);
  _Exit(1);
}

/* LLVM's Loop Strength Reduction took a third of the object emission
 * (0.1-0.25 s of every bench workload, issue 10), and the kernels measured
 * no slower without it (docs/performance.md, "Build time and size"). It
 * is a process-wide LLVM option, so it is set once, for `seqc build` and
 * the JIT alike. */
static void set_llvm_options(void) {
  const char *argv[] = {"seqc", "-disable-lsr"};
  LLVMParseCommandLineOptions(2, argv, "");
}

static void init_targets(void) {
  static pthread_once_t options_once = PTHREAD_ONCE_INIT;
  pthread_once(&options_once, set_llvm_options);
  LLVMInstallFatalErrorHandler(report_llvm_fatal);
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
}

/* ---- the four functions ----------------------------------------------------------- */

static void set_target_attrs(cg_program *p, LLVMValueRef fn) {
  char *cpu = LLVMGetTargetMachineCPU(p->tm), *features = LLVMGetTargetMachineFeatureString(p->tm);
  LLVMAddTargetDependentFunctionAttr(fn, "target-cpu", cpu);
  if (*features) LLVMAddTargetDependentFunctionAttr(fn, "target-features", features);
  /* LLVM vectorizes for 256-bit registers on most AVX-512 CPUs unless told
   * otherwise; the loops here (exp, softmax, elementwise) measured faster
   * at the full width. */
  if (strstr(features, "+avx512f")) LLVMAddTargetDependentFunctionAttr(fn, "prefer-vector-width", "512");
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
}

/* Entry block (allocas, then the dims, then a branch) and failure exit. */
static void begin_function(cg_lower *c, LLVMValueRef fn, LLVMTypeRef ret) {
  c->dim_cache_cap = 0;
  free(c->dim_cache);
  c->dim_cache = NULL;
  LLVMBasicBlockRef start = cg_begin_entry(c, fn);
  c->entry_end = LLVMBuildBr(c->b, start);
  c->fail = LLVMAppendBasicBlockInContext(c->ctx, fn, "fail");
  LLVMPositionBuilderAtEnd(c->b, c->fail);
  LLVMValueRef code = LLVMBuildLoad2(c->b, c->i32, c->status, "");
  LLVMBuildRet(c->b, ret == c->i32 ? code : LLVMConstInt(ret, (unsigned long long)-1, 1));
  LLVMPositionBuilderAtEnd(c->b, start);
}

static LLVMValueRef load_ptr_arg(cg_lower *c, LLVMValueRef array, int32_t i) {
  LLVMValueRef p = LLVMBuildGEP2(c->b, c->ptr, array, (LLVMValueRef[]){cg_i64(c, i)}, 1, "");
  return LLVMBuildLoad2(c->b, c->ptr, p, "");
}

static void bind_graph_args(cg_lower *c, LLVMValueRef args) {
  const ir_block *body = ir_b(c->g, c->g->body);
  for (int32_t i = 0; i < body->n_args; i++) {
    cg_buf *b = &c->bufs[body->args[i]];
    b->type = ir_vtype(c->g, body->args[i]);
    b->dims = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(b->type.rank + 1));
    for (int32_t d = 0; d < b->type.rank; d++) b->dims[d] = cg_dim(c, b->type.dims[d]);
    b->ptr = args ? load_ptr_arg(c, args, i) : LLVMConstPointerNull(c->ptr);
  }
}

/* NAME_<suffix>: int32_t (ptr syms, ptr args, ptr outs, ptr scratch[, ptr exec for run]) when
 * `run_like`, int64_t (ptr syms) otherwise. Starts a fresh walk: no value
 * has a buffer yet. */
static LLVMValueRef add_function(cg_lower *c, cg_program *p, const char *suffix, bool run_like) {
  LLVMTypeRef params[5] = {c->ptr, c->ptr, c->ptr, c->ptr, c->ptr};
  ir_buf name = {0};
  ir_buf_printf(&name, "%s_%s", p->name, suffix);
  unsigned n_params = !run_like ? 1 : !strcmp(suffix, "run") ? 5 : 4; /* run also takes exec */
  LLVMTypeRef ty = LLVMFunctionType(run_like ? c->i32 : c->i64, params, n_params, 0);
  LLVMValueRef fn = LLVMAddFunction(c->mod, name.s, ty);
  ir_buf_free(&name);
  set_target_attrs(p, fn);
  /* Only NAME_run is hot. The scratch measurements run once per ctx and
   * init once per open: optimized for size, they take less build time and
   * space (issue 10). */
  if (strcmp(suffix, "run") != 0) cg_add_fn_attr(p->ctx, fn, "optsize", 0);
  begin_function(c, fn, run_like ? c->i32 : c->i64);
  c->measuring = !run_like;
  c->syms = LLVMGetParam(fn, 0);
  c->scratch = run_like ? LLVMGetParam(fn, 3) : LLVMConstPointerNull(c->ptr);
  c->args = NULL;
  c->exec = NULL;
  c->split = false;
  c->init_region = IR_NONE;
  c->init_outs = NULL;
  memset(c->bufs, 0, sizeof(cg_buf) * (size_t)c->g->n_vals);
  return fn;
}

/* Copy the values block b yields into the caller's arrays outs[i] (but for
 * the init results already computed there). */
static void copy_yield_out(cg_lower *c, ir_blockid b, LLVMValueRef outs) {
  const ir_op *y = ir_o(c->g, ir_block_terminator(c->g, b));
  for (int32_t i = 0; i < y->n_in; i++) {
    if (cg_init_yield_in_place(c, y->in[i], i)) continue;
    cg_buf out = c->bufs[y->in[i]];
    out.ptr = load_ptr_arg(c, outs, i);
    cg_copy(c, &out, &c->bufs[y->in[i]]);
  }
}

/* The measuring walk's result: the bump pointer, or -1 if a size overflowed. */
static void return_scratch_size(cg_lower *c) {
  LLVMValueRef overflowed = LLVMBuildLoad2(c->b, c->i1, c->overflow, "");
  LLVMBuildRet(c->b, LLVMBuildSelect(c->b, overflowed, cg_i64(c, -1), LLVMBuildLoad2(c->b, c->i64, c->sp, ""), ""));
}

static bool build_run(cg_lower *c, cg_program *p) {
  LLVMValueRef fn = add_function(c, p, "run", true);
  c->args = LLVMGetParam(fn, 1); /* lower_init reads the hoisted values from it */
  c->exec = LLVMGetParam(fn, 4);
  c->split = true;
  bind_graph_args(c, c->args);
  if (!cg_lower_block(c, c->g->body)) return false;
  copy_yield_out(c, c->g->body, LLVMGetParam(fn, 2));
  LLVMBuildRet(c->b, cg_i32(c, 0));
  return true;
}

static bool build_scratch_bytes(cg_lower *c, cg_program *p) {
  add_function(c, p, "scratch_bytes", false);
  bind_graph_args(c, NULL);
  if (!cg_lower_block(c, c->g->body)) return false;
  return_scratch_size(c);
  return true;
}

/* The init region's arguments are the graph parameters it reads (the
 * verifier guarantees operands are body arguments): their buffers are
 * args[k] for argument k of the graph, or none when measuring. */
static void bind_init_args(cg_lower *c, ir_opid init, LLVMValueRef args) {
  const ir_op *o = ir_o(c->g, init);
  const ir_block *region = ir_b(c->g, o->regions[0]);
  for (int32_t i = 0; i < o->n_in; i++) {
    cg_buf *b = &c->bufs[region->args[i]];
    b->type = ir_vtype(c->g, region->args[i]);
    b->dims = ir_arena_alloc(c->g->arena, sizeof(LLVMValueRef) * (size_t)(b->type.rank + 1));
    for (int32_t d = 0; d < b->type.rank; d++) b->dims[d] = cg_dim(c, b->type.dims[d]);
    b->ptr = args ? load_ptr_arg(c, args, ir_v(c->g, o->in[i])->index) : LLVMConstPointerNull(c->ptr);
  }
}

/* NAME_init(syms, args, hoisted, scratch): the init op's region, its
 * yields copied to hoisted[i]; just `return 0` without an init op. */
static bool build_init(cg_lower *c, cg_program *p, ir_opid init) {
  LLVMValueRef fn = add_function(c, p, "init", true);
  if (init != IR_NONE) {
    ir_blockid region = ir_o(c->g, init)->regions[0];
    bind_init_args(c, init, LLVMGetParam(fn, 1));
    c->init_region = region;
    c->init_outs = LLVMGetParam(fn, 2);
    if (!cg_lower_block(c, region)) return false;
    copy_yield_out(c, region, LLVMGetParam(fn, 2));
  }
  LLVMBuildRet(c->b, cg_i32(c, 0));
  return true;
}

static bool build_init_scratch_bytes(cg_lower *c, cg_program *p, ir_opid init) {
  add_function(c, p, "init_scratch_bytes", false);
  if (init != IR_NONE) {
    bind_init_args(c, init, NULL);
    c->init_region = ir_o(c->g, init)->regions[0];
    if (!cg_lower_block(c, c->init_region)) return false;
  }
  return_scratch_size(c);
  return true;
}

int32_t cg_graph_hoisted(const ir_graph *g, ir_opid *init_op) {
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    if (ir_o(g, op)->kind == IR_OP_INIT) {
      if (init_op) *init_op = op;
      return ir_o(g, op)->n_out;
    }
  if (init_op) *init_op = IR_NONE;
  return 0;
}

/* ---- target machine and pipeline --------------------------------------------------- */

static char *c_identifier(const char *s) {
  size_t n = strlen(s);
  char *id = ir_xmalloc(n + 2);
  size_t j = 0;
  if (!(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z'))) id[j++] = '_';
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    bool ok = ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
    id[j++] = ok ? ch : '_';
  }
  id[j] = 0;
  return id;
}

static bool make_target_machine(cg_program *p, const cg_options *o, ir_diag *d) {
  init_targets();
  char *host = LLVMGetDefaultTargetTriple();
  bool is_host = !o->triple;
  const char *triple = o->triple ? o->triple : host;
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    ir_error_at(d, (ir_loc){0}, "unknown target '%s': %s", triple, msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(host);
    return false;
  }
  char *host_cpu = LLVMGetHostCPUName(), *host_features = LLVMGetHostCPUFeatures();
  const char *cpu = o->cpu ? o->cpu : is_host ? host_cpu : "generic";
  const char *features = o->features ? o->features : is_host && !o->cpu ? host_features : "";
  static const LLVMCodeGenOptLevel levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                               LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
  p->tm = LLVMCreateTargetMachine(target, triple, cpu, features, levels[o->opt_level],
                                  LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMSetTarget(p->mod, triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(p->tm);
  char *layout_str = LLVMCopyStringRepOfTargetData(layout);
  LLVMSetDataLayout(p->mod, layout_str);
  LLVMDisposeMessage(layout_str);
  LLVMDisposeTargetData(layout);
  LLVMDisposeMessage(host_cpu);
  LLVMDisposeMessage(host_features);
  LLVMDisposeMessage(host);
  return true;
}

static bool verify_module(cg_program *p, ir_diag *d) {
  char *msg = NULL;
  if (LLVMVerifyModule(p->mod, LLVMReturnStatusAction, &msg)) {
    ir_error_at(d, (ir_loc){0}, "internal error: generated LLVM IR is invalid: %s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  return true;
}

/* The pipeline runs once, when the program is first emitted or JIT-compiled
 * (cg_program_optimize): so a shared object's forward and step programs
 * can go through it as one module (cg_emit_with). */
static bool run_llvm_pipeline(cg_program *p, ir_diag *d) {
  if (p->optimized) return true;
  p->optimized = true;
  /* Identical functions (the task functions of two layers of the same
   * shape, the recurrent kernels and GEMM tiles forward and step share)
   * are merged before the pipeline, so it optimizes one of each, and again
   * after it. */
  char pipeline[48];
  snprintf(pipeline, sizeof pipeline, p->opt_level > 0 ? "mergefunc,default<O%d>" : "default<O%d>",
           p->opt_level);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  /* The lowering unrolls what pays itself (a GEMM tile's rows and panels);
   * LLVM's partial and runtime unrolling of the other loops doubled the
   * code and the build time of B4 without making its kernels faster
   * (docs/performance.md). */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMPassBuilderOptionsSetMergeFunctions(opts, 1);
  LLVMErrorRef err = LLVMRunPasses(p->mod, pipeline, p->tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (err) {
    char *e = LLVMGetErrorMessage(err);
    ir_error_at(d, (ir_loc){0}, "internal error: LLVM pipeline failed: %s", e);
    LLVMDisposeErrorMessage(e);
    return false;
  }
  return true;
}

/* f32 lanes of the widest vectors the target has: AVX-512 16, AVX/AVX2 8,
 * anything else (SSE, NEON) 4. Read from the feature string (the host's,
 * or --features); the C API cannot list the features a named CPU implies,
 * so of the CPU names only the x86-64 levels count (v4: AVX-512, v3: AVX2). */
static int32_t target_f32_lanes(const cg_program *p) {
  char *f = LLVMGetTargetMachineFeatureString(p->tm), *cpu = LLVMGetTargetMachineCPU(p->tm);
  int32_t lanes = strstr(f, "+avx512f")          ? 16
                  : strstr(f, "+avx")            ? 8
                  : !strcmp(cpu, "x86-64-v4")    ? 16
                  : !strcmp(cpu, "x86-64-v3")    ? 8
                                                 : 4;
  LLVMDisposeMessage(f);
  LLVMDisposeMessage(cpu);
  return lanes;
}

/* Whether the comma-separated list has the item `item` (exactly: "+fma"
 * is not "+fma4"). */
static bool has_item(const char *list, const char *item) {
  size_t n = strlen(item);
  for (const char *at = strstr(list, item); at; at = strstr(at + 1, item))
    if ((at == list || at[-1] == ',') && (at[n] == ',' || at[n] == 0)) return true;
  return false;
}

/* Whether llvm.fma is an instruction on the target rather than a call of
 * fmaf: always on AArch64; on x86 with FMA3, which AVX-512 and the x86-64
 * levels v3 and v4 imply. As for the lanes, a named CPU's implied features
 * are unknown: --cpu=znver4 without --features counts as no FMA (softmax
 * then divides by fdiv, the same bits). */
static bool target_has_fma(const cg_program *p) {
  char *triple = LLVMGetTargetMachineTriple(p->tm), *f = LLVMGetTargetMachineFeatureString(p->tm);
  char *cpu = LLVMGetTargetMachineCPU(p->tm);
  bool fma = !strncmp(triple, "aarch64", 7) || !strncmp(triple, "arm64", 5) || !strcmp(cpu, "x86-64-v3") ||
             !strcmp(cpu, "x86-64-v4") || has_item(f, "+fma") || has_item(f, "+avx512f");
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(f);
  LLVMDisposeMessage(cpu);
  return fma;
}

/* Cache sizes of this machine when compiling for it; typical ones (32 KiB
 * L1, 1 MiB L2) for another target. */
static int64_t cache_bytes(bool host, int name, int64_t fallback) {
  long v = host ? sysconf(name) : 0;
  return v > 0 ? v : fallback;
}

/* Tile height from the register file (the accumulators take 24 of 32
 * vector registers with AVX-512, 12 of 16 with AVX: twelve rows per panel
 * vector load measured 5-9% faster on B4 than eight), k block from L1 (a
 * tile's rows of A for one k block take a quarter of it), panels per task
 * from L2: see lower_gemm.c. */
static void set_gemm_params(cg_lower *c, const cg_program *p, const cg_options *o) {
  bool host = !o->triple && !o->cpu && !o->features;
  c->f32_lanes = target_f32_lanes(p);
  c->has_fma = target_has_fma(p);
  int32_t vectors = IR_PACK_WIDTH / c->f32_lanes;
  c->gemm_mr = c->f32_lanes == 16 ? 12 : 12 / vectors > 0 ? 12 / vectors : 1;
  int64_t l1 = cache_bytes(host, _SC_LEVEL1_DCACHE_SIZE, 32 << 10), l2 = cache_bytes(host, _SC_LEVEL2_CACHE_SIZE, 1 << 20);
  int64_t kc = l1 / 4 / ((int64_t)c->gemm_mr * 4);
  c->gemm_kc = (int32_t)(kc < 64 ? 64 : kc > 512 ? 512 : kc / 16 * 16);
  int64_t panels = l2 / 2 / ((int64_t)c->gemm_kc * IR_PACK_WIDTH * 4);
  c->gemm_panels = (int32_t)(panels < 1 ? 1 : panels > 256 ? 256 : panels);
  c->gemm_rows = 16 * c->gemm_mr;
}

static void init_lower(cg_lower *c, cg_program *p, ir_graph *g, const cg_options *o, ir_diag *d) {
  memset(c, 0, sizeof *c);
  c->g = g;
  c->diag = d;
  c->ctx = p->ctx;
  c->mod = p->mod;
  c->b = LLVMCreateBuilderInContext(p->ctx);
  c->i1 = LLVMInt1TypeInContext(p->ctx);
  c->i8 = LLVMInt8TypeInContext(p->ctx);
  c->i16 = LLVMInt16TypeInContext(p->ctx);
  c->i32 = LLVMInt32TypeInContext(p->ctx);
  c->i64 = LLVMInt64TypeInContext(p->ctx);
  c->f32 = LLVMFloatTypeInContext(p->ctx);
  c->f64 = LLVMDoubleTypeInContext(p->ctx);
  c->ptr = LLVMPointerTypeInContext(p->ctx, 0);
  c->void_t = LLVMVoidTypeInContext(p->ctx);
  c->bufs = ir_xcalloc((size_t)g->n_vals + 1, sizeof(cg_buf));
  c->op_temp = ir_xcalloc((size_t)g->n_ops + 1, sizeof(LLVMValueRef));
  set_gemm_params(c, p, o);
  c->symbols = p->symbols;
  c->n_symbols = p->n_symbols;
  c->contract = o->opt_level >= 2;
  c->prefix = p->name;
  c->current = IR_NONE;
  c->init_region = IR_NONE;
}

cg_program *cg_compile(ir_graph *g, const cg_options *o, ir_diag *d) {
  IR_ASSERT(o->opt_level >= 0 && o->opt_level <= 3);
  cg_program *p = ir_xcalloc(1, sizeof *p);
  p->name = c_identifier(g->name);
  p->ctx = LLVMContextCreate();
  p->mod = LLVMModuleCreateWithNameInContext(p->name, p->ctx);
  p->n_symbols = ir_graph_symbols(g, &p->symbols);
  if (!make_target_machine(p, o, d)) {
    cg_program_free(p);
    return NULL;
  }
  cg_lower c;
  init_lower(&c, p, g, o, d);
  ir_opid init = IR_NONE;
  cg_graph_hoisted(g, &init);
  bool ok = build_run(&c, p) && build_scratch_bytes(&c, p) && build_init(&c, p, init) &&
            build_init_scratch_bytes(&c, p, init);
  LLVMDisposeBuilder(c.b);
  free(c.bufs);
  free(c.op_temp);
  free(c.dim_cache);
  p->opt_level = o->opt_level;
  ok = ok && verify_module(p, d);
  if (!ok) {
    cg_program_free(p);
    return NULL;
  }
  return p;
}

void cg_program_free(cg_program *p) {
  if (!p) return;
  if (p->tm) LLVMDisposeTargetMachine(p->tm);
  if (p->mod) LLVMDisposeModule(p->mod);
  if (p->ctx) LLVMContextDispose(p->ctx);
  free(p->symbols);
  free(p->name);
  free(p);
}

int32_t cg_program_symbols(const cg_program *p, const char *const **names) {
  *names = p->symbols;
  return p->n_symbols;
}

const char *cg_program_name(const cg_program *p) { return p->name; }

LLVMModuleRef cg_program_module(const cg_program *p) { return p->mod; }

bool cg_program_optimize(cg_program *p, ir_diag *d) { return run_llvm_pipeline(p, d); }

bool cg_emit(cg_program *p, cg_emit_kind kind, ir_buf *out, ir_diag *d) {
  if (!run_llvm_pipeline(p, d)) return false;
  if (kind == CG_EMIT_LLVM) {
    char *text = LLVMPrintModuleToString(p->mod);
    ir_buf_puts(out, text);
    LLVMDisposeMessage(text);
    return true;
  }
  char *msg = NULL;
  LLVMMemoryBufferRef mem = NULL;
  LLVMCodeGenFileType ft = kind == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile;
  if (LLVMTargetMachineEmitToMemoryBuffer(p->tm, p->mod, ft, &msg, &mem)) {
    ir_error_at(d, (ir_loc){0}, "code generation failed: %s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  ir_buf_putn(out, LLVMGetBufferStart(mem), LLVMGetBufferSize(mem));
  LLVMDisposeMemoryBuffer(mem);
  return true;
}

/* A copy of other's module (through bitcode: it lives in another context)
 * linked into p's. Their internal functions may share names (each program
 * has its GEMM tiles and kernels); the linker renames other's. */
static bool link_in(cg_program *p, const cg_program *other, ir_diag *d) {
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(other->mod);
  LLVMModuleRef copy = NULL;
  bool ok = !LLVMParseBitcodeInContext2(p->ctx, bc, &copy);
  LLVMDisposeMemoryBuffer(bc);
  ok = ok && !LLVMLinkModules2(p->mod, copy); /* consumes copy */
  if (!ok)
    ir_error_at(d, (ir_loc){0}, "internal error: cannot link the programs '%s' and '%s'", p->name, other->name);
  return ok;
}

bool cg_emit_with(cg_program *p, const cg_program *other, cg_emit_kind kind, ir_buf *out, ir_diag *d) {
  IR_ASSERT(!p->optimized && !other->optimized && p->opt_level == other->opt_level);
  return link_in(p, other, d) && cg_emit(p, kind, out, d);
}
