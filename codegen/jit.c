/*
 * jit.c - running compiled graphs in process with ORC LLJIT. LLJIT.h and
 * Orc.h are marked experimental in LLVM 19, so every ORC call of seqc is in
 * this file.
 *
 * The program's module, after LLVM's pipeline (cg_program_optimize), is
 * copied (through bitcode) into a thread-safe context that ORC owns, so
 * the program stays usable (for --emit) after the JIT is made. Process
 * symbols (memcpy, libm; in the memory plan's test mode the ASan runtime's
 * __asan_* functions, which only an ASan-built seqc has: cg.h) resolve
 * through a generator for the current process.
 */
#include "lower.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>
#include <string.h>

struct cg_jit {
  LLVMOrcLLJITRef jit;
  cg_run_fn run;
  cg_init_fn init;
  cg_scratch_fn scratch_bytes, init_scratch_bytes;
  const char *const *symbols;
  int32_t n_symbols;
};

static bool orc_failed(LLVMErrorRef err, const char *what, ir_diag *d) {
  if (!err) return false;
  char *msg = LLVMGetErrorMessage(err);
  ir_error_at(d, (ir_loc){0}, "JIT: %s: %s", what, msg);
  LLVMDisposeErrorMessage(msg);
  return true;
}

/* A copy of p's module in a fresh ORC-owned context. */
static LLVMOrcThreadSafeModuleRef copy_module(const cg_program *p, ir_diag *d) {
  LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(cg_program_module(p));
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMModuleRef copy = NULL;
  bool bad = LLVMParseBitcodeInContext2(LLVMOrcThreadSafeContextGetContext(tsc), bc, &copy);
  LLVMDisposeMemoryBuffer(bc);
  if (bad) {
    ir_error_at(d, (ir_loc){0}, "JIT: internal error: cannot re-read the module");
    LLVMOrcDisposeThreadSafeContext(tsc);
    return NULL;
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(copy, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc); /* the module keeps the context alive */
  return tsm;
}

static bool lookup(cg_jit *j, const cg_program *p, const char *suffix, LLVMOrcExecutorAddress *addr,
                   ir_diag *d) {
  ir_buf name = {0};
  ir_buf_printf(&name, "%s_%s", cg_program_name(p), suffix);
  bool ok = !orc_failed(LLVMOrcLLJITLookup(j->jit, addr, name.s), name.s, d);
  ir_buf_free(&name);
  return ok;
}

cg_jit *cg_jit_new(cg_program *p, ir_diag *d) {
  cg_jit *j = ir_xcalloc(1, sizeof *j);
  if (orc_failed(LLVMOrcCreateLLJIT(&j->jit, NULL), "cannot create the JIT", d)) {
    free(j);
    return NULL;
  }
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  char prefix = LLVMOrcLLJITGetGlobalPrefix(j->jit);
  if (orc_failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, prefix, NULL, NULL),
                 "cannot search the process for symbols", d)) {
    cg_jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
  LLVMOrcThreadSafeModuleRef tsm = cg_program_optimize(p, d) ? copy_module(p, d) : NULL;
  if (!tsm) {
    cg_jit_free(j);
    return NULL;
  }
  LLVMOrcJITDylibRef main = LLVMOrcLLJITGetMainJITDylib(j->jit);
  if (orc_failed(LLVMOrcLLJITAddLLVMIRModule(j->jit, main, tsm), "cannot add the module", d)) {
    LLVMOrcDisposeThreadSafeModule(tsm);
    cg_jit_free(j);
    return NULL;
  }
  LLVMOrcExecutorAddress run = 0, scratch = 0, init = 0, init_scratch = 0;
  if (!lookup(j, p, "run", &run, d) || !lookup(j, p, "scratch_bytes", &scratch, d) ||
      !lookup(j, p, "init", &init, d) || !lookup(j, p, "init_scratch_bytes", &init_scratch, d)) {
    cg_jit_free(j);
    return NULL;
  }
  /* ORC hands back addresses; converting them to function pointers is the
   * documented way to call JIT-compiled code. */
  memcpy(&j->run, &(void *){(void *)(uintptr_t)run}, sizeof j->run);
  memcpy(&j->scratch_bytes, &(void *){(void *)(uintptr_t)scratch}, sizeof j->scratch_bytes);
  memcpy(&j->init, &(void *){(void *)(uintptr_t)init}, sizeof j->init);
  memcpy(&j->init_scratch_bytes, &(void *){(void *)(uintptr_t)init_scratch},
         sizeof j->init_scratch_bytes);
  j->n_symbols = cg_program_symbols(p, (const char *const **)&j->symbols);
  return j;
}

void cg_jit_free(cg_jit *j) {
  if (!j) return;
  if (j->jit) {
    LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->jit);
    if (err) LLVMConsumeError(err);
  }
  free(j);
}

cg_run_fn cg_jit_run_fn(const cg_jit *j) { return j->run; }
cg_scratch_fn cg_jit_scratch_fn(const cg_jit *j) { return j->scratch_bytes; }
cg_init_fn cg_jit_init_fn(const cg_jit *j) { return j->init; }
cg_scratch_fn cg_jit_init_scratch_fn(const cg_jit *j) { return j->init_scratch_bytes; }
int32_t cg_jit_symbols(const cg_jit *j, const char *const **names) {
  *names = j->symbols;
  return j->n_symbols;
}
