"""PyTorch side of gemm_shapes.cpp: the same ten GEMM shapes with torch (MKL), best of 5."""
import torch,time
torch.set_num_threads(int(__import__('os').environ.get('OMP_NUM_THREADS','2')))
T,C,H,V=2048,512,1408,8192
S=[("qkv fwd NT",T,3*C,C,0,1),("gateup fwd NT",T,2*H,C,0,1),("down fwd NT",T,C,H,0,1),("head fwd NT",T,V,C,0,1),
   ("gateup dX NN",T,C,2*H,0,0),("down dX NN",T,H,C,0,0),("head dX NN",T,C,V,0,0),
   ("gateup dW TN",2*H,C,T,1,0),("down dW TN",C,H,T,1,0),("head dW TN",V,C,T,1,0)]
tot=0
for n,M,N,K,ta,tb in S:
  a=torch.rand(K,M) if ta else torch.rand(M,K); b=torch.rand(N,K) if tb else torch.rand(K,N)
  a2=a.t() if ta else a; b2=b.t() if tb else b
  best=1e9
  for r in range(5):
    t0=time.perf_counter(); c=a2@b2; best=min(best,time.perf_counter()-t0)
  print(f"{n:14s} {2*M*N*K/best/1e9:7.1f} GFLOP/s  {best*1e3:.2f} ms"); tot+=best
print(f"total {tot*1e3:.1f} ms")
