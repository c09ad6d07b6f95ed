// Training parameters as text for people to keep or run: the YAML file `tpro train --config`
// reads (one flat mapping, the keys of the field table) and the equivalent `tpro train`
// command line (the table's flags, each argument quoted for a POSIX shell). Both hold only the
// parameters that differ from the defaults, group by group, so they read back (YAML
// through apply_yaml_text, flags through bind_cli) to the same TrainParams. Not here: parsing
// (params.h, params_cli.h).
#pragma once
#include <string>
#include <vector>

#include "train/params.h"

namespace tpro {

// "model: \"/m/tiny\"\nlora_rank: 8\n...", with a comment line per parameter group.
std::string params_to_yaml(const TrainParams& p);
// {"tpro", "train", "--model", "/m/tiny", "--lora-rank", "8", "--no-add-bos-token", ...}
std::vector<std::string> params_to_argv(const TrainParams& p);
// 'it'\''s' for a POSIX shell; plain words ([A-Za-z0-9_@%+=:,./-]) stay as they are.
std::string shell_quote(const std::string& s);
std::string shell_command(const std::vector<std::string>& argv);  // each quoted, joined by spaces

}  // namespace tpro
