// Draws training_graph.png with cairo; see graph.h. Axes use "nice" 1-2-5 tick steps; NaN
// losses break the line instead of dropping to zero; a series with one point gets a marker
// so it is still visible. Text uses cairo's toy font API (any installed sans face).
#include "train/graph.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numbers>
#include <vector>

#include "core/error.h"
#include "core/file.h"

namespace tpro {

namespace {

struct Axis {
  double lo = 0, hi = 1;
  double to_px(double v, double p0, double p1) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

double nice_step(double range, int target_ticks) {
  double raw = range / std::max(1, target_ticks);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

std::vector<double> ticks(const Axis& a, int target) {
  double step = nice_step(a.hi - a.lo, target);
  std::vector<double> out;
  for (double v = std::ceil(a.lo / step - 1e-9) * step; v <= a.hi + step * 1e-9; v += step)
    out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

// 0 .. max * 1.1, rounded up to a tick, so the highest point never touches the frame.
Axis value_axis(double max_value) {
  if (!(max_value > 0) || !std::isfinite(max_value)) return {0, 1};
  double hi = max_value * 1.1;
  double step = nice_step(hi, 5);
  return {0, std::ceil(hi / step) * step};
}

Axis epoch_axis(const RunLog& log) {
  if (log.empty()) return {0, 1};
  double lo = log.records().front().epoch, hi = lo;
  for (const auto& r : log.records()) lo = std::min(lo, r.epoch), hi = std::max(hi, r.epoch);
  if (hi - lo < 1e-9) {
    lo = std::max(0.0, lo - 0.5);
    hi = lo + 1.0;
  }
  return {lo, hi};
}

std::string tick_label(double v, bool scientific) {
  char buf[32];
  std::snprintf(buf, sizeof buf, scientific ? "%.1e" : "%g", v);
  return buf;
}

void set_rgb(cairo_t* cr, Rgb8 c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

void text_at(cairo_t* cr, const std::string& s, double x, double y, double align_x, double align_y) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s.c_str(), &ext);
  cairo_move_to(cr, x - ext.width * align_x - ext.x_bearing, y - ext.height * align_y - ext.y_bearing);
  cairo_show_text(cr, s.c_str());
}

struct Frame {
  PlotArea a;
  Axis x, loss, lr;
};

void draw_axes(cairo_t* cr, const Frame& f, bool has_lr) {
  cairo_set_font_size(cr, 12);
  cairo_set_line_width(cr, 1);
  for (double v : ticks(f.loss, 5)) {
    double y = std::round(f.loss.to_px(v, f.a.y1, f.a.y0)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, f.a.x0, y);
    cairo_line_to(cr, f.a.x1, y);
    cairo_stroke(cr);
    set_rgb(cr, kLossColor);
    text_at(cr, tick_label(v, false), f.a.x0 - 8, y, 1.0, 0.5);
  }
  for (double v : ticks(f.x, 8)) {
    double x = std::round(f.x.to_px(v, f.a.x0, f.a.x1)) + 0.5;
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    cairo_move_to(cr, x, f.a.y0);
    cairo_line_to(cr, x, f.a.y1);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    text_at(cr, tick_label(v, false), x, f.a.y1 + 8, 0.5, 0.0);
  }
  if (has_lr) {
    for (double v : ticks(f.lr, 5)) {
      set_rgb(cr, kLrColor);
      text_at(cr, tick_label(v, true), f.a.x1 + 8, f.lr.to_px(v, f.a.y1, f.a.y0), 0.0, 0.5);
    }
  }
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_rectangle(cr, f.a.x0 + 0.5, f.a.y0 + 0.5, f.a.x1 - f.a.x0 - 1, f.a.y1 - f.a.y0 - 1);
  cairo_stroke(cr);
}

void draw_axis_titles(cairo_t* cr, const Frame& f, int width, int height, const std::string& title) {
  cairo_set_font_size(cr, 13);
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  text_at(cr, "Epoch", (f.a.x0 + f.a.x1) / 2, height - 10, 0.5, 1.0);
  auto vertical = [&](const std::string& s, double x, Rgb8 c) {
    cairo_save(cr);
    cairo_translate(cr, x, (f.a.y0 + f.a.y1) / 2);
    cairo_rotate(cr, -std::numbers::pi / 2);
    set_rgb(cr, c);
    text_at(cr, s, 0, 0, 0.5, 0.5);
    cairo_restore(cr);
  };
  vertical("Loss", 16, kLossColor);
  vertical("Learning rate", width - 14, kLrColor);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
  cairo_set_font_size(cr, 16);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  text_at(cr, title.empty() ? "Loss and learning rate vs epoch" : title, width / 2.0, 14, 0.5, 0.0);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

// One series: a polyline through the finite points (gaps at NaN), markers when asked or alone.
void draw_series(cairo_t* cr, const Frame& f, const std::vector<std::pair<double, double>>& pts, const Axis& y,
                 Rgb8 color, bool markers) {
  set_rgb(cr, color);
  cairo_set_line_width(cr, 2.5);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  bool pen_down = false;
  int n_finite = 0;
  for (const auto& [ex, v] : pts) {
    if (!std::isfinite(v)) {
      pen_down = false;
      continue;
    }
    ++n_finite;
    double px = f.x.to_px(ex, f.a.x0, f.a.x1), py = y.to_px(v, f.a.y1, f.a.y0);
    if (pen_down) cairo_line_to(cr, px, py);
    else cairo_move_to(cr, px, py);
    pen_down = true;
  }
  cairo_stroke(cr);
  if (!markers && n_finite > 1) return;
  for (const auto& [ex, v] : pts) {
    if (!std::isfinite(v)) continue;
    cairo_arc(cr, f.x.to_px(ex, f.a.x0, f.a.x1), y.to_px(v, f.a.y1, f.a.y0), 4, 0, 2 * std::numbers::pi);
    cairo_fill(cr);
  }
}

// Each marker: a dashed vertical line across the plot, its label beside the line's top (left
// of it when the line is in the right third, so it stays inside the frame).
void draw_markers(cairo_t* cr, const Frame& f, const RunLog& log) {
  cairo_set_font_size(cr, 11);
  const double dash[] = {5.0, 3.0};
  int n = 0;
  for (const auto& r : log.records()) {
    for (const LogMarker& m : r.markers) {
      if (!std::isfinite(m.epoch)) continue;
      const double x = std::round(f.x.to_px(m.epoch, f.a.x0, f.a.x1)) + 0.5;
      set_rgb(cr, kMarkerColor);
      cairo_set_line_width(cr, 1.5);
      cairo_set_dash(cr, dash, 2, 0);
      cairo_move_to(cr, x, f.a.y0);
      cairo_line_to(cr, x, f.a.y1);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      const bool left = x > f.a.x0 + (f.a.x1 - f.a.x0) * 2 / 3;
      const double y = f.a.y1 - 8 - 14.0 * (n++ % 3);  // near the bottom, clear of the legend; staggered
      text_at(cr, m.label, left ? x - 4 : x + 4, y, left ? 1.0 : 0.0, 1.0);
    }
  }
}

constexpr double kLegendW = 130, kLegendRow = 18;

void draw_legend(cairo_t* cr, const Frame& f, const std::vector<std::pair<std::string, Rgb8>>& items) {
  cairo_set_font_size(cr, 12);
  double w = kLegendW, h = 8 + kLegendRow * double(items.size());
  double x = f.a.x1 - w - 10, y = f.a.y0 + 10;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
  cairo_rectangle(cr, x, y, w, h);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (size_t i = 0; i < items.size(); ++i) {
    double cy = y + 13 + kLegendRow * double(i);
    set_rgb(cr, items[i].second);
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, x + 8, cy);
    cairo_line_to(cr, x + 30, cy);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    text_at(cr, items[i].first, x + 38, cy, 0.0, 0.5);
  }
}

void draw(cairo_t* cr, const RunLog& log, int width, int height, const std::string& title) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  std::vector<std::pair<double, double>> loss, eval, lr;
  double max_loss = 0, max_lr = 0;
  for (const auto& r : log.records()) {
    loss.emplace_back(r.epoch, r.loss);
    lr.emplace_back(r.epoch, r.lr);
    if (r.eval_loss) eval.emplace_back(r.epoch, *r.eval_loss);
    if (std::isfinite(r.loss)) max_loss = std::max(max_loss, r.loss);
    if (r.eval_loss && std::isfinite(*r.eval_loss)) max_loss = std::max(max_loss, *r.eval_loss);
    if (std::isfinite(r.lr)) max_lr = std::max(max_lr, r.lr);
  }
  Frame f{graph_plot_area(width, height), epoch_axis(log), value_axis(max_loss), value_axis(max_lr)};
  draw_axes(cr, f, max_lr > 0);
  draw_axis_titles(cr, f, width, height, title);
  if (log.empty()) {
    cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
    cairo_set_font_size(cr, 14);
    text_at(cr, "no steps logged yet", (f.a.x0 + f.a.x1) / 2, (f.a.y0 + f.a.y1) / 2, 0.5, 0.5);
    return;
  }
  cairo_save(cr);
  cairo_rectangle(cr, f.a.x0, f.a.y0, f.a.x1 - f.a.x0, f.a.y1 - f.a.y0);
  cairo_clip(cr);
  draw_series(cr, f, lr, f.lr, kLrColor, false);
  draw_series(cr, f, loss, f.loss, kLossColor, false);
  if (!eval.empty()) draw_series(cr, f, eval, f.loss, kEvalLossColor, true);
  draw_markers(cr, f, log);
  cairo_restore(cr);
  std::vector<std::pair<std::string, Rgb8>> legend = {{"Loss", kLossColor}};
  if (!eval.empty()) legend.push_back({"Eval loss", kEvalLossColor});
  legend.push_back({"Learning rate", kLrColor});
  draw_legend(cr, f, legend);
}

cairo_status_t append_png(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

PlotArea graph_plot_area(int width, int height) {
  return {80.0, 44.0, double(width) - 90.0, double(height) - 56.0};
}

double graph_epoch_x(const RunLog& log, double epoch, int width, int height) {
  const PlotArea a = graph_plot_area(width, height);
  return std::round(epoch_axis(log).to_px(epoch, a.x0, a.x1)) + 0.5;
}

PlotArea graph_legend_area(int width, int height) {
  PlotArea a = graph_plot_area(width, height);
  return {a.x1 - kLegendW - 10, a.y0 + 10, a.x1 - 10, a.y0 + 10 + 8 + kLegendRow * 3};
}

void render_graph_png(const RunLog& log, const fs::path& path, int width, int height, const std::string& title) {
  if (width < 200 || width > 8000 || height < 150 || height > 8000)
    fail("graph size must be within [200, 8000] x [150, 8000] pixels, got ", width, " x ", height);
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height), cairo_surface_destroy);
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS)
    fail("cannot create a ", width, " x ", height, " image: ", cairo_status_to_string(cairo_surface_status(surface.get())));
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
  draw(cr.get(), log, width, height, title);
  if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS)
    fail("drawing ", path.string(), " failed: ", cairo_status_to_string(cairo_status(cr.get())));
  cairo_surface_flush(surface.get());
  std::string png;
  cairo_status_t st = cairo_surface_write_to_png_stream(surface.get(), append_png, &png);
  if (st != CAIRO_STATUS_SUCCESS) fail("cannot encode ", path.string(), " as PNG: ", cairo_status_to_string(st));
  write_file_atomic(path, png);
}

}  // namespace tpro
