/// \file
/// Which process runs, and whether another one still does: for state shared between
/// processes, where a lock's holder may die while it holds it.
#pragma once

#include <cstdint>

#include <rategov/config.hpp>

#if defined(__unix__) || defined(__APPLE__)
#include <cerrno>
#include <signal.h>
#include <unistd.h>
#define RATEGOV_HAS_PROCESSES 1
#else
#define RATEGOV_HAS_PROCESSES 0
#endif

RATEGOV_NAMESPACE_BEGIN
namespace detail {

/// The calling process's id (never 0; 1 where processes are not known).
[[nodiscard]] inline std::uint64_t this_process() noexcept {
#if RATEGOV_HAS_PROCESSES
    return static_cast<std::uint64_t>(::getpid());
#else
    return 1;
#endif
}

/// False only when process `id` is known to have exited (its id may be reused later by
/// another process, which then counts as alive).
[[nodiscard]] inline bool process_alive(std::uint64_t id) noexcept {
#if RATEGOV_HAS_PROCESSES
    if (id == 0 || id == this_process())
        return true;
    return ::kill(static_cast<pid_t>(id), 0) == 0 || errno != ESRCH;
#else
    (void)id;
    return true;
#endif
}

} // namespace detail
RATEGOV_NAMESPACE_END
