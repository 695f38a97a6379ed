/// \file
/// Which process runs, and whether another one still does: for state shared between
/// processes, where a lock's holder may die while it holds it.
#pragma once

#include <cstdint>

#include <rategov/config.hpp>

#if defined(__unix__) || defined(__APPLE__)
#include <cerrno>
#include <cstdio>
#include <cstring>
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

/// False only when process `id` is known to have exited: it does not exist, or (on Linux) it
/// is a zombie that its parent has not reaped yet. Its id may be reused later by another
/// process, which then counts as alive. Only meaningful between processes of one PID
/// namespace (`shm::segment` refuses to be shared across namespaces).
[[nodiscard]] inline bool process_alive(std::uint64_t id) noexcept {
#if RATEGOV_HAS_PROCESSES
    if (id == 0 || id == this_process())
        return true;
    if (::kill(static_cast<pid_t>(id), 0) != 0 && errno == ESRCH)
        return false;
#if defined(__linux__)
    // "pid (comm) S ...": the state follows the last ')'.
    char path[48];
    std::snprintf(path, sizeof path, "/proc/%llu/stat", static_cast<unsigned long long>(id));
    if (std::FILE* f = std::fopen(path, "r")) {
        char buf[512];
        const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        buf[n] = '\0';
        if (const char* close = std::strrchr(buf, ')'); close != nullptr && close[1] == ' ')
            return close[2] != 'Z' && close[2] != 'X';
    }
#endif
    return true;
#else
    (void)id;
    return true;
#endif
}

} // namespace detail
RATEGOV_NAMESPACE_END
