/*
 * lower_gemm.c - f32 matrix products as a register-blocked GEMM: `matmul`
 * on f32 operands, `matmul_packed` (weights packed once at open by
 * pack_rhs, which the pack-weights pass inserts and const-hoist moves into
 * NAME_init) and `pack_rhs` itself.
 *
 * What is computed. Every element C[i, j] is one multiply-add chain over k
 * ascending from zero, acc = fmuladd(A[i, k], B[k, j], acc) (cg_fmuladd:
 * fused at -O2 and above, a multiply then an add below). That is the sum
 * the plain loop nest adds, in the same order, whatever the tile, the
 * panel, the cache block or the task an element falls in: results are
 * bitwise the same for any shape split, any thread count, forward and
 * step alike.
 *
 * Layout. B is read as panels of IR_PACK_WIDTH (32) columns, p[q, k, r] =
 * B[k, 32q + r] with zeros past N (docs/ops.md, pack_rhs). Weights arrive
 * packed; any other B is packed per call into scratch before the tasks
 * run. A is read in place through two strides (a row, a step of k), which
 * also covers transpose_a.
 *
 * Kernel. A tile function (gemm.tile.m<R>p<P>) keeps R x P x (32/L)
 * vector accumulators of L = f32 lanes of the target (16 with AVX-512, 8
 * with AVX/AVX2, 4 otherwise) in registers across a block of k: each step
 * loads P x 32/L panel vectors and broadcasts R elements of A, two steps
 * per loop iteration (an odd block starts with a single one). The edge
 * columns of the last panel are loaded and stored under a mask. A single
 * row (a matrix-vector product, the recurrent step at batch 1) runs several
 * panels at a time, so that GEMV_CHAINS independent chains hide the FMA
 * latency (the panels left over, fewer, in one tile too), and its weights
 * stream panel after panel.
 *
 * Blocking and tasks. k is cut into equal blocks of at most gemm_kc (a
 * tile's rows of A then take a quarter of L1), the partial sums going through C
 * (exactly: C holds the f32 accumulator). A task owns a block of rows
 * (whole tiles, up to gemm_rows) by a block of panels (as many as stay in
 * half of L2 for one k block, gemm_panels, cut further while a large
 * product has fewer than GEMM_MIN_TASKS tasks); for each k block it runs
 * every row tile against every panel of its block, so the panels' block
 * is loaded into L2 once for all its rows. Consecutive tasks share their
 * panel block. A is not packed: a tile reads R rows (or, transposed, R
 * adjacent elements) at a time, which measured no slower here.
 * Only the non-reduction axes are split, and the split depends on the
 * shapes only. Tasks run on the context's pool (lower_parallel.c), also
 * inside scan bodies.
 */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

#define PANEL IR_PACK_WIDTH
/* How far ahead of the k loop a multi-row tile prefetches its panels'
 * rows, for a recurrent step's panels that stream from beyond L2
 * (cg_gemm_block's panel_outer): 24 rows of 128 bytes, a few hundred
 * cycles of its FMAs. B2's recurrent step -6% (docs/performance.md);
 * single-row tiles, bound by L2 already, got slower with it and have
 * none. GEMM tasks, whose panels come from L2, measured the same with it
 * as without (B4), and share the tiles: a variant without it cost B3
 * about 10% more build time. */
#define AHEAD_ROWS 24
#define GEMV_CHAINS 8               /* vector accumulators of a single-row tile */
/* Panels a recurrent step's row tiles pass over together (cg_gemm_block's
 * panel_outer): 16 x KC x 128 bytes stay in L2 for the next tile. A
 * multiple of every single-row group, so those are cut as without it. */
#define PANEL_BLOCK 16
_Static_assert(PANEL_BLOCK % CG_GEMV_MAX_PANELS == 0, "a block holds whole single-row groups");
#define MAX_TILE_VECTORS 32         /* panel vectors of one tile row */
#define GEMM_TASK_MACS (1 << 20)    /* multiply-adds a task should at least get */
#define GEMM_MIN_TASKS 4            /* tasks a large product is cut into at least */

/* ---- tile functions ------------------------------------------------------------ */

enum { T_A, T_A_ROW, T_A_K, T_PANEL, T_PANEL_STRIDE, T_KC, T_C, T_LDC, T_NCOLS, T_ACC, T_N_PARAMS };

static LLVMTypeRef vec_t(cg_lower *c) { return LLVMVectorType(c->f32, (unsigned)c->f32_lanes); }

/* ceil(a / b) for a >= 0, b > 0 (sizes and counts only). */
static LLVMValueRef ceil_div(cg_lower *c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSDiv(c->b, LLVMBuildSub(c->b, LLVMBuildAdd(c->b, a, b, ""), cg_i64(c, 1), ""), b, "");
}

static LLVMValueRef gep_f32(cg_lower *c, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildGEP2(c->b, c->f32, base, &i, 1, "");
}

/* Lanes of vector v of a tile row whose column is below ncols. */
static LLVMValueRef column_mask(cg_lower *c, int32_t v, LLVMValueRef ncols) {
  int32_t l = c->f32_lanes;
  LLVMValueRef cols[16];
  for (int32_t i = 0; i < l; i++) cols[i] = cg_i64(c, (int64_t)v * l + i);
  LLVMValueRef limit = cg_splat(c, l, ncols);
  return LLVMBuildICmp(c->b, LLVMIntSLT, LLVMConstVector(cols, (unsigned)l), limit, "mask");
}

/* Prefetches into L1 the panels' row AHEAD_ROWS rows past b_row: every
 * cache line of it. */
static void prefetch_panels(cg_lower *c, LLVMValueRef b_row, LLVMValueRef stride, int32_t panels) {
  for (int32_t q = 0; q < panels; q++)
    for (int32_t l = 0; l < PANEL * 4 / 64; l++) {
      LLVMValueRef at = LLVMBuildMul(c->b, cg_i64(c, q), stride, "");
      at = LLVMBuildAdd(c->b, at, cg_i64(c, AHEAD_ROWS * PANEL + l * 16), "");
      LLVMValueRef args[4] = {gep_f32(c, b_row, at), LLVMConstInt(c->i32, 0, 0), LLVMConstInt(c->i32, 3, 0),
                              LLVMConstInt(c->i32, 1, 0)};
      cg_intrinsic(c, "llvm.prefetch", c->ptr, 4, args);
    }
}

