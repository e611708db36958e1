// The CPU emulator's cuBLASLt (tests/cuda/emu/README.md): descriptors as plain structs, the
// checks the real library makes of them, and a float64 reference matmul.
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

#include "cublasLt.h"
#include "cuda_bf16.h"

struct cublasLtContext {
  int magic = 0x17;
};
struct cublasLtMatmulDescOpaque_t {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  int bias_type = -1;  // -1: the type of D
};
struct cublasLtMatrixLayoutOpaque_t {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};
struct cublasLtMatmulPreferenceOpaque_t {
  uint64_t workspace = 0;
  uint32_t reduction_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
  uint32_t align[4] = {256, 256, 256, 256};  // A, B, C, D: what the caller promises
};

namespace {

cublasStatus_t complain(cublasStatus_t s, const char* what) {
  std::fprintf(stderr, "emu cuBLASLt: %s\n", what);
  return s;
}

size_t elem_size(cudaDataType_t t) { return t == CUDA_R_32F ? 4 : 2; }

double load(const void* p, cudaDataType_t t, size_t i) {
  if (t == CUDA_R_32F) return static_cast<const float*>(p)[i];
  return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
}
void store(void* p, cudaDataType_t t, size_t i, double v) {
  if (t == CUDA_R_32F) static_cast<float*>(p)[i] = (float)v;
  else static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn((float)v);
}

// The largest power of two (at most 256) that divides the address.
uint32_t alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a == 0 ? 256u : (uint32_t)std::min<uintptr_t>(256, a & (~a + 1));
}

