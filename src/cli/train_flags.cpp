#include "cli/train_flags.h"

#include <cstdio>

#include "cli/command.h"
#include "cli/validate.h"
#include "core/error.h"
#include "model/lora.h"

namespace mindllm::cli {

void TrainFlags::finish() {
  options.schedule.kind = parse_schedule(schedule);
  LoraConfig& l = options.lora;
  for (CLI::Option* o : lora_options)
    if (o->count() > 0 && !l.on()) bad_input(o->get_name() + " needs --lora-rank");
  if (l.on()) l.targets = parse_lora_targets(lora_targets);
}

void add_lora_flags(CLI::App& app, TrainFlags& f) {
  LoraConfig& l = f.options.lora;
  app.add_option("--lora-rank", l.rank,
                 "LoRA: train rank-r adapters on a frozen base instead of every weight "
                 "(checkpoints are PEFT adapter directories; docs/sft.md)")
      ->check(positive());
  f.lora_options = {
      app.add_option("--lora-alpha", l.alpha, "LoRA: the adapters' output is scaled by alpha / rank (default: rank)")
          ->check(positive()),
      app.add_option("--lora-targets", f.lora_targets,
                     "LoRA: projections to adapt, of q,k,v,o,gate,up,down (gpt2: q, k and v each select the fused "
                     "c_attn)")
          ->capture_default_str(),
      app.add_option("--lora-dropout", l.dropout, "LoRA: dropout on the adapters' input while training")
          ->check(number_in(0, 1, false, true))
          ->capture_default_str()};
}

void print_train_summary(const TrainFlags& f, const std::string& command, const TrainResult& r) {
  const bool val = r.val_loss >= 0;
  char loss[64];
  std::snprintf(loss, sizeof loss, val ? "loss %.4f, val loss %.4f" : "loss %.4f", r.last_loss, r.val_loss);
  print_summary(f.output, command,
                command + ": " + std::to_string(r.steps_done) + " steps, " + loss + "; run in " + f.options.out,
                {{"out", f.options.out},
                 {"steps", r.steps_done},
                 {"loss", r.last_loss},
                 {"val_loss", val ? nlohmann::json(r.val_loss) : nlohmann::json()}});
}

void add_train_flags(CLI::App& app, TrainFlags& f) {
  TrainOptions& o = f.options;
  add_output_flags(app, f.output);
  app.add_option("--steps", o.steps, "total optimizer steps (a resumed run finishes at the same step)")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--batch", o.batch, "sequences per micro-batch")->check(positive())->capture_default_str();
  app.add_option("--seq", o.seq, "tokens per sequence")->check(positive())->capture_default_str();
  app.add_option("--grad-accum", o.grad_accum, "micro-batches per step")->check(positive())->capture_default_str();
  app.add_option("--lr", o.schedule.lr, "peak learning rate")->check(non_negative())->capture_default_str();
  app.add_option("--min-lr", o.schedule.min_lr, "final learning rate (cosine, wsd)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--warmup", o.schedule.warmup, "linear warmup steps")->check(non_negative())->capture_default_str();
  app.add_option("--schedule", f.schedule, "cosine | wsd | constant")->capture_default_str();
  app.add_option("--wsd-decay", o.schedule.decay_fraction, "wsd: fraction of steps in the final decay")
      ->check(number_in(0, 1))
      ->capture_default_str();
  app.add_option("--weight-decay", o.adamw.weight_decay, "AdamW decoupled weight decay (matrices only)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_flag("--decay-embeddings", o.adamw.decay_embeddings, "also apply weight decay to embedding tables");
  app.add_option("--beta1", o.adamw.beta1, "AdamW beta1")->check(number_in(0, 1, false, true))->capture_default_str();
  app.add_option("--beta2", o.adamw.beta2, "AdamW beta2")->check(number_in(0, 1, false, true))->capture_default_str();
  app.add_option("--adam-eps", o.adamw.eps, "AdamW epsilon")->check(positive())->capture_default_str();
  app.add_option("--clip", o.clip, "global gradient-norm clip (0: off)")->check(non_negative())->capture_default_str();
  app.add_option("--seed", o.seed, "seed for initialisation and data order")
      ->check(non_negative())
      ->capture_default_str();
  add_threads_option(app, o.threads);
  add_device_option(app, o.device, "cpu | cuda (a GPU; same data order, metrics and checkpoints)");
  add_precision_option(app, o.precision,
                       "bf16 (mixed precision: bf16 matmul operands, fp32 master weights and accumulation; default "
                       "on cuda) | fp32 (default on the CPU)",
                       "bf16 on cuda, fp32 on the CPU");
  app.add_flag("--recompute", o.recompute,
               "cuda: recompute each layer's MLP intermediates in the backward instead of keeping them "
               "(about half the activation memory of LLaMA shapes, one more GEMM per layer)");
  app.add_option("--attention", o.attention,
                 "cuda, bf16: flash (mindllm's flash-attention kernels) | cudnn (cuDNN's fused attention, loaded "
                 "at run time)")
      ->capture_default_str();
  app.add_option("--ckpt-every", o.ckpt_every, "checkpoint every N steps (0: only at the end)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--keep", o.keep_ckpts, "keep only the newest N checkpoints (0: all)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--eval-every", o.eval_every, "validation loss every N steps (0: only at the end)")
      ->check(non_negative())
      ->capture_default_str();
  app.add_option("--eval-batches", o.eval_batches, "validation batches of --batch sequences")
      ->check(positive())
      ->capture_default_str();
  app.add_option("--log-every", o.log_every, "progress line every N steps")->check(positive())->capture_default_str();
  app.add_option("--bucket-mb", o.bucket_mb,
                 "under mpirun: MiB of fp32 gradients per all-reduce (PyTorch DDP's bucket_cap_mb)")
      ->check(number_in(0.001, 4096.0))  // also refuses NaN, which CLI::Range lets through
      ->capture_default_str();
  app.add_flag("--no-overlap", o.no_overlap,
               "under mpirun: sum the gradients after the backward instead of during it (same numbers; "
               "for comparison)");
  app.add_flag("--resume", o.resume,
               "continue from <out>/ckpt/latest (without it, from the newest complete checkpoint); without "
               "--resume a run directory that holds checkpoints is refused");
}

}  // namespace mindllm::cli
