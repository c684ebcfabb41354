#pragma once
// Result<T>: a value, or an error message for an expected failure.
// Status: the same without a value (ok, or an error message), for
// operations that only succeed or fail; not Result<bool>, not bool plus an
// out-parameter, not an empty string meaning success.
// Exceptions stay for the truly exceptional; a bad frame, a bad config value
// or a missing file comes back as a Result or a Status.
#include <optional>
#include <string>
#include <utility>

namespace asyncops {

struct Error {
  std::string message;
};

template <class T>
class Result {
 public:
  Result(T value) : m_value(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : m_error(std::move(error.message)) {}  // NOLINT

  bool ok() const { return m_value.has_value(); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: ok()
  T& value() { return *m_value; }
  const T& value() const { return *m_value; }
  T* operator->() { return &*m_value; }
  const T* operator->() const { return &*m_value; }
  // REQUIRES: !ok()
  const std::string& error() const { return m_error; }

 private:
  std::optional<T> m_value;
  std::string m_error;
};

// Status: ok, or an error message.
//   Status write(...) { if (failed) return Error{"cannot write " + path}; return Status::success(); }
//   if (auto st = write(...); !st) log_error(st.error());
// (C++ cannot have both a static Status::ok() and a member bool ok(), so
// the ok value is Status::success(), or a default-constructed Status.)
class Status {
 public:
  Status() = default;  // ok
  static Status success() { return Status(); }
  Status(Error error) : m_failed(true), m_error(std::move(error.message)) {}  // NOLINT: implicit by design

  bool ok() const { return !m_failed; }
  explicit operator bool() const { return ok(); }
  // REQUIRES: !ok()
  const std::string& error() const { return m_error; }

 private:
  bool m_failed = false;
  std::string m_error;
};

}  // namespace asyncops
