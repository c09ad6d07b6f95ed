// The Perplexity tab's server side beyond one job: the results table from evaluations.csv
// (each row with its index for editing), a row's comment saved back, and a queue of
// models x adapters evaluated on one text in one go, leaving out the combinations the CSV
// already holds for the same text and settings (model, adapter, text file, stride and
// max_length, the key Training PRO uses) unless redo is set. Not here: running the queue
// (job_manager.h), the CSV format (train/perplexity.h).
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>

#include "server/job_manager.h"
#include "server/sandbox.h"

namespace tpro {

constexpr size_t kMaxCommentBytes = 2000;   // a comment saved from the page
constexpr size_t kMaxQueueItems = 64;       // models x adapters in one queue

// GET /api/evaluations: {file, rows: [{row, model, lora, dataset, perplexity, stride, max_length,
// tokens, date, comment}]} in file order.
nlohmann::json evaluations_json(const PathSandbox& sb, const std::filesystem::path& csv);

// POST /api/evaluations/comment {row, model, lora, dataset, date, comment}: the row must still be
// that evaluation (409 otherwise); the comment is a string of at most kMaxCommentBytes without
// NUL or other control characters than tab and newlines. Returns the row as saved.
nlohmann::json save_evaluation_comment(const nlohmann::json& body, const PathSandbox& sb,
                                       const std::filesystem::path& csv);

// POST /api/perplexity/queue {models: [..], loras: [.., "" = the base model alone], text_file,
// stride?, max_length?, threads?, comment?, redo?}: each pair checked as POST /api/perplexity
// checks one (a 400 names its field). Starts the job (202 and its summary, with "skipped")
// or, when every pair was evaluated before, starts nothing: {started: false, skipped}.
nlohmann::json start_evaluation_queue(const nlohmann::json& body, const PathSandbox& sb,
                                      const std::filesystem::path& csv, JobManager& jobs, int* status);

}  // namespace tpro
