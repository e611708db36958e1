// The training part of the report: loss (train raw and smoothed, validation) against steps and
// tokens, learning rate, gradient norm, throughput and MFU, every run overlaid; a summary table.
#include <algorithm>
#include <cmath>
#include <functional>

#include "report/page.h"
#include "report/svg.h"

namespace mindllm::report {

namespace {

bool any_finite(const std::vector<double>& v) {
  return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}

// The points of (x, y) where both are finite (validation losses are logged on some steps only).
Line finite_points(const std::vector<double>& x, const std::vector<double>& y) {
  Line l;
  for (size_t i = 0; i < x.size() && i < y.size(); i++)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) l.x.push_back(x[i]), l.y.push_back(y[i]);
  return l;
}

// One loss plot: per run the raw train loss (faint when smoothed), the smoothed loss and the
// validation loss, against `x_of(run)`.
LinePlot loss_plot(const std::vector<RunMetrics>& runs, double smooth, const std::string& x_label,
                   const std::function<const std::vector<double>&(const RunMetrics&)>& x_of) {
  LinePlot p{"Loss", x_label, "loss", {}, false};
  for (size_t i = 0; i < runs.size(); i++) {
    const RunMetrics& r = runs[i];
    const std::string c = palette_color(i);
    Line raw{r.name + (smooth > 0 ? " train (raw)" : " train"), x_of(r), r.loss, c};
    raw.mark_non_finite = true;
    if (smooth > 0) raw.opacity = 0.3, raw.width = 1.0;
    p.lines.push_back(raw);
    if (smooth > 0) p.lines.push_back({r.name + " train (smoothed)", x_of(r), smooth_ema(r.loss, smooth), c});
    Line val = finite_points(x_of(r), r.val_loss);
    if (!val.x.empty()) {
      val.label = r.name + " val";
      val.color = c, val.dashed = true, val.markers = true;
      p.lines.push_back(val);
    }
  }
  return p;
}

LinePlot metric_plot(const std::vector<RunMetrics>& runs, const std::string& title, const std::string& y_label,
                     const std::function<const std::vector<double>&(const RunMetrics&)>& y_of) {
  LinePlot p{title, "step", y_label, {}, false};
  for (size_t i = 0; i < runs.size(); i++)
    p.lines.push_back({runs[i].name, runs[i].step, y_of(runs[i]), palette_color(i)});
  return p;
}

// Log scale when the positive values span more than 50x (gradient norms early in training).
bool wide_range(const std::vector<RunMetrics>& runs,
                const std::function<const std::vector<double>&(const RunMetrics&)>& y_of) {
  double lo = INFINITY, hi = 0;
  for (const RunMetrics& r : runs)
    for (double v : y_of(r)) {
      if (!std::isfinite(v)) continue;
      if (v <= 0) return false;
      lo = std::min(lo, v), hi = std::max(hi, v);
    }
  return hi > 0 && hi / lo > 50;
}

double last_finite(const std::vector<double>& v) {
  for (size_t i = v.size(); i-- > 0;)
    if (std::isfinite(v[i])) return v[i];
  return NAN;
}

double median_finite(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return NAN;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

std::string summary_table(const std::vector<RunMetrics>& runs, double smooth) {
  std::string h =
      "<table class=\"runs\"><tr><th>run</th><th>steps logged</th><th>last step</th><th>last train loss</th>";
  if (smooth > 0) h += "<th>smoothed</th>";
  h += "<th>best val loss (step)</th><th>last val loss</th><th>tokens seen</th><th>median tokens/s</th>"
       "<th>non-finite losses</th><th>skipped updates</th><th>final checkpoint</th></tr>\n";
  for (size_t i = 0; i < runs.size(); i++) {
    const RunMetrics& r = runs[i];
    size_t best = r.val_loss.size();
    for (size_t k = 0; k < r.val_loss.size(); k++)
      if (std::isfinite(r.val_loss[k]) && (best == r.val_loss.size() || r.val_loss[k] < r.val_loss[best])) best = k;
    h += "<tr><td><span class=\"swatch\" style=\"background:" + palette_color(i) + "\"></span>" + xml_escape(r.name) +
         "</td><td>" + std::to_string(r.step.size()) + "</td><td>" + (r.step.empty() ? "–" : thousands(r.step.back())) +
         "</td><td>" + cell_number(last_finite(r.loss), true) + "</td>";
    if (smooth > 0) h += "<td>" + cell_number(last_finite(smooth_ema(r.loss, smooth)), true) + "</td>";
    h += "<td>" +
         (best < r.val_loss.size() ? cell_number(r.val_loss[best], true) + " (" + thousands(r.step[best]) + ")" : "–") +
         "</td><td>" + cell_number(last_finite(r.val_loss), true) + "</td><td>" + thousands(last_finite(r.tokens)) +
         "</td><td>" + thousands(median_finite(r.tokens_per_s)) + "</td><td" +
         (r.non_finite_losses ? " class=\"bad\"" : "") + ">" + std::to_string(r.non_finite_losses) + "</td><td>" +
         std::to_string(r.skipped_steps) + "</td><td><code>" +
         xml_escape(r.final_checkpoint.empty() ? "none" : r.final_checkpoint) + "</code></td></tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace

std::vector<double> smooth_ema(const std::vector<double>& y, double weight) {
  std::vector<double> out(y.size(), NAN);
  double acc = 0;
  int n = 0;
  for (size_t i = 0; i < y.size(); i++) {
    if (!std::isfinite(y[i])) continue;
    acc = weight * acc + (1 - weight) * y[i];
    n++;
    out[i] = acc / (1 - std::pow(weight, n));  // bias correction: the first values are not pulled to 0
  }
  return out;
}

void training_section(const std::vector<RunMetrics>& runs, double smooth, Section* s) {
  if (runs.empty()) return;
  s->html += "<section id=\"training\"><h2>Training</h2>\n" + summary_table(runs, smooth);
  auto step_of = [](const RunMetrics& r) -> const std::vector<double>& { return r.step; };
  auto tokens_of = [](const RunMetrics& r) -> const std::vector<double>& { return r.tokens; };
  s->add_plot("loss_step", line_plot_svg(loss_plot(runs, smooth, "step", step_of)));
  if (std::any_of(runs.begin(), runs.end(), [](const RunMetrics& r) { return any_finite(r.tokens); })) {
    LinePlot p = loss_plot(runs, smooth, "tokens", tokens_of);
    p.title = "Loss against tokens";
    s->add_plot("loss_tokens", line_plot_svg(p));
  }
  struct Metric {
    const char *id, *title, *y_label;
    std::vector<double> RunMetrics::*field;
  };
  for (const Metric& m : {Metric{"lr", "Learning rate", "learning rate", &RunMetrics::lr},
                          Metric{"grad_norm", "Gradient norm", "gradient norm", &RunMetrics::grad_norm},
                          Metric{"tokens_per_s", "Throughput", "tokens/s", &RunMetrics::tokens_per_s},
                          Metric{"mfu", "Model FLOPs utilization", "MFU", &RunMetrics::mfu}}) {
    auto y_of = [&](const RunMetrics& r) -> const std::vector<double>& { return r.*m.field; };
    if (!std::any_of(runs.begin(), runs.end(), [&](const RunMetrics& r) { return any_finite(y_of(r)); })) {
      if (std::string(m.id) != "mfu")
        s->html += "<p class=\"note\">No run logged " + std::string(m.y_label) + ".</p>\n";
      continue;
    }
    LinePlot p = metric_plot(runs, m.title, m.y_label, y_of);
    p.log_y = std::string(m.id) == "grad_norm" && wide_range(runs, y_of);
    s->add_plot(m.id, line_plot_svg(p));
  }
  s->html += "</section>\n";
}

}  // namespace mindllm::report
