#!/usr/bin/env python3
"""Does the emulator catch what it should? Run by hand when the emulator changes.

Each mutation removes a line that a kernel needs (a barrier, the shared-memory attribute); the
emulated tests that cover it must then fail under at least one of the two schedules
(README.md). The source file is restored afterwards, also on Ctrl-C. Needs build-emu/
(scripts/cuda-emu-check.sh). Usage, from the repository root:

    python3 tests/cuda/emu/mutation_check.py [name ...]

A mutation whose text no longer occurs exactly once stops the run: update the table.
"""
import subprocess
import sys

BUILD = "build-emu"
# name, file, text (must occur exactly once), its replacement, the tests that cover it
MUTATIONS = [
    ("block-sum-first-barrier", "src/kernels/cuda/common.cuh",
     "  __syncthreads();  // `shared` may still be read from a previous call\n", "",
     "*OpsTableGpu*norm_*:*OpsTableGpu*cross_entropy_*:CudaSumOfSquares.*"),
    ("block-sum-second-barrier", "src/kernels/cuda/common.cuh",
     "  if (lane == 0) shared[warp] = v;\n  __syncthreads();\n  T r", "  if (lane == 0) shared[warp] = v;\n  T r",
     "*OpsTableGpu*norm_*:*OpsTableGpu*cross_entropy_*"),
    ("norm-dweight-barrier", "src/kernels/cuda/norm.cu",
     "  pb[ty][tx] = ab;\n  __syncthreads();\n", "  pb[ty][tx] = ab;\n", "*OpsTableGpu*norm_*"),
    ("flash-forward-syncwarp", "src/kernels/cuda/flash_attention.cu",
     "    gemm_abt<D>(Sw, L::LDS, Qs + warp * kWarpRows * L::LDH, Ks);\n    __syncwarp();\n",
     "    gemm_abt<D>(Sw, L::LDS, Qs + warp * kWarpRows * L::LDH, Ks);\n",
     "Impls/FusedAttention.ForwardMatchesCpu/flash"),
    ("flash-forward-tile-barrier", "src/kernels/cuda/flash_attention.cu",
     "    __syncthreads();  // every warp is done with the previous K/V tiles (and Q is loaded)\n", "",
     "Impls/FusedAttention.ForwardMatchesCpu/flash"),
    ("flash-forward-smem-attribute", "src/kernels/cuda/flash_attention.cu",
     "  set_smem(flash_forward_kernel<D>, bytes);\n", "",
     "Impls/FusedAttention.ForwardMatchesCpu/flash"),
    # Known miss: the tests poison probs with NaN, which fmaxf skips.
    ("attention-row-barrier", "src/kernels/cuda/attention.cu",
     "  __syncthreads();  // P[lo..t] written by lane 0s, visible to the block\n", "",
     "*OpsTableGpu.Bf16MatchesCpu/attention_*"),
]


def run(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True)


def main():
    chosen = sys.argv[1:]
    missed = 0
    for name, path, text, replacement, tests in MUTATIONS:
        if chosen and name not in chosen:
            continue
        src = open(path, encoding="utf-8").read()
        if src.count(text) != 1:
            sys.exit(f"{name}: the text to remove occurs {src.count(text)} times in {path}; update the table")
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(src.replace(text, replacement))
            b = run(f"ninja -C {BUILD} mindllm_cuda_tests")
            if b.returncode:
                print(f"{name}: build failed\n{b.stdout[-400:]}")
                continue
            results = []
            for schedule, poison in (("lockstep", "ff"), ("reverse", "7f")):
                r = run(f"MINDLLM_EMU_SCHEDULE={schedule} MINDLLM_EMU_POISON={poison} timeout 600 "
                        f"{BUILD}/mindllm_cuda_tests --gtest_filter='{tests}'")
                results.append((schedule, r.returncode != 0))
            caught = any(c for _, c in results)
            missed += not caught
            print(f"{name:<30} {'caught' if caught else 'MISSED'}  "
                  + ", ".join(f"{s}: {'fails' if c else 'passes'}" for s, c in results), flush=True)
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(src)
    run(f"ninja -C {BUILD} mindllm_cuda_tests")  # back to the real sources
    print(f"{missed} missed")


if __name__ == "__main__":
    main()
