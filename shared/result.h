#pragma once
// Result<T>: a value, or an error message for an expected failure.
// Exceptions stay for the truly exceptional; a bad frame, a bad config value
// or a missing file comes back as a Result.
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

}  // namespace asyncops
