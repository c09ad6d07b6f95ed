// PEFT adapter save/load; see peft_adapter.h.
#include "formats/peft_adapter.h"

#include <map>
#include <optional>

#include "core/error.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "io/torch_pickle.h"

namespace tpro {

namespace {
// The tensors and the config are two files, each renamed into place: an overwrite interrupted
// between the two leaves the new tensors beside the old config. The tensors carry the layout
// they were saved with so that load names such a pair instead of blaming the base model. Only
// rank and targets: lora_alpha and dropout stay editable in adapter_config.json.
constexpr const char* kStampRank = "tpro.lora_r";
constexpr const char* kStampTargets = "tpro.target_modules";

// The tensor file of a PEFT folder: adapter_model.safetensors, else the adapter_model.bin
// (torch.save) that text-generation-webui's Training PRO and PEFT before 0.4 write.
struct AdapterTensors {
  fs::path path;
  std::optional<SafeTensorsFile> st;
  std::optional<TorchFile> pt;

  explicit AdapterTensors(const fs::path& dir) {
    path = dir / "adapter_model.safetensors";
    if (fs::exists(path)) {
      st.emplace(path);
      return;
    }
    path = dir / "adapter_model.bin";
    if (!fs::exists(path))
      fail((dir / "adapter_model.safetensors").string(), ": not found (nor adapter_model.bin; hint: a PEFT adapter ",
           "folder holds adapter_config.json and adapter_model.safetensors or adapter_model.bin)");
    pt.emplace(path);
  }
  std::vector<std::string> names() const { return st ? st->names() : pt->names(); }
  TensorView view(const std::string& name) const { return st ? st->view(name) : pt->view(name); }
  std::map<std::string, std::string> metadata() const { return st ? st->metadata() : std::map<std::string, std::string>{}; }
};

// A DoRA magnitude vector into its slot (seen records it under its canonical name).
void load_magnitude(LoraWeights& lw, const LlamaConfig& cfg, const AdapterTensors& f, const fs::path& st_path,
                    const std::string& name, int64_t layer, const std::string& module, std::map<std::string, bool>* seen) {
  if (!lw.cfg.dora)
    fail(st_path.string(), ": tensor ", name, " is a DoRA magnitude but adapter_config.json does not say use_dora: true",
         " (hint: the config and the tensors come from different adapters)");
  Proj p;
  const std::string proj = module.substr(module.find('.') + 1);
  if (layer >= cfg.n_layer || !proj_from_name(proj, &p) || module != proj_module(p))
    fail(st_path.string(), ": tensor ", name, ": no module ", module, " in layer ", layer, " of a ", cfg.n_layer,
         "-layer model");
  const LoraSlot* s = lw.find(layer, p);
  if (!s) fail(st_path.string(), ": tensor ", name, " targets ", proj, ", which adapter_config.json does not list");
  const TensorView t = f.view(name);
  if (t.shape != std::vector<int64_t>{s->out})
    fail(st_path.string(), ": tensor ", name, " has shape ", shape_str(t.shape), ", expected ", shape_str({s->out}),
         " (hint: the adapter does not fit this base model)");
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    fail(st_path.string(), ": tensor ", name, " has dtype ", dtype_name(t.dtype));
  to_f32(lw.params.data() + s->m, t.data, t.dtype, size_t(t.numel()));
  (*seen)[peft_magnitude_name(layer, module, lw.cfg.hf_prefix)] = true;
}

std::string joined_targets(const LoraConfig& c) {
  std::string s;
  for (const auto& t : c.target_names()) s += (s.empty() ? "" : ",") + t;
  return s;
}
}  // namespace

void save_adapter(const fs::path& dir, const LoraWeights& lw, const std::string& base_model) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create adapter folder ", dir.string(), ": ", ec.message());
  SafeTensorsWriter w;
  for (const auto& s : lw.slots) {
    const std::string& hp = lw.cfg.hf_prefix;
    w.add_f32(peft_tensor_name(s.layer, proj_module(s.proj), true, hp), {lw.cfg.r, s.in}, lw.params.data() + s.a);
    w.add_f32(peft_tensor_name(s.layer, proj_module(s.proj), false, hp), {s.out, lw.cfg.r}, lw.params.data() + s.b);
    if (lw.cfg.dora) w.add_f32(peft_magnitude_name(s.layer, proj_module(s.proj), hp), {s.out}, lw.params.data() + s.m);
  }
  // PEFT's modules_to_save: the trained copies whole, as PEFT names them.
  if (lw.embed_at >= 0)
    w.add_f32(peft_saved_module_tensor_name("embed_tokens"), {lw.vocab, lw.n_embd}, lw.params.data() + lw.embed_at);
  if (lw.head_at >= 0)
    w.add_f32(peft_saved_module_tensor_name("lm_head"), {lw.vocab, lw.n_embd}, lw.params.data() + lw.head_at);
  w.set_metadata("format", "pt");
  w.set_metadata(kStampRank, std::to_string(lw.cfg.r));
  w.set_metadata(kStampTargets, joined_targets(lw.cfg));
  AdapterConfig c;
  c.r = lw.cfg.r;
  c.lora_alpha = lw.cfg.alpha;
  c.lora_dropout = lw.cfg.dropout;
  c.use_rslora = lw.cfg.rslora;
  c.use_dora = lw.cfg.dora;
  c.target_modules = lw.cfg.target_names();
  c.modules_to_save = saved_module_names(lw.cfg);
  c.base_model_name_or_path = base_model;
  // Tensors first, config last: a folder with a config always has its tensors (a fresh save
  // interrupted leaves no config, so load says "not found"; an overwrite, see kStampRank).
  w.write(dir / "adapter_model.safetensors");
  write_file_atomic(dir / "adapter_config.json", adapter_config_json(c));
}