/* A tile's shape and its function's parameters. */
typedef struct tile {
  int32_t rows, panels, nv, n_acc;
  LLVMValueRef p[T_N_PARAMS];
} tile;

/* One step of k: acc[] += A's column at a_col times the panels' row at
 * b_row; *a_col and *b_row move to the next step. */
static void emit_k_step(cg_lower *c, const tile *t, LLVMValueRef *a_col, LLVMValueRef *b_row, LLVMValueRef *acc) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef bv[MAX_TILE_VECTORS];
  for (int32_t q = 0; q < t->panels; q++) {
    LLVMValueRef at = LLVMBuildMul(B, cg_i64(c, q), t->p[T_PANEL_STRIDE], "");
    for (int32_t v = 0; v < PANEL / c->f32_lanes; v++) {
      LLVMValueRef ptr = gep_f32(c, *b_row, LLVMBuildAdd(B, at, cg_i64(c, (int64_t)v * c->f32_lanes), ""));
      LLVMValueRef ld = LLVMBuildLoad2(B, vec_t(c), ptr, "b");
      LLVMSetAlignment(ld, 4);
      bv[q * (PANEL / c->f32_lanes) + v] = ld;
    }
  }
  for (int32_t r = 0; r < t->rows; r++) {
    LLVMValueRef at = LLVMBuildMul(B, cg_i64(c, r), t->p[T_A_ROW], "");
    LLVMValueRef av = cg_splat(c, c->f32_lanes, LLVMBuildLoad2(B, c->f32, gep_f32(c, *a_col, at), "a"));
    for (int32_t v = 0; v < t->nv; v++) acc[r * t->nv + v] = cg_fmuladd(c, av, bv[v], acc[r * t->nv + v]);
  }
  if (t->rows > 1) prefetch_panels(c, *b_row, t->p[T_PANEL_STRIDE], t->panels);
  *a_col = gep_f32(c, *a_col, t->p[T_A_K]);
  *b_row = gep_f32(c, *b_row, cg_i64(c, PANEL));
}

/* The k loop, two steps per iteration (half the loop's own instructions
 * per step) in two copies of the step: an odd kc enters at the second
 * copy, so one step runs before the pairs. Steps run in k order either
 * way. Leaves the builder after the loop with acc[] the sums over all kc
 * steps. */
static void emit_k_loop(cg_lower *c, LLVMValueRef fn, const tile *t, LLVMValueRef *acc) {
  LLVMBuilderRef B = c->b;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(B);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(c->ctx, fn, "k");
  LLVMBasicBlockRef first = LLVMAppendBasicBlockInContext(c->ctx, fn, "k.first");
  LLVMBasicBlockRef second = LLVMAppendBasicBlockInContext(c->ctx, fn, "k.second");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "k.done");
  LLVMValueRef odd = LLVMBuildTrunc(B, LLVMBuildAnd(B, t->p[T_KC], cg_i64(c, 1), ""), c->i1, "");
  LLVMBuildCondBr(B, odd, second, head);
  /* The k step moves two pointers (A's column, the panels' row) rather
   * than multiplying k by strides: LSR, which would do that, is off. */
  LLVMValueRef k[2], a_col[2], b_row[2], phi[2][CG_GEMM_MAX_MR * MAX_TILE_VECTORS];
  LLVMValueRef start[3] = {cg_i64(c, 0), t->p[T_A], t->p[T_PANEL]};
  LLVMBasicBlockRef at[2] = {head, second};
  for (int h = 0; h < 2; h++) {
    LLVMPositionBuilderAtEnd(B, at[h]);
    k[h] = LLVMBuildPhi(B, c->i64, "k");
    a_col[h] = LLVMBuildPhi(B, c->ptr, "a.col");
    b_row[h] = LLVMBuildPhi(B, c->ptr, "b.row");
    LLVMAddIncoming(k[h], &start[0], &pre, 1);
    LLVMAddIncoming(a_col[h], &start[1], &pre, 1);
    LLVMAddIncoming(b_row[h], &start[2], &pre, 1);
    for (int32_t i = 0; i < t->n_acc; i++) {
      phi[h][i] = LLVMBuildPhi(B, vec_t(c), "acc");
      LLVMAddIncoming(phi[h][i], &acc[i], &pre, 1);
    }
  }
  LLVMPositionBuilderAtEnd(B, head);
  LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, k[0], t->p[T_KC], ""), first, done);
  /* Each copy: one step from its phis into the other copy's. */
  LLVMBasicBlockRef body[2] = {first, second}, to[2] = {second, head};
  for (int h = 0; h < 2; h++) {
    LLVMPositionBuilderAtEnd(B, body[h]);
    LLVMValueRef next[CG_GEMM_MAX_MR * MAX_TILE_VECTORS], a = h ? a_col[1] : a_col[0], b = h ? b_row[1] : b_row[0];
    memcpy(next, phi[h], sizeof(LLVMValueRef) * (size_t)t->n_acc);
    emit_k_step(c, t, &a, &b, next);
    LLVMValueRef k1 = LLVMBuildAdd(B, k[h], cg_i64(c, 1), "");
    LLVMBasicBlockRef from = LLVMGetInsertBlock(B);
    int o = 1 - h;
    LLVMAddIncoming(k[o], &k1, &from, 1);
    LLVMAddIncoming(a_col[o], &a, &from, 1);
    LLVMAddIncoming(b_row[o], &b, &from, 1);
    for (int32_t i = 0; i < t->n_acc; i++) LLVMAddIncoming(phi[o][i], &next[i], &from, 1);
    LLVMBuildBr(B, to[h]);
  }
  LLVMPositionBuilderAtEnd(B, done);
  memcpy(acc, phi[0], sizeof(LLVMValueRef) * (size_t)t->n_acc);
}

/* The body of a tile function: accumulate over kc, then store; starts
 * from C when acc, from zero otherwise. */
