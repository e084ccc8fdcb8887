"""caifu (财富): the wealth-business data and engagement platform for securities brokers."""

import os as _os

__version__ = "0.1.0"

# Models trained with BLAS (the risk event model's L-BFGS) are reproducible bit for bit only
# on one set of OpenBLAS kernels: OpenBLAS picks its kernels by CPU at load time, and the
# AVX-512 (SkylakeX) kernels sum in another order than the AVX2 ones, moving the weights by
# up to 1e-3 (`caifu risk train` then no longer gives the shipped bytes). caifu asks for the
# AVX2 (Haswell) kernels, which every x86-64 CPU of the last decade runs, before numpy loads;
# a deployment that sets OPENBLAS_CORETYPE itself keeps its choice.
_os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

# OpenMP threads (LightGBM's, scikit-learn's) that find no work spin for a while before they
# sleep: on a machine whose cores are busy (the API's other requests, DuckDB, a second
# worker) a 2-thread fit of a few thousand rows then burnt 20-30 times the CPU of one thread
# spinning. Passive waiting gives the same models, bit for bit, without the burn; a
# deployment that sets OMP_WAIT_POLICY itself keeps its choice.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
