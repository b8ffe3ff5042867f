#include "progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace nsa::data_tools {

namespace {
constexpr double kTerminalInterval = 0.2, kLogInterval = 10.0;
constexpr int kBarWidth = 24;

std::string format(const char* fmt, double value, const char* unit) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), fmt, value, unit);
  return buffer;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total_bytes, bool enabled)
    : label_(std::move(label)),
      total_(total_bytes),
      enabled_(enabled),
      terminal_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string ProgressBar::bytes_text(double bytes) {
  if (bytes >= 1e9) return format("%.2f %s", bytes / 1e9, "GB");
  if (bytes >= 1e6) return format("%.1f %s", bytes / 1e6, "MB");
  if (bytes >= 1e3) return format("%.1f %s", bytes / 1e3, "kB");
  return format("%.0f %s", bytes, "B");
}

std::string ProgressBar::count_text(double count) {
  if (count >= 1e9) return format("%.2f%s", count / 1e9, "G");
  if (count >= 1e6) return format("%.2f%s", count / 1e6, "M");
  if (count >= 1e3) return format("%.1f%s", count / 1e3, "k");
  return format("%.0f%s", count, "");
}

std::string ProgressBar::duration_text(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds) + 0.5);
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buffer;
}

std::string ProgressBar::line(const std::string& label, int64_t bytes, int64_t total, int64_t tokens,
                              double seconds) {
  const double fraction =
      total > 0 ? std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total)) : 1.0;
  const int filled = static_cast<int>(fraction * kBarWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kBarWidth) bar += '>';
  bar.resize(kBarWidth, ' ');
  const double rate = seconds > 0 ? static_cast<double>(bytes) / seconds : 0;
  const double token_rate = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
  const double eta = rate > 0 ? static_cast<double>(total - bytes) / rate : 0;
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer), "%s [%s] %3.0f%%  %s / %s  %s/s  %s tokens/s  ETA %s", label.c_str(),
                bar.c_str(), fraction * 100, bytes_text(static_cast<double>(bytes)).c_str(),
                bytes_text(static_cast<double>(total)).c_str(), bytes_text(rate).c_str(),
                count_text(token_rate).c_str(), duration_text(eta).c_str());
  return buffer;
}

void ProgressBar::draw(int64_t bytes, int64_t tokens, bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const std::string text = line(label_, bytes, total_, tokens, seconds);
  if (terminal_) {
    std::fprintf(stderr, "\r%s\x1b[K%s", text.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
  last_draw_ = now;
  drawn_ = true;
}

void ProgressBar::update(int64_t bytes, int64_t tokens) {
  if (!enabled_) return;
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_draw_).count();
  if (since >= (terminal_ ? kTerminalInterval : kLogInterval)) draw(bytes, tokens, false);
}

void ProgressBar::finish(int64_t bytes, int64_t tokens) {
  // On a log, a run short enough to have printed nothing stays quiet (the summary follows anyway).
  if (enabled_ && (terminal_ || drawn_)) draw(bytes, tokens, true);
}

}  // namespace nsa::data_tools
