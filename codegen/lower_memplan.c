/*
 * lower_memplan.c - buffer reuse in the graph body, when the memplan pass
 * asked for it (ir_graph.plan_memory; docs/codegen.md, "Memory").
 *
 * Liveness. The body's ops are numbered in order. A value lives from the
 * op that makes it to the last op that reads it; the body's yield reads
 * the outputs, so they live to the end (they are copied out there), and a
 * reshape's result shares its operand's buffer, so the two live as one
 * (the "root" value holds the buffer and the later of the two last reads);
 * so does a transpose that only GEMMs read (cg_transpose_in_place).
 * Graph arguments and init results are the caller's, never scratch.
 *
 * Slots. Every scratch buffer the body allocates is a slot holding one
 * byte size, a symbolic dim (element count times dtype size). After an op
 * the slots of the values that die there return to the pool; a later
 * value of exactly that size takes the newest free one (the last made) instead of
 * new scratch. So does the scratch an op uses only while it runs (a
 * GEMM's packed B, cg_memplan_alloc_temp): attention's products then pack
 * into the same bytes, which stay in cache, instead of one buffer each. Since sizes are symbolic, slots of different sizes never
 * share bytes: every offset is a sum of symbolic sizes, fixed when the
 * code is generated, and the plan holds for every binding of the dims
 * with nothing planned at run time. (The other choice, planning offsets
 * for the concrete maximum dims when a context is made, would also let
 * buffers of different sizes share; it would need the plan in the runtime.)
 * In place. The result of an elementwise op (or group) or of a softmax
 * takes the slot of an operand that dies there and has the result's dims
 * and byte size: each element is read before it is written, at the same
 * position (a softmax line is read whole first; in place, its stores do
 * not allocate new cache lines: B4's softmax about 15% faster). The
 * operand's buffer and the result's are then one pointer value, so LLVM's
 * vectorizer sees one access stream and needs no overlap check (which,
 * between two different pointers to the same bytes, would send the loop to
 * its scalar form); a task of a split op reads both from one closure field
 * for the same reason (lower_parallel.c).
 *
 * Chunked scans. An op a scan computes chunk by chunk (cg_chunk_plan,
 * lower_scan.c) has no buffer of its own, and reads its operands while
 * the scan runs: they live until the scan, where they die (so no op in
 * between reuses their slots or writes over them in place). The scan's
 * chunk buffers are slots too, held by the producers' results
 * (cg_memplan_alloc_as), placed with the scan's results and free after
 * the scan: the next chunked scan takes them. The scans of a concurrent
 * group are all placed before any runs and released after the last, so
 * each holds chunk buffers of its own while they run side by side.
 *
 * The measuring walk (NAME_scratch_bytes) makes the same decisions in the
 * same order, so the size it returns covers the plan.
 */
#include "lower.h"

#include <llvm-c/Support.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct slot {
  ir_dim bytes;
  LLVMValueRef ptr;
  LLVMValueRef size; /* test mode, NAME_run: its bytes at run time (else NULL) */
  bool free;
} slot;

struct cg_memplan {
  int32_t *last;   /* by value id: position of the last op reading its buffer (roots only) */
  ir_val *root;    /* by value id: the value whose buffer it uses */
  int32_t *slot_of; /* by value id: its slot, or -1 */
  int32_t *pos;    /* by op id: position in the body */
  int32_t *temp;   /* by op id: the slot of its scratch while it runs (cg_memplan_alloc_temp), or -1 */
  slot *slots;
  int32_t n_slots, cap_slots;
  cg_lower *c; /* the walk the plan is made in: its code takes and gives the slots (test mode) */
};

/* ---- the test mode (cg_memplan_check, cg.h) ---------------------------------------- */

/* Poisoned bytes after every slot, beyond its own rounding to 64: as many
 * as that rounding, so scratch stays 64-byte aligned. */
enum { REDZONE = 64 };

static const char *const POISON = "__asan_poison_memory_region";
static const char *const UNPOISON = "__asan_unpoison_memory_region";

/* Whether the plan's code poisons: the test mode's NAME_run (the measuring
 * walks lay the same padded slots out and emit nothing). */
static bool poisons(const cg_lower *c) { return c->memplan_check != CG_MEMPLAN_CHECK_OFF && !c->measuring; }

/* A call of the ASan interface function `name`(ptr, bytes), declared in
 * the module on first use (void (const volatile void *, size_t)). */
