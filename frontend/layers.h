/*
 * layers.h - the PyTorch layers among the frontend's block nodes
 * (layers.c, docs/layers.md); blocks.c looks kinds up in this table too.
 */
#ifndef SEQC_FRONTEND_LAYERS_H
#define SEQC_FRONTEND_LAYERS_H

#include "fe.h"

extern const fe_block_kind fe_layer_kinds[];
extern const int32_t fe_n_layer_kinds;

#endif