static void build_tile_body(cg_lower *c, LLVMValueRef fn, tile *t) {
  LLVMBuilderRef B = c->b;
  for (int32_t i = 0; i < T_N_PARAMS; i++) t->p[i] = LLVMGetParam(fn, (unsigned)i);
  t->nv = t->panels * (PANEL / c->f32_lanes);
  t->n_acc = t->rows * t->nv;
  IR_ASSERT(t->nv <= MAX_TILE_VECTORS && t->n_acc <= CG_GEMM_MAX_MR * MAX_TILE_VECTORS);
  LLVMValueRef acc[CG_GEMM_MAX_MR * MAX_TILE_VECTORS], mask[MAX_TILE_VECTORS], zero = LLVMConstNull(vec_t(c));
  for (int32_t v = 0; v < t->nv; v++) mask[v] = column_mask(c, v, t->p[T_NCOLS]);
  /* C is read only when acc: a first k block (every block of a small k,
   * such as attention's 64) skips the tile's loads. */
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(B);
  LLVMBasicBlockRef load = LLVMAppendBasicBlockInContext(c->ctx, fn, "c.load");
  LLVMBasicBlockRef start = LLVMAppendBasicBlockInContext(c->ctx, fn, "c.ready");
  LLVMBuildCondBr(B, t->p[T_ACC], load, start);
  LLVMPositionBuilderAtEnd(B, load);
  LLVMValueRef loaded[CG_GEMM_MAX_MR * MAX_TILE_VECTORS];
  for (int32_t r = 0; r < t->rows; r++) {
    LLVMValueRef row = gep_f32(c, t->p[T_C], LLVMBuildMul(B, cg_i64(c, r), t->p[T_LDC], ""));
    for (int32_t v = 0; v < t->nv; v++)
      loaded[r * t->nv + v] =
          cg_masked_load(c, vec_t(c), gep_f32(c, row, cg_i64(c, (int64_t)v * c->f32_lanes)), 4, mask[v], zero);
  }
  LLVMBuildBr(B, start);
  LLVMPositionBuilderAtEnd(B, start);
  LLVMBasicBlockRef from[2] = {entry, load};
  for (int32_t i = 0; i < t->n_acc; i++) {
    acc[i] = LLVMBuildPhi(B, vec_t(c), "acc0");
    LLVMValueRef in[2] = {zero, loaded[i]};
    LLVMAddIncoming(acc[i], in, from, 2);
  }
  emit_k_loop(c, fn, t, acc);
  for (int32_t r = 0; r < t->rows; r++) {
    LLVMValueRef row = gep_f32(c, t->p[T_C], LLVMBuildMul(B, cg_i64(c, r), t->p[T_LDC], ""));
    for (int32_t v = 0; v < t->nv; v++)
      cg_masked_store(c, acc[r * t->nv + v], gep_f32(c, row, cg_i64(c, (int64_t)v * c->f32_lanes)), 4, mask[v]);
  }
  LLVMBuildRetVoid(B);
}

static LLVMTypeRef tile_fn_type(cg_lower *c) {
  LLVMTypeRef params[T_N_PARAMS] = {c->ptr, c->i64, c->i64, c->ptr, c->i64, c->i64, c->ptr, c->i64, c->i64, c->i1};
  return LLVMFunctionType(c->void_t, params, T_N_PARAMS, 0);
}

/* The module's tile function for rows x panels, built on first use. */
static LLVMValueRef tile_fn(cg_lower *c, int32_t rows, int32_t panels) {
  IR_ASSERT(panels == 1 || (rows == 1 && panels <= CG_GEMV_MAX_PANELS));
  LLVMValueRef *slot = panels == 1 ? &c->gemm_tiles[rows] : &c->gemv_tiles[panels];
  if (*slot) return *slot;
  char name[48];
  snprintf(name, sizeof name, "gemm.tile.m%dp%d", (int)rows, (int)panels);
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, tile_fn_type(c));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  /* One copy per module: every product and recurrent kernel calls it once
   * per tile and k block, which costs nothing next to the k loop. */
  cg_add_fn_attr(c->ctx, fn, "noinline", 0);
  cg_copy_target_attrs(c, fn);
  LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  tile t = {.rows = rows, .panels = panels};
  build_tile_body(c, fn, &t);
  LLVMPositionBuilderAtEnd(c->b, at);
  return *slot = fn;
}

/* ---- packing ---------------------------------------------------------------------- */

/* A B whose columns are contiguous (transpose_b: b_k == 1) is packed
 * TBLOCK x TBLOCK blocks at a time: TBLOCK columns of B (rows of B^T)
 * loaded as vectors along k, transposed in registers, stored as TBLOCK
 * rows of the panel; the column and k tails go element by element. Packed
 * element by element (a load a column stride apart and a store each), B4
 * spent 1.1 M more instructions a forward in NAME_run (of its 1.8 M own)
 * and 10 M more in NAME_init (of 14 M): callgrind, docs/performance.md. */
#define TBLOCK 8

/* Swaps bit w of the row index with bit w of the lane index in the
 * TBLOCK x TBLOCK block of rows v; after w = 1, 2, 4 (any order) the
 * block is transposed. */
static void swap_index_bit(cg_lower *c, LLVMValueRef *v, int32_t w) {
  LLVMValueRef lo[TBLOCK], hi[TBLOCK];
  for (int32_t l = 0; l < TBLOCK; l++) {
    bool low = (l & w) == 0;
    lo[l] = cg_i32(c, low ? l : TBLOCK + l - w);
    hi[l] = cg_i32(c, low ? l + w : TBLOCK + l);
  }
  for (int32_t i = 0; i < TBLOCK; i++) {
    if (i & w) continue;
    LLVMValueRef a = v[i], b = v[i + w];
    v[i] = LLVMBuildShuffleVector(c->b, a, b, LLVMConstVector(lo, TBLOCK), "");
    v[i + w] = LLVMBuildShuffleVector(c->b, a, b, LLVMConstVector(hi, TBLOCK), "");
  }
}

/* TBLOCK floats at p, at any element alignment. */
static LLVMValueRef load_block_row(cg_lower *c, LLVMValueRef p) {
  LLVMValueRef v = LLVMBuildLoad2(c->b, LLVMVectorType(c->f32, TBLOCK), p, "");
  LLVMSetAlignment(v, 4);
  return v;
}

/* Panel rows [0, kb * TBLOCK) x columns [0, rb * TBLOCK) of dst (panel q's
 * first row) from B[k, j] at b[k + j*b_j], j0 the panel's first column. */
