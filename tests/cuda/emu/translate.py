#!/usr/bin/env python3
"""Turns a .cu file into C++ for the CPU emulator (tests/cuda/emu/README.md).

Three rewrites, each keeping the line count so that #line points errors at the .cu file:
  kernel<args><<<grid, block, smem, stream>>>(...)  ->  ::emu::launch(kernel<args>, grid, block, smem, stream)(...)
  extern __shared__ ... unsigned char name[];       ->  unsigned char* name = ::emu::dynamic_smem();
  #pragma unroll ...                                 ->  (an empty line)

Usage: translate.py input.cu output.cpp
"""
import re
import sys


def kernel_start(text, pos):
    """Start of the kernel expression that ends at pos (an identifier, `::`, template args)."""
    i = pos
    if text[i - 1] == ">":  # template arguments: walk back to the matching '<'
        depth = 0
        while True:
            i -= 1
            c = text[i]
            if c == ">":
                depth += 1
            elif c == "<":
                depth -= 1
                if depth == 0:
                    break
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:"):
        i -= 1
    return i


def rewrite_launches(text):
    out, last = [], 0
    for m in re.finditer(r"<<<", text):
        if m.start() < last:
            continue
        # clang-format may break the line between the kernel and <<<: the break moves inside the call
        kend = m.start()
        while kend > 0 and text[kend - 1].isspace():
            kend -= 1
        start = kernel_start(text, kend)
        end = text.index(">>>", m.end())
        kernel, gap = text[start:kend], text[kend:m.start()]
        config = text[m.end():end]
        if not kernel.strip():
            sys.exit(f"translate.py: no kernel name before <<< at offset {m.start()}")
        out.append(text[last:start])
        out.append(f"::emu::launch({kernel},{gap or ' '}{config})")
        last = end + 3
    out.append(text[last:])
    return "".join(out)


def translate(text):
    text = re.sub(r"^[ \t]*#pragma[ \t]+unroll[^\n]*$", "", text, flags=re.M)
    text = re.sub(r"extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?unsigned\s+char\s+(\w+)\s*\[\s*\]\s*;",
                  r"unsigned char* \1 = ::emu::dynamic_smem();", text)
    return rewrite_launches(text)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    body = translate(text)
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f'#include <cuda_runtime.h>\n#line 1 "{src}"\n{body}')


if __name__ == "__main__":
    main()
