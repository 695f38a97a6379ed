/// \file
/// Version macros, the versioned inline namespace, the cache-line size and the error type
/// that every other rategov header builds on.
#pragma once

#include <stdexcept>
#include <string>

/// Library version, major part. Bumped together with `project(rategov VERSION …)` in
/// CMakeLists.txt.
#define RATEGOV_VERSION_MAJOR 0
/// Library version, minor part.
#define RATEGOV_VERSION_MINOR 1
/// Library version, patch part.
#define RATEGOV_VERSION_PATCH 0
/// The version as one comparable integer: `major * 10000 + minor * 100 + patch`.
#define RATEGOV_VERSION                                                                            \
    (RATEGOV_VERSION_MAJOR * 10000 + RATEGOV_VERSION_MINOR * 100 + RATEGOV_VERSION_PATCH)

/// Opens / closes the versioned inline namespace. Users write `rategov::name`; the mangled
/// names carry `v0`, so two incompatible major versions linked into one program do not
/// silently violate the one-definition rule.
#define RATEGOV_NAMESPACE_BEGIN                                                                    \
    namespace rategov {                                                                            \
    inline namespace v0 {
/// Closes the namespaces opened by `RATEGOV_NAMESPACE_BEGIN`.
#define RATEGOV_NAMESPACE_END                                                                      \
    }                                                                                              \
    }

/// Size in bytes of a destructive-interference unit (a cache line), used to pad shared
/// atomic state. Override with `-DRATEGOV_CACHE_LINE=N`. We do not use
/// `std::hardware_destructive_interference_size`: GCC 12 warns that its value may differ
/// between translation units compiled with different `-mtune`, which is an ABI hazard for a
/// header-only library.
#ifndef RATEGOV_CACHE_LINE
#if defined(__APPLE__) && defined(__aarch64__)
#define RATEGOV_CACHE_LINE 128
#elif defined(__powerpc64__) || defined(__s390x__)
#define RATEGOV_CACHE_LINE 128
#else
#define RATEGOV_CACHE_LINE 64
#endif
#endif

static_assert(RATEGOV_CACHE_LINE >= 16 && (RATEGOV_CACHE_LINE & (RATEGOV_CACHE_LINE - 1)) == 0,
              "rategov: RATEGOV_CACHE_LINE must be a power of two of at least 16 "
              "(the size of a cache line in bytes, e.g. 64 or 128).");

/// Hot-path functions are inlined into the caller whatever the inliner's budget says, and
/// the rare paths (epoch rebase, limit changes) are kept out of line so that the hot ones
/// stay small.
#if defined(__GNUC__) || defined(__clang__)
#define RATEGOV_ALWAYS_INLINE inline __attribute__((always_inline))
#define RATEGOV_COLD __attribute__((noinline, cold))
#elif defined(_MSC_VER)
#define RATEGOV_ALWAYS_INLINE __forceinline
#define RATEGOV_COLD __declspec(noinline)
#else
#define RATEGOV_ALWAYS_INLINE inline
#define RATEGOV_COLD
#endif
/// \def RATEGOV_COLD
/// Marks a rarely taken function `noinline` (and `cold` on GCC and Clang), so that it stays
/// out of the hot path; empty on other compilers.

/// 1 when the compiler has exceptions enabled, else 0 (configuration errors then call
/// `RATEGOV_CONFIG_ERROR_HANDLER` or abort instead of throwing; see `config_error`).
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define RATEGOV_HAS_EXCEPTIONS 1
#else
#define RATEGOV_HAS_EXCEPTIONS 0
#endif

#if !RATEGOV_HAS_EXCEPTIONS
#include <cstdio>
#include <cstdlib>
#endif

RATEGOV_NAMESPACE_BEGIN

/// Thrown when a limit, quota or policy is configured with a value that cannot work
/// (zero, negative, overflowing, out of bounds). The message names the bad value.
///
/// It derives from `std::invalid_argument`, so existing handlers for bad arguments catch it.
/// Configuration errors are reported at construction or at `set_limit`, never on the hot
/// path. With exceptions disabled, see `RATEGOV_CONFIG_ERROR_HANDLER`.
///
/// \code
/// try { auto q = rategov::per_minute(0); }
/// catch (const rategov::config_error& e) { std::puts(e.what()); } // names the 0
/// \endcode
class config_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

namespace detail {

/// Reports a configuration error: throws `config_error`, or with exceptions disabled calls
/// `RATEGOV_CONFIG_ERROR_HANDLER(message)` if defined, else prints the message to stderr and
/// aborts. Never returns.
[[noreturn]] inline void throw_config_error(const std::string& message) {
#if RATEGOV_HAS_EXCEPTIONS
    throw config_error(message);
#elif defined(RATEGOV_CONFIG_ERROR_HANDLER)
    RATEGOV_CONFIG_ERROR_HANDLER(message.c_str());
    std::abort();
#else
    std::fprintf(stderr, "rategov: configuration error: %s\n", message.c_str());
    std::abort();
#endif
}

} // namespace detail

RATEGOV_NAMESPACE_END
