#include "train/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace nsa::train {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN/inf
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir, bool append, bool progress)
    : path_(dir + "/metrics.jsonl"), progress_(progress) {
  file_ = std::fopen(path_.c_str(), append ? "a" : "w");
  if (!file_) throw InputError(str(path_, ": cannot open for writing: ", std::strerror(errno)));
}

MetricsLog::~MetricsLog() {
  if (progress_shown_) std::fputs("\n", stdout);
  if (file_) std::fclose(file_);
}

void MetricsLog::record(const std::vector<std::pair<std::string, double>>& numbers,
                        const std::vector<std::pair<std::string, std::string>>& strings) {
  std::string line = "{";
  for (const auto& [k, v] : numbers) line += (line.size() > 1 ? ", " : "") + json_string(k) + ": " + json_number(v);
  for (const auto& [k, v] : strings) line += (line.size() > 1 ? ", " : "") + json_string(k) + ": " + json_string(v);
  line += "}\n";
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
}

void MetricsLog::print(const std::string& line) {
  if (progress_shown_) {
    std::fputs("\r\033[K", stdout);
    progress_shown_ = false;
  }
  std::fputs((line + "\n").c_str(), stdout);
  std::fflush(stdout);
}

void MetricsLog::progress(int64_t step, int64_t max_steps, double elapsed_s, double eta_s) {
  if (!progress_) return;
  constexpr int kWidth = 30;
  const double frac = max_steps > 0 ? static_cast<double>(step) / static_cast<double>(max_steps) : 1.0;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
  std::printf("\r\033[K[%s] %lld/%lld %5.1f%% | %s elapsed | ETA %s", bar.c_str(), static_cast<long long>(step),
              static_cast<long long>(max_steps), 100.0 * frac, format_duration(elapsed_s).c_str(),
              format_duration(eta_s).c_str());
  std::fflush(stdout);
  progress_shown_ = true;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

std::string format_count(double value) {
  char buf[32];
  if (value >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2fG", value / 1e9);
  } else if (value >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2fM", value / 1e6);
  } else if (value >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1fk", value / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", value);
  }
  return buf;
}

}  // namespace nsa::train
