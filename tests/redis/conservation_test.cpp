// Conservation under concurrency: 8 threads, each with its own governor (as 8 processes
// would have) on one key, all demanding more than the limit, in shared virtual time
// (client-supplied time). Granted in all ≤ burst + rate·T; with leasing also ≥ 0.97 of it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <rategov/redis/redis.hpp>

#include <gtest/gtest.h>

#include "redis_test_util.hpp"

namespace {

using namespace rtest;
using rategov::amount;
using one = rategov::metrics<m::requests>;
using cost_t = rategov::cost<one>;

template <class G>
struct RedisConservation : server_fixture {};

using kinds =
    ::testing::Types<rr::governor<one, manual_clock>, rr::leased_governor<one, manual_clock>>;
TYPED_TEST_SUITE(RedisConservation, kinds);

TYPED_TEST(RedisConservation, EightGovernorsNeverExceedTheLimitTogether) {
    constexpr int threads = 8;
    constexpr std::uint64_t rate = 1000; // per second
    constexpr std::uint64_t burst = 100;
    const rategov::quota q = rategov::per_second(rate).with_burst(burst);
    constexpr auto step = 100us; // each call advances the shared time: demand
    constexpr auto horizon = 3s; // 10'000/s, ten times the limit
    rr::options o = this->opts(rr::failure_policy::fail_closed);
    o.expected_processes = threads;
    o.lease_horizon = 20ms;

    std::vector<std::unique_ptr<TypeParam>> govs;
    for (int i = 0; i < threads; ++i)
        govs.push_back(std::make_unique<TypeParam>(this->clock, o, "conservation", q));
    const time_point start = this->clock.now();
    std::atomic<std::uint64_t> granted{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            const cost_t c{amount<m::requests>{1}};
            std::uint64_t mine = 0;
            while (this->clock.now() - start < horizon) {
                if (govs[static_cast<std::size_t>(i)]->try_acquire(c))
                    ++mine;
                this->clock.advance(step);
            }
            granted.fetch_add(mine, std::memory_order_relaxed);
        });
    }
    for (auto& t : pool)
        t.join();
    const auto elapsed = this->clock.now() - start;
    // The key was created at or after `start`; time is read in whole µs, rounded down.
    const auto us = std::chrono::ceil<std::chrono::microseconds>(elapsed).count();
    const auto bound = burst + static_cast<std::uint64_t>(us) * rate / 1'000'000;
    const std::uint64_t total = granted.load();
    EXPECT_LE(total, bound);
    EXPECT_GE(static_cast<double>(total), 0.97 * static_cast<double>(bound))
        << "total " << total << " of " << bound;
    for (auto& g : govs)
        EXPECT_EQ(g->status().failures, 0u);
}

} // namespace
