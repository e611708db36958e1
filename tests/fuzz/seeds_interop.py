"""Writes seed inputs for the interop fuzzers into DIR/{bin,gguf,safetensors}: small real files
from torch.save, safetensors and mindllm's GGUF writer (via the gguf package's writer)."""
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

out = Path(sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/seeds")
for sub in ("bin", "gguf", "safetensors"):
    (out / sub).mkdir(parents=True, exist_ok=True)
sd = {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": torch.ones(4, dtype=torch.bfloat16),
      "c": torch.zeros(3, 2).t(), "d": torch.ones(2, dtype=torch.float16)}
torch.save(sd, out / "bin" / "small.bin")
torch.save({"x": torch.ones(1)}, out / "bin" / "one.bin")
# the same archive with deflated entries (inflated lazily, into a buffer that grows with the output)
with zipfile.ZipFile(out / "bin" / "small.bin") as z, \
        zipfile.ZipFile(out / "bin" / "small_deflated.bin", "w", zipfile.ZIP_DEFLATED) as d:
    for n in z.namelist():
        d.writestr(n, z.read(n))
save_file({k: v.contiguous() for k, v in sd.items()}, str(out / "safetensors" / "small.safetensors"))
try:
    import gguf
    w = gguf.GGUFWriter(str(out / "gguf" / "small.gguf"), "llama")
    w.add_block_count(1)
    w.add_token_list(["a", "b"])
    w.add_tensor("t", torch.ones(32, 2).numpy())
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
except ImportError:
    pass
print("seeds in", out)