LoraWeights load_adapter(const fs::path& dir, const Model& model) { return load_adapter(dir, model.cfg); }

LoraWeights load_adapter(const fs::path& dir, const LlamaConfig& cfg) {
  const fs::path cfg_path = dir / "adapter_config.json";
  if (!fs::exists(cfg_path))
    fail(cfg_path.string(), ": not found (hint: pass a PEFT adapter folder with adapter_config.json)");
  AdapterConfig ac = parse_adapter_config(read_file(cfg_path), cfg_path.string());
  LoraConfig lc;
  lc.r = ac.r;
  lc.alpha = ac.lora_alpha;
  lc.dropout = ac.lora_dropout;
  lc.rslora = ac.use_rslora;
  lc.dora = ac.use_dora;
  // These initialisations change the base weights too (PiSSA and OLoRA subtract the adapter's
  // start, LoftQ and CorDA rewrite it); PEFT's saved adapter then only fits that modified base,
  // unless it was converted (path_initial_model_for_weight_conversion), which records true.
  for (const char* m : {"pissa", "olora", "loftq", "corda"})
    if (ac.init_lora_weights.rfind(m, 0) == 0)
      fail(cfg_path.string(), ": init_lora_weights is \"", ac.init_lora_weights, "\": the adapter fits the base model ",
           m, " rewrote, not the original one (hint: save it from PEFT with ",
           "path_initial_model_for_weight_conversion, which makes an adapter for the original base)");
  for (const auto& t : ac.target_modules) {
    Proj p;
    if (!proj_from_name(t, &p))
      fail(cfg_path.string(), ": target module \"", t, "\" is not a Llama projection (hint: tpro adapts q_proj, ",
           "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
    lc.targets[size_t(p)] = true;
  }
  for (const auto& m : ac.modules_to_save) (m == "lm_head" ? lc.save_head : lc.save_embed) = true;
  const AdapterTensors f(dir);
  const fs::path& st_path = f.path;
  const auto md = f.metadata();
  const auto stamp_r = md.find(kStampRank), stamp_t = md.find(kStampTargets);
  if (stamp_r != md.end() && stamp_t != md.end() &&
      (stamp_r->second != std::to_string(lc.r) || stamp_t->second != joined_targets(lc)))
    fail(dir.string(), ": ", st_path.filename().string(), " was saved with rank ", stamp_r->second, " on ", stamp_t->second,
         " but adapter_config.json says rank ", lc.r, " on ", joined_targets(lc),
         " (hint: the two files come from different saves, e.g. an interrupted overwrite; save the adapter again)");
  Rng rng(0);
  LoraWeights lw = make_lora(cfg, lc, rng);
  std::fill(lw.params.begin(), lw.params.end(), 0.0f);
  std::map<std::string, bool> seen;
  for (const auto& name : f.names()) {
    int64_t layer;
    std::string module;
    bool is_a;
    if (parse_peft_magnitude_name(name, &layer, &module)) {
      load_magnitude(lw, cfg, f, st_path, name, layer, module, &seen);
      continue;
    } else if (const std::string saved = parse_peft_saved_module_tensor_name(name); !saved.empty()) {
      const int64_t at = saved == "lm_head" ? lw.head_at : lw.embed_at;
      if (at < 0)
        fail(st_path.string(), ": tensor ", name, " is a trained copy of ", saved, ", which adapter_config.json's ",
             "modules_to_save does not list (hint: the two files come from different saves)");
      TensorView t = f.view(name);
      const std::vector<int64_t> want = {cfg.vocab_size, cfg.n_embd};
      if (t.shape != want)
        fail(st_path.string(), ": tensor ", name, " has shape ", shape_str(t.shape), ", expected ", shape_str(want),
             " (vocab_size, hidden_size of the base model; hint: the adapter was trained on another base model)");
      if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
        fail(st_path.string(), ": tensor ", name, " has dtype ", dtype_name(t.dtype));
      to_f32(lw.params.data() + at, t.data, t.dtype, size_t(t.numel()));
      seen[name] = true;
      continue;
    }
    if (!parse_peft_tensor_name(name, &layer, &module, &is_a))
      fail(st_path.string(), ": tensor ", name, " is not a PEFT LoRA weight of a Llama layer");
    if (layer >= cfg.n_layer)
      fail(st_path.string(), ": tensor ", name, " is for layer ", layer, " but the model has ", cfg.n_layer,
           " layers (hint: the adapter was trained on another base model)");
    Proj p;
    const std::string proj = module.substr(module.find('.') + 1);
    if (!proj_from_name(proj, &p) || module != proj_module(p))
      fail(st_path.string(), ": tensor ", name, ": unknown module ", module);
    const LoraSlot* s = lw.find(layer, p);
    if (!s) fail(st_path.string(), ": tensor ", name, " targets ", proj, ", which adapter_config.json does not list");
    TensorView t = f.view(name);
    const std::vector<int64_t> want = is_a ? std::vector<int64_t>{lc.r, s->in} : std::vector<int64_t>{s->out, lc.r};
    if (t.shape != want)
      fail(st_path.string(), ": tensor ", name, " has shape ", shape_str(t.shape), ", expected ", shape_str(want),
           " (r=", lc.r, " from adapter_config.json; hint: the adapter does not fit this base model)");
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
      fail(st_path.string(), ": tensor ", name, " has dtype ", dtype_name(t.dtype));
    to_f32(lw.params.data() + (is_a ? s->a : s->b), t.data, t.dtype, size_t(t.numel()));
    seen[peft_tensor_name(layer, module, is_a, lw.cfg.hf_prefix)] = true;  // however the file spelled it
  }
  for (const auto& s : lw.slots)
    for (bool a : {true, false}) {
      const std::string n = peft_tensor_name(s.layer, proj_module(s.proj), a, lw.cfg.hf_prefix);
      if (!seen.count(n)) fail(st_path.string(), ": missing tensor ", n);
    }
  if (lc.dora)
    for (const auto& s : lw.slots)
      if (!seen.count(peft_magnitude_name(s.layer, proj_module(s.proj), lw.cfg.hf_prefix)))
        fail(st_path.string(), ": missing tensor ", peft_magnitude_name(s.layer, proj_module(s.proj), lw.cfg.hf_prefix),
             " (adapter_config.json says use_dora: true; hint: a DoRA adapter holds a magnitude vector per",
             " adapted module)");
  for (const auto& m : saved_module_names(lc))
    if (!seen.count(peft_saved_module_tensor_name(m)))
      fail(st_path.string(), ": missing tensor ", peft_saved_module_tensor_name(m), " (", m,
           " is in adapter_config.json's modules_to_save)");
  return lw;
}

}  // namespace tpro
