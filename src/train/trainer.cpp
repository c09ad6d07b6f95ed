// The training run; see trainer.h. One Run object holds the job's state; each member
// function is one phase (setup, LoRA, loop, evaluation, checkpoint, finish).
#include "train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <memory>
#include <sstream>

#include "core/cancel.h"
#include "core/cpu_info.h"
#include "core/error.h"
#include "core/memory_info.h"
#include "core/rng.h"
#include "data/batcher.h"
#include "data/dataset.h"
#include "data/tools.h"
#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "model/base_weights.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint.h"
#include "train/graph.h"
#include "train/memory_plan.h"
#include "train/optimizer_step.h"
#include "train/scheduler.h"
#include "train/tfevents.h"

namespace tpro {

using nlohmann::json;

DataOptions data_options_from(const TrainParams& p) {
  DataOptions o = p.data;
  o.seed = uint64_t(p.seed);  // one seed for the run: LoRA init, dropout, and the data's order
  return o;
}

namespace {

std::vector<BatchView> views_of(const std::vector<Batch>& bs) {
  std::vector<BatchView> v;
  for (const auto& b : bs) v.push_back(b.view());
  return v;
}

struct Run {
  Run(const TrainParams& params, RunControl& c, const TrainObserver& o) : p(params), ctl(c), obs(o) {}
  const TrainParams& p;
  RunControl& ctl;
  const TrainObserver& obs;
  fs::path out;
  json params_json;
  nlohmann::ordered_json training_prompt;  // Training PRO's training_prompt.json (data/tools.h)
  std::unique_ptr<Backend> be;  // the device everything runs on, chosen once from p.device
  Model model;
  Tokenizer tok;
  Dataset data;
  std::unique_ptr<Batcher> batcher;
  std::vector<Batch> eval_batches;
  bool embed_mapped = false;        // the embedding stays in the mapped file, apart from the LM head
  std::vector<int32_t> embed_rows;  // then: the distinct token ids the run embeds (memory plan)
  LoraWeights lw;                     // the host image: files, checks
  std::unique_ptr<LoraState> state;   // the adapter being trained, on the device
  Activations acts;
  RunLog log;
  SchedulerSpec spec;
  OptimConfig oc;
  TrainerState st;
  int64_t ga = 1, total_steps = 0, mb_per_epoch = 1;
  int64_t save_every = 0, eval_every = 0;  // save_steps and eval_steps (micro-batches) in optimizer steps
  double elapsed_before = 0.0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::unique_ptr<TfEventsWriter> tb;  // report_to tensorboard

