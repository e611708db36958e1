// Weight formats for inference and the linear layer over them: bf16, f16, and llama.cpp's block
// quantisations q8_0 and q4_0, byte for byte as ggml defines them (ggml/src/ggml-quants.c, the
// *_ref functions), so GGUF tensors are used as they are and ours load in llama.cpp:
//   q8_0: blocks of 32 weights -> { fp16 d; int8 qs[32] }             (34 bytes, 8.5 bits/weight)
//         d = max|x| / 127, q = round(x / d), x ~ d q
//   q4_0: blocks of 32 weights -> { fp16 d; uint8 qs[16] }            (18 bytes, 4.5 bits/weight)
//         d = m / -8 where m is the x of largest |x| (sign kept), q = min(15, (int)(x / d + 8.5)),
//         qs[j] = q[j] | q[j + 16] << 4 (low nibbles: the block's first 16 weights), x ~ d (q - 8)
//   q4_k: super-blocks of 256 weights -> { fp16 d, dmin; uint8 scales[12]; uint8 qs[128] } (144
//         bytes, 4.5 bits/weight): 8 sub-blocks of 32, each with a 6-bit scale sc_j and min m_j
//         (packed in scales[12]), x ~ d sc_j q - dmin m_j with q in 0..15; qs[32p + l] holds
//         weight l of sub-block 2p (low nibble) and of sub-block 2p + 1 (high nibble). ggml's
//         quantize_row_q4_K_ref (a weighted least-squares search per sub-block), see quant_k.cpp.
//   bf16: the top 16 bits of the fp32 value, rounded to nearest even.
//   f16:  IEEE half precision, rounded to nearest even (GGUF F16 tensors as they are).
// A matrix is O rows of I weights (PyTorch's [out, in]), each row its own run of blocks, so the
// blocks run along the dot-product dimension.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mindllm::cpu {

enum class QuantType : uint8_t { bf16, q8_0, q4_0, q4_k, f16 };
// bf16 and f16: one 16-bit float per weight, multiplied in fp32 (no blocks).
inline bool is_float16(QuantType t) { return t == QuantType::bf16 || t == QuantType::f16; }
constexpr int kQuantBlock = 32;   // weights per q8_0 / q4_0 block (and per q4_k sub-block)
constexpr int kSuperBlock = 256;  // weights per q4_k super-block

const char* quant_type_name(QuantType t);  // "bf16", "q8_0", "q4_0", "q4_k", "f16"
bool quant_type_from_name(const std::string& name, QuantType* out);
// The names, for messages: "f16, bf16, q8_0, q4_0 or q4_k".
const char* quant_type_names();
// Weights and bytes of one block of t (bf16 / f16: one weight, 2 bytes).
int quant_block_weights(QuantType t);
int quant_block_bytes(QuantType t);
// Bytes of one row of n weights; n must be whole blocks (quant_row_fits).
size_t quant_row_bytes(QuantType t, int64_t n);
// True when a row of n weights can be stored in t (whole blocks: 32 weights for q8_0 / q4_0, 256
// for q4_k).
bool quant_row_fits(QuantType t, int64_t n);

// x[n] -> out[quant_row_bytes(t, n)], as ggml's quantize_row_*_ref; and back to fp32.
void quantize_row(QuantType t, const float* x, int64_t n, uint8_t* out);
void dequantize_row(QuantType t, const uint8_t* in, int64_t n, float* out);

// O rows of I weights in `type`. Plain: row o starts at data + o * quant_row_bytes(type, I), the
// blocks as ggml stores them. Packed (see pack_rows): the same bytes reordered for the kernels.
struct QuantMatrix {
  QuantType type;
  int O = 0, I = 0;
  const uint8_t* data = nullptr;
  bool packed = false;
  bool amx = false;  // bf16 packed for the AMX kernels (pack_rows_amx), else as `packed` says
  size_t row_bytes() const { return quant_row_bytes(type, I); }
};

