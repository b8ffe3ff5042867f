// What a run reports: one human line per log interval on stdout (with `loss <value>`, which scripts grep),
// an optional progress line redrawn in place on a terminal between them, and one JSON object per line in
// <logging.dir>/metrics.jsonl for machines (values printed round-trip exact).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace nsa::train {

class MetricsLog {
 public:
  // Opens <dir>/metrics.jsonl: truncated for a fresh run, appended to when resuming.
  MetricsLog(const std::string& dir, bool append, bool progress);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // A JSON object line: numbers (round-trip exact) and strings.
  void record(const std::vector<std::pair<std::string, double>>& numbers,
              const std::vector<std::pair<std::string, std::string>>& strings = {});
  // A line on stdout (clears a progress line first).
  void print(const std::string& line);
  // Redraws the progress line (no-op when progress is off).
  void progress(int64_t step, int64_t max_steps, double elapsed_s, double eta_s);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  bool progress_;
  bool progress_shown_ = false;
};

// "1:02:03" / "2:03".
std::string format_duration(double seconds);
// "12.3k" / "1.23M".
std::string format_count(double value);

}  // namespace nsa::train
