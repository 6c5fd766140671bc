// Ordering-cost probe (benchmarks only, bench_gpu_kernels `sync_probe`).
//
// Why: a batch-1 decode step is a chain of ~390 launches, and the small
// kernels between the matvecs cost ~2-2.5 us each in a PDL chain whatever the
// matvecs do (bench/RESULTS.md, session 12). Running a layer as one persistent
// kernel instead replaces each kernel boundary with a device-side ordering
// step; whether that pays depends on what such a step costs next to a
// boundary. This measures both on the device at hand.
#pragma once

#include "kernels/gpu_api.h"

namespace rocmforge::gpu {

enum class SyncProbeKind {
  kGridSync,         // cooperative-groups grid.sync() in a one-wave cooperative launch
  kCounterBarrier,   // the same barrier hand-made: one atomic counter, thread 0 of each block spins
  kPdlEmptyKernels,  // an empty kernel (wait + launch dependents) a link, PDL launches in a graph
  kEmptyKernels,     // the same chain with plain launches in a graph
  // PDL chains in a graph of kernels whose blocks each stay ~2 us (a spin on
  // the clock): all without shared memory, or every other one with 48 KB of
  // dynamic shared memory, so neighbours want different L1 / shared splits.
  kPdlBusyKernels,
  kPdlBusyKernelsSmemAlternate,
};

// Microseconds per ordering step (a barrier, or a kernel of the chain),
// averaged over `steps`, with `blocks` blocks of 256 threads (for the
// barriers at most one wave: fewer are used if fewer fit), timed with events
// on `s` (blocks until done). Negative where it cannot be measured (AMD for
// now, or the launch was refused).
double MeasureSyncCost(SyncProbeKind kind, int blocks, int steps, Stream s);

// Why: neighbours in a decode step run under different L1 / shared-memory
// splits (the driver picks one per kernel from its shared memory and blocks
// an SM), and an SM changes split only when idle. A PDL chain in a graph of
// ~2 us links with `blocks` blocks each, as pairs (a, b) of launch shapes
// alternating: us a link. Shapes: 0 = 256 threads + 1 KB dynamic shared
// memory (a matvec's 16 KB split), 1 = 256 threads + 96 KB (the decode
// attention's 196 KB split), 2 = 64 threads, none (a quantize kernel's 32 KB
// split). Negative where it cannot be measured.
double MeasureSplitChain(int shape_a, int shape_b, int blocks, int steps, Stream s);

}  // namespace rocmforge::gpu