// The packed layout (what the inference engine multiplies by; repacked at load): rows in groups of
// kPackRows = 8, the first O / 8 * 8 rows; the last O % 8 rows follow plain. In a group, block b
// of its 8 rows is 8 fp16 scales (row order) then the rows' quants in 8-byte chunks, chunk k of
// rows {0,1,4,5} (32 bytes) then chunk k of rows {2,3,6,7}, for k = 0..3 (q8_0: 32 int8) or
// k = 0..1 (q4_0: 16 bytes of nibbles): 8 x 34 or 8 x 18 bytes, as plain. The kernels then read
// the matrix as one stream and multiply 4 rows' chunks by one broadcast activation chunk per
// instruction. q4_k: per super-block of the group's 8 rows (8 x 144 bytes): the 8 d (fp16), the
// 8 dmin, the rows' 12 scale bytes as three 32-bit words each, word w of row c at 32 + 32 w + 4 c,
// then for each pair p = 0..3 of sub-blocks 256 bytes of nibbles, chunked as q4_0's (chunk k =
// qs[32p + 8k .. + 8], k = 0..3): the kernel unpacks 8 rows' scales with a few vector ops.
constexpr int kPackRows = 8;
// bf16 / f16: rows in groups of kPack16Rows = 32 (the first O / 32 * 32 rows; the rest plain), a
// group stored weight by weight: for i = 0..I-1 the 32 rows' weight i (64 bytes), so a group is one
// stream and each weight index gives 4 vectors of 8 outputs. f16 in row order; bf16 per 16 rows in
// the order 0..3, 8..11, 4..7, 12..15, which two unpacks against zero widen to rows 0..7 and 8..15.
constexpr int kPack16Rows = 32;
// Rows per packed group of t.
inline int pack_group_rows(QuantType t) { return is_float16(t) ? kPack16Rows : kPackRows; }
// rows (O plain rows of I weights in t) -> out (as many bytes) in the packed layout.
void pack_rows(QuantType t, const uint8_t* rows, int O, int I, uint8_t* out);

// AMX (where the CPU has AMX-BF16 and Linux grants the tile state; MINDLLM_NO_AMX=1 turns it
// off): bf16 weights multiply bf16-rounded activations on the tile unit, decode and prefill alike
// (kernels/cpu/quant_amx.cpp), so a row's result is still the same bits in any batch. Layout, rows
// in groups of 32 (the rest plain), I a multiple of kAmxK: per pair of weight indices (2j, 2j + 1),
// 64 bf16: rows 0..15 then 16..31, each row's two weights side by side (TDPBF16PS's B operand).
// q8_0 / q4_0 batches of kAmxInt8Rows rows or more run on AMX int8 tiles (TDPBSSD): each block's
// exact int32 sums, then the AVX2 kernels' fp32 steps in AVX-512, so the same bits as decode; the
// weights keep their packed layout (each 32 rows repacked into tiles per call).
constexpr int kAmxK = 32;  // weight indices per tile step
constexpr int kAmxInt8Rows = 16;
bool amx_available(QuantType t);                                      // AMX for t's kernels (bf16; q8_0 / q4_0)
bool amx_bf16_fits(int I);                                            // AMX is available and I is whole tile steps
void pack_rows_amx(const uint8_t* rows, int O, int I, uint8_t* out);  // bf16 rows
// Row o of w (plain or packed) as fp32 values, as dequantize_row.
void dequantize_matrix_row(const QuantMatrix& w, int o, float* out);

// Scratch of the quantised linear: the activations quantised to q8_0 and dequantised weight
// tiles. Grows to the largest shape seen, so a steady decode loop allocates nothing.
struct QuantScratch {
  std::vector<uint8_t> act;
  std::vector<float> wtile;
};

// How a batch of rows (prefill) is computed: int8 dot products in register tiles, or each
// weight matrix dequantised to fp32 and one BLAS GEMM (fp32 activations). `auto_` takes the GEMM
// from kDequantGemmRows rows: measured on a 2-core Zen3 (docs/inference.md), the BLAS GEMM runs
// at several times the int8 tiles' rate once the dequantisation (O x I per call) is shared by
// enough rows.
enum class QuantPrefill { auto_, dot, dequant_gemm };
constexpr int kDequantGemmRows = 64;

// out[N,O] = in[N,I] · Wᵀ + bias (bias fp32 [O] or null). q8_0 / q4_0: each row of `in` is first
// quantised to q8_0 per 32-block (llama.cpp's vec_dot_type for both), then per block the exact
// int32 dot product s_b of the 32 int8 pairs, and out = fma(s_b, d_w d_x, out) in block order
// (fp32, from 0). q4_k: the same q8_0 activations; per sub-block j (block b) the exact s_b =
// sum q x_q and the activation block's sum S_b, then out = fma(sc_j s_b, d d_x, out) and
// out = fma(-(m_j S_b), dmin d_x, out), in block order: the same bits from every kernel (AVX2 or portable, any tile,
// any number of rows or threads, plain or packed). bf16 / f16: out = fma(w_i, x_i, out) for i = 0..I-1 in order
// (fp32, from 0, the weights widened exactly): again the same bits from every kernel; bf16 packed for AMX:
// the tile unit's sums of w_i times x_i rounded to bf16 (the same bits for any rows or threads). Rows of W are split
// over the OpenMP threads in 64-byte-aligned runs of outputs; AVX2 where the CPU has it, else portable C++.
void linear_forward_quant(float* out, const float* in, const QuantMatrix& w, const float* bias, int N,
                          QuantScratch& scratch, QuantPrefill prefill = QuantPrefill::auto_);

// The int8 kernels in use: "avx2" or "scalar" (MINDLLM_QUANT_SCALAR=1 forces scalar).
const char* quant_kernel_name();

}  // namespace mindllm::cpu
