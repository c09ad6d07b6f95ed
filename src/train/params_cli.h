// Binds every TrainParams field to a CLI11 option (lora_rank -> --lora-rank, bools also get
// --no-<name>) plus --config FILE.yaml. Precedence, lowest first: defaults, copy_params_from
// (from the YAML or the flag), the YAML file, then flags given on the command line. Values go
// through parse_field_value(), so a flag accepts exactly what YAML and JSON accept.
#pragma once
#include <CLI/CLI.hpp>

#include "core/error.h"
#include "train/params.h"

namespace tpro {

// Adds the options to `app` and installs its parse_complete_callback, which fills *out (and
// runs validate() when validate_after) once parsing succeeded; errors surface from
// app->parse() as tpro::Error. Do not replace that callback; act on *out in the Runner.
void bind_cli(CLI::App* app, TrainParams* out, bool validate_after = true);

}  // namespace tpro
