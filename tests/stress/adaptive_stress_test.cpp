// Feedback from several threads, out of order, racing with acquisitions: the newest report
// wins, a burst of stale 429s cuts once, and no token is granted beyond the limits set.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <random>
#include <thread>
#include <vector>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
using rategov::per_minute;
using rategov::testing::manual_clock;
namespace m = rategov::metric;
namespace fb = rategov::feedback;

using llm = rategov::metrics<m::requests, m::generated>;
using gov_t = rategov::governor<llm, manual_clock>;
using adapt_t = rategov::adaptive_limits<gov_t>;
constexpr std::size_t gen = llm::index_of<m::generated>;
const rategov::adaptive_bounds bounds{per_minute(12'000), per_minute(36'000), per_minute(360'000)};

template <class F>
void on_threads(unsigned n, F f) {
    std::latch go(n);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            go.arrive_and_wait();
            f(i);
        });
    for (auto& t : threads)
        t.join();
}

/// The limit a report stamped `ms` carries: a function of its start time.
std::uint64_t limit_for(std::int64_t ms) {
    return 12'000 + static_cast<std::uint64_t>(ms) * 37 % 300'000;
}

class AdaptiveStress : public ::testing::TestWithParam<unsigned> {};

TEST_P(AdaptiveStress, TheNewestReportWinsWhateverTheOrder) {
    const unsigned n = GetParam();
    manual_clock clock;
    gov_t gov(clock, per_minute(600), per_minute(36'000));
    adapt_t adapt(gov);
    adapt.bound<m::generated>(bounds);
    clock.advance(hours(1)); // every report arrives "now", its request started earlier
    std::atomic<std::int64_t> newest{-1};
    on_threads(n, [&](unsigned t) {
        std::mt19937_64 rng(t + 1);
        for (int k = 0; k < 4000; ++k) {
            const auto ms = static_cast<std::int64_t>(rng() % 3'000'000); // within the hour
            adapt_t::feedback_type f;
            f.kind = fb::outcome::success;
            f.metrics[gen].limit = limit_for(ms);
            f.metrics[gen].period = minutes(1);
            adapt.on_response(f, manual_clock::time_point(milliseconds(ms)));
            std::int64_t seen = newest.load();
            while (ms > seen && !newest.compare_exchange_weak(seen, ms)) {
            }
        }
    });
    const std::uint64_t expected = limit_for(newest.load());
    EXPECT_EQ(adapt.current(gen).count(), expected);
    // The governor follows the newest state, holding back growth of under 1 % (see apply()).
    const std::uint64_t in_force = gov.limit<m::generated>().count();
    EXPECT_LE(in_force, expected) << "the governor is above the newest report";
    EXPECT_GE(in_force, expected - expected / 100) << "the governor missed the newest report";
}

TEST_P(AdaptiveStress, ManyStale429sCutOnce) {
    const unsigned n = GetParam();
    manual_clock clock;
    gov_t gov(clock, per_minute(600), per_minute(36'000));
    adapt_t adapt(gov);
    adapt.bound<m::generated>(bounds);
    const auto sent = clock.now(); // all requests left together, at the old rate
    clock.advance(seconds(2));
    std::atomic<unsigned> cuts{0};
    on_threads(n, [&](unsigned) {
        for (int k = 0; k < 2000; ++k) {
            adapt_t::feedback_type f;
            f.kind = fb::outcome::over_limit;
            cuts.fetch_add(static_cast<unsigned>(adapt.on_response(f, sent)));
        }
    });
    EXPECT_EQ(cuts.load(), 1u);
    EXPECT_EQ(gov.limit<m::generated>().count(), 25'200u);
}

TEST_P(AdaptiveStress, AcquisitionsRacingWithLimitChangesGrantNoMoreThanTheBurst) {
    // Frozen clock: no token accrues, and `keep` inheritance never adds tokens, so whatever
    // the limits set meanwhile, at most the first burst is granted.
    const unsigned n = GetParam();
    manual_clock clock;
    gov_t gov(clock, per_minute(1'000'000), per_minute(36'000));
    adapt_t adapt(gov);
    adapt.bound<m::generated>(bounds);
    std::atomic<std::uint64_t> granted{0};
    on_threads(n + 1, [&](unsigned t) {
        std::mt19937_64 rng(t + 7);
        if (t == n) {
            for (int k = 0; k < 3000; ++k) {
                adapt_t::feedback_type f;
                f.kind = fb::outcome::success;
                f.metrics[gen].limit = 12'000 + rng() % 348'000;
                f.metrics[gen].period = minutes(1);
                adapt.on_response(f, clock.now());
            }
            return;
        }
        for (int k = 0; k < 20'000; ++k) {
            const std::uint64_t want = 1 + rng() % 50;
            if (gov.try_acquire(rategov::cost<llm>{rategov::amount<m::generated>{want}}))
                granted.fetch_add(want);
        }
    });
    EXPECT_LE(granted.load(), 36'000u);
    EXPECT_GT(granted.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Threads, AdaptiveStress, ::testing::Values(2u, 4u, 8u),
                         [](const auto& p) { return std::to_string(p.param) + "threads"; });

} // namespace
