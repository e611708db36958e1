#include "train/trainer.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "core/hash.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/profile.h"
#include "core/progress.h"
#include "dist/communicator.h"
#include "dist/consistency.h"
#include "model/lora_io.h"
#include "model/model.h"
#include "model/weights_io.h"
#include "tokenizer/tokenizer.h"
#include "train/batches.h"
#include "train/checkpoint.h"
#include "train/dist/nccl.h"
#include "train/dist/rank_batches.h"
#include "train/dist/zero.h"
#include "train/run_dir.h"
#include "train/step_backend.h"
#include "train/train_options.h"
#if MINDLLM_CUDA
#include "kernels/cuda/device.h"
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace mindllm {

namespace {

std::string format_duration(double s) {
  char buf[32];
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%dm%02ds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%ds", t);
  return buf;
}

// Mean loss over the target tokens of the source's validation batches, of all ranks (NaN without
// any).
float validation_loss(StepBackend& backend, BatchSource& data, dist::Communicator& comm) {
  double sum = 0.0;
  int64_t count = 0;
  Batch batch;
  for (int i = 0; i < data.val_batches(); i++) {
    data.val_batch(i, &batch);
    int64_t n = batch.count_targets();
    if (n == 0) continue;
    sum += static_cast<double>(backend.loss(batch)) * n;
    count += n;
  }
  double totals[2] = {sum, static_cast<double>(count)};
  comm.allreduce_sum(std::span<double>(totals));
  return totals[1] > 0 ? static_cast<float>(totals[0] / totals[1]) : NAN;
}

}  // namespace

TrainResult train(const TrainOptions& opt, const TrainModel& tm, BatchSource& all_data, dist::Communicator* comm_arg) {
  check_options(opt);
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const ModelConfig& cfg = tm.config;
  if (cfg.learned_positions && opt.seq > cfg.max_positions)
    bad_input("--seq " + std::to_string(opt.seq) + " exceeds the model's " + std::to_string(cfg.max_positions) +
              " positions");

  // Data parallel (train/dist): rank 0 (`lead`) alone logs and writes; every rank reads its slice.
  std::unique_ptr<dist::Communicator> own_comm = comm_arg ? nullptr : dist::single_process();
  dist::Communicator& comm = comm_arg ? *comm_arg : *own_comm;
  const int ranks = comm.size();
  const bool lead = comm.rank() == 0;
  comm.bucket_floats = std::max<size_t>(1, static_cast<size_t>(opt.bucket_mb * (1 << 20) / sizeof(float)));
  dist::RankBatches rank_slice(all_data, comm.rank(), ranks, opt.grad_accum);
  BatchSource& data = ranks > 1 ? rank_slice : all_data;
  if (opt.zero && ranks == 1)
    bad_input(std::string("--zero 1 shards the optimizer state across the ranks of a data-parallel job: launch with "
                          "mpirun -np N (N > 1)") +
              (dist::built_with_mpi() ? "" : "; this build has no MPI"));
  if (ranks > 1) {
    if (!lead) set_log_enabled(false);
    if (opt.device == Device::cuda && !dist::built_with_nccl())
      bad_input("--device cuda with " + std::to_string(ranks) + " ranks: this build has no NCCL");
    if (opt.zero && opt.device == Device::cuda) bad_input("--zero 1: only with --device cpu for now");
    dist::check_same_on_all_ranks(comm, rank_fingerprint(opt, tm, all_data));
  }

  if (lead) prepare_run_dir(opt);
  auto existing = opt.resume && lead ? latest_checkpoint(opt.out) : std::nullopt;

  Model model(cfg);
  // LoRA: the adapters train, the base (--model's weights) is frozen; checkpoints hold the adapter.
  const std::optional<LoraLayout> lora_layout = check_lora(opt, cfg);
  std::unique_ptr<LoraWeights> lora;
  if (lora_layout) {
    if (tm.weights_dir.empty()) bad_input("--lora-rank: LoRA needs a --model directory with weights");
    lora = std::make_unique<LoraWeights>(*lora_layout);
  }
  AdamW optim(lora ? lora_layout->params : model.layout(), opt.adamw);
  int start = 0, skipped = 0;
  double tokens_seen = 0;  // input tokens of the steps done, resumed from the checkpoint
  const bool lora_ckpt = existing && path_exists(*existing + "/adapter_config.json");
  if (existing && lora_ckpt != (lora != nullptr))
    bad_input(*existing + (lora ? ": not a LoRA checkpoint (the run was not started with --lora-rank)"
                                : ": a LoRA checkpoint: resume it with the run's --lora-* flags"));
  if (existing) {
    if (lora) {  // the frozen base from --model, the adapter from the checkpoint
      check_lora_checkpoint(*existing, *lora_layout);
      model.load_weights(tm.weights_dir);
      load_peft_adapter(*existing, *lora);
    } else {
      ModelConfig saved = resolve_model_config(*existing, nullptr);
      saved.bos_token_id = cfg.bos_token_id;  // checkpoints of older versions have none
      saved.eos_token_id = cfg.eos_token_id;
      if (config_to_json(saved) != config_to_json(cfg))
        bad_input(*existing + ": checkpoint model differs from --model " + opt.model);
      model.load_weights(*existing);
      check_weights_finite(model, *existing, false, "");
    }
    optim.load(*existing + "/optimizer.safetensors");
    const ResumeState rs = read_trainer_state(*existing, opt);
    start = rs.step;
    skipped = rs.skipped;
    tokens_seen = rs.tokens_seen;
    if (optim.steps_taken() > start)
      bad_input(*existing + "/optimizer.safetensors: optimizer step " + std::to_string(optim.steps_taken()) +
                " is past the checkpoint's step " + std::to_string(start));
    log_info("resuming from %s (step %d)", existing->c_str(), start);
  } else if (!lead) {
    // the weights come from rank 0 (below)
  } else if (!tm.weights_dir.empty()) {
    model.load_weights(tm.weights_dir);
    if (lora) lora->init(opt.seed);
  } else {
    model.init_weights(opt.seed);
  }
  if (ranks > 1) {  // rank 0's start (weights, optimizer state, counters) to every rank
    dist::broadcast(comm, model.params(), 0);
    if (opt.zero) {  // each rank its slice of the optimizer state
      dist::shard_optimizer(comm, optim);
    } else {
      dist::broadcast(comm, optim.exp_avg(), 0);
      dist::broadcast(comm, optim.exp_avg_sq(), 0);
    }
    double counters[4] = {static_cast<double>(start), static_cast<double>(skipped), tokens_seen,
                          static_cast<double>(optim.steps_taken())};
    comm.broadcast(std::as_writable_bytes(std::span<double>(counters)), 0);
    start = static_cast<int>(counters[0]);
    skipped = static_cast<int>(counters[1]);
    tokens_seen = counters[2];
    optim.set_steps_taken(static_cast<int>(counters[3]));
  }

  if (tm.tokenizer_json.empty())
    log_warn(
        "no tokenizer (--tokenizer, the model directory's or <data>/tokenizer.json): checkpoints will have "
        "none, and no end-of-text id");

  std::string metrics_path = (fs::path(opt.out) / "metrics.jsonl").string();
  std::ofstream metrics;
  if (lead) {
    if (start > 0) truncate_metrics(metrics_path, start);
    else write_file_atomic(metrics_path, "");
    metrics.open(metrics_path, std::ios::app);
  }

  Schedule sched = opt.schedule;
  sched.total = opt.steps;
  // The gradients go through the job's collectives with N > 1 ranks, and with one rank that mpirun
  // launched on a GPU (NCCL over one rank: scripts/gpu-dist-check.sh runs that on a one-GPU machine).
  const bool collective =
      ranks > 1 || (comm.engine() == "mpi" && opt.device == Device::cuda && dist::built_with_nccl());
  const int G = opt.grad_accum;  // this rank's micro-batches per step
  const int G_all = G * ranks;   // the global batch's
  if (lora && ranks > 1) bad_input("--lora-rank: LoRA is not yet trained data-parallel (run one process)");
  std::unique_ptr<StepBackend> backend = make_backend(opt, model, optim, comm, lora.get());
  std::string where = std::to_string(omp_get_max_threads()) + " threads, " + name(precision_of(opt));
#if MINDLLM_CUDA
  if (opt.device == Device::cuda) where = cuda::device_description() + ", " + name(precision_of(opt));
#endif
  log_info("model %s", describe(cfg).c_str());
  if (lora)
    log_info("LoRA: r=%d, alpha %g, dropout %g, %zu modules, %zu trainable parameters (%.2f%% of %zu, frozen)",
             opt.lora.rank, opt.lora.alpha > 0 ? opt.lora.alpha : (float)opt.lora.rank, opt.lora.dropout,
             lora_layout->modules.size(), lora->params.size(), 100.0 * lora->params.size() / model.params().size(),
             model.params().size());
  log_info("data: %s; %d x %d sequences of up to %d tokens per step; %s", data.describe().c_str(), G_all, opt.batch,
           opt.seq, where.c_str());
  if (collective) {
    const size_t n = model.params().size(), buckets = (n + comm.bucket_floats - 1) / comm.bucket_floats;
    const bool overlapped = !opt.no_overlap && !lora && opt.device == Device::cpu;
    log_info("data parallel: %d ranks (%s) x %d micro-batches each; gradients in %zu buckets, %s", ranks,
             (comm.engine() + (opt.device == Device::cuda ? ", NCCL" : "")).c_str(), G, buckets,
             overlapped ? "reduced during the backward" : "reduced after it");
  }

  auto save = [&](int step) {
    backend->sync_to_host();
    dist::check_replicas_agree(comm, model.params(), "at step " + std::to_string(step));
    std::vector<float> m, v;  // ZeRO-1: the whole state, gathered on rank 0
    if (opt.zero) dist::gather_optimizer(comm, optim, model.params().size(), &m, &v);
    if (!lead) return;
    write_checkpoint(opt.out, step, opt.keep_ckpts, [&](const std::string& dir) {
      if (lora) save_peft_adapter(dir, *lora, fs::absolute(tm.weights_dir).lexically_normal().string());
      else model.save(dir);
      if (opt.zero) AdamW::save_state(dir + "/optimizer.safetensors", m, v, optim.steps_taken());
      else optim.save(dir + "/optimizer.safetensors");
      if (!tm.tokenizer_json.empty()) write_file_atomic(dir + "/tokenizer.json", tm.tokenizer_json);
      for (const auto& [name, content] : tm.files) write_file_atomic(dir + "/" + name, content);
      json st = {{"step", step},
                 {"seed", opt.seed},
                 {"optimizer_step", optim.steps_taken()},
                 {"skipped_steps", skipped},
                 {"tokens_seen", tokens_seen},
                 {"data_position", data.position(step)},
                 {"args", options_json(opt)}};
      write_file_atomic(dir + "/trainer_state.json", st.dump(2) + "\n");
    });
  };

  install_interrupt_handler();
  TrainResult result;
  std::vector<Batch> micro(G);
  double elapsed = 0.0;
  int done = 0;
  // On a terminal, one progress line (rate, ETA) redrawn between the log lines; logs alone elsewhere.
  Progress progress("training", opt.steps - start, "steps", log_enabled() && isatty(2));
  for (int step = start; step < opt.steps; step++) {
    auto t0 = std::chrono::steady_clock::now();
    int64_t n_step = 0, n_inputs = 0;
    for (int i = 0; i < G; i++) {
      data.train_batch(step, i, &micro[i]);
      n_step += micro[i].count_targets();
      n_inputs += (int64_t)micro[i].B * micro[i].T;
    }
    if (ranks > 1) {  // the global batch's counts
      double counts[2] = {static_cast<double>(n_step), static_cast<double>(n_inputs)};
      comm.allreduce_sum(std::span<double>(counts));
      n_step = static_cast<int64_t>(counts[0]);
      n_inputs = static_cast<int64_t>(counts[1]);
    }
    backend->zero_grads();
    for (int i = 0; i < G; i++) {
      double weight = n_step > 0 ? (double)micro[i].count_targets() * G_all / n_step : 0.0;
      const int mb = dist::global_micro(comm.rank(), G, i);
      if (opt.neftune_alpha > 0)
        backend->set_embedding_noise({opt.neftune_alpha, mix64(opt.seed, 0x4e454654ull + step, mb)});
      backend->set_lora_dropout(true, mix64(opt.seed, 0x4c6f5241ull + step, mb));
      if (collective && i == G - 1 && !opt.no_overlap) backend->overlap_next_backward(comm);
      backend->accumulate(micro[i], weight, G_all);
    }
    backend->set_embedding_noise({});  // validation sees clean embeddings
    backend->set_lora_dropout(false, 0);
    if (collective) backend->reduce(comm);
    float lr = sched.at(step);
    const StepStats st = backend->update(G_all, lr, opt.clip);
    const bool finite = !st.skipped;
    if (!finite) skipped++;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    elapsed += dt;
    done++;
    tokens_seen += n_inputs;
    int completed = step + 1;
    json m = {{"step", completed},
              {"loss", st.loss},
              {"lr", lr},
              {"grad_norm", st.grad_norm},
              {"tokens_per_s", n_inputs / dt},
              {"step_time_s", dt}};
    if (n_step != n_inputs) m["target_tokens"] = n_step;
    if (!finite) m["skipped"] = true;
    bool last = completed == opt.steps;
    if (data.val_batches() > 0 && ((opt.eval_every > 0 && completed % opt.eval_every == 0) || last)) {
      float v = validation_loss(*backend, data, comm);
      if (std::isfinite(v)) {
        m["val_loss"] = v;
        result.val_loss = v;
      }
    }
    if (lead) {
      metrics << m.dump() << "\n";
      metrics.flush();
    }
    if (!finite)
      log_info("step %d: non-finite loss or gradient (loss %g, grad norm %g): update skipped", completed, st.loss,
               st.grad_norm);
    if (completed % opt.log_every == 0 || last || step == start) {
      double eta = elapsed / done * (opt.steps - completed);
      log_info("step %d/%d | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | ETA %s%s", completed, opt.steps,
               st.loss, lr, st.grad_norm, n_inputs / dt, format_duration(eta).c_str(),
               m.contains("val_loss") ? (" | val loss " + std::to_string(m["val_loss"].get<float>())).c_str() : "");
    }
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f, %.0f tok/s", st.loss, n_inputs / dt);
    progress.update(completed - start, extra);
    result.steps_done = completed;
    result.last_loss = st.loss;
    int signal = interrupted() ? interrupt_signal() : 0;
    if (ranks > 1)  // any rank's Ctrl-C stops every rank after this step
      for (double s : dist::all_gather(comm, signal)) signal = signal ? signal : static_cast<int>(s);
    const bool stop = signal != 0;
    if ((opt.ckpt_every > 0 && completed % opt.ckpt_every == 0) || last || stop) save(completed);
    if (stop && !last) {
      const std::string msg =
          "train: interrupted; checkpoint at step " + std::to_string(completed) + " written; continue with --resume";
      if (ranks > 1) throw dist::CollectiveError(static_cast<ExitCode>(128 + signal), msg, lead);
      throw Error(static_cast<ExitCode>(128 + signal), msg);
    }
  }
  progress.end();
  if (start >= opt.steps) log_info("run already complete at step %d", start);
  if (profile_enabled()) std::fputs(profile_report().c_str(), stderr);
  return result;
}

// The tokenizer of a pre-training run: --tokenizer, else the model directory's, else the data
// directory's (data tokenize puts it there); empty if none.
static std::string tokenizer_path(const TrainOptions& opt, const std::string& weights_dir) {
  if (!opt.tokenizer.empty()) {
    if (!path_exists(opt.tokenizer)) bad_input("--tokenizer " + opt.tokenizer + ": no such file");
    return opt.tokenizer;
  }
  for (const std::string& dir : {weights_dir, opt.data})
    if (!dir.empty() && path_exists((fs::path(dir) / "tokenizer.json").string()))
      return (fs::path(dir) / "tokenizer.json").string();
  return "";
}

TrainResult run_training(const TrainOptions& opt, dist::Communicator* comm) {
  check_options(opt);  // before the model and shards are opened: a bad flag is named first
  TrainModel tm;
  tm.config = resolve_model_config(opt.model, &tm.weights_dir);
  std::string tok_path = tokenizer_path(opt, tm.weights_dir);
  std::optional<Tokenizer> tok;
  if (!tok_path.empty()) {
    tok = Tokenizer::load(tok_path);  // a file that is not a tokenizer is bad input naming it
    tm.tokenizer_json = is_directory(tok_path) ? tok->to_json() : read_file(tok_path);
    if (tok->vocab_size() > static_cast<size_t>(tm.config.vocab_size))
      bad_input(tok_path + ": the tokenizer has " + std::to_string(tok->vocab_size()) +
                " tokens, more than the model's vocab_size " + std::to_string(tm.config.vocab_size));
    // End (and, as in GPT-2, start) of text for generate and transformers' generate.
    if (tm.config.eos_token_id < 0 && tok->eos_id()) tm.config.eos_token_id = static_cast<int>(*tok->eos_id());
    if (tm.config.bos_token_id < 0) tm.config.bos_token_id = tm.config.eos_token_id;
  }
  PretrainBatches data(opt.data, tm.config.vocab_size, opt.seed, opt.batch, opt.seq, opt.eval_batches);
  if (tok) {
    std::string other = data.shard_with_other_tokenizer(tok->hash());
    if (!other.empty() && !opt.ignore_tokenizer_mismatch)
      bad_input(other + ": the shard was tokenized with another tokenizer than " + tok_path +
                " (pass --ignore-tokenizer-mismatch to train anyway)");
    if (!other.empty()) log_warn("%s: tokenized with another tokenizer than %s", other.c_str(), tok_path.c_str());
  }
  return train(opt, tm, data, comm);
}

}  // namespace mindllm