static void pack_blocks(cg_lower *c, LLVMValueRef b, LLVMValueRef b_j, LLVMValueRef j0, LLVMValueRef kb,
                        LLVMValueRef rb, LLVMValueRef dst) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef t = cg_i64(c, TBLOCK);
  cg_loop kk = cg_for_begin(c, kb, "kb");
  LLVMValueRef k0 = LLVMBuildMul(B, kk.iv, t, "");
  cg_loop rr = cg_for_begin(c, rb, "rb");
  LLVMValueRef r0 = LLVMBuildMul(B, rr.iv, t, "");
  LLVMValueRef src = gep_f32(c, b, LLVMBuildAdd(B, LLVMBuildMul(B, LLVMBuildAdd(B, j0, r0, ""), b_j, ""), k0, ""));
  LLVMValueRef v[TBLOCK];
  for (int32_t i = 0; i < TBLOCK; i++) v[i] = load_block_row(c, gep_f32(c, src, LLVMBuildMul(B, cg_i64(c, i), b_j, "")));
  for (int32_t w = 1; w < TBLOCK; w *= 2) swap_index_bit(c, v, w);
  LLVMValueRef at = gep_f32(c, dst, LLVMBuildAdd(B, LLVMBuildMul(B, k0, cg_i64(c, PANEL), ""), r0, ""));
  for (int32_t l = 0; l < TBLOCK; l++) LLVMSetAlignment(LLVMBuildStore(B, v[l], gep_f32(c, at, cg_i64(c, l * PANEL))), 4);
  cg_for_end(c, &rr);
  cg_for_end(c, &kk);
}

/* seqc.pack.blocks(b, b_j, j0, kb, rb, dst) runs pack_blocks: every pack
 * site calls it (B4 has one per weight in NAME_init and one per scores
 * product), which keeps its 24 shuffles per block out of each site's code
 * and build time. */
static LLVMTypeRef pack_blocks_type(cg_lower *c) {
  LLVMTypeRef params[6] = {c->ptr, c->i64, c->i64, c->i64, c->i64, c->ptr};
  return LLVMFunctionType(c->void_t, params, 6, 0);
}

static void pack_blocks_body(cg_lower *c, LLVMValueRef fn) {
  LLVMValueRef p[6];
  for (unsigned i = 0; i < 6; i++) p[i] = LLVMGetParam(fn, i);
  pack_blocks(c, p[0], p[1], p[2], p[3], p[4], p[5]);
  LLVMBuildRetVoid(c->b);
}

static bool is_const_one(LLVMValueRef v) {
  return LLVMIsAConstantInt(v) && LLVMConstIntGetSExtValue(v) == 1;
}

/* out[q, k, r] = B[k, 32q + r] (0 past n), B[k, j] at b[k*b_k + j*b_j]. */
static void emit_pack(cg_lower *c, LLVMValueRef b, LLVMValueRef b_k, LLVMValueRef b_j, LLVMValueRef k,
                      LLVMValueRef n, LLVMValueRef out) {
  LLVMBuilderRef B = c->b;
  bool blocks = is_const_one(b_k);
  LLVMValueRef t = cg_i64(c, TBLOCK), kb = LLVMBuildSDiv(B, k, t, "");
  cg_loop q = cg_for_begin(c, ceil_div(c, n, cg_i64(c, PANEL)), "q");
  LLVMValueRef j0 = LLVMBuildMul(B, q.iv, cg_i64(c, PANEL), "");
  LLVMValueRef panel = gep_f32(c, out, LLVMBuildMul(B, LLVMBuildMul(B, q.iv, k, ""), cg_i64(c, PANEL), ""));
  /* The panel's columns inside B, then zeros: two plain loops (a copy
   * LLVM vectorizes when B's rows are contiguous). After blocks, rows
   * [0, kb * TBLOCK) have only their column tail left: from column
   * r_blocked on. */
  LLVMValueRef cols = LLVMBuildSub(B, n, j0, "");
  cols = cg_smin(c, cols, cg_i64(c, PANEL));
  LLVMValueRef rb = LLVMBuildSDiv(B, cols, t, ""), r_blocked = LLVMBuildMul(B, rb, t, "");
  if (blocks) {
    LLVMValueRef fn = cg_module_fn(c, "seqc.pack.blocks", pack_blocks_type(c), false, pack_blocks_body);
    LLVMBuildCall2(B, pack_blocks_type(c), fn, (LLVMValueRef[]){b, b_j, j0, kb, rb, panel}, 6, "");
  }
  cg_loop kk = cg_for_begin(c, k, "k");
  LLVMValueRef dst = gep_f32(c, panel, LLVMBuildMul(B, kk.iv, cg_i64(c, PANEL), ""));
  LLVMValueRef src = gep_f32(c, b, LLVMBuildAdd(B, LLVMBuildMul(B, kk.iv, b_k, ""), LLVMBuildMul(B, j0, b_j, ""), ""));
  LLVMValueRef in_blocks = LLVMBuildICmp(B, LLVMIntSLT, kk.iv, LLVMBuildMul(B, kb, t, ""), "");
  LLVMValueRef r0 = blocks ? LLVMBuildSelect(B, in_blocks, r_blocked, cg_i64(c, 0), "") : cg_i64(c, 0);
  cg_loop r = cg_for_begin(c, LLVMBuildSub(B, cols, r0, ""), "r");
  LLVMValueRef j = LLVMBuildAdd(B, r0, r.iv, "");
  LLVMValueRef v = LLVMBuildLoad2(B, c->f32, gep_f32(c, src, LLVMBuildMul(B, j, b_j, "")), "");
  LLVMBuildStore(B, v, gep_f32(c, dst, j));
  cg_for_end(c, &r);
  cg_loop z = cg_for_begin(c, LLVMBuildSub(B, cg_i64(c, PANEL), cols, ""), "zero");
  LLVMBuildStore(B, LLVMConstReal(c->f32, 0), gep_f32(c, dst, LLVMBuildAdd(B, cols, z.iv, "")));
  cg_for_end(c, &z);
  cg_for_end(c, &kk);
  cg_for_end(c, &q);
}

/* ---- the task function --------------------------------------------------------------- */

/* What NAME_run hands each task of one product: C[m, n] = A B with A read
 * through strides and B packed. A batched product's closure has no A, B
 * or C but a table of them, CG_GEMM_ENTRY pointers a batch matrix
 * (cg_gemm_run_batch), and the tasks of one matrix. */
enum { CL_A, CL_BP, CL_C, CL_TABLE, CL_M, CL_N, CL_K, CL_A_ROW, CL_A_K, CL_ROWS_PER_TASK, CL_PANELS_PER_TASK,
       CL_ROW_TASKS, CL_MATRIX_TASKS, CL_N_FIELDS };