  void say(const std::string& s) const { obs({TrainEvent::Kind::Message, s, {}, total_steps}); }
  double elapsed() const {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  bool continue_existing = false;  // Training PRO: an existing adapter keeps training unless overridden
  FolderLock lock;                 // one writer per adapter folder, for the run's life
  bool created_out = false;        // the folder did not exist before this run
  bool replace_existing = false;   // always_override with an adapter there: moved aside just before training
  fs::path replaced;               // where that adapter waits until this run ends well
  bool saved_any = false;          // a checkpoint or the adapter of this run is on disk

  void prepare_output() {
    out = adapter_dir(p);
    std::error_code ec;
    created_out = !fs::exists(out, ec);
    lock = FolderLock::acquire(out, "the adapter folder");
    for (const std::string& c : clean_stale_temporaries(out)) say("removed a leftover of a killed run: " + c);
    const bool has_adapter = fs::exists(out / "adapter_config.json");
    const bool has_checkpoint = !latest_checkpoint(out).empty();
    if ((has_adapter || has_checkpoint) && p.resume_from_checkpoint.empty()) {
      if (p.always_override) {
        replace_existing = true;  // nothing is touched until model, data and LoRA are ready
      } else if (has_adapter) {
        continue_existing = true;
        continue_log();
      } else {
        fail(out.string(), " holds checkpoints of an unfinished run (hint: --resume-from-checkpoint latest to ",
             "continue it exactly, or --always-override to start over)");
      }
    }
  }

  // Continuing an existing adapter (Training PRO's default): its step and epoch counts go on,
  // its log and graph are appended to, and this run's checkpoints are named past the step of
  // any checkpoint already in the folder, so none collides with the earlier run's.
  void continue_log() {
    PreviousRun prev = read_previous_run(out);
    int64_t step = prev.step;
    if (const fs::path ck = latest_checkpoint(out); !ck.empty()) step = std::max(step, checkpoint_step(ck));
    log = std::move(prev.log);
    st.step = st.step_offset = step;
    st.epoch = st.epoch_offset = prev.epoch;
    if (!log.empty()) elapsed_before = log.records().back().elapsed_s;
  }
  int64_t run_step() const { return st.step - st.step_offset; }  // optimizer steps done by this run

  // always_override: every input has been read and checked; move the old adapter (files and
  // checkpoints) into a sibling folder, kept until this run ends well.
  void set_old_adapter_aside() {
    if (!replace_existing) return;
    replaced = out.parent_path() / cat(out.filename().string(), ".replaced-", ::getpid());
    move_entries(out, replaced);
    say(cat("always_override: the previous adapter is moved to ", replaced.string(),
            " and removed when this run has saved its adapter"));
  }

  // The run ended well: the replaced adapter can go.
  void drop_old_adapter() {
    if (replaced.empty()) return;
    std::error_code ec;
    fs::remove_all(replaced, ec);
    if (ec) say(cat("warning: could not remove the replaced adapter ", replaced.string(), ": ", ec.message()));
    replaced.clear();
  }

  // The run failed: put back what was there (if this run saved nothing), remove an empty folder
  // this run created. Never throws (it runs while an error propagates).
  void undo_output(const std::string& why) noexcept {
    try {
      if (!replaced.empty()) {
        if (!saved_any) {
          for (const auto& e : fs::directory_iterator(out))
            if (e.path().filename() != kFolderLockName) fs::remove_all(e.path());
          move_entries(replaced, out);
          fs::remove(replaced);
          say(cat("the previous adapter is restored in ", out.string(), " (", why, ")"));
        } else {
          say(cat("the previous adapter is kept in ", replaced.string(), " (this run saved checkpoints before: ", why, ")"));
        }
      }
      lock.release();
      std::error_code ec;
      if (created_out && !saved_any) {
        fs::remove(out / kFolderLockName, ec);
        fs::remove(out, ec);  // only when empty
      }
    } catch (const std::exception& e) {
      say(cat("warning: could not restore ", out.string(), ": ", e.what()));
    }
  }

  // Moves every entry of `from` except the lock file into `to` (created), one rename each.
  static void move_entries(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::create_directories(to, ec);
    if (ec) fail("cannot create ", to.string(), ": ", ec.message());
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(from)) entries.push_back(e.path());
    for (const fs::path& e : entries) {
      if (e.filename() == kFolderLockName) continue;
      fs::rename(e, to / e.filename(), ec);
      if (ec) fail("cannot move ", e.string(), " to ", to.string(), ": ", ec.message());
    }
  }

  // Train Head (lora_modulessave): the copies start as the base's embedding and head; their
  // memory and, on a tied model, their untying are said.
  void train_head_setup() {
    init_saved_modules(lw, model);
    const int64_t n = 2 * model.cfg.vocab_size * model.cfg.n_embd;
    say(cat("Train Head: full copies of embed_tokens and lm_head (", n, " parameters, ",
            human_bytes(size_t(n) * sizeof(float)), " each as weights, gradients and every optimizer state buffer) ",
            "are trained and saved as PEFT modules_to_save", p.optimizer.find("8bit") == std::string::npos
                ? " (Training PRO recommends an 8-bit optimizer here: adamw_8bit keeps their state in 2 bytes a value)" : ""));
    if (model.cfg.tie_word_embeddings)
      say("note: the model ties lm_head to embed_tokens; Train Head trains them as two separate copies, as PEFT does "
          "(ensure_weight_tying off), so the adapter's model is untied (tpro merge writes lm_head.weight)");
  }

