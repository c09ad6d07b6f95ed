// The results table, comments and the evaluation queue; see evaluations.h.
#include "server/evaluations.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "server/api_error.h"
#include "server/request.h"
#include "train/perplexity.h"

namespace tpro {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxModels = 16, kMaxLoras = 64;

json row_json(size_t index, const EvaluationRow& r) {
  return {{"row", index},         {"model", r.model},   {"lora", r.lora},   {"dataset", r.dataset},
          {"perplexity", r.perplexity}, {"stride", r.stride}, {"max_length", r.max_length},
          {"tokens", r.tokens},   {"date", r.date},     {"comment", r.comment}};
}

std::vector<EvaluationRow> read_rows(const PathSandbox& sb, const fs::path& csv) {
  sb.check_file(Root::Loras, csv, "evaluations.csv");
  try {
    return read_evaluation_csv(csv);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad_request("evaluations.csv", e.what());
  }
}

std::string text_of(const json& body, const char* key, bool required) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (required) bad_request(key, cat(key, " is required"));
    return "";
  }
  if (!it->is_string()) bad_request(key, cat(key, " expects a string, got ", it->dump()));
  return it->get<std::string>();
}

// A list of names: an array of strings (a single string is a list of one), 1..max, no repeats.
std::vector<std::string> names_of(const json& body, const char* key, size_t max, const char* what) {
  const auto it = body.find(key);
  std::vector<std::string> out;
  if (it != body.end() && it->is_string()) {
    out.push_back(it->get<std::string>());
  } else if (it != body.end() && it->is_array()) {
    if (it->size() > max) bad_request(key, cat(key, ": at most ", max, " ", what, " in one queue, got ", it->size()));
    for (const json& v : *it) {
      if (!v.is_string()) bad_request(key, cat(key, " expects a list of names, got ", v.dump()));
      if (std::find(out.begin(), out.end(), v.get<std::string>()) == out.end()) out.push_back(v.get<std::string>());
    }
  } else if (it != body.end() && !it->is_null()) {
    bad_request(key, cat(key, " expects a list of names, got ", it->dump()));
  }
  if (out.empty()) bad_request(key, cat(key, ": choose at least one ", what));
  return out;
}

using Key = std::tuple<std::string, std::string, std::string, int64_t, int64_t>;
Key key_of(const EvaluationRow& r) { return {r.model, r.lora, r.dataset, r.stride, r.max_length}; }
Key key_of(const PerplexityJob& j) { return {j.model_name, j.lora_name, j.dataset_name, j.stride, j.max_length}; }

}  // namespace

json evaluations_json(const PathSandbox& sb, const fs::path& csv) {
  json rows = json::array();
  size_t i = 0;
  for (const auto& r : read_rows(sb, csv)) rows.push_back(row_json(i++, r));
  return {{"file", csv.string()}, {"rows", rows}};
}

json save_evaluation_comment(const json& body, const PathSandbox& sb, const fs::path& csv) {
  for (const auto& [key, value] : body.items())
    if (key != "row" && key != "model" && key != "lora" && key != "dataset" && key != "date" && key != "comment")
      bad_request(key, cat("unknown key '", key, "' (expected row, model, lora, dataset, date, comment)"));
  const auto row = body.find("row");
  if (row == body.end() || !row->is_number_unsigned())
    bad_request("row", cat("row expects the row's index (a non-negative integer), got ",
                           row == body.end() ? std::string("nothing") : row->dump()));
  const std::string comment = text_of(body, "comment", true);
  if (comment.size() > kMaxCommentBytes)
    bad_request("comment", cat("comment is ", comment.size(), " bytes, more than the ", kMaxCommentBytes,
                               " a comment may have"));
  for (unsigned char c : comment)
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
      bad_request("comment", cat("comment holds a control character (code ", int(c), "); only tab and newlines are kept"));
  EvaluationRow expect;
  expect.model = text_of(body, "model", true);
  expect.lora = text_of(body, "lora", false);
  expect.dataset = text_of(body, "dataset", true);
  expect.date = text_of(body, "date", true);
  const size_t index = row->get<size_t>();
  const std::vector<EvaluationRow> rows = read_rows(sb, csv);
  if (index >= rows.size() || rows[index].model != expect.model || rows[index].lora != expect.lora || rows[index].dataset != expect.dataset ||
      rows[index].date != expect.date)
    conflict(cat("evaluations.csv changed since the page read it: row ", index, " is ",
                 index < rows.size() ? cat("now the evaluation of '", rows[index].model, "' at ", rows[index].date)
                                     : cat("gone (the file has ", rows.size(), " rows)"),
                 " (hint: reload the results and edit the comment again)"));
  try {
    set_evaluation_comment(csv, index, expect, comment);
  } catch (const Error& e) {
    conflict(e.what());  // changed between the check and the write
  }
  EvaluationRow saved = rows[index];
  saved.comment = comment;
  return row_json(index, saved);
}

json start_evaluation_queue(const json& body, const PathSandbox& sb, const fs::path& csv, JobManager& jobs,
                            int* status) {
  if (!body.is_object()) bad_request("", "expected a JSON object of evaluation settings");
  for (const auto& [key, value] : body.items()) {
    static const std::set<std::string> known = {"models", "loras", "text_file", "stride", "max_length",
                                                "threads", "comment", "redo"};
    if (!known.count(key))
      bad_request(key, cat("unknown key '", key, "' (expected models, loras, text_file, stride, max_length, threads, ",
                           "comment, redo)"));
  }
  const auto redo_it = body.find("redo");
  if (redo_it != body.end() && !redo_it->is_boolean() && !redo_it->is_null())
    bad_request("redo", cat("redo expects true or false, got ", redo_it->dump()));
  const bool redo = body.value("redo", false);
  const std::vector<std::string> models = names_of(body, "models", kMaxModels, "model");
  const std::vector<std::string> loras = names_of(body, "loras", kMaxLoras, "adapter (or the base model alone)");
  if (models.size() * loras.size() > kMaxQueueItems)
    bad_request("loras", cat(models.size(), " models x ", loras.size(), " adapters is ", models.size() * loras.size(),
                             " evaluations, more than the ", kMaxQueueItems, " one queue runs"));
  std::vector<PerplexityJob> jobs_to_run;
  json skipped = json::array();
  std::set<Key> seen;
  const std::vector<EvaluationRow> rows = read_rows(sb, csv);
  for (const std::string& m : models) {
    for (const std::string& l : loras) {
      json one = {{"model", m}, {"lora", l}};
      for (const char* k : {"text_file", "stride", "max_length", "threads", "comment"})
        if (body.contains(k)) one[k] = body[k];
      PerplexityJob job = perplexity_job_from_request(one, sb);
      job.csv = csv;
      if (!seen.insert(key_of(job)).second) continue;  // the same pair named twice (a model by two paths)
      const auto before = std::find_if(rows.rbegin(), rows.rend(), [&](const EvaluationRow& r) { return key_of(r) == key_of(job); });
      if (before != rows.rend() && !redo) {
        skipped.push_back({{"model", job.model_name}, {"lora", job.lora_name}, {"text_file", job.dataset_name},
                           {"stride", job.stride}, {"max_length", job.max_length},
                           {"perplexity", before->perplexity}, {"date", before->date}});
        continue;
      }
      jobs_to_run.push_back(std::move(job));
    }
  }
  if (jobs_to_run.empty()) {
    *status = 200;
    return {{"started", false}, {"skipped", skipped}};
  }
  json j = jobs.start_perplexity_queue(jobs_to_run, skipped);
  j["started"] = true;
  *status = 202;
  return j;
}

}  // namespace tpro