/* A fused group's epilogue (lower_fused.c): the ops after the product, and
 * the arguments they read, with how each is indexed (ir_broadcast_class);
 * their buffers follow the closure's fields. */
typedef struct epilogue {
  ir_opid op, first; /* the fused op; the op after the product */
  ir_val product;    /* the product's value in the region */
  int32_t n;
  ir_val *args;
  ir_bcast *cls;
} epilogue;

static LLVMTypeRef closure_type(cg_lower *c, int32_t n_extra) {
  LLVMTypeRef *f = ir_xcalloc((size_t)(CL_N_FIELDS + n_extra), sizeof(LLVMTypeRef));
  for (int32_t i = 0; i < CL_N_FIELDS + n_extra; i++) f[i] = i <= CL_TABLE || i >= CL_N_FIELDS ? c->ptr : c->i64;
  LLVMTypeRef t = LLVMStructTypeInContext(c->ctx, f, (unsigned)(CL_N_FIELDS + n_extra), 0);
  free(f);
  return t;
}

/* One k block of the task: operands of the tile calls. */
typedef struct kblock {
  LLVMValueRef a, a_row, a_k, bp, panel_stride, kc0, kc, c, n, acc;
} kblock;

static void call_tile(cg_lower *c, const kblock *kb, int32_t rows, int32_t panels, LLVMValueRef i, LLVMValueRef q) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef panel = gep_f32(c, kb->bp, LLVMBuildAdd(B, LLVMBuildMul(B, q, kb->panel_stride, ""),
                                                        LLVMBuildMul(B, kb->kc0, cg_i64(c, PANEL), ""), ""));
  LLVMValueRef col = LLVMBuildMul(B, q, cg_i64(c, PANEL), "");
  LLVMValueRef out = gep_f32(c, kb->c, LLVMBuildAdd(B, LLVMBuildMul(B, i, kb->n, ""), col, ""));
  LLVMValueRef a = gep_f32(c, kb->a, LLVMBuildAdd(B, LLVMBuildMul(B, i, kb->a_row, ""), LLVMBuildMul(B, kb->kc0, kb->a_k, ""), ""));
  LLVMValueRef args[T_N_PARAMS] = {a, kb->a_row, kb->a_k, panel, kb->panel_stride, kb->kc, out,
                                   kb->n, LLVMBuildSub(B, kb->n, col, ""), kb->acc};
  LLVMBuildCall2(B, tile_fn_type(c), tile_fn(c, rows, panels), args, T_N_PARAMS, "");
}

/* Panels [q0, q1) of row i alone, several at a time (GEMV_CHAINS vectors),
 * the last few together too. */
static void emit_row_panels(cg_lower *c, const kblock *kb, LLVMValueRef i, LLVMValueRef q0, LLVMValueRef q1) {
  LLVMBuilderRef B = c->b;
  int32_t per_panel = PANEL / c->f32_lanes, group = GEMV_CHAINS > per_panel ? GEMV_CHAINS / per_panel : 1;
  IR_ASSERT(group <= CG_GEMV_MAX_PANELS);
  LLVMValueRef groups = LLVMBuildSDiv(B, LLVMBuildSub(B, q1, q0, ""), cg_i64(c, group), "");
  cg_loop g = cg_for_begin(c, groups, "group");
  call_tile(c, kb, 1, group, i, LLVMBuildAdd(B, q0, LLVMBuildMul(B, g.iv, cg_i64(c, group), ""), ""));
  cg_for_end(c, &g);
  if (group == 1) return;
  LLVMValueRef rest = LLVMBuildAdd(B, q0, LLVMBuildMul(B, groups, cg_i64(c, group), ""), "");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rest.done");
  LLVMValueRef sw = LLVMBuildSwitch(B, LLVMBuildSub(B, q1, rest, ""), done, (unsigned)group - 1);
  for (int32_t p = 1; p < group; p++) {
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rest");
    LLVMAddCase(sw, cg_i64(c, p), bb);
    LLVMPositionBuilderAtEnd(B, bb);
    call_tile(c, kb, 1, p, i, rest);
    LLVMBuildBr(B, done);
  }
  LLVMPositionBuilderAtEnd(B, done);
}

/* Rows [i0, i1) by panels [q0, q1): as few row tiles as gemm_mr allows,
 * of heights that differ by at most one (16 rows are two tiles of 8, not
 * 12 and 4; a switch over the height), each run against every panel. */
static void emit_tiles(cg_lower *c, const kblock *kb, LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef q0, LLVMValueRef q1) {
  LLVMBuilderRef B = c->b;
  int32_t mr = c->gemm_mr;
  LLVMValueRef n = LLVMBuildSub(B, i1, i0, ""), tiles = ceil_div(c, n, cg_i64(c, mr));
  LLVMValueRef base = LLVMBuildSDiv(B, n, cg_smax(c, tiles, cg_i64(c, 1)), "");
  LLVMValueRef taller = LLVMBuildSub(B, n, LLVMBuildMul(B, base, tiles, ""), ""); /* tiles of base + 1 rows */
  cg_loop t = cg_for_begin(c, tiles, "tile");
  LLVMValueRef i = LLVMBuildAdd(B, i0, LLVMBuildAdd(B, LLVMBuildMul(B, t.iv, base, ""), cg_smin(c, t.iv, taller), ""), "");
  LLVMValueRef rows = LLVMBuildAdd(B, base, LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntSLT, t.iv, taller, ""), c->i64, ""), "");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tile.done");
  LLVMBasicBlockRef full = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tile.full");
  LLVMValueRef sw = LLVMBuildSwitch(B, rows, full, (unsigned)mr - 1);
  for (int32_t r = 1; r <= mr; r++) {
    LLVMBasicBlockRef bb = full;
    if (r < mr) {
      bb = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tile.edge");
      LLVMAddCase(sw, cg_i64(c, r), bb);
    }
    LLVMPositionBuilderAtEnd(B, bb);
    if (r == 1) {
      emit_row_panels(c, kb, i, q0, q1);
    } else {
      cg_loop q = cg_for_begin(c, LLVMBuildSub(B, q1, q0, ""), "q");
      call_tile(c, kb, r, 1, i, LLVMBuildAdd(B, q0, q.iv, ""));
      cg_for_end(c, &q);
    }
    LLVMBuildBr(B, join);
  }
  LLVMPositionBuilderAtEnd(B, join);
  cg_for_end(c, &t);
}

