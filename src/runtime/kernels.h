#pragma once
// Which CPU kernels do the arithmetic, and pinning them so that training reproduces bit for bit across x86-64
// CPUs.
//
// Why: OpenBLAS (a DYNAMIC_ARCH build) and ATen pick their GEMM and vector kernels from the CPU they find —
// AVX-512 "Cooperlake" kernels on a Zen 4, AVX2 "Haswell" ones on an older or smaller x86. Different kernels
// add in different orders, so one-thread training that is bit-deterministic on one kind of CPU drifts on
// another; the reference device model sits on a learning knee, where that drift moved its 1-step accuracy
// from 0.99 to 0.62 (models/device-chain/README.md). Pinned to the AVX2 kernels that every x86-64 CPU with
// AVX2 and FMA runs, the card's command retrains the checkpoint bit for bit (measured on an AVX-512 machine,
// checkpoint made on another).
#include <string>

namespace handoff {

// Call first thing in main. For commands that compute (`compute` true): unless HANDOFF_KERNELS=native, the
// CPU lacks AVX2/FMA, or OPENBLAS_CORETYPE is already set, sets OPENBLAS_CORETYPE=Haswell and
// ATEN_CPU_CAPABILITY=avx2; unless OMP_WAIT_POLICY is set, sets it to PASSIVE; and re-executes this binary
// when either was set (OpenBLAS and libgomp read their variables while they load, before main). Returns when
// there is nothing to do; throws Error on an unknown HANDOFF_KERNELS value or a failed exec.
void pin_portable_kernels(char** argv, bool compute);

// e.g. "portable (OpenBLAS Haswell, ATen AVX2)" or "native (OpenBLAS Cooperlake, ATen AVX512)".
std::string kernels_summary();

}  // namespace handoff