// The problem the descriptors describe, checked as cuBLASLt checks it.
struct Problem {
  uint64_t m, n, k;
};
cublasStatus_t describe(const cublasLtMatmulDescOpaque_t* op, const cublasLtMatrixLayoutOpaque_t* a,
                        const cublasLtMatrixLayoutOpaque_t* b, const cublasLtMatrixLayoutOpaque_t* c,
                        const cublasLtMatrixLayoutOpaque_t* d, Problem* pr) {
  if (!op || !a || !b || !c || !d) return complain(CUBLAS_STATUS_INVALID_VALUE, "a null descriptor");
  const uint64_t m = d->rows, n = d->cols;
  const uint64_t am = op->transa == CUBLAS_OP_N ? a->rows : a->cols, ak = op->transa == CUBLAS_OP_N ? a->cols : a->rows;
  const uint64_t bk = op->transb == CUBLAS_OP_N ? b->rows : b->cols, bn = op->transb == CUBLAS_OP_N ? b->cols : b->rows;
  if (am != m || bn != n || ak != bk || c->rows != m || c->cols != n) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "layouts disagree: op(A) %llux%llu, op(B) %llux%llu, C %llux%llu, D %llux%llu",
                  (unsigned long long)am, (unsigned long long)ak, (unsigned long long)bk, (unsigned long long)bn,
                  (unsigned long long)c->rows, (unsigned long long)c->cols, (unsigned long long)m,
                  (unsigned long long)n);
    return complain(CUBLAS_STATUS_INVALID_VALUE, msg);
  }
  if (m == 0 || n == 0 || ak == 0) return complain(CUBLAS_STATUS_INVALID_VALUE, "an empty dimension");
  if (op->compute != CUBLAS_COMPUTE_32F || op->scale != CUDA_R_32F)
    return complain(CUBLAS_STATUS_NOT_SUPPORTED, "compute/scale type other than 32F (not emulated)");
  // Supported with CUBLAS_COMPUTE_32F: A/B 32F with C/D 32F; A/B 16BF with C/D 16BF or 32F.
  const bool ok = c->type == d->type && a->type == b->type &&
                  ((a->type == CUDA_R_32F && d->type == CUDA_R_32F) ||
                   (a->type == CUDA_R_16BF && (d->type == CUDA_R_16BF || d->type == CUDA_R_32F)));
  if (!ok) return complain(CUBLAS_STATUS_NOT_SUPPORTED, "unsupported combination of data types");
  if (op->epilogue != CUBLASLT_EPILOGUE_DEFAULT && op->epilogue != CUBLASLT_EPILOGUE_BIAS)
    return complain(CUBLAS_STATUS_NOT_SUPPORTED, "epilogue not emulated");
  if (op->epilogue == CUBLASLT_EPILOGUE_BIAS && op->bias_type != -1 && op->bias_type != (int)d->type)
    return complain(CUBLAS_STATUS_NOT_SUPPORTED, "bias type other than D's (not emulated)");
  *pr = Problem{m, n, ak};
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  *handle = new cublasLtContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasLtGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS (other)";
  }
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale) {
  *desc = new cublasLtMatmulDescOpaque_t{compute, scale};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

template <typename T>
static cublasStatus_t get_attr(T* out, const void* buf, size_t size) {
  if (size != sizeof(T)) return complain(CUBLAS_STATUS_INVALID_VALUE, "attribute of the wrong size");
  std::memcpy(out, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                              const void* buf, size_t size) {
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return get_attr(&d->transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return get_attr(&d->transb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return get_attr(&d->epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return get_attr(&d->bias, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: return get_attr(&d->bias_type, buf, size);
  }
  return complain(CUBLAS_STATUS_INVALID_VALUE, "unknown matmul attribute");
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
  // Column-major: the leading dimension holds a column.
  if (ld < (int64_t)std::max<uint64_t>(rows, 1)) return complain(CUBLAS_STATUS_INVALID_VALUE, "ld < rows");
  *layout = new cublasLtMatrixLayoutOpaque_t{type, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref) {
  *pref = new cublasLtMatmulPreferenceOpaque_t();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
  delete pref;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                    size_t size) {
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: return get_attr(&p->workspace, buf, size);
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: return get_attr(&p->reduction_mask, buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: return get_attr(&p->align[0], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: return get_attr(&p->align[1], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: return get_attr(&p->align[2], buf, size);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return get_attr(&p->align[3], buf, size);
  }
  return complain(CUBLAS_STATUS_INVALID_VALUE, "unknown preference attribute");
}

// The "algorithm" remembers the alignments the caller promised; cublasLtMatmul checks them.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t* results, int* count) {
  *count = 0;
  if (!handle || !pref || requested < 1 || !results) return complain(CUBLAS_STATUS_INVALID_VALUE, "heuristic args");
  Problem pr;
  if (cublasStatus_t s = describe(desc, a, b, c, d, &pr)) return s;
  for (int i = 0; i < 4; i++)
    if (pref->align[i] == 0 || (pref->align[i] & (pref->align[i] - 1)))
      return complain(CUBLAS_STATUS_INVALID_VALUE, "alignment preference not a power of two");
  // Like the real library, no kernel for operands aligned below their element size.
  const cublasLtMatrixLayoutOpaque_t* ls[4] = {a, b, c, d};
  for (int i = 0; i < 4; i++)
    if (pref->align[i] < elem_size(ls[i]->type)) return CUBLAS_STATUS_NOT_SUPPORTED;
  cublasLtMatmulHeuristicResult_t r{};
  for (int i = 0; i < 4; i++) r.algo.data[i] = pref->align[i];
  r.algo.data[4] = pref->reduction_mask;
  r.workspaceSize = 0;
  r.state = CUBLAS_STATUS_SUCCESS;
  r.wavesCount = 1.0f;
  results[0] = r;
  *count = 1;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_bytes, cudaStream_t) {
  if (!handle || !alpha || !beta || !A || !B || !C || !D)
    return complain(CUBLAS_STATUS_INVALID_VALUE, "a null argument");
  Problem pr;
  if (cublasStatus_t s = describe(desc, a, b, c, d, &pr)) return s;
  if (C == D && (c->ld != d->ld || c->type != d->type))
    return complain(CUBLAS_STATUS_INVALID_VALUE, "C == D with different layouts");
  if (algo) {  // the operands must be as aligned as the heuristic was told
    const void* ptrs[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
      if (alignment(ptrs[i]) < algo->data[i]) {
        char msg[160];
        std::snprintf(msg, sizeof msg, "operand %c at %p is less aligned than the %llu bytes promised to the heuristic",
                      "ABCD"[i], ptrs[i], (unsigned long long)algo -> data[i]);
        return complain(CUBLAS_STATUS_INVALID_VALUE, msg);
      }
  }
  if (workspace_bytes && !emu::is_device(workspace, workspace_bytes))
    return complain(CUBLAS_STATUS_INVALID_VALUE, "workspace is not device memory");
  const uint64_t m = pr.m, n = pr.n, k = pr.k;
  const size_t ea = elem_size(a->type), eb = elem_size(b->type), ed = elem_size(d->type);
  // Every operand must lie in device memory: the last element of each column range.
  auto span = [](const cublasLtMatrixLayoutOpaque_t* l, size_t e) { return ((l->cols - 1) * l->ld + l->rows) * e; };
  if (!emu::is_device(A, span(a, ea)) || !emu::is_device(B, span(b, eb)) || !emu::is_device(D, span(d, ed)) ||
      !emu::is_device(C, span(c, ed)))
    return complain(CUBLAS_STATUS_INVALID_VALUE, "an operand leaves its device allocation");
  const void* bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS ? desc->bias : nullptr;
  if (desc->epilogue == CUBLASLT_EPILOGUE_BIAS && (!bias || !emu::is_device(bias, m * ed)))
    return complain(CUBLAS_STATUS_INVALID_VALUE, "bias pointer missing or not device memory");
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  const bool ta = desc->transa == CUBLAS_OP_T, tb = desc->transb == CUBLAS_OP_T;
  std::vector<double> out(m);
  for (uint64_t j = 0; j < n; j++) {
    for (uint64_t i = 0; i < m; i++) {
      double s = 0.0;
      for (uint64_t p = 0; p < k; p++) {
        const double x = load(A, a->type, ta ? i * a->ld + p : p * a->ld + i);
        const double y = load(B, b->type, tb ? p * b->ld + j : j * b->ld + p);
        s += x * y;
      }
      double v = al * s;
      if (be != 0.0f) v += be * load(C, c->type, j * c->ld + i);  // beta 0: C is not read
      if (bias) v += load(bias, d->type, i);
      out[i] = v;
    }
    for (uint64_t i = 0; i < m; i++) store(D, d->type, j * d->ld + i, out[i]);
  }
  return CUBLAS_STATUS_SUCCESS;
}
