// Exactness over long runs: a caller that takes every token as soon as it is ready gets
// between rate·T − 1 and burst + rate·T tokens over its whole run, after 10^9 operations and
// across a century of virtual time. Drives the lock-free core directly in integer ticks.
#include <chrono>
#include <cstdint>
#include <string>

#include <rategov/bucket/gcra.hpp>

#include <gtest/gtest.h>

namespace {

using rategov::acquire_status;
using rategov::quota;
using rategov::detail::gcra;
using namespace std::chrono;

struct run_result {
    std::uint64_t granted = 0;
    std::uint64_t first_tick = 0;
    std::uint64_t last_tick = 0;
    std::uint64_t operations = 0;
};

/// Takes `n` tokens at a time, always at the earliest time the bucket allows, until
/// `operations` calls were made or the horizon is reached.
run_result saturate(const quota& q, std::uint64_t n, std::uint64_t operations,
                    std::uint64_t horizon) {
    gcra bucket(q);
    gcra::word state{gcra::initial_word};
    run_result r;
    std::uint64_t tau = 12345; // not aligned to anything
    r.first_tick = tau;
    while (r.operations < operations) {
        ++r.operations;
        const auto res = bucket.try_acquire(state, n, tau);
        if (res.status == acquire_status::granted) {
            r.granted += n;
            r.last_tick = tau;
        } else {
            EXPECT_EQ(res.status, acquire_status::denied);
            EXPECT_GT(res.ready, tau);
            if (res.ready > horizon)
                break;
            tau = res.ready;
        }
    }
    return r;
}

__extension__ typedef unsigned __int128 u128;

/// rate·T as the exact fraction count·T / period, compared without rounding.
void expect_within_envelope(const quota& q, const run_result& r, std::uint64_t n,
                            const std::string& what) {
    const std::uint64_t span = r.last_tick - r.first_tick;
    const auto period = static_cast<u128>(q.period().count());
    const u128 accrued = static_cast<u128>(q.count()) * span; // rate·T·period
    // Upper: granted·period ≤ burst·period + count·T.
    EXPECT_LE(r.granted * period, q.burst() * period + accrued)
        << what << ": granted " << r.granted << " over " << span << " ns";
    // Lower: taking n at a time loses at most n − 1 to granularity and 1 to the start:
    // (granted + n)·period ≥ count·T.
    EXPECT_GE((r.granted + n) * period, accrued)
        << what << ": granted " << r.granted << " over " << span << " ns";
}

constexpr std::uint64_t century = 36525ull * 24 * 3600 * 1'000'000'000; // 100 years in ns

TEST(Exactness, NoDriftAfterABillionOperationsAtAnAwkwardRate) {
    // 7 tokens per 3 s: the interval 428571428.571… ns is no whole number of ticks.
    const quota q = rategov::per(seconds(3), 7).with_burst(5);
    const auto r = saturate(q, 1, 1'000'000'000, century);
    EXPECT_EQ(r.operations, 1'000'000'000u);
    expect_within_envelope(q, r, 1, "7 per 3 s");
}

TEST(Exactness, NoDriftAfterABillionOperationsNearThePrimeRate) {
    // 999'999'937 per second (prime): the reduced fraction has a denominator near 10^9.
    const quota q = rategov::per_second(999'999'937).with_burst(1000);
    const auto r = saturate(q, 3, 1'000'000'000, century);
    EXPECT_EQ(r.operations, 1'000'000'000u);
    expect_within_envelope(q, r, 3, "999999937 per s");
}

TEST(Exactness, ProviderRatesOverManyOperations) {
    for (const quota& q :
         {rategov::per_minute(3'600'000), rategov::per_minute(900'000),
          rategov::per_minute(36'000).with_burst(4096), rategov::per_second(1'000'000'000)}) {
        const auto r = saturate(q, 1, 100'000'000, century);
        expect_within_envelope(q, r, 1, q.to_string());
    }
}

TEST(Exactness, OnePerHourAcrossACentury) {
    const quota q = rategov::per_hour(1);
    const auto r = saturate(q, 1, ~std::uint64_t{0}, century);
    EXPECT_GE(r.last_tick, century - 3'600'000'000'000ull);
    EXPECT_GE(r.granted, 876'000u); // 100 years of hours, give or take the burst
    expect_within_envelope(q, r, 1, "1 per hour");
}

TEST(Exactness, TheFastestRateAcrossACentury) {
    // 10^9 per second at the far end of the horizon: no overflow, still exact.
    gcra bucket(rategov::per_second(1'000'000'000).with_burst(1000));
    gcra::word state{gcra::initial_word};
    const std::uint64_t late = century;
    EXPECT_EQ(bucket.try_acquire(state, 1000, late).status, acquire_status::granted);
    const auto denied = bucket.try_acquire(state, 1, late);
    ASSERT_EQ(denied.status, acquire_status::denied);
    EXPECT_EQ(denied.ready, late + 1);
    EXPECT_EQ(bucket.try_acquire(state, 1, late + 1).status, acquire_status::granted);
}

} // namespace
