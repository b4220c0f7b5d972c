/*
 * pack_weights.c - weights in the GEMM's panel layout, packed once.
 *
 * An f32 `matmul %a, %w` whose right operand is a weight (computed from
 * parameters and constants only) becomes `matmul_packed %a, %p {n = N}`
 * with `%p = pack_rhs %w` (transpose_b carried over). const-hoist, which
 * runs after this pass, moves pack_rhs into the init op, so compiled code
 * packs every weight once, when the model opens, and each call reads the
 * panels the GEMM kernel streams through (codegen/lower_gemm.c). Both forms
 * compute the same sums in the same order: the rewrite changes no bit of
 * any result.
 *
 * Scan bodies: a matmul in the body of a top-level scan whose right operand
 * is a captured argument bound to a weight outside gets a pack_rhs of that
 * outer value, placed before the scan and passed in as one more captured
 * operand (one per weight and transpose, however many matmuls read it).
 * Deeper regions are left alone.
 *
 * What is not rewritten: transpose_a, a right operand of rank other than 2
 * (batched), any dtype but f32, and right operands that depend on an input
 * (packed per call by the kernel instead).
 *
 * Needs: a verified graph. Invalidates: nothing but the rewritten ops.
 * Deterministic: ops are visited in body order.
 */
#include "pass.h"

#include <stdlib.h>
#include <string.h>

typedef struct packer {
  ir_graph *g;
  bool *weight;  /* by value id: computed from parameters and constants only */
  int32_t cap;   /* entries of weight; values made by the pass are added */
  ir_diag *diag;
} packer;

static bool is_weight(const packer *p, ir_val v) { return v >= 0 && v < p->cap && p->weight[v]; }

static void set_weight(packer *p, ir_val v, bool w) {
  if (v >= p->cap) {
    int32_t old = p->cap;
    ir_grow((void **)&p->weight, &p->cap, v + 1, sizeof(bool));
    memset(p->weight + old, 0, sizeof(bool) * (size_t)(p->cap - old));
  }
  p->weight[v] = w;
}

/* One forward sweep over the top-level body. init results are weights. */
static void find_weights(packer *p) {
  ir_graph *g = p->g;
  const ir_block *body = ir_b(g, g->body);
  for (int32_t a = 0; a < body->n_args; a++) set_weight(p, body->args[a], ir_v(g, body->args[a])->is_param);
  for (ir_opid op = body->first; op != IR_NONE; op = ir_o(g, op)->next) {
    const ir_op *o = ir_o(g, op);
    unsigned flags = ir_opinfo_of(o->kind)->flags;
    bool w = o->kind == IR_OP_INIT || ((flags & IR_PURE) && !(flags & IR_TERMINATOR) && o->n_regions == 0);
    for (int32_t i = 0; w && o->kind != IR_OP_INIT && i < o->n_in; i++) w = is_weight(p, o->in[i]);
    for (int32_t r = 0; r < o->n_out; r++) set_weight(p, o->out[r], w);
  }
}

/* Whether matmul op may read its right operand packed. */
static bool packable(const ir_graph *g, ir_opid op) {
  const ir_op *o = ir_o(g, op);
  if (o->kind != IR_OP_MATMUL) return false;
  ir_type a = ir_vtype(g, o->in[0]), b = ir_vtype(g, o->in[1]);
  return a.dtype == IR_F32 && b.dtype == IR_F32 && b.rank == 2 && a.rank >= 2 && !ir_get_int(g, op, "transpose_a");
}

/* Attributes of the ops the pass builds: pack_rhs's transpose_b,
 * matmul_packed's n. */
typedef struct pack_attrs {
  bool tb;
  ir_dim n;
} pack_attrs;

static void set_pack_attrs(ir_graph *g, ir_opid op, void *ud) {
  const pack_attrs *a = ud;
  if (ir_o(g, op)->kind == IR_OP_PACK_RHS && a->tb) ir_set_int(g, op, "transpose_b", 1);
  if (ir_o(g, op)->kind == IR_OP_MATMUL_PACKED) ir_set_dim(g, op, "n", a->n);
}

static ir_val pack_before(packer *p, ir_opid anchor, ir_val w, bool tb) {
  pack_attrs attrs = {tb, IR_DIM_INVALID};
  ir_opid op = ir_build_before(p->g, anchor, IR_OP_PACK_RHS, 1, &w, set_pack_attrs, &attrs, p->diag);
  if (op == IR_NONE) return IR_NONE;
  set_weight(p, ir_o(p->g, op)->out[0], is_weight(p, w));
  const char *name = ir_v(p->g, w)->name;
  if (name) {
    ir_buf b = {0};
    ir_buf_printf(&b, "%s.packed", name);
    ir_value_set_name(p->g, ir_o(p->g, op)->out[0], b.s);
    ir_buf_free(&b);
  }
  return ir_o(p->g, op)->out[0];
}

