// `tpro train`: every parameter as a flag, from a YAML config (--config), or copied from a
// previous adapter (--copy-params-from); Ctrl-C or a control.json in the adapter folder
// stops the run and still saves.
#include "cli/command.h"
#include "cli/console.h"
#include "train/params_cli.h"
#include "train/trainer.h"

namespace tpro::cli {
namespace {

Runner setup(CLI::App* sub) {
  auto p = std::make_shared<TrainParams>();
  bind_cli(sub, p.get());
  sub->footer("Stop or steer a running job: Ctrl-C (saves first), or write control.json into the adapter folder:\n"
              "  {\"stop\": true}  {\"save_now\": true}  {\"stop_at_loss\": 1.2}  {\"stop_at_epoch\": 2}");
  return [p] {
    RunControl ctl;
    SignalStopper stopper(ctl);
    TrainSummary s = run_training(*p, ctl, console_observer());
    return s.saved ? 0 : 1;  // stopped before the first step ended: nothing written
  };
}

TPRO_COMMAND("train", "Train a LoRA adapter on a base model", setup);

}  // namespace
}  // namespace tpro::cli