  // plan_only: the base is not converted (planned_base sizes it as it would be held), for
  // plan_training_memory.
  void load_model_and_data(bool plan_only = false) {
    be = make_backend(p.device);
    say(cat("device ", be->describe()));
    say(cat("loading model ", p.model));
    model = load_model(p.model);
    check_cancel(ctl.stop_flag(), "loading the model");
    const BaseWeightOptions bo{p.quantize, p.dtype, p.compute_dtype, ctl.stop_flag(), p.quantize_embedding,
                               p.quantize_head};
    const WType embed_type = model.embed.type;
    if (plan_only) {
      model = planned_base(model, bo, *be);  // keeps the loaded model's owners: views stay valid for sizing
    } else {
      std::istringstream notes(apply_base_options(model, bo, *be));
      for (std::string line; std::getline(notes, line);) say(line);
    }
    say(cat("base weights held as ", describe_base_memory(base_memory(model))));
    say(describe_vocab_storage(model));
    // An embedding left in the mapped file (not converted: a plan's retyped view still points
    // there) pages in only the rows gathered; the LM head reads all of a tied one, and Train
    // Head copies all of it.
    const WeightMatrix& e = model.embed;
    embed_mapped = e.data && e.data != model.lm_head.data && e.type == embed_type && !p.lora_modulessave &&
                   bytes_outside(file_mappings(), e.data, wtype_matrix_bytes(e.type, e.rows, e.cols)) == 0;
    tok = Tokenizer::load(p.model);
    if (tok.vocab_size() > model.cfg.vocab_size)
      fail(p.model, ": tokenizer has ", tok.vocab_size(), " tokens but the model's vocab_size is ",
           model.cfg.vocab_size);
    DataOptions dopt = data_options_from(p);
    dopt.cancel = ctl.stop_flag();
    data = build_dataset(dopt, tok);
    for (const std::string& note : dataset_notes(data.stats, p.data.cutoff_len)) {
      say("data: " + note);
      log.add_warning(st.step, "data: " + note);
    }
    const int32_t pad = tok.pad_id() >= 0 ? tok.pad_id() : (tok.eos_id() >= 0 ? tok.eos_id() : 0);
    BatcherConfig bc = BatcherConfig::from(dopt, int(p.micro_batch_size), pad);
    batcher = std::make_unique<Batcher>(data.train, bc);
    mb_per_epoch = batcher->micro_batches_per_epoch();
    const int64_t want_ga = effective_grad_accumulation(p);
    ga = effective_grad_accumulation(int64_t(batcher->rows().size()), int(p.micro_batch_size), int(want_ga));
    if (ga < want_ga)
      say(cat("warning: gradient accumulation ", want_ga, " exceeds the ", mb_per_epoch,
              " micro-batches of an epoch; lowered to ", ga));
    const int64_t spe = batcher->steps_per_epoch(int(ga));
    total_steps = p.max_steps > 0 ? p.max_steps : int64_t(std::ceil(p.epochs * double(spe)));
    spec = make_scheduler_spec(p, total_steps, spe, ga);
    save_every = micro_batches_to_steps(p.save_steps, ga);
    eval_every = micro_batches_to_steps(p.eval_steps, ga);
    validate_scheduler(spec);
    say(cat(batcher->rows().size(), " training blocks, ", mb_per_epoch, " micro-batches of ", p.micro_batch_size,
            " per epoch, ", spe, " optimizer steps per epoch, ", total_steps, " steps in all"));
    say(describe_schedule(spec));
    if (resolved_warmup_steps(spec) >= total_steps && total_steps > 0)
      say(cat("warning: the warmup (", resolved_warmup_steps(spec), " optimizer steps) covers the whole run of ", total_steps,
              " steps, so the learning rate never reaches ", p.learning_rate,
              " (hint: lower --warmup-steps; it counts micro-batches, as in Training PRO)"));
    if (save_every > 0 && ga > 1)
      say(cat("checkpoints every ", p.save_steps, " micro-batches (save_steps): every ", save_every, " optimizer steps of ",
              ga, " micro-batches"));
    if (!data.eval.empty()) {
      BatcherConfig ec = bc;
      ec.shuffle = false;
      ec.group_by_length = false;
      ec.length_schedule = {};
      Batcher eb(data.eval, ec);
      for (int64_t i = 0; i < eb.micro_batches_per_epoch(); ++i) eval_batches.push_back(eb.next());
      say(cat(data.eval.size(), " evaluation blocks"));
    }
    if (embed_mapped) {
      std::vector<uint8_t> seen(size_t(model.cfg.vocab_size), 0);
      auto mark = [&](const std::vector<int32_t>& ids) {
        for (const int32_t id : ids)
          if (id >= 0 && id < model.cfg.vocab_size) seen[size_t(id)] = 1;
      };
      for (const Block& b : batcher->rows()) mark(b.tokens);
      for (const Batch& b : eval_batches) mark(b.tokens);
      mark({pad});
      for (int32_t id = 0; id < int32_t(seen.size()); ++id)
        if (seen[size_t(id)]) embed_rows.push_back(id);
    }
    if (p.early_stopping_patience > 0 && eval_batches.empty())
      fail("early_stopping_patience ", p.early_stopping_patience, " needs evaluation data, and this run has none ",
           "(hint: set eval_split_percent, or eval_dataset / jsonl_eval_dataset)");
  }

  std::string target_spec() const {
    std::string spec;
    for (const auto& t : resolved_target_modules(p)) spec += (spec.empty() ? "" : ",") + t;
    return spec;
  }

