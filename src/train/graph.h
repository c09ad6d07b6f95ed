// The training graph PNG (training_graph.png): loss on the left axis and learning rate on the
// right axis against epochs, eval loss as a second loss series when the log has one, the log's
// markers (the batch order's switch) as labelled dashed vertical lines, with ticks, grid,
// legend and title. Drawn with cairo's image surface and toy text API; written
// atomically. Not here: the JSON logs (run_log.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "train/run_log.h"

namespace tpro {

struct Rgb8 {
  uint8_t r, g, b;
};
// Series colours (matplotlib's red, orange and blue), exact 8-bit values so tests can find them.
inline constexpr Rgb8 kLossColor{214, 39, 40};
inline constexpr Rgb8 kEvalLossColor{255, 127, 14};
inline constexpr Rgb8 kLrColor{31, 119, 180};
inline constexpr Rgb8 kMarkerColor{148, 103, 189};  // matplotlib's purple

// The x pixel of an epoch on the graph of `log` (what a marker at that epoch is drawn at).
double graph_epoch_x(const RunLog& log, double epoch, int width, int height);

struct PlotArea {
  double x0, y0, x1, y1;  // pixels: left, top, right, bottom of the data area
};
PlotArea graph_plot_area(int width, int height);
// The legend box inside the plot area's top-right corner (sized for three entries).
PlotArea graph_legend_area(int width, int height);

// Renders the log into a PNG of width x height pixels at path (temp file + rename). Empty and
// one-point logs give a valid image. Throws Error on sizes outside [200, 8000] x [150, 8000]
// or when cairo fails.
void render_graph_png(const RunLog& log, const std::filesystem::path& path, int width = 1000, int height = 500,
                      const std::string& title = "");

}  // namespace tpro
