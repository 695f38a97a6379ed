// Shared by the stress tests: start threads together, and read a manual clock in ticks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include <rategov/testing/manual_clock.hpp>

namespace stress {

/// Runs body(i) on `n` threads released together by a latch, and joins them.
template <class F>
void run_threads(unsigned n, F body) {
    std::latch start(static_cast<std::ptrdiff_t>(n));
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (unsigned i = 0; i < n; ++i)
        threads.emplace_back([&start, &body, i] {
            start.arrive_and_wait();
            body(i);
        });
    for (auto& t : threads)
        t.join();
}

/// Nanoseconds since a manual clock's epoch.
inline std::uint64_t elapsed_ns(const rategov::testing::manual_clock& clock) {
    return static_cast<std::uint64_t>(clock.now().time_since_epoch().count());
}

} // namespace stress