  LoraConfig lora_config() const {
    LoraConfig lc;
    lc.r = p.lora_rank;
    lc.alpha = double(p.lora_alpha);
    lc.dropout = p.lora_dropout;
    lc.rslora = p.use_rslora;
    lc.dora = p.use_dora;
    lc.targets = parse_targets(target_spec());
    lc.save_embed = lc.save_head = p.lora_modulessave;
    return lc;
  }

  void setup_lora() {
    const LoraConfig lc = lora_config();
    const std::string spec_targets = target_spec();
    Rng rng(uint64_t(p.seed));
    std::string fused_note;
    model_targets(model.cfg, lc.targets, &fused_note);
    if (!fused_note.empty()) say("note: " + fused_note);
    lw = make_lora(model.cfg, lc, rng);
    init_dora_magnitudes(*be, model, lw);
    if (p.lora_modulessave) train_head_setup();
    set_optimizer(lw, optimizer_kind(p.optimizer));
    if (const std::string note = optimizer_note(p.optimizer); !note.empty()) say("note: " + note);
    if (!p.resume_from_checkpoint.empty()) {
      fs::path ck = p.resume_from_checkpoint == "latest" ? latest_checkpoint(out) : fs::path(p.resume_from_checkpoint);
      if (ck.empty()) fail(out.string(), ": no checkpoint to resume from (hint: save_steps or save_each_epoch)");
      st = load_checkpoint(ck, model, lw, &log);
      warn_changed_parameters(ck);
      batcher->restore(st.batcher);
      if (!log.empty()) elapsed_before = log.records().back().elapsed_s;
      total_steps += st.step_offset;  // a checkpoint of a run that continued an adapter
      say(cat("resumed from ", ck.string(), " at step ", st.step));
    } else {
      st.loss_threshold = p.save_steps_under_loss;
      if (continue_existing) {
        LoraWeights prev = load_adapter(out, model);
        if (prev.cfg.r != lc.r || prev.cfg.targets != lc.targets || prev.cfg.dora != lc.dora)
          fail(out.string(), ": the existing adapter has rank ", prev.cfg.r, " on ", prev.slots.size(),
               " projections", prev.cfg.dora ? " (DoRA)" : "", "; this run asks for rank ", lc.r, " on ",
               lw.slots.size(), lc.dora ? " (DoRA)" : "",
               " (hint: --always-override to replace it, or match its lora_rank and targets)");
        if (saved_module_names(prev.cfg) != saved_module_names(lc))
          fail(out.string(), ": the existing adapter ", prev.embed_at >= 0 ? "trains" : "does not train",
               " embed_tokens and lm_head (modules_to_save) and this run ", p.lora_modulessave ? "does" : "does not",
               " (hint: set lora_modulessave as the existing adapter was trained, or --always-override to replace it)");
        lw.params = prev.params;
        total_steps += st.step_offset;
        say(cat("continuing the weights of the existing adapter in ", out.string(), " from step ", st.step, ", epoch ",
                st.epoch, ": steps ", st.step + 1, " to ", total_steps, ", its log and graph go on (fresh optimizer ",
                "state and learning-rate schedule; --resume-from-checkpoint resumes exactly)"));
      }
    }
    say(cat("LoRA rank ", lc.r, ", alpha ", lc.alpha, " on ", spec_targets, ": ", lw.n_params(), " trainable parameters"));
    // Sized by the longest row a batch can hold (rows are padded to their batch's longest, rounded
    // up to pad_to_multiple), never by cutoff_len alone: cutoff 99999 on short blocks is no reason
    // to plan for 99999 tokens.
    const int64_t T = longest_batch_row();
    const MemoryChoice mem = plan_memory_use(T, lw.cfg, p.ignore_memory_check);
    check_cancel(ctl.stop_flag(), "allocating the activations");
    state = std::make_unique<LoraState>(*be, lw);
    make_activations(acts, *be, model.cfg, &lw, p.micro_batch_size, T, {.recompute = mem.recompute});
    say(cat("activations: ", acts.mem.size() >> 20, " MiB for ", p.micro_batch_size, " rows of up to ", T, " tokens",
            mem.recompute ? " (recomputed per layer)" : ""));
    if (mem.pack) {
      check_cancel(ctl.stop_flag(), "packing the weights");
      if (const size_t packed = prepare_weights(model, *be, p.micro_batch_size * T))
        say(cat("weights packed for the matmul kernels: ", packed >> 20, " MiB"));
    }
  }

