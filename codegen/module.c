/*
 * module.c - from a verified graph to an optimized LLVM module for a
 * target, and from that module to LLVM IR, assembly or object bytes.
 *
 * LLVM C API hygiene (../shared/STYLE.md): one explicit context per
 * program, every returned message freed with LLVMDisposeMessage, every
 * LLVMBool and LLVMErrorRef checked, objects disposed in reverse order of
 * creation. Target initialization is LLVM's own process-wide state; it is
 * idempotent. A shared object's code is built on two threads
 * (cg_emit_objects): each thread's part has a context and a target
 * machine of its own, and nothing LLVM owns is shared between threads.
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
  /* Only NAME_run is hot. The scratch measurements run once per ctx: not
   * optimized at all (LLVM's -O0 path, instruction selection included),
   * they cost little build time. init runs once per open, over every
   * weight (packing): optimized for size (issue 10). */
  if (!run_like) {
    cg_add_fn_attr(p->ctx, fn, "optnone", 0);
    cg_add_fn_attr(p->ctx, fn, "noinline", 0);
  } else if (strcmp(suffix, "run") != 0) {
    cg_add_fn_attr(p->ctx, fn, "optsize", 0);
  }
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

static const LLVMCodeGenOptLevel codegen_levels[] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                                     LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};

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
  p->tm = LLVMCreateTargetMachine(target, triple, cpu, features, codegen_levels[o->opt_level],
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

/* Runs `pipeline` on m with seqc's options, MergeFunctions at its end when
 * `merge_after`; NULL, or what failed (to free). */
static char *run_passes(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *pipeline, bool merge_after) {
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  /* The lowering unrolls what pays itself (a GEMM tile's rows and panels);
   * LLVM's partial and runtime unrolling of the other loops doubled the
   * code and the build time of B4 without making its kernels faster
   * (docs/performance.md). */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMPassBuilderOptionsSetMergeFunctions(opts, merge_after);
  LLVMErrorRef err = LLVMRunPasses(m, pipeline, tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (!err) return NULL;
  char *e = LLVMGetErrorMessage(err);
  ir_buf msg = {0};
  ir_buf_printf(&msg, "internal error: LLVM pipeline failed: %s", e);
  LLVMDisposeErrorMessage(e);
  return msg.s;
}

/* Whether err (from run_passes or emit_code) is NULL; otherwise it is
 * reported in d, and freed. */
static bool no_error(char *err, ir_diag *d) {
  if (!err) return true;
  ir_error_at(d, (ir_loc){0}, "%s", err);
  free(err);
  return false;
}

/* LLVM's pipeline for opt_level. Identical functions (the task functions
 * of two layers of the same shape, the recurrent kernels and GEMM tiles
 * forward and step share) are merged before it, so it optimizes one of
 * each (`mergefunc` here, or first on its own: cg_emit_objects), and again
 * after it (the MergeFunctions option). */
static void pipeline_text(int opt_level, bool merge_first, char out[32]) {
  snprintf(out, 32, merge_first && opt_level > 0 ? "mergefunc,default<O%d>" : "default<O%d>", opt_level);
}

/* The pipeline runs once, when the program is first emitted or JIT-compiled
 * (cg_program_optimize), so that a shared object's forward and step
 * programs can go through it as one module (cg_emit_objects). */
static bool run_llvm_pipeline(cg_program *p, ir_diag *d) {
  if (p->optimized) return true;
  p->optimized = true;
  char pipeline[32];
  pipeline_text(p->opt_level, true, pipeline);
  return no_error(run_passes(p->mod, p->tm, pipeline, true), d) &&
         cg_memplan_instrument(p->mod, p->tm, d); /* the memory plan's test mode only */
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
  c->strides = ir_xcalloc((size_t)g->n_vals + 1, sizeof(LLVMValueRef *));
  set_gemm_params(c, p, o);
  c->symbols = p->symbols;
  c->n_symbols = p->n_symbols;
  c->contract = o->opt_level >= 2;
  c->prefix = p->name;
  c->current = IR_NONE;
  c->init_region = IR_NONE;
  c->memplan_check = o->memplan_check;
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
  free(c.strides);
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

/* Object or assembly bytes of m appended to out; NULL, or what failed (to
 * free). */
static char *emit_code(LLVMTargetMachineRef tm, LLVMModuleRef m, LLVMCodeGenFileType ft, ir_buf *out) {
  char *msg = NULL;
  LLVMMemoryBufferRef mem = NULL;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, ft, &msg, &mem)) {
    ir_buf err = {0};
    ir_buf_printf(&err, "code generation failed: %s", msg);
    LLVMDisposeMessage(msg);
    return err.s;
  }
  ir_buf_putn(out, LLVMGetBufferStart(mem), LLVMGetBufferSize(mem));
  LLVMDisposeMemoryBuffer(mem);
  return NULL;
}

bool cg_emit(cg_program *p, cg_emit_kind kind, ir_buf *out, ir_diag *d) {
  if (!run_llvm_pipeline(p, d)) return false;
  if (kind == CG_EMIT_LLVM) {
    char *text = LLVMPrintModuleToString(p->mod);
    ir_buf_puts(out, text);
    LLVMDisposeMessage(text);
    return true;
  }
  return no_error(emit_code(p->tm, p->mod, kind == CG_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile, out), d);
}

/* A copy of other's module (through bitcode: it lives in another context)
 * linked into m, a module of p's context. Their internal functions may
 * share names (each program has its GEMM tiles and kernels); the linker
 * renames other's. */
static bool link_in(const cg_program *p, LLVMModuleRef m, const cg_program *other, ir_diag *d) {
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(other->mod);
  LLVMModuleRef copy = NULL;
  bool ok = !LLVMParseBitcodeInContext2(p->ctx, bc, &copy);
  LLVMDisposeMemoryBuffer(bc);
  ok = ok && !LLVMLinkModules2(m, copy); /* consumes copy */
  if (!ok)
    ir_error_at(d, (ir_loc){0}, "internal error: cannot link the programs '%s' and '%s'", p->name, other->name);
  return ok;
}

/* ---- a shared object's code on two threads (issue 10) ----------------------------- *
 *
 * `seqc build` spends most of its time in LLVM. With a second core, the
 * module is cut along its functions into parts built on threads of their
 * own. A context belongs to one thread, so each part is a bitcode copy of
 * the module in a context of its own, with its own target machine, from
 * which the functions of the other parts are deleted:
 *
 * 1. Before the pipeline (after MergeFunctions over the whole module) the
 *    functions are split in two halves of about equal size, each a union
 *    of whole components of the graph of direct calls: the inliner and the
 *    interprocedural passes (IPSCCP propagates the constant arguments of
 *    the GEMM tiles into them) then see every caller of a function they
 *    see in one module, and each function's code is the one that module
 *    gives. Functions of the same size and type go to the same half, so
 *    that those the pipeline makes identical are still merged at its end.
 *    The second half is optimized and emitted on its own thread.
 * 2. The recurrent kernel, the tiles it calls and every task that runs a
 *    GEMM form one component, often most of the module: so the first
 *    half, once optimized, is again split in two (any functions now) and
 *    emitted as two objects, the second on a thread.
 *
 * What one part calls or takes the address of in another (a task function
 * handed to the runtime) is declared there, as a hidden global under a
 * name in seqc's namespace (`seqc.part.` and its own). The parts and
 * their objects come in a fixed order whatever the threads' timing, so the
 * output is byte-identical from run to run. A module with global
 * variables, aliases or functions used other than by instructions is not
 * cut (the lowering makes none): it is built as one object. */

typedef struct fn_table {
  LLVMValueRef *fns; /* the module's defined functions, in module order */
  int32_t *size;     /* their instruction counts */
  int32_t n;
} fn_table;

static int32_t instruction_count(LLVMValueRef fn) {
  int32_t n = 0;
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i)) n++;
  return n;
}

