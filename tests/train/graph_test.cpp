// train/graph: the PNG reads back at the requested size, the loss, eval-loss and LR series
// show up inside the plot area in their colours (and eval only when logged), and empty or
// one-point logs still give an image; markers (the batch order's switch) are dashed vertical
// lines in their colour at their epoch.
#include <cairo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>

#include "common/test_util.h"
#include "core/error.h"
#include "core/file.h"
#include "train/graph.h"

using namespace tpro;

namespace {

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("tpro_graph_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

struct Png {
  int width = 0, height = 0;
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> s{nullptr, cairo_surface_destroy};
  // ARGB32 is native-endian 0xAARRGGBB; the image is opaque so no un-premultiplying is needed.
  Rgb8 at(int x, int y) const {
    const unsigned char* row = cairo_image_surface_get_data(s.get()) + y * cairo_image_surface_get_stride(s.get());
    uint32_t px = reinterpret_cast<const uint32_t*>(row)[x];
    return {uint8_t(px >> 16), uint8_t(px >> 8), uint8_t(px)};
  }
};

Png load_png(const fs::path& path) {
  Png p;
  p.s.reset(cairo_image_surface_create_from_png(path.c_str()));
  EXPECT_EQ(cairo_surface_status(p.s.get()), CAIRO_STATUS_SUCCESS) << path;
  p.width = cairo_image_surface_get_width(p.s.get());
  p.height = cairo_image_surface_get_height(p.s.get());
  return p;
}

bool near(Rgb8 a, Rgb8 b) {
  return std::abs(a.r - b.r) <= 6 && std::abs(a.g - b.g) <= 6 && std::abs(a.b - b.b) <= 6;
}

struct Counts {
  int loss = 0, eval = 0, lr = 0, non_white = 0;
};

// Pixels of each series colour inside the plot frame, not counting the legend's samples.
Counts count_in_plot(const Png& png) {
  PlotArea a = graph_plot_area(png.width, png.height);
  PlotArea legend = graph_legend_area(png.width, png.height);
  Counts c;
  for (int y = int(a.y0) + 2; y < int(a.y1) - 2; ++y) {
    for (int x = int(a.x0) + 2; x < int(a.x1) - 2; ++x) {
      if (x >= legend.x0 - 1 && x <= legend.x1 + 1 && y >= legend.y0 - 1 && y <= legend.y1 + 1) continue;
      Rgb8 px = png.at(x, y);
      c.loss += near(px, kLossColor);
      c.eval += near(px, kEvalLossColor);
      c.lr += near(px, kLrColor);
      c.non_white += !(px.r == 255 && px.g == 255 && px.b == 255);
    }
  }
  return c;
}

RunLog sample_log(bool with_eval) {
  RunLog log;
  for (int i = 1; i <= 60; ++i) {
    LogRecord r;
    r.step = i;
    r.epoch = i / 20.0;
    r.loss = 2.5 - 1.2 * (1 - std::exp(-i / 15.0)) + 0.05 * std::sin(i);
    r.lr = i <= 6 ? 3e-4 * i / 6 : 3e-4 * (60 - i) / 54.0;
    log.add(r);
    if (with_eval && i % 10 == 0) log.add_eval(i, r.epoch, r.loss + 0.2);
  }
  return log;
}

}  // namespace

TEST(Graph, SeriesAppearInTheirColours) {
  fs::path dir = temp_dir();
  render_graph_png(sample_log(true), dir / "g.png", 1000, 500, "my-lora LR and Loss vs Epoch");
  Png png = load_png(dir / "g.png");
  EXPECT_EQ(png.width, 1000);
  EXPECT_EQ(png.height, 500);
  Counts c = count_in_plot(png);
  EXPECT_GT(c.loss, 300);
  EXPECT_GT(c.lr, 300);
  EXPECT_GT(c.eval, 30);
  // Outside the plot area (margins) the series must not be drawn: check a column left of it.
  PlotArea a = graph_plot_area(1000, 500);
  int stray = 0;
  for (int y = int(a.y0); y < int(a.y1); ++y) stray += near(png.at(int(a.x0) - 3, y), kLrColor);
  EXPECT_EQ(stray, 0);
  fs::remove_all(dir);
}

TEST(Graph, EvalSeriesOnlyWhenLogged) {
  fs::path dir = temp_dir();
  render_graph_png(sample_log(false), dir / "g.png", 640, 360);
  Png png = load_png(dir / "g.png");
  EXPECT_EQ(png.width, 640);
  EXPECT_EQ(png.height, 360);
  Counts c = count_in_plot(png);
  EXPECT_GT(c.loss, 100);
  EXPECT_EQ(c.eval, 0);
  fs::remove_all(dir);
}

TEST(Graph, EmptyAndOnePointLogs) {
  fs::path dir = temp_dir();
  render_graph_png(RunLog{}, dir / "empty.png");
  Png empty = load_png(dir / "empty.png");
  EXPECT_EQ(empty.width, 1000);
  EXPECT_EQ(empty.height, 500);
  Counts ce = count_in_plot(empty);
  EXPECT_EQ(ce.loss + ce.lr, 0);
  RunLog one;
  LogRecord r;
  r.step = 1;
  r.epoch = 0.5;
  r.loss = 1.5;
  r.lr = 1e-4;
  one.add(r);
  render_graph_png(one, dir / "one.png");
  Counts c1 = count_in_plot(load_png(dir / "one.png"));
  EXPECT_GT(c1.loss, 10);  // a marker, since a single point has no line
  EXPECT_GT(c1.lr, 10);
  RunLog nan_loss;
  r.loss = NAN;
  nan_loss.add(r);
  EXPECT_NO_THROW(render_graph_png(nan_loss, dir / "nan.png"));
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++files;
  EXPECT_EQ(files, 3);  // no temp files left
  fs::remove_all(dir);
}

TEST(Graph, RejectsSillySizes) {
  EXPECT_ERROR_HAS(render_graph_png(RunLog{}, temp_dir() / "x.png", 10, 10), "got 10 x 10");
  fs::remove_all(temp_dir());
}

TEST(Graph, MarkersAreVerticalLinesAtTheirEpoch) {
  fs::path dir = temp_dir();
  RunLog log = sample_log(false);
  RunLog marked;
  for (LogRecord r : log.records()) {
    if (r.step == 21) r.markers.push_back({"batch_order", "order: sequential", 1.0});
    marked.add(r);
  }
  render_graph_png(marked, dir / "m.png", 1000, 500);
  render_graph_png(log, dir / "plain.png", 1000, 500);
  const Png m = load_png(dir / "m.png"), plain = load_png(dir / "plain.png");
  const PlotArea a = graph_plot_area(1000, 500);
  const int x = int(graph_epoch_x(marked, 1.0, 1000, 500));
  auto column = [&](const Png& p, int cx) {
    int n = 0;
    for (int y = int(a.y0) + 2; y < int(a.y1) - 2; ++y) n += near(p.at(cx, y), kMarkerColor);
    return n;
  };
  // Dashed (5 on, 3 off) over the plot's height: well over half of the column, in the marker colour.
  EXPECT_GT(column(m, x), int((a.y1 - a.y0) * 0.4));
  EXPECT_EQ(column(plain, x), 0);
  EXPECT_EQ(column(m, x - 20), 0) << "one line, not a band";
  // The label sits beside the line: marker-coloured pixels just right of it, near the bottom.
  int label = 0;
  for (int y = int(a.y1) - 30; y < int(a.y1) - 2; ++y)
    for (int dx = 3; dx < 80; ++dx) label += near(m.at(x + dx, y), kMarkerColor);
  EXPECT_GT(label, 20);
  fs::remove_all(dir);
}