  // The memory plan (memory_plan.h) for micro-batches of rows up to T: said, logged, and the
  // recomputation and packing it settles on; throws when the run cannot fit.
  // ignore_check: p.ignore_memory_check, or true to get a plan that does not fit without the error.
  MemoryChoice plan_memory_use(int64_t T, const LoraConfig& lc, bool ignore_check) {
    const size_t available = p.memory_limit_gib > 0 ? size_t(p.memory_limit_gib * double(size_t(1) << 30))
                                                     : memory_available_for(model, &lw, *be);
    const auto plan = [&](bool recompute, bool pack) {
      MemoryPlan m = plan_memory(model, lc, *be, p.micro_batch_size, T, recompute, pack,
                                 embed_mapped ? &embed_rows : nullptr);
      m.available = available;
      return m;
    };
    MemoryChoice c = choose_memory_plan(plan, p.use_grad_checkpoint, p.pack_weights, ignore_check);
    for (const std::string& n : c.notes) {
      say(n);
      log.add_event(st.step, "memory", n);
    }
    say("memory plan: " + describe_plan(c.plan));
    log.set_info("memory_plan", plan_json(c.plan));
    return c;
  }

  int64_t longest_batch_row() const {
    int64_t longest = 2;
    for (const Block& b : batcher->rows()) longest = std::max(longest, b.size());
    for (const Batch& b : eval_batches) longest = std::max<int64_t>(longest, b.T);
    const int64_t m = std::max<int64_t>(1, p.data.pad_to_multiple);
    return (longest + m - 1) / m * m;
  }

  // Resuming with other parameters is allowed (a longer run, another stop), but the result is
  // no longer the run the checkpoint began: every difference is said and logged.
  void warn_changed_parameters(const fs::path& ck) {
    const fs::path f = ck / "training_parameters.json";
    if (!fs::exists(f)) return;
    json before;
    try {
      before = json::parse(read_file(f));
    } catch (const std::exception& e) {
      fail(f.string(), ": not valid JSON: ", e.what());
    }
    std::vector<std::string> changed;
    for (const auto& [key, now] : params_json.items()) {
      if (key == "resume_from_checkpoint" || !before.is_object()) continue;
      const json was = before.contains(key) ? before[key] : json();
      if (was != now) changed.push_back(cat(key, " ", was.is_null() ? "(unset)" : was.dump(), " -> ", now.dump()));
    }
    if (changed.empty()) return;
    std::string list;
    for (const auto& c : changed) list += (list.empty() ? "" : ", ") + c;
    const std::string w = cat("warning: resuming ", ck.filename().string(), " with ", changed.size(),
                              " changed parameter", changed.size() == 1 ? "" : "s",
                              " (the run is no longer an exact continuation): ", list);
    say(w);
    log.add_warning(st.step, w);
  }

  // Early stopping (as transformers' EarlyStoppingCallback with load_best_model_at_end): the
  // best eval loss so far, its step, checkpoint and weights, and evaluations since.
  struct Best {
    double loss = INFINITY;
    int64_t step = -1, since = 0;
    fs::path checkpoint;
    std::vector<float> params;
  } best;
  bool early_stop = false;

  // The batch order's phase changing (length-grouped → pairing → sequential): said and logged.
  // Also a marker for the graph (PNG, training_graph.json, the web chart) where the new order
  // began: epoch + the micro-batches of it already taken.
  void say_switch(const Batcher::Switch& sw, std::vector<LogMarker>& markers) {
    const std::string text = cat("batch order: ", batch_phase_name(sw.to), " from epoch ", sw.epoch, ", micro-batch ",
                                 sw.index_in_epoch, " (after step ", st.step, "; trigger: ", sw.reason, ")");
    say(text);
    log.add_event(st.step, "batch_order", text);
    markers.push_back({"batch_order", cat("order: ", batch_phase_name(sw.to)),
                       double(sw.epoch) + double(sw.index_in_epoch) / double(mb_per_epoch)});
  }

  void track_best(double el) {
    if (p.early_stopping_patience <= 0) return;
    if (el < best.loss - p.early_stopping_threshold) {
      best.loss = el, best.step = st.step, best.since = 0;
      best.checkpoint = checkpoint(cat("best eval loss so far, ", el));  // downloads the state into lw
      best.params = lw.params;
      log.set_info("best_eval_loss", el);
      log.set_info("best_step", st.step);
      log.set_info("best_checkpoint", best.checkpoint.filename().string());
      return;
    }
    ++best.since;
    const std::string w = cat("eval loss ", el, " is no improvement on the best, ", best.loss, " at step ", best.step,
                              " (threshold ", p.early_stopping_threshold, "): ", best.since, " of ",
                              p.early_stopping_patience, " evaluations");
    say(w);
    if (best.since >= p.early_stopping_patience) early_stop = true;
  }

