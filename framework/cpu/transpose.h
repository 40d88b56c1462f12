// Float blocks transposed in AVX-512 registers: the NCHW <-> NHWC copies of the direct
// convolution and the int8 epilogue's float output. Callers check for AVX-512F first
// (direct_conv::available, int8::uses_avx512).
#pragma once
#include <cstdint>

namespace shrink::cpu {

// Transposes a block of up to 16 rows x 16 columns: rows src + i*src_ld (i < rows, `cols` valid
// values each) become columns of dst + j*dst_ld (j < cols), each written `out_lanes` wide; rows
// past `rows` read as zero.
void transpose_block(const float* src, int64_t src_ld, int64_t rows, int64_t cols, float* dst,
                     int64_t dst_ld, int64_t out_lanes);

}  // namespace shrink::cpu