static fn_table defined_functions(LLVMModuleRef m) {
  fn_table t = {0};
  int32_t cap = 0;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) {
    if (LLVMIsDeclaration(f)) continue;
    if (t.n == cap) {
      cap = cap ? 2 * cap : 64;
      t.fns = ir_xrealloc(t.fns, sizeof(LLVMValueRef) * (size_t)cap);
      t.size = ir_xrealloc(t.size, sizeof(int32_t) * (size_t)cap);
    }
    t.size[t.n] = instruction_count(f);
    t.fns[t.n++] = f;
  }
  return t;
}

static void fn_table_free(fn_table *t) {
  free(t->fns);
  free(t->size);
}

/* The index in t of the function whose instruction `user` is; -1 when it is
 * not an instruction (a constant, a global's initializer). */
static int32_t owner_index(const fn_table *t, LLVMValueRef user) {
  if (!LLVMIsAInstruction(user)) return -1;
  LLVMValueRef f = LLVMGetBasicBlockParent(LLVMGetInstructionParent(user));
  for (int32_t i = 0; i < t->n; i++)
    if (t->fns[i] == f) return i;
  return -1;
}

/* Whether m can be cut along its functions: no global variables, aliases
 * or ifuncs to share between parts, and every use of a function is an
 * instruction's. */
