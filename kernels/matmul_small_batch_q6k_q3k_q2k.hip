// The small-batch matrix x vector launchers (and so the kernels) for Q6_K, Q3_K and Q2_K weights,
// in a translation unit of their own so the build compiles the type groups
// side by side (kernels/matmul_small_batch_impl.h).
#include "kernels/matmul_small_batch_impl.h"

namespace rocmforge::gpu::small_batch {

RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q6_K)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q6_K)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q3_K)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q3_K)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q2_K)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q2_K)

}  // namespace rocmforge::gpu::small_batch
