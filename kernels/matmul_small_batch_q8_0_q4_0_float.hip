// The small-batch matrix x vector launchers (and so the kernels) for Q8_0, Q4_0 and the float (F32, F16, BF16) weights,
// in a translation unit of their own so the build compiles the type groups
// side by side (kernels/matmul_small_batch_impl.h).
#include "kernels/matmul_small_batch_impl.h"

namespace rocmforge::gpu::small_batch {

RF_SMALL_BATCH_LAUNCHERS(GgmlType::F32)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::F16)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::BF16)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q8_0)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q8_0)
RF_SMALL_BATCH_LAUNCHERS(GgmlType::Q4_0)
RF_SMALL_BATCH_GROUP_LAUNCHERS(GgmlType::Q4_0)

}  // namespace rocmforge::gpu::small_batch
