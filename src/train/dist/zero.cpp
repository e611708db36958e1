#include "train/dist/zero.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/adamw.h"

namespace mindllm::dist {

double sliced_norm(Communicator& c, const std::vector<float>& grads, const Slices& s) {
  const int r = c.rank();
  double sq = cpu::sum_of_squares(grads.data() + s.offset[r], s.count[r]);
  c.allreduce_sum(std::span<double>(&sq, 1));
  return std::sqrt(sq);
}

void shard_optimizer(Communicator& c, AdamW& optim) {
  const Slices s = even_slices(optim.exp_avg().size(), c.size());
  const int r = c.rank();
  std::vector<float> m(s.count[r]), v(s.count[r]);
  c.scatter(optim.exp_avg(), m, s, 0);
  c.scatter(optim.exp_avg_sq(), v, s, 0);
  optim.shard(s.offset[r], std::move(m), std::move(v));
}

void gather_optimizer(Communicator& c, const AdamW& optim, size_t total, std::vector<float>* m, std::vector<float>* v) {
  const Slices s = even_slices(total, c.size());
  if (c.rank() == 0) {
    m->assign(total, 0.0f);
    v->assign(total, 0.0f);
  }
  c.gather(optim.exp_avg(), *m, s, 0);
  c.gather(optim.exp_avg_sq(), *v, s, 0);
}

}  // namespace mindllm::dist