static LLVMValueRef field(cg_lower *c, LLVMTypeRef ct, LLVMValueRef closure, int f) {
  LLVMTypeRef t = f <= CL_TABLE || f >= CL_N_FIELDS ? c->ptr : c->i64;
  return LLVMBuildLoad2(c->b, t, LLVMBuildStructGEP2(c->b, ct, closure, (unsigned)f, ""), "");
}

/* The epilogue over the task's block of C, rows [i0, i1) by the columns of
 * panels [q0, q1): C[i, j] = epilogue(C[i, j], its arguments at (i, j)). */
static void emit_epilogue(cg_lower *c, const epilogue *e, LLVMTypeRef ct, LLVMValueRef cl, const LLVMValueRef *f,
                          LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef q0, LLVMValueRef q1) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef n = f[CL_N], j0 = LLVMBuildMul(B, q0, cg_i64(c, PANEL), "");
  LLVMValueRef j1 = cg_smin(c, n, LLVMBuildMul(B, q1, cg_i64(c, PANEL), ""));
  cg_buf out = {f[CL_C], ir_vtype(c->g, e->product), NULL};
  cg_buf *args = ir_xcalloc((size_t)e->n + 1, sizeof(cg_buf));
  for (int32_t k = 0; k < e->n; k++) args[k] = (cg_buf){field(c, ct, cl, CL_N_FIELDS + k), ir_vtype(c->g, e->args[k]), NULL};
  LLVMValueRef *vals = ir_xcalloc((size_t)c->g->n_vals + 1, sizeof(LLVMValueRef));
  cg_loop r = cg_for_begin(c, LLVMBuildSub(B, i1, i0, ""), "epi.row");
  LLVMValueRef row = LLVMBuildMul(B, LLVMBuildAdd(B, i0, r.iv, ""), n, "");
  cg_loop col = cg_for_begin(c, LLVMBuildSub(B, j1, j0, ""), "epi.col");
  LLVMValueRef j = LLVMBuildAdd(B, j0, col.iv, ""), at = LLVMBuildAdd(B, row, j, "");
  vals[e->product] = cg_load(c, &out, at);
  for (int32_t k = 0; k < e->n; k++)
    vals[e->args[k]] = cg_load(c, &args[k], e->cls[k] == IR_BCAST_FULL ? at : e->cls[k] == IR_BCAST_ROW ? j : cg_i64(c, 0));
  cg_store(c, &out, at, cg_group_values(c, e->op, e->first, vals));
  cg_for_end(c, &col);
  cg_for_end(c, &r);
  free(vals);
  free(args);
}

void cg_gemm_block(cg_lower *c, const cg_gemm *g, LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef q0,
                   LLVMValueRef q1, bool panel_outer) {
  LLVMBuilderRef B = c->b;
  /* At least one block, so that k = 0 still stores zeros; equal blocks. */
  LLVMValueRef nkb = cg_smax(c, cg_i64(c, 1), ceil_div(c, g->k, cg_i64(c, c->gemm_kc)));
  LLVMValueRef kcmax = cg_smax(c, cg_i64(c, 1), ceil_div(c, g->k, nkb));
  cg_loop kl = cg_for_begin(c, nkb, "kblock");
  kblock kb = {g->a, g->a_row, g->a_k, g->bp, LLVMBuildMul(B, g->k, cg_i64(c, PANEL), ""), NULL,
               NULL, g->c, g->n, LLVMBuildICmp(B, LLVMIntSGT, kl.iv, cg_i64(c, 0), "acc")};
  kb.kc0 = LLVMBuildMul(B, kl.iv, kcmax, "kc0");
  kb.kc = cg_smin(c, kcmax, LLVMBuildSub(B, g->k, kb.kc0, ""));
  if (panel_outer) {
    LLVMValueRef width = cg_i64(c, PANEL_BLOCK);
    cg_loop q = cg_for_begin(c, ceil_div(c, LLVMBuildSub(B, q1, q0, ""), width), "pblock");
    LLVMValueRef at = LLVMBuildAdd(B, q0, LLVMBuildMul(B, q.iv, width, ""), "");
    emit_tiles(c, &kb, i0, i1, at, cg_smin(c, q1, LLVMBuildAdd(B, at, width, "")));
    cg_for_end(c, &q);
  } else {
    emit_tiles(c, &kb, i0, i1, q0, q1);
  }
  cg_for_end(c, &kl);
}

/* A batched product's task: its matrix's A, B and C into f from the
 * table; returns the task's number within the matrix. */
static LLVMValueRef batch_entry(cg_lower *c, LLVMValueRef *f, LLVMValueRef task) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef matrix = LLVMBuildSDiv(B, task, f[CL_MATRIX_TASKS], "matrix");
  LLVMValueRef entry = LLVMBuildMul(B, matrix, cg_i64(c, CG_GEMM_ENTRY), "");
  for (int i = CL_A; i <= CL_C; i++) {
    LLVMValueRef at = LLVMBuildAdd(B, entry, cg_i64(c, i - CL_A), "");
    f[i] = LLVMBuildLoad2(B, c->ptr, LLVMBuildGEP2(B, c->ptr, f[CL_TABLE], &at, 1, ""), "");
  }
  return LLVMBuildSRem(B, task, f[CL_MATRIX_TASKS], "");
}

/* The body of a task function (closure, task); with an epilogue after the
 * last k block; of a batched product's when batched. */