static void asan_call(cg_lower *c, const char *name, LLVMValueRef ptr, LLVMValueRef bytes) {
  LLVMTypeRef ty = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64}, 2, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
  if (!fn) fn = LLVMAddFunction(c->mod, name, ty);
  LLVMBuildCall2(c->b, ty, fn, (LLVMValueRef[]){ptr, bytes}, 2, "");
}

/* A new slot's buffer in the test mode: out in new scratch, followed by
 * REDZONE more bytes. In NAME_run everything from out to the redzone's
 * end is poisoned, but out's own bytes (*size, which the slot keeps). */
static void alloc_padded(cg_lower *c, cg_buf *out, ir_type t, LLVMValueRef *size) {
  LLVMValueRef start = LLVMBuildLoad2(c->b, c->i64, c->sp, "slot");
  cg_alloc_buf(c, out, t);
  LLVMValueRef end = cg_size_add(c, LLVMBuildLoad2(c->b, c->i64, c->sp, ""), cg_i64(c, REDZONE));
  LLVMBuildStore(c->b, end, c->sp);
  if (!poisons(c)) return;
  *size = cg_smax(c, cg_bytes(c, t.dtype, cg_numel(c, out)), cg_i64(c, 0));
  asan_call(c, POISON, out->ptr, LLVMBuildSub(c->b, end, start, ""));
  asan_call(c, UNPOISON, out->ptr, *size);
}

/* Slot s changes hands where the builder stands: poisoned when it becomes
 * free, unpoisoned when a buffer takes it. (A slot that a measuring walk
 * inside NAME_run made, if any, has no size and is never poisoned.) */
static void set_free(cg_lower *c, slot *s, bool free) {
  if (poisons(c) && s->size && s->free != free) {
    /* Freed: its whole 64-byte rounding (ASan poisons whole 8-byte
     * granules only); taken: its exact bytes. */
    LLVMValueRef rounded = LLVMBuildAnd(c->b, LLVMBuildAdd(c->b, s->size, cg_i64(c, 63), ""), cg_i64(c, -64), "");
    asan_call(c, free ? POISON : UNPOISON, s->ptr, free ? rounded : s->size);
  }
  s->free = free;
}

/* The planted bug of CG_MEMPLAN_CHECK_SHARE_LIVE: every value dies at the
 * op that makes it, so its slot goes to the next buffer of its size while
 * the value is still read. */
static void die_at_birth(const ir_graph *g, cg_memplan *p) {
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next)
    for (int32_t i = 0; i < ir_o(g, op)->n_out; i++)
      if (p->root[ir_o(g, op)->out[i]] == ir_o(g, op)->out[i]) p->last[ir_o(g, op)->out[i]] = p->pos[op];
}

/* ---- the plan ------------------------------------------------------------------- */

/* Element count times the dtype size, or IR_DIM_INVALID. */
static ir_dim byte_size(cg_lower *c, ir_type t) {
  ir_dim n = ir_type_numel_dim(c->g, t);
  return n == IR_DIM_INVALID ? n : ir_dim_mul(c->g->dims, n, ir_dim_const(c->g->dims, (int64_t)ir_dtype_size(t.dtype)));
}

static void note_read(cg_memplan *p, ir_val v, int32_t at) {
  ir_val r = p->root[v];
  if (p->last[r] < at) p->last[r] = at;
}

cg_memplan *cg_memplan_new(cg_lower *c) {
  const ir_graph *g = c->g;
  cg_memplan *p = ir_xcalloc(1, sizeof *p);
  p->c = c;
  p->last = ir_xmalloc(sizeof(int32_t) * ((size_t)g->n_vals + 1));
  p->root = ir_xmalloc(sizeof(ir_val) * ((size_t)g->n_vals + 1));
  p->slot_of = ir_xmalloc(sizeof(int32_t) * ((size_t)g->n_vals + 1));
  p->pos = ir_xcalloc((size_t)g->n_ops + 1, sizeof(int32_t));
  p->temp = ir_xmalloc(sizeof(int32_t) * ((size_t)g->n_ops + 1));
  for (ir_opid op = 0; op <= g->n_ops; op++) p->temp[op] = -1;
  for (ir_val v = 0; v < g->n_vals; v++) p->last[v] = -1, p->root[v] = v, p->slot_of[v] = -1;
  int32_t at = 0;
  for (ir_opid op = ir_b(g, g->body)->first; op != IR_NONE; op = ir_o(g, op)->next, at++) {
    const ir_op *o = ir_o(g, op);
    p->pos[op] = at;
    if (o->kind == IR_OP_RESHAPE || (o->kind == IR_OP_TRANSPOSE && cg_transpose_in_place(g, op)))
      p->root[o->out[0]] = p->root[o->in[0]];
    for (int32_t i = 0; i < o->n_in; i++) note_read(p, o->in[i], at);
  }
  /* An op a scan computes chunk by chunk reads its operands while the scan
   * runs: they live to the scan (the ops in between must not reuse their
   * buffers) and die there. */
  for (ir_opid op = ir_b(g, g->body)->first; c->deferred && op != IR_NONE; op = ir_o(g, op)->next) {
    if (c->deferred[op] == IR_NONE) continue;
    for (int32_t i = 0; i < ir_o(g, op)->n_in; i++) note_read(p, ir_o(g, op)->in[i], p->pos[c->deferred[op]]);
  }
  if (c->memplan_check == CG_MEMPLAN_CHECK_SHARE_LIVE) die_at_birth(g, p);
  return p;
}