  fs::path checkpoint(const std::string& why) {
    st.batcher = batcher->state();
    state->download(lw);
    require_finite_lora("checkpoint");
    fs::path d = save_checkpoint(out, lw, st, log, params_json, p.model, training_prompt);
    saved_any = true;
    obs({TrainEvent::Kind::Checkpoint, d.string() + " (" + why + ")", {}, total_steps});
    for (const auto& old : prune_checkpoints(out, p.save_total_limit, best.checkpoint))
      say(cat("removed ", old.filename().string(), " (save_total_limit ", p.save_total_limit, ")"));
    return d;
  }

  void evaluate() {
    if (eval_batches.empty()) return;
    auto v = views_of(eval_batches);
    const double el = evaluate_loss(model, state.get(), acts, v);
    log.add_eval(st.step, st.epoch, el);
    report([&](TfEventsWriter& w) { w.scalar("eval/loss", st.step, el); });
    LogRecord r;
    r.step = st.step;
    r.epoch = st.epoch;
    r.eval_loss = el;
    obs({TrainEvent::Kind::Eval, cat("eval loss ", el, ", perplexity ", std::exp(el)), r, total_steps});
    track_best(el);
  }

  void maybe_checkpoint(bool epoch_ended) {
    if (ctl.take_save_request()) checkpoint("save now");
    else if (save_every > 0 && run_step() % save_every == 0) checkpoint(cat("every ", p.save_steps, " micro-batches"));
    else if (p.save_each_epoch && epoch_ended) checkpoint("end of epoch");
    else if (st.loss_threshold > 0 && st.loss < st.loss_threshold) {
      // Lowered before the save, so that a resume from this checkpoint waits for the same 10% drop.
      const double crossed = st.loss_threshold;
      st.loss_threshold = st.loss * 0.9;
      checkpoint(cat("loss below ", crossed));
    }
  }

  // TensorBoard logging is a side channel: a failure to write it is said once and ends it, never the run.
  void report(const std::function<void(TfEventsWriter&)>& write) {
    if (!tb) return;
    try {
      write(*tb);
      tb->flush();
    } catch (const Error& e) {
      const std::string w = cat("warning: ", e.what(), "; TensorBoard logging stops, training goes on");
      say(w);
      log.add_warning(st.step, w);
      tb.reset();
    }
  }

  void open_tensorboard() {
    if (p.report_to != "tensorboard") return;
    try {
      tb = std::make_unique<TfEventsWriter>(out / "runs");
      say(cat("TensorBoard events: ", tb->path().string(), " (tensorboard --logdir ", (out / "runs").string(), ")"));
    } catch (const Error& e) {
      say(cat("warning: ", e.what(), "; training goes on without TensorBoard logging"));
    }
  }

  std::string loop() {
    open_tensorboard();
    ControlFileWatcher watcher(out / kControlFileName);
    std::vector<Batch> micro;
    size_t switches_said = batcher->switches().size();  // a resumed run's earlier ones are in its log
    const int64_t first_step = st.step;
    while (st.step < total_steps) {
      for (const auto& e : watcher.poll(ctl).applied) say("control: " + e);
      micro.clear();
      for (int64_t i = 0; i < ga; ++i) {
        micro.push_back(batcher->next());
        if (micro.back().last_in_epoch) break;
      }
      const int64_t k = run_step();  // the schedule, the optimizer and the streams count this run's steps
      const double lr = lr_at(spec, k);
      const auto v = views_of(micro);
      const auto t_step = std::chrono::steady_clock::now();
      StepStats s;
      try {
        s = optimizer_step(model, *state, acts, v, lr, k + 1, splitmix64(uint64_t(p.seed) ^ uint64_t(k + 1)), oc);
      } catch (const Cancelled&) {
        say(cat("stop requested during step ", st.step + 1, ": that step is abandoned (no update was made)"));
        return "stop requested";
      }
      if (!s.finite) fail(non_finite_message(s, lr));
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_step).count();
      const Batch& last = micro.back();
      ++st.step;
      st.loss = s.loss;
      const double run_epoch = double(last.epoch) + double(last.index_in_epoch + 1) / double(mb_per_epoch);
      st.epoch = st.epoch_offset + run_epoch;
      batcher->observe_loss(run_step(), s.loss);
      std::vector<LogMarker> markers;
      for (; switches_said < batcher->switches().size(); ++switches_said)
        say_switch(batcher->switches()[switches_said], markers);
      LogRecord r{st.step, st.epoch, s.loss, lr, s.grad_norm, std::nullopt, dt > 0 ? double(s.n_tokens) / dt : 0.0,
                  elapsed(), std::move(markers)};
      log.add(r);
      report([&](TfEventsWriter& w) {
        w.scalar("train/loss", r.step, r.loss);
        w.scalar("train/learning_rate", r.step, r.lr);
        if (std::isfinite(r.grad_norm)) w.scalar("train/grad_norm", r.step, r.grad_norm);
        w.scalar("train/epoch", r.step, r.epoch);
        w.scalar("train/tokens_per_second", r.step, r.tokens_per_s);
      });
      obs({TrainEvent::Kind::Step, "", r, total_steps, first_step, elapsed_before});
      watch_divergence(s.loss);
      if (eval_every > 0 && run_step() % eval_every == 0) evaluate();
      if (early_stop)
        return cat("early stopping: no eval loss better than ", best.loss, " (step ", best.step, ") by more than ",
                   p.early_stopping_threshold, " in ", p.early_stopping_patience, " evaluations");
      maybe_checkpoint(last.last_in_epoch);
      std::string why = ctl.stop_reason(s.loss, run_epoch);  // stop_at_epoch counts this run's epochs, as Training PRO
      if (!why.empty()) return why;
    }
    return "completed";
  }