static void build_task_body(cg_lower *c, LLVMValueRef fn, LLVMTypeRef ct, const epilogue *e, bool batched) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef cl = LLVMGetParam(fn, 0), task = LLVMGetParam(fn, 1), f[CL_N_FIELDS];
  for (int i = 0; i < CL_N_FIELDS; i++) f[i] = field(c, ct, cl, i);
  if (batched) task = batch_entry(c, f, task);
  /* Consecutive tasks share a panel block (and its k blocks in L2). */
  LLVMValueRef ctask = LLVMBuildSDiv(B, task, f[CL_ROW_TASKS], ""), rt = LLVMBuildSRem(B, task, f[CL_ROW_TASKS], "");
  LLVMValueRef i0 = LLVMBuildMul(B, rt, f[CL_ROWS_PER_TASK], "i0");
  LLVMValueRef i1 = cg_smin(c, f[CL_M], LLVMBuildAdd(B, i0, f[CL_ROWS_PER_TASK], ""));
  LLVMValueRef panels = ceil_div(c, f[CL_N], cg_i64(c, PANEL));
  LLVMValueRef q0 = LLVMBuildMul(B, ctask, f[CL_PANELS_PER_TASK], "q0");
  LLVMValueRef q1 = cg_smin(c, panels, LLVMBuildAdd(B, q0, f[CL_PANELS_PER_TASK], ""));
  if (e) {
    /* The product is the shared task's (the closure starts like its own);
     * the epilogue follows on the same block of C while it is in cache. */
    LLVMTypeRef params[2] = {c->ptr, c->i64};
    LLVMBuildCall2(B, LLVMFunctionType(c->void_t, params, 2, 0), c->gemm_task, (LLVMValueRef[]){cl, task}, 2, "");
    emit_epilogue(c, e, ct, cl, f, i0, i1, q0, q1);
    LLVMBuildRetVoid(B);
    return;
  }
  cg_gemm g = {f[CL_A], f[CL_A_ROW], f[CL_A_K], f[CL_BP], f[CL_C], f[CL_M], f[CL_N], f[CL_K]};
  cg_gemm_block(c, &g, i0, i1, q0, q1, false);
  LLVMBuildRetVoid(B);
}

/* NAME.gemm, shared by every plain product, NAME.gemm.batch, shared by
 * every batched one, or a fused group's own function (cg_group_name). */
static LLVMValueRef task_fn(cg_lower *c, LLVMTypeRef ct, const epilogue *e, bool batched) {
  ir_buf name = {0};
  if (e)
    cg_group_name(c, e->op, &name);
  else
    ir_buf_printf(&name, "%s.gemm%s", c->prefix, batched ? ".batch" : "");
  LLVMTypeRef params[2] = {c->ptr, c->i64};
  LLVMValueRef fn = LLVMAddFunction(c->mod, name.s, LLVMFunctionType(c->void_t, params, 2, 0));
  ir_buf_free(&name);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_copy_target_attrs(c, fn);
  LLVMValueRef saved_fn = c->fn;
  LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
  c->fn = fn;
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  build_task_body(c, fn, ct, e, batched);
  c->fn = saved_fn;
  LLVMPositionBuilderAtEnd(c->b, at);
  return fn;
}

/* ---- products ---------------------------------------------------------------------- */

/* C[m, n] = A B for `matrices` matrices of one shape, then the epilogue e
 * (if any; buffers[k] holds its argument k): one parallel_for over tasks
 * of row blocks by panel blocks of every matrix, sized from the shapes
 * only. A single matrix (table NULL) is g's a, bp and c; else matrix b is
 * entry b of table (cg_gemm_run_batch), and has no epilogue. */
static void emit_gemm(cg_lower *c, const cg_gemm *g, LLVMValueRef table, LLVMValueRef matrices, const epilogue *e,
                      const LLVMValueRef *buffers) {
  LLVMBuilderRef B = c->b;
  LLVMValueRef one = cg_i64(c, 1);
  IR_ASSERT(!table || !e);
  /* Rows: whole tiles, up to gemm_rows, so that each k block of a panel
   * block, loaded into L2 once, serves many row tiles. */
  LLVMValueRef rows = cg_smax(c, one, cg_smin(c, g->m, cg_i64(c, c->gemm_rows)));
  LLVMValueRef row_tasks = ceil_div(c, g->m, rows);
  /* Panels: blocks that fit L2, cut further while all the matrices have
   * fewer than GEMM_MIN_TASKS tasks of GEMM_TASK_MACS each between them
   * (several heads need not cut theirs). */
  LLVMValueRef panels = ceil_div(c, g->n, cg_i64(c, PANEL));
  LLVMValueRef macs = LLVMBuildMul(B, LLVMBuildMul(B, LLVMBuildMul(B, g->m, g->n, ""), g->k, ""), matrices, "");
  LLVMValueRef want = cg_smin(c, cg_i64(c, GEMM_MIN_TASKS), LLVMBuildSDiv(B, macs, cg_i64(c, GEMM_TASK_MACS), ""));
  want = ceil_div(c, cg_smax(c, one, want), cg_smax(c, one, matrices)); /* per matrix */
  LLVMValueRef col_tasks = cg_smax(c, ceil_div(c, panels, cg_i64(c, c->gemm_panels)),
                                cg_smin(c, panels, ceil_div(c, want, cg_smax(c, one, row_tasks))));
  LLVMValueRef per_task = cg_smax(c, one, ceil_div(c, panels, cg_smax(c, one, col_tasks)));
  col_tasks = ceil_div(c, panels, per_task);
  LLVMValueRef matrix_tasks = LLVMBuildMul(B, row_tasks, col_tasks, "gemm.matrix.tasks");
  LLVMValueRef n_tasks = LLVMBuildMul(B, matrix_tasks, matrices, "gemm.tasks");
  int32_t n_extra = e ? e->n : 0;
  LLVMTypeRef ct = closure_type(c, n_extra);
  LLVMValueRef cl = cg_entry_alloca(c, ct, "gemm.closure"), null = LLVMConstPointerNull(c->ptr);
  LLVMValueRef vals[CL_N_FIELDS] = {table ? null : g->a, table ? null : g->bp, table ? null : g->c,
                                    table ? table : null, g->m, g->n, g->k, g->a_row, g->a_k, rows, per_task,
                                    row_tasks, matrix_tasks};
  for (int i = 0; i < CL_N_FIELDS + n_extra; i++)
    LLVMBuildStore(B, i < CL_N_FIELDS ? vals[i] : buffers[i - CL_N_FIELDS], LLVMBuildStructGEP2(B, ct, cl, (unsigned)i, ""));
  LLVMValueRef *shared = table ? &c->gemm_batch_task : &c->gemm_task;
  if (!*shared) *shared = task_fn(c, closure_type(c, 0), NULL, table != NULL);
  cg_parallel_for(c, e ? task_fn(c, ct, e, false) : *shared, cl, n_tasks);
}

void cg_gemm_run(cg_lower *c, const cg_gemm *g) { emit_gemm(c, g, NULL, cg_i64(c, 1), NULL, NULL); }