void cg_memplan_free(cg_memplan *p) {
  if (!p) return;
  free(p->last);
  free(p->root);
  free(p->slot_of);
  free(p->pos);
  free(p->temp);
  free(p->slots);
  free(p);
}

/* The newest free slot of `bytes` (the last made), or -1. (Of any size
 * under the planted bug of CG_MEMPLAN_CHECK_UNDERSIZE.) */
static int32_t free_slot(const cg_memplan *p, ir_dim bytes) {
  bool any = p->c->memplan_check == CG_MEMPLAN_CHECK_UNDERSIZE;
  for (int32_t s = p->n_slots - 1; s >= 0; s--)
    if (p->slots[s].free && (p->slots[s].bytes == bytes || any)) return s;
  return -1;
}

/* Whether op's result may overwrite an operand of its dims: op computes
 * each element of its results from its operands' elements at that same
 * position only, reading all of them before it stores the element (an
 * elementwise op, or a fused group of them; a GEMM group is not: its
 * product overwrites C before the epilogue reads), or it is a softmax,
 * whose lines along the axis are independent and each read whole (the
 * maximum) before any element of it is stored, an element then being
 * read only where it is stored (lower_softmax). */
static bool in_place_ok(const ir_graph *g, ir_opid op) {
  ir_opkind k = ir_o(g, op)->kind;
  if (k == IR_OP_FUSED) return ir_fused_form_of(g, op) == IR_FUSED_ELEMENTWISE;
  return k == IR_OP_SOFTMAX || (ir_opinfo_of(k)->flags & IR_ELEMENTWISE) != 0;
}

/* The slot of an operand of op (in_place_ok) that dies at op and that its
 * result v (of `bytes`) may overwrite in place, or -1; the slot is handed
 * over to v. The operand must have v's dims, so that it is read at the
 * element being written. Any other operand in the same buffer (x and a
 * reshape of x) has as many elements, so broadcasting gives it v's dims
 * too: it is read at that element as well. */
static int32_t take_dying_operand(cg_lower *c, cg_memplan *p, ir_opid op, ir_val v, ir_dim bytes) {
  const ir_op *o = ir_o(c->g, op);
  if (!in_place_ok(c->g, op)) return -1;
  for (int32_t i = 0; i < o->n_in; i++) {
    ir_val r = p->root[o->in[i]];
    int32_t s = p->slot_of[r];
    if (s >= 0 && p->last[r] == p->pos[op] && p->slots[s].bytes == bytes &&
        ir_dims_equal(ir_vtype(c->g, o->in[i]), ir_vtype(c->g, v))) {
      p->slot_of[r] = -1;
      return s;
    }
  }
  return -1;
}

/* out (of type t, `bytes` in size) in slot s, or when s < 0 in a free slot
 * of its size, else in new scratch, a new slot when its size is known
 * (with a redzone after it in the test mode). Returns the slot, now taken,
 * or -1. A slot handed over in place was never free: it stays unpoisoned. */
static int32_t place(cg_lower *c, cg_memplan *p, cg_buf *out, ir_type t, ir_dim bytes, int32_t s) {
  if (s < 0 && bytes != IR_DIM_INVALID) s = free_slot(p, bytes);
  if (s >= 0) {
    cg_view_buf(c, out, t, p->slots[s].ptr);
  } else if (bytes == IR_DIM_INVALID) {
    cg_alloc_buf(c, out, t);
    return -1; /* a fresh buffer nobody else gets */
  } else {
    LLVMValueRef size = NULL;
    if (c->memplan_check != CG_MEMPLAN_CHECK_OFF)
      alloc_padded(c, out, t, &size);
    else
      cg_alloc_buf(c, out, t);
    ir_grow((void **)&p->slots, &p->cap_slots, p->n_slots + 1, sizeof(slot));
    s = p->n_slots++;
    p->slots[s] = (slot){bytes, out->ptr, size, false};
  }
  set_free(c, &p->slots[s], false);
  return s;
}