/* matmul op -> matmul_packed(a, packed), results renamed to the old. */
static bool use_packed(packer *p, ir_opid op, ir_val packed) {
  ir_graph *g = p->g;
  ir_val a = ir_o(g, op)->in[0], out = ir_o(g, op)->out[0];
  ir_type r = ir_vtype(g, out);
  pack_attrs attrs = {false, r.dims[r.rank - 1]};
  ir_opid mm = ir_build_before(g, op, IR_OP_MATMUL_PACKED, 2, (ir_val[]){a, packed}, set_pack_attrs, &attrs, p->diag);
  if (mm == IR_NONE) return false;
  ir_val fresh = ir_o(g, mm)->out[0];
  set_weight(p, fresh, is_weight(p, a) && is_weight(p, packed)); /* a product of weights is one */
  const char *name = ir_v(g, out)->name;
  ir_replace_all_uses(g, out, fresh);
  ir_op_erase(g, op);
  if (name) ir_value_set_name(g, fresh, name);
  return true;
}

/* ---- scan bodies ------------------------------------------------------------------------ */

typedef struct captured_pack {
  ir_val outer;
  bool tb;
  ir_val arg; /* the body argument holding the packed value */
} captured_pack;

/* The body argument bound to the packed `outer`, made on first use. */
static ir_val packed_arg(packer *p, ir_opid scan, ir_val outer, bool tb, captured_pack **memo, int32_t *n, int32_t *cap) {
  for (int32_t i = 0; i < *n; i++)
    if ((*memo)[i].outer == outer && (*memo)[i].tb == tb) return (*memo)[i].arg;
  ir_graph *g = p->g;
  ir_val packed = pack_before(p, scan, outer, tb);
  if (packed == IR_NONE) return IR_NONE;
  const ir_op *o = ir_o(g, scan);
  ir_val *in = ir_xmalloc(sizeof(ir_val) * ((size_t)o->n_in + 1));
  for (int32_t i = 0; i < o->n_in; i++) in[i] = o->in[i];
  in[o->n_in] = packed;
  ir_op_set_operands(g, scan, o->n_in + 1, in);
  free(in);
  ir_val arg = ir_block_add_arg(g, ir_o(g, scan)->regions[0], ir_vtype(g, packed), ir_v(g, packed)->name);
  ir_grow((void **)memo, cap, *n + 1, sizeof(captured_pack));
  (*memo)[(*n)++] = (captured_pack){outer, tb, arg};
  return arg;
}

/* The outer value a scan body argument is bound to, if it is captured. */
static ir_val captured_outer(const ir_graph *g, ir_opid scan, ir_val arg) {
  const ir_op *o = ir_o(g, scan);
  const ir_block *body = ir_b(g, o->regions[0]);
  int32_t first = 1 + (int32_t)ir_get_int(g, scan, "carries") + (int32_t)ir_get_int(g, scan, "xs");
  for (int32_t i = first; i < body->n_args; i++)
    if (body->args[i] == arg) return o->in[i - 1];
  return IR_NONE;
}

static bool pack_scan_body(packer *p, ir_opid scan) {
  ir_graph *g = p->g;
  captured_pack *memo = NULL;
  int32_t n = 0, cap = 0;
  bool ok = true;
  ir_blockid body = ir_o(g, scan)->regions[0];
  for (ir_opid op = ir_b(g, body)->first, next; ok && op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    if (!packable(g, op)) continue;
    ir_val outer = captured_outer(g, scan, ir_o(g, op)->in[1]);
    if (outer == IR_NONE || !is_weight(p, outer)) continue;
    ir_val arg = packed_arg(p, scan, outer, ir_get_int(g, op, "transpose_b") != 0, &memo, &n, &cap);
    ok = arg != IR_NONE && use_packed(p, op, arg);
  }
  free(memo);
  return ok;
}

bool pass_pack_weights(ir_graph *g, pass_ctx *ctx) {
  packer p = {g, ir_xcalloc((size_t)g->n_vals + 1, sizeof(bool)), g->n_vals + 1, ctx->diag};
  find_weights(&p);
  bool ok = true;
  for (ir_opid op = ir_b(g, g->body)->first, next; ok && op != IR_NONE; op = next) {
    next = ir_o(g, op)->next;
    if (ir_o(g, op)->kind == IR_OP_SCAN) {
      ok = pack_scan_body(&p, op);
    } else if (packable(g, op) && is_weight(&p, ir_o(g, op)->in[1])) {
      ir_val packed = pack_before(&p, op, ir_o(g, op)->in[1], ir_get_int(g, op, "transpose_b") != 0);
      ok = packed != IR_NONE && use_packed(&p, op, packed);
    }
  }
  free(p.weight);
  return ok;
}
