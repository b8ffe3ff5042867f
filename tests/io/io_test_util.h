// Helpers of the io tests: a check that a call throws an InputError whose message holds given fragments
// (TempDir is in test_util.h).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/hdf5_handle.h"
#include "test_util.h"

namespace nsa::test {

// Runs `fn`, which must throw nsa::InputError (not another exception) with every fragment in its message,
// on a single line.
inline void expect_input_error(const std::function<void()>& fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError, nothing was thrown";
  } catch (const InputError& e) {
    const std::string message = e.what();
    std::cout << "  message: " << message << "\n";
    EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans several lines: " << message;
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected an InputError, got another exception: " << e.what();
  }
}

// HDF5 identifiers of files, groups, datasets, datatypes and attributes still open in the process: 0 after
// every save and load, whether it succeeded or failed.
inline ssize_t open_hdf5_objects() { return H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); }

}  // namespace nsa::test