void cg_memplan_alloc_results(cg_lower *c, cg_memplan *p, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  for (int32_t i = 0; i < o->n_out; i++) {
    ir_val v = o->out[i];
    ir_type t = ir_vtype(c->g, v);
    ir_dim bytes = byte_size(c, t);
    int32_t s = bytes == IR_DIM_INVALID ? -1 : take_dying_operand(c, p, op, v, bytes);
    p->slot_of[v] = place(c, p, &c->bufs[v], t, bytes, s);
  }
}

void cg_memplan_alloc_as(cg_lower *c, cg_memplan *p, ir_val v, ir_type t) {
  p->slot_of[v] = place(c, p, &c->bufs[v], t, byte_size(c, t), -1);
}

LLVMValueRef cg_memplan_alloc_temp(cg_lower *c, cg_memplan *p, ir_opid op, ir_type t) {
  cg_buf buf;
  p->temp[op] = place(c, p, &buf, t, byte_size(c, t), -1);
  return buf.ptr;
}

static void release(cg_memplan *p, ir_val v, int32_t at) {
  ir_val r = p->root[v];
  if (p->last[r] <= at && p->slot_of[r] >= 0) {
    set_free(p->c, &p->slots[p->slot_of[r]], true);
    p->slot_of[r] = -1;
  }
}

void cg_memplan_release(cg_lower *c, cg_memplan *p, ir_opid op) {
  const ir_op *o = ir_o(c->g, op);
  int32_t at = p->pos[op];
  for (int32_t i = 0; i < o->n_in; i++) release(p, o->in[i], at);
  for (int32_t i = 0; i < o->n_out; i++) release(p, o->out[i], at); /* never read */
  /* Ops with scratch (GEMM matmuls) are never computed chunk by chunk
   * inside a later scan (cg_chunk_plan), so theirs is free after them. */
  if (p->temp[op] >= 0) set_free(c, &p->slots[p->temp[op]], true);
  p->temp[op] = -1;
  if (o->kind != IR_OP_SCAN || !c->deferred) return;
  /* The operands of the ops this scan computed chunk by chunk (they come
   * before it in the body) and their chunk buffers. */
  for (ir_opid d = ir_b(c->g, c->g->body)->first; d != op; d = ir_o(c->g, d)->next) {
    for (int32_t i = 0; c->deferred[d] == op && i < ir_o(c->g, d)->n_in; i++) release(p, ir_o(c->g, d)->in[i], at);
    for (int32_t i = 0; c->deferred[d] == op && i < ir_o(c->g, d)->n_out; i++) release(p, ir_o(c->g, d)->out[i], at);
  }
}

/* The pass's settings for the test mode, LLVM's process-wide options like
 * -disable-lsr (module.c), set once: checks as calls of the runtime
 * (__asan_load4...) rather than inline, which took several times the
 * build time of the kernels (GEMM tiles) for the same checks; no globals
 * (the JIT runs no module constructor to register them) and no stack
 * frames (neither is scratch). Only a process running the test mode sets
 * them. */
static void asan_options(void) {
  const char *argv[] = {"seqc", "-asan-instrumentation-with-call-threshold=0", "-asan-globals=0", "-asan-stack=0"};
  LLVMParseCommandLineOptions(4, argv, "");
}

/* The test mode's module (the only code that poisons) gets LLVM's
 * AddressSanitizer after the pipeline, as clang places it: every load and
 * store that is left, vector and masked ones included, checks the shadow
 * of its bytes. The pass instruments only functions marked
 * sanitize_address: all that the module defines. */
bool cg_memplan_instrument(LLVMModuleRef mod, LLVMTargetMachineRef tm, ir_diag *d) {
  if (!LLVMGetNamedFunction(mod, POISON)) return true;
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, asan_options);
  for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
    if (!LLVMIsDeclaration(fn)) cg_add_fn_attr(LLVMGetModuleContext(mod), fn, "sanitize_address", 0);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMErrorRef err = LLVMRunPasses(mod, "asan", tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  if (!err) return true;
  char *e = LLVMGetErrorMessage(err);
  ir_error_at(d, (ir_loc){0}, "internal error: LLVM's AddressSanitizer pass failed: %s", e);
  LLVMDisposeErrorMessage(e);
  return false;
}