static bool cuttable(LLVMModuleRef m, const fn_table *t) {
  if (LLVMGetFirstGlobal(m) || LLVMGetFirstGlobalAlias(m) || LLVMGetFirstGlobalIFunc(m)) return false;
  for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
    for (LLVMUseRef u = LLVMGetFirstUse(f); u; u = LLVMGetNextUse(u))
      if (owner_index(t, LLVMGetUser(u)) < 0) return false;
  return true;
}

/* Union-find over function indices: group[i] leads to the smallest index
 * of i's group. */
static int32_t find_group(const int32_t *group, int32_t i) {
  while (group[i] != i) i = group[i];
  return i;
}

static void join_groups(int32_t *group, int32_t a, int32_t b) {
  a = find_group(group, a);
  b = find_group(group, b);
  group[a > b ? a : b] = a < b ? a : b;
}

/* Step 1's groups: the components of the graph of direct calls, joined
 * with the functions of the same size and type (but for the smallest,
 * such as the thunks MergeFunctions leaves, which go with the function
 * they call). Step 2 (`whole_components` false): one function a group. */
static void part_groups(const fn_table *t, bool whole_components, int32_t *group) {
  for (int32_t i = 0; i < t->n; i++) group[i] = i;
  for (int32_t i = 0; i < t->n && whole_components; i++) {
    for (LLVMUseRef u = LLVMGetFirstUse(t->fns[i]); u; u = LLVMGetNextUse(u)) {
      LLVMValueRef user = LLVMGetUser(u);
      if (LLVMIsACallInst(user) && LLVMGetCalledValue(user) == t->fns[i]) join_groups(group, i, owner_index(t, user));
    }
    for (int32_t j = 0; j < i && t->size[i] > 8; j++)
      if (t->size[j] == t->size[i] && LLVMGlobalGetValueType(t->fns[j]) == LLVMGlobalGetValueType(t->fns[i]))
        join_groups(group, j, i);
  }
  for (int32_t i = 0; i < t->n; i++) group[i] = find_group(group, i);
}

typedef struct sized {
  int64_t size;
  int32_t index;
} sized;

