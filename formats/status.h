// Status and Result<T>: how everything in recur that can fail says so.
//
// No exception crosses the library's API. A Status carries a code and a message that names what
// is wrong (the file, the tensor, the field); Result<T> is a value or a Status.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace recur {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // A caller passed a bad value (null, wrong size, out of range).
  kNotFound = 2,         // A file, tensor or key that should exist does not.
  kIoError = 3,          // The operating system refused a read, write or map.
  kCorrupt = 4,          // A file's bytes contradict its own description.
  kUnsupported = 5,      // Well-formed input that this build cannot handle (yet).
  kOutOfMemory = 6,
  kInternal = 7,         // A bug in recur: please report it.
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt: model.recur: tensor 'x': ..." style text for logs and the CLI.
  std::string ToString() const;

  // Prefixes the message with context ("while reading X: ") and returns *this.
  Status& Prepend(std::string_view context);

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design.
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design; must not be ok.

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace recur

// Returns early from the enclosing function when `expr` yields a non-ok Status.
#define RECUR_RETURN_IF_ERROR(expr)             \
  do {                                          \
    ::recur::Status recur_status_ = (expr);     \
    if (!recur_status_.ok()) return recur_status_; \
  } while (0)

#define RECUR_CONCAT_INNER_(a, b) a##b
#define RECUR_CONCAT_(a, b) RECUR_CONCAT_INNER_(a, b)
// Declares `lhs` from a Result<T> expression, or returns its Status.
#define RECUR_ASSIGN_OR_RETURN(lhs, expr) \
  RECUR_ASSIGN_OR_RETURN_IMPL_(RECUR_CONCAT_(recur_result_, __LINE__), lhs, expr)
#define RECUR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