void cg_gemm_run_batch(cg_lower *c, const cg_gemm *g, LLVMValueRef table, LLVMValueRef matrices) {
  emit_gemm(c, g, table, matrices, NULL, NULL);
}

void cg_gemm_pack(cg_lower *c, LLVMValueRef b, LLVMValueRef b_k, LLVMValueRef b_j, LLVMValueRef k,
                  LLVMValueRef n, LLVMValueRef out) {
  emit_pack(c, b, b_k, b_j, k, n, out);
}

bool lower_pack_rhs(cg_lower *c, ir_opid op) {
  const cg_buf *b = cg_operand(c, op, 0), *out = cg_result(c, op, 0);
  bool tb = ir_get_int(c->g, op, "transpose_b") != 0;
  LLVMValueRef k = b->dims[tb], n = b->dims[!tb];
  emit_pack(c, b->ptr, tb ? cg_i64(c, 1) : n, tb ? k : cg_i64(c, 1), k, n, out->ptr);
  return true;
}

/* matmul_packed op into out, then the epilogue e (NULL: none). */
static void packed_product(cg_lower *c, ir_opid op, const cg_buf *out, const epilogue *e, const LLVMValueRef *buffers) {
  const cg_buf *a = cg_operand(c, op, 0), *p = cg_operand(c, op, 1);
  int32_t ra = a->type.rank;
  ir_dim n = ir_get_dim(c->g, op, "n");
  cg_check_dim_eq(c, a->type.dims[ra - 1], p->type.dims[1]);
  cg_check_dim_eq(c, p->type.dims[2], ir_dim_const(c->g->dims, PANEL));
  cg_check_dim_eq(c, ir_dim_ceildiv(c->g->dims, n, ir_dim_const(c->g->dims, PANEL)), p->type.dims[0]);
  LLVMValueRef k = a->dims[ra - 1], m = cg_i64(c, 1);
  for (int32_t d = 0; d < ra - 1; d++) m = LLVMBuildMul(c->b, m, a->dims[d], "");
  cg_gemm g = {a->ptr, k, cg_i64(c, 1), p->ptr, out->ptr, m, cg_dim(c, n), k};
  emit_gemm(c, &g, NULL, cg_i64(c, 1), e, buffers);
}

bool lower_matmul_packed(cg_lower *c, ir_opid op) {
  packed_product(c, op, cg_result(c, op, 0), NULL, NULL);
  return true;
}

/* The arguments of fused's region that the ops after the product read. */
static void epilogue_arguments(cg_lower *c, epilogue *e, ir_blockid body) {
  int32_t cap = ir_b(c->g, body)->n_args + 1;
  e->args = ir_xcalloc((size_t)cap, sizeof(ir_val));
  e->cls = ir_xcalloc((size_t)cap, sizeof(ir_bcast));
  ir_type space = ir_vtype(c->g, e->product);
  ir_opid y = ir_block_terminator(c->g, body);
  for (ir_opid op = e->first; op != y; op = ir_o(c->g, op)->next) {
    const ir_op *o = ir_o(c->g, op);
    for (int32_t i = 0; i < o->n_in; i++) {
      const ir_value *v = ir_v(c->g, o->in[i]);
      bool seen = v->def != IR_NONE;
      for (int32_t k = 0; k < e->n && !seen; k++) seen = e->args[k] == o->in[i];
      if (seen) continue;
      e->cls[e->n] = ir_broadcast_class(c->g, v->type, space);
      e->args[e->n++] = o->in[i];
    }
  }
}

bool cg_gemm_fused(cg_lower *c, ir_opid op) {
  ir_blockid body = ir_o(c->g, op)->regions[0];
  ir_opid root = ir_b(c->g, body)->first;
  epilogue e = {op, ir_o(c->g, root)->next, ir_o(c->g, root)->out[0], 0, NULL, NULL};
  epilogue_arguments(c, &e, body);
  LLVMValueRef *buffers = ir_xcalloc((size_t)e.n + 1, sizeof(LLVMValueRef));
  for (int32_t k = 0; k < e.n; k++) buffers[k] = c->bufs[e.args[k]].ptr;
  packed_product(c, root, cg_result(c, op, 0), &e, buffers);
  free(buffers);
  free(e.args);
  free(e.cls);
  return true;
}

bool cg_gemm_applies(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  return o->kind == IR_OP_MATMUL && ir_vtype(g, o->in[0]).dtype == IR_F32 && ir_vtype(g, o->in[1]).dtype == IR_F32;
}

/* The product of dims [from, to) of t. */
static ir_dim dims_product(cg_lower *c, ir_type t, int32_t from, int32_t to) {
  ir_dim p = ir_dim_const(c->g->dims, 1);
  for (int32_t d = from; d < to; d++) p = ir_dim_mul(c->g->dims, p, t.dims[d]);
  return p;
}

/* A matmul's B is packed into ceildiv(N, 32) x K x 32 floats: one batch
 * matrix at a time, or, batched (cg_matmul_batched), every matrix of B
 * one after another, followed by the table of the result's matrices
 * (CG_GEMM_ENTRY pointers of 8 bytes, two floats, each). */
bool cg_temp_type(cg_lower *c, ir_opid op, ir_type *type) {
  if (!cg_gemm_applies(c->g, op)) return false;
  ir_type b = ir_vtype(c->g, ir_o(c->g, op)->in[1]), out = ir_vtype(c->g, ir_o(c->g, op)->out[0]);
  bool tb = ir_get_int(c->g, op, "transpose_b") != 0;
  ir_dimtab *t = c->g->dims;
  ir_dim k = b.dims[b.rank - 2 + tb], n = b.dims[b.rank - 1 - tb], w = ir_dim_const(t, PANEL);
  ir_dim dims[3] = {ir_dim_ceildiv(t, n, w), k, w};
  *type = ir_type_make(c->g, IR_F32, 3, dims);
  if (cg_matmul_batched(c, op)) {
    ir_dim packs = ir_dim_mul(t, dims_product(c, b, 0, b.rank - 2), ir_type_numel_dim(c->g, *type));
    ir_dim table = ir_dim_mul(t, dims_product(c, out, 0, out.rank - 2), ir_dim_const(t, 2 * CG_GEMM_ENTRY));
    ir_dim all = ir_dim_add(t, packs, table);
    *type = ir_type_make(c->g, IR_F32, 1, &all);
  }
  return true;
}
