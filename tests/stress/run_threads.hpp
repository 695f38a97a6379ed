// Shared by the stress tests: start threads together, pace helper threads by the workers'
// progress, and read a manual clock in ticks.
#pragma once

#include <atomic>
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

/// Paces the helper threads (the clock, the limit changer) by the workers' progress rather
/// than by the scheduler, so that time passes and limits change while the workers run,
/// whatever the machine's load.
struct pacer {
    static constexpr unsigned max_drivers = 2;

    std::atomic<std::uint64_t> progress{0};              // operations done by all workers
    std::atomic<std::uint64_t> driven[max_drivers] = {}; // calls each driver has made
    std::atomic<std::uint64_t> every[max_drivers] = {};  // 0: no such driver
    std::atomic<unsigned> done{0};                       // workers finished
    const unsigned drivers;                              // how many will call drive()
    const std::uint64_t slack; // driver calls the workers may run ahead of

    /// A pacer for `driver_count` drivers (each calls `drive` with its own slot, < 2), which
    /// the workers may run `slack_calls` calls ahead of.
    explicit pacer(unsigned driver_count = 1, std::uint64_t slack_calls = 64)
        : drivers(driver_count)
        , slack(slack_calls) {}

    /// Counts one worker operation; waits until every driver has started, and while the
    /// workers are more than `slack` calls ahead of a driver, so that the drivers run
    /// however the threads are scheduled (a driver started late would otherwise find the
    /// workers done and make no call at all).
    void tick() noexcept {
        const std::uint64_t p = progress.fetch_add(1, std::memory_order_relaxed) + 1;
        for (unsigned d = 0; d < drivers; ++d)
            for (;;) {
                const std::uint64_t e = every[d].load(std::memory_order_acquire);
                if (e != 0 && p <= (driven[d].load(std::memory_order_acquire) + slack) * e)
                    break;
                std::this_thread::yield();
            }
    }
    void finish() noexcept { done.fetch_add(1, std::memory_order_release); }

    /// Calls f() once per `every_ops` worker operations until `workers` have finished;
    /// returns the number of calls. Each concurrent driver passes its own `slot`.
    template <class F>
    std::uint64_t drive(unsigned workers, std::uint64_t every_ops, F f, unsigned slot = 0) {
        every[slot].store(every_ops, std::memory_order_release);
        std::uint64_t calls = 0;
        while (done.load(std::memory_order_acquire) < workers) {
            if (calls < progress.load(std::memory_order_relaxed) / every_ops) {
                f(calls);
                ++calls;
                driven[slot].store(calls, std::memory_order_release);
            } else {
                std::this_thread::yield();
            }
        }
        return calls;
    }
};

/// Nanoseconds since a manual clock's epoch.
inline std::uint64_t elapsed_ns(const rategov::testing::manual_clock& clock) {
    return static_cast<std::uint64_t>(clock.now().time_since_epoch().count());
}

} // namespace stress