static int larger_first(const void *a, const void *b) {
  const sized *x = a, *y = b;
  if (x->size != y->size) return x->size > y->size ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* side[i] = 1 for the functions of the groups that go to the second of
 * two halves of about equal size in instructions: the largest group
 * first, each to the smaller half (ties by index, so the same halves
 * every run). Whether both halves have some. */
static bool halve(const fn_table *t, const int32_t *group, uint8_t *side) {
  sized *s = ir_xcalloc((size_t)t->n + 1, sizeof(sized));
  for (int32_t i = 0; i < t->n; i++) s[i].index = i;
  for (int32_t i = 0; i < t->n; i++) s[group[i]].size += t->size[i];
  qsort(s, (size_t)t->n, sizeof *s, larger_first);
  int64_t total[2] = {0, 0};
  for (int32_t k = 0; k < t->n && s[k].size > 0; k++) {
    int h = total[1] < total[0];
    side[s[k].index] = (uint8_t)h;
    total[h] += s[k].size;
  }
  for (int32_t i = 0; i < t->n; i++) side[i] = side[group[i]];
  free(s);
  return total[0] > 0 && total[1] > 0;
}

/* The local functions that the other half uses become hidden globals
 * under a name that no runtime or glue symbol has. */
static void share_across(const fn_table *t, const uint8_t *side) {
  ir_buf name = {0};
  for (int32_t i = 0; i < t->n; i++) {
    LLVMValueRef f = t->fns[i];
    LLVMLinkage l = LLVMGetLinkage(f);
    bool across = false;
    for (LLVMUseRef u = LLVMGetFirstUse(f); u && !across; u = LLVMGetNextUse(u))
      across = side[owner_index(t, LLVMGetUser(u))] != side[i];
    if (!across || (l != LLVMInternalLinkage && l != LLVMPrivateLinkage)) continue;
    size_t len;
    const char *old = LLVMGetValueName2(f, &len);
    name.len = 0;
    ir_buf_puts(&name, "seqc.part.");
    ir_buf_putn(&name, old, len);
    LLVMSetValueName2(f, name.s, name.len);
    LLVMSetLinkage(f, LLVMExternalLinkage);
    LLVMSetVisibility(f, LLVMHiddenVisibility);
  }
  ir_buf_free(&name);
}

/* fn as a declaration: its instructions and blocks deleted (their uses
 * first, so that nothing deleted is still used). */
static void delete_body(LLVMValueRef fn) {
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
      if (LLVMGetFirstUse(i)) LLVMReplaceAllUsesWith(i, LLVMGetPoison(LLVMTypeOf(i)));
  for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
    for (LLVMValueRef i; (i = LLVMGetFirstInstruction(b));) LLVMInstructionEraseFromParent(i);
  for (LLVMBasicBlockRef b; (b = LLVMGetFirstBasicBlock(fn));) LLVMDeleteBasicBlock(b);
}

/* Only the defined functions i of m with keep[i] (n of them: m is the
 * module, or a copy of it, that `keep` was made for) keep their code; the
 * others stay as declarations while still used (share_across made them
 * global), else are deleted. */
static void keep_only(LLVMModuleRef m, const uint8_t *keep, int32_t n) {
  fn_table t = defined_functions(m);
  IR_ASSERT(t.n == n);
  for (int32_t i = 0; i < n; i++)
    if (!keep[i]) delete_body(t.fns[i]);
  for (int32_t i = 0; i < n; i++) {
    if (keep[i]) continue;
    if (!LLVMGetFirstUse(t.fns[i]))
      LLVMDeleteFunction(t.fns[i]);
    else
      IR_ASSERT(LLVMGetLinkage(t.fns[i]) == LLVMExternalLinkage);
  }
  fn_table_free(&t);
}

/* A half built on a thread of its own. */
typedef struct cg_part {
  LLVMMemoryBufferRef bitcode; /* the whole module */
  LLVMTargetMachineRef tm;     /* its own */
  uint8_t *keep;               /* by defined function: whether its code is in this part */
  int32_t n_fns;
  char pipeline[32];           /* run before emission; "" for none */
  ir_buf obj;                  /* out: the object */
  char *error;                 /* out: NULL, or what failed */
  pthread_t thread;
  bool threaded;
} cg_part;

static void *build_part(void *arg) {
  cg_part *c = arg;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef m = NULL;
  if (LLVMParseBitcodeInContext2(ctx, c->bitcode, &m)) {
    ir_buf err = {0};
    ir_buf_puts(&err, "internal error: cannot read back a part of the module");
    c->error = err.s;
  } else {
    keep_only(m, c->keep, c->n_fns);
    if (c->pipeline[0]) c->error = run_passes(m, c->tm, c->pipeline, true);
    if (!c->error) c->error = emit_code(c->tm, m, LLVMObjectFile, &c->obj);
    LLVMDisposeModule(m);
  }
  LLVMContextDispose(ctx);
  return NULL;
}

static LLVMTargetMachineRef copy_target_machine(const cg_program *p) {
  char *triple = LLVMGetTargetMachineTriple(p->tm), *cpu = LLVMGetTargetMachineCPU(p->tm),
       *features = LLVMGetTargetMachineFeatureString(p->tm);
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(LLVMGetTargetMachineTarget(p->tm), triple, cpu, features,
                                                    codegen_levels[p->opt_level], LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  return tm;
}

/* Starts build_part(c) on a thread with the stack the main thread has on
 * glibc (8 MiB): LLVM's passes recurse, and a C library's or a ulimit's
 * smaller default must not fail a build that works on one thread. */
static bool start_thread(cg_part *c) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  bool ok = pthread_attr_setstacksize(&attr, (size_t)8 << 20) == 0 &&
            pthread_create(&c->thread, &attr, build_part, c) == 0;
  pthread_attr_destroy(&attr);
  return ok;
}

/* The part of the functions i with side[i], started on a thread (or run
 * here when no thread can be made), optimized there when `optimize`. */
static cg_part *start_part(const cg_program *p, LLVMModuleRef m, const fn_table *t, const uint8_t *side,
                           bool optimize) {
  share_across(t, side);
  cg_part *c = ir_xcalloc(1, sizeof *c);
  c->bitcode = LLVMWriteBitcodeToMemoryBuffer(m);
  c->tm = copy_target_machine(p);
  c->n_fns = t->n;
  c->keep = ir_xmalloc((size_t)t->n + 1);
  memcpy(c->keep, side, (size_t)t->n);
  if (optimize) pipeline_text(p->opt_level, false, c->pipeline);
  c->threaded = start_thread(c);
  if (!c->threaded) build_part(c);
  return c;
}

/* Step 1 (`before_pipeline`) or 2: the second half of m started as a
 * part, m keeping the first; NULL when m is not cut. */
static cg_part *split_off(const cg_program *p, LLVMModuleRef m, bool before_pipeline) {
  fn_table t = defined_functions(m);
  int32_t *group = ir_xmalloc(sizeof(int32_t) * (size_t)(t.n + 1));
  uint8_t *side = ir_xcalloc((size_t)t.n + 1, 1);
  cg_part *c = NULL;
  if (cuttable(m, &t)) {
    part_groups(&t, before_pipeline, group);
    if (halve(&t, group, side)) {
      c = start_part(p, m, &t, side, before_pipeline);
      for (int32_t i = 0; i < t.n; i++) side[i] = !side[i];
      keep_only(m, side, t.n);
    }
  }
  free(side);
  free(group);
  fn_table_free(&t);
  return c;
}

/* Waits for c (NULL: nothing) and frees it, its object moved to *obj (n
 * counting it) or its error to *err when that is still NULL. */
static void finish_part(cg_part *c, ir_buf *obj, int32_t *n, char **err) {
  if (!c) return;
  if (c->threaded) pthread_join(c->thread, NULL);
  if (c->error && !*err) {
    *err = c->error;
    c->error = NULL;
  } else if (!c->error) {
    *obj = c->obj;
    c->obj = (ir_buf){0};
    (*n)++;
  }
  free(c->error);
  free(c->keep);
  ir_buf_free(&c->obj);
  LLVMDisposeMemoryBuffer(c->bitcode);
  LLVMDisposeTargetMachine(c->tm);
  free(c);
}

int32_t cg_emit_objects(const cg_program *p, const cg_program *other, ir_buf objs[CG_OBJECTS_MAX], ir_diag *d) {
  IR_ASSERT(!p->optimized && (!other || (!other->optimized && p->opt_level == other->opt_level)));
  LLVMModuleRef m = LLVMCloneModule(p->mod); /* p stays as it was, for the JIT of `build -v` */
  if (other && !link_in(p, m, other, d)) {
    LLVMDisposeModule(m);
    return 0;
  }
  char *err = p->opt_level > 0 ? run_passes(m, p->tm, "mergefunc", false) : NULL;
  cg_part *side = err ? NULL : split_off(p, m, true); /* step 1 */
  char pipeline[32];
  pipeline_text(p->opt_level, false, pipeline);
  if (!err) err = run_passes(m, p->tm, pipeline, true);
  cg_part *rest = err ? NULL : split_off(p, m, false); /* step 2 */
  if (!err) err = emit_code(p->tm, m, LLVMObjectFile, &objs[0]);
  LLVMDisposeModule(m);
  int32_t n = 1;
  finish_part(rest, &objs[n], &n, &err);
  finish_part(side, &objs[n], &n, &err);
  if (no_error(err, d)) return n;
  for (int32_t i = 0; i < n; i++) ir_buf_free(&objs[i]);
  return 0;
}
