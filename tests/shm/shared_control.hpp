// What the shared-memory tests share with their worker processes: a clock whose time is a
// word in shared memory (virtual time that every process reads, advanced by the test), and
// counters the workers report through.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include <rategov/rategov.hpp>
#include <rategov/shm/shm.hpp>

namespace shm_test {

inline constexpr int max_workers = 8;

struct control {
    std::atomic<std::int64_t> now_ns; // the virtual time
    std::atomic<int> stop;            // workers exit when set
    std::atomic<int> started[max_workers];
    std::atomic<std::uint64_t> granted[max_workers];
    std::atomic<std::uint64_t> changes[max_workers];
};

// Maps the control block `name`, creating it (zeroed) when `create`.
inline control* map_control(const std::string& name, bool create) {
    const int fd = ::shm_open(name.c_str(), O_RDWR | (create ? O_CREAT : 0), 0600);
    if (fd < 0)
        throw std::runtime_error("shm_open " + name);
    if (create && ::ftruncate(fd, sizeof(control)) != 0)
        throw std::runtime_error("ftruncate " + name);
    void* p = ::mmap(nullptr, sizeof(control), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED)
        throw std::runtime_error("mmap " + name);
    return static_cast<control*>(p);
}

// Virtual time shared by processes: reads the control block's word.
struct shared_clock {
    using rep = std::int64_t;
    using period = std::nano;
    using duration = std::chrono::nanoseconds;
    using time_point = std::chrono::time_point<shared_clock, duration>;
    static constexpr bool is_steady = true;

    control* block = nullptr;
    [[nodiscard]] time_point now() const noexcept {
        return time_point(duration(block->now_ns.load(std::memory_order_acquire)));
    }
};

namespace m = rategov::metric;
using two = rategov::metrics<m::total_prompt, m::generated>;
using gov_t = rategov::shm::governor<two, shared_clock>;
using cost_t = gov_t::cost_type;

// Metric 0: 1000 per second, burst 1000; metric 1: 3000 per second, burst 2400. A request
// takes {1, 3}: metric 1 binds, allowing 800 + 1 per ms.
inline rategov::quota limit0() {
    return rategov::per_second(1000);
}
inline rategov::quota limit1() {
    return rategov::per_second(3000).with_burst(2400);
}
inline cost_t unit_cost() {
    return {rategov::amount<m::total_prompt>{1}, rategov::amount<m::generated>{3}};
}
inline const char* key = "acct-1/model-a/fast";

} // namespace shm_test
