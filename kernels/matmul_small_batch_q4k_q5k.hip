// The small-batch matrix x vector launchers (and so the kernels) for Q4_K and Q5_K weights,
// in a translation unit of their own so the build compiles the type groups
// side by side (kernels/matmul_small_batch_impl.h).
#include "kernels/matmul_small_batch_impl.h"

namespace rocmforge::gpu::small_batch {

RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q4_K)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q4_K)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q5_K)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q5_K)

}  // namespace rocmforge::gpu::small_batch
