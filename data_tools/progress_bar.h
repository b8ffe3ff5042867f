// A progress bar on stderr for long tools: done / total bytes, bytes/s, tokens/s and the ETA. On a
// terminal it redraws one line (at most 5 times a second); otherwise (a log file) it prints a line every
// 10 seconds. Nothing when disabled.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nsa::data_tools {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total_bytes, bool enabled);

  // Reports the totals so far; draws when enough time has passed since the last draw.
  void update(int64_t bytes, int64_t tokens);
  // Draws the final state and ends the line (on a terminal).
  void finish(int64_t bytes, int64_t tokens);

  // "12.3 MB", "1.2 GB" (decimal units), "3.4M" tokens, "1:02:03".
  static std::string bytes_text(double bytes);
  static std::string count_text(double count);
  static std::string duration_text(double seconds);
  // The line drawn for these numbers (without \r or newline).
  static std::string line(const std::string& label, int64_t bytes, int64_t total, int64_t tokens,
                          double seconds);

 private:
  void draw(int64_t bytes, int64_t tokens, bool final);

  std::string label_;
  int64_t total_;
  bool enabled_, terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace nsa::data_tools