  // Why a step's loss or gradient is NaN/infinite, as far as can be told: a damaged base weight,
  // the base model itself (the first step, before any update), or an update too large.
  std::string non_finite_message(const StepStats& s, double lr) const {
    const int64_t step = st.step + 1;
    std::string cause;
    if (const std::string w = first_non_finite_weight(model); !w.empty()) {
      cause = cat("the base weight ", w, " holds a NaN or infinite value (hint: the model file is damaged; ",
                  "download or convert it again)");
    } else if (const std::vector<float> w = state->download_params();
               !std::all_of(w.begin(), w.end(), [](float x) { return std::isfinite(x); })) {
      cause = cat("the LoRA weights continued from ", out.string(), " hold a NaN or infinite value (hint: ",
                  "--always-override to start a fresh adapter, or resume from an earlier checkpoint)");
    } else if (run_step() == 0) {
      cause = cat("the base model gives a non-finite loss before any update (hint: check its config values, e.g. ",
                  "rms_norm_eps ", model.cfg.rms_norm_eps, " and rope_theta ", model.cfg.rope_theta,
                  ", or try --compute-dtype f32)");
    } else {
      cause = cat("the last finite loss was ", st.loss, " at step ", st.step, "; the updates grew too large (hint: lower ",
                  "--learning-rate, now ", p.learning_rate, " (this step ", lr, "), add --warmup-steps, and keep ",
                  "--max-grad-norm above 0)");
    }
    return cat("step ", step, ": the loss is ", s.loss, " and the gradient norm ", s.grad_norm,
               " (not finite); training stopped before this step's update, and nothing of it is saved. ",
               saved_any ? cat("Checkpoints saved before it are in ", out.string(), ". ")
                         : cat("The adapter folder ", out.string(), " is left as it was. "),
               "Likely cause: ", cause);
  }

  // Warns once when the loss stays well above where it started (a learning rate too high): the
  // mean of the last kWindow steps against the first step's loss, 1.3 times and 0.5 nats above.
  static constexpr size_t kWindow = 10;
  double start_loss = NAN;  // the first step's loss: measured before this run changed anything
  std::vector<double> recent_losses;
  bool divergence_warned = false;
  void watch_divergence(double loss) {
    if (std::isnan(start_loss)) {
      start_loss = loss;
      return;
    }
    recent_losses.push_back(loss);
    if (recent_losses.size() > kWindow) recent_losses.erase(recent_losses.begin());
    if (divergence_warned || recent_losses.size() < kWindow) return;
    double now = 0;
    for (double x : recent_losses) now += x / double(kWindow);
    if (!(now > 1.3 * start_loss && now > start_loss + 0.5)) return;
    divergence_warned = true;
    const std::string w = cat("warning: the loss is diverging: ", now, " over the last ", kWindow, " steps against ",
                              start_loss, " at the first step (step ", st.step, "); hint: lower --learning-rate (now ",
                              p.learning_rate, "), add --warmup-steps, keep --max-grad-norm above 0, or stop and ",
                              "resume from an earlier checkpoint");
    say(w);
    log.add_warning(st.step, w);
  }

