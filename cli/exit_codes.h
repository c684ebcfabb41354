#pragma once
// The CLI's exit codes: documented in asyncops(1) and stable.
namespace asyncops::exit_code {
constexpr int ok = 0;           // ok, or the operation completed
constexpr int error = 1;        // any other error (an HTTP error answer, bad data, I/O)
constexpr int usage = 2;        // bad command line
constexpr int rejected = 3;     // the operation was rejected
constexpr int failed = 4;       // the operation failed or was canceled
constexpr int timed_out = 5;    // gave up waiting for the operation
constexpr int unreachable = 6;  // the daemon could not be reached
}  // namespace asyncops::exit_code