  void require_finite_lora(const char* what) const {
    for (float x : lw.params)
      if (!std::isfinite(x)) fail("refusing to write a ", what, " with non-finite LoRA weights into ", out.string());
  }

  void finish(const std::string& why) {
    if (!eval_batches.empty() && (log.empty() || !log.records().back().eval_loss)) evaluate();
    log.set_info("base_model_name", p.model);
    log.set_info("stop_reason", why);
    log.set_info("lora_params", lw.n_params());
    state->download(lw);
    if (best.step >= 0 && best.step != st.step && !best.params.empty()) {
      lw.params = best.params;
      say(cat("saving the best adapter, from step ", best.step, " (eval loss ", best.loss, ", ",
              best.checkpoint.filename().string(), "), not the last step's (early_stopping_patience)"));
    }
    require_finite_lora("adapter");
    save_adapter(out, lw, p.model);
    saved_any = true;
    if (p.save_gguf) save_adapter_gguf(out / "adapter.gguf", lw, model.cfg, p.model);
    write_file_atomic(out / "training_parameters.json", params_json.dump(2));
    write_file_atomic(out / "training_prompt.json", training_prompt.dump(2));
    log.write(out);
    render_graph_png(log, out / "training_graph.png", 1000, 500, p.lora_name);
  }
};

}  // namespace

MemoryPlanReport plan_training_memory(const TrainParams& p, RunControl& ctl) {
  validate(p);
  const TrainObserver quiet = [](const TrainEvent&) {};  // Run keeps a reference
  Run run(p, ctl, quiet);
  run.load_model_and_data(true);
  const LoraConfig lc = run.lora_config();
  const int64_t T = run.longest_batch_row();
  MemoryPlanReport r;
  try {
    r.choice = run.plan_memory_use(T, lc, p.ignore_memory_check);
  } catch (const Error& e) {
    r.refusal = e.what();
    r.choice = run.plan_memory_use(T, lc, true);
  }
  return r;
}

TrainSummary run_training(const TrainParams& p, RunControl& ctl, const TrainObserver& observer) {
  validate(p);
  apply_thread_count(p.threads);
  Run run(p, ctl, observer);
  run.params_json = to_json(p);
  run.training_prompt = training_prompt_json(data_options_from(p));
  run.oc.adam = {p.learning_rate, p.adam_beta1, p.adam_beta2, p.adam_epsilon, p.weight_decay};
  run.oc.sgd.momentum = p.sgd_momentum;
  run.oc.sgd.nesterov = p.sgd_nesterov;
  run.oc.sgd.weight_decay = p.weight_decay;
  run.oc.adagrad.weight_decay = p.weight_decay;
  run.oc.adafactor.weight_decay = p.weight_decay;
  run.oc.lion = {p.learning_rate, p.lion_beta1, p.lion_beta2, p.weight_decay};
  run.oc.max_grad_norm = p.max_grad_norm;
  run.oc.loraplus_lr_ratio = p.loraplus_lr_ratio;
  run.oc.neftune_alpha = p.neft_noise_alpha;
  run.oc.cancel = ctl.stop_flag();
  if (p.stop_at_loss > 0) ctl.set_stop_at_loss(p.stop_at_loss);
  if (p.stop_at_epoch > 0) ctl.set_stop_at_epoch(p.stop_at_epoch);
  run.prepare_output();
  TrainSummary sum;
  try {
    run.load_model_and_data();
    run.setup_lora();
    run.set_old_adapter_aside();
    const std::string why = run.loop();
    if (run.run_step() == 0 && why == "stop requested" && run.total_steps > 0) {
      throw Cancelled("stopped before the first step was done");
    }
    run.finish(why);
    run.drop_old_adapter();
    sum = {run.st.step, run.total_steps, run.st.loss, why, run.out, true, why == "stop requested"};
  } catch (const Cancelled& e) {
    // A stop before anything was trained: nothing to save, the folder is as it was.
    run.undo_output(e.what());
    sum = {0, run.total_steps, 0.0, e.what(), run.out, false, true};
    observer({TrainEvent::Kind::Done, cat(e.what(), "; nothing was trained, so no adapter was written"), {},
              run.total_steps});
    return sum;
  } catch (const std::exception& e) {
    run.undo_output(e.what());
    throw;
  }
  observer({TrainEvent::Kind::Done, cat("saved ", run.out.string(), " after ", run.run_step(), " steps (", sum.stop_reason, ")"),
            {}, run.total_steps});
  return sum;
}

}  // namespace tpro
