// Property tests: random schedules on a manual clock. Whatever the schedule, the tokens a
// bucket grants in any window of length W never exceed burst + rate·W, a denial's ready_at
// is exactly the earliest time the request succeeds, and nothing is granted beyond the
// envelope when the clock goes backwards.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono;
using rategov::acquire_status;
using rategov::quota;
using clock_type = rategov::testing::manual_clock;
using bucket_type = rategov::bucket<clock_type>;

__extension__ typedef unsigned __int128 u128;

struct grant {
    std::int64_t at; // ns
    std::uint64_t n;
};

/// Every window [t_i, t_j] between two grants: sum·period ≤ burst·period + count·(t_j − t_i).
::testing::AssertionResult within_envelope(const quota& q, std::vector<grant> grants) {
    std::sort(grants.begin(), grants.end(),
              [](const grant& a, const grant& b) { return a.at < b.at; });
    const auto period = static_cast<u128>(q.period().count());
    for (std::size_t i = 0; i < grants.size(); ++i) {
        u128 sum = 0;
        for (std::size_t j = i; j < grants.size(); ++j) {
            sum += grants[j].n;
            const auto w = static_cast<u128>(grants[j].at - grants[i].at);
            if (sum * period > static_cast<u128>(q.burst()) * period + q.count() * w)
                return ::testing::AssertionFailure()
                       << static_cast<std::uint64_t>(sum) << " tokens granted in a window of "
                       << static_cast<std::uint64_t>(w) << " ns, more than " << q.to_string()
                       << " allows";
        }
    }
    return ::testing::AssertionSuccess();
}

quota random_quota(std::mt19937_64& rng) {
    static const std::int64_t periods[] = {1'000'000,         1'000'000'000, 60'000'000'000,
                                           3'600'000'000'000, 7'919,         1'234'567'891};
    const std::int64_t period = periods[rng() % std::size(periods)];
    const auto max_count = static_cast<std::uint64_t>(std::min<std::int64_t>(period, 5'000'000));
    const std::uint64_t count = 1 + rng() % max_count;
    const std::uint64_t burst = 1 + rng() % std::max<std::uint64_t>(count * 2, 1);
    return quota(count, nanoseconds(period)).with_burst(burst);
}

nanoseconds random_step(std::mt19937_64& rng, const quota& q) {
    const std::int64_t interval =
        std::max<std::int64_t>(1, q.period().count() / static_cast<std::int64_t>(q.count()));
    switch (rng() % 5) {
    case 0:
        return nanoseconds(0);
    case 1:
        return nanoseconds(static_cast<std::int64_t>(rng() % 3));
    case 2:
        return nanoseconds(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(interval)));
    case 3:
        return nanoseconds(interval * static_cast<std::int64_t>(1 + rng() % 4));
    default:
        return nanoseconds(
            static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(std::min<std::int64_t>(
                                                  q.period().count(), 1'000'000'000'000))));
    }
}

std::uint64_t random_n(std::mt19937_64& rng, const quota& q) {
    if (rng() % 50 == 0)
        return q.burst() + 1 + rng() % 10; // too large
    if (rng() % 4 == 0)
        return q.burst();
    return 1 + rng() % std::min<std::uint64_t>(q.burst(), 1 + rng() % 64);
}

TEST(Property, TryAcquireNeverExceedsTheEnvelopeAndReadyAtIsExact) {
    for (std::uint64_t seed = 1; seed <= 300; ++seed) {
        std::mt19937_64 rng(seed);
        const quota q = random_quota(rng);
        clock_type clock(
            clock_type::time_point(nanoseconds(static_cast<std::int64_t>(rng() % 1'000'000'000))));
        bucket_type b(q, clock);
        std::vector<grant> grants;
        for (int op = 0; op < 400; ++op) {
            clock.advance(random_step(rng, q));
            const std::uint64_t n = random_n(rng, q);
            auto r = b.try_acquire(n);
            if (n > q.burst()) {
                ASSERT_EQ(r.status, acquire_status::exceeds_capacity) << "seed " << seed;
                continue;
            }
            if (r.granted()) {
                grants.push_back({clock.now().time_since_epoch().count(), n});
                continue;
            }
            ASSERT_EQ(r.status, acquire_status::denied) << "seed " << seed;
            ASSERT_GT(r.ready_at, clock.now()) << "seed " << seed;
            if (rng() % 2 == 0) {
                // Exactly at ready_at and not a nanosecond before.
                ASSERT_FALSE(b.try_acquire_at(n, r.ready_at - nanoseconds(1)))
                    << "seed " << seed << " " << q.to_string() << " n=" << n;
                clock.set(r.ready_at);
                ASSERT_TRUE(b.try_acquire(n))
                    << "seed " << seed << " " << q.to_string() << " n=" << n;
                grants.push_back({r.ready_at.time_since_epoch().count(), n});
            }
        }
        ASSERT_TRUE(within_envelope(q, grants)) << "seed " << seed;
    }
}

TEST(Property, ReservationsQueueWithinTheEnvelope) {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        std::mt19937_64 rng(seed * 7919);
        const quota q = random_quota(rng);
        clock_type clock;
        bucket_type b(q, clock);
        std::vector<grant> uses; // tokens are used at ready_at
        clock_type::time_point last_ready{};
        for (int op = 0; op < 300; ++op) {
            clock.advance(random_step(rng, q));
            const std::uint64_t n = 1 + rng() % q.burst();
            const auto max_wait = rng() % 3 == 0
                                      ? nanoseconds(static_cast<std::int64_t>(rng() % 1'000'000))
                                      : nanoseconds::max();
            const auto r = b.reserve(n, max_wait);
            if (!r) {
                ASSERT_EQ(r.status, acquire_status::denied) << "seed " << seed;
                // Refused for waiting too long, or for queueing beyond what a position
                // holds: 32 bursts, and 2^60 / c ns ahead of now (c: the reduced count).
                const u128 queued_ns =
                    static_cast<u128>(q.period().count()) * 32 * q.burst() / q.count();
                const auto period = static_cast<std::uint64_t>(q.period().count());
                const std::uint64_t g = std::gcd(q.count(), period);
                const u128 horizon_ns = (u128{1} << 60) / (q.count() / g) - (u128{1} << 20);
                const auto wait = static_cast<u128>((r.ready_at - clock.now()).count());
                ASSERT_TRUE(r.ready_at - clock.now() > max_wait || wait > queued_ns ||
                            wait > horizon_ns)
                    << "seed " << seed;
                continue;
            }
            ASSERT_GE(r.ready_at, clock.now()) << "seed " << seed;
            ASSERT_LE(r.ready_at - clock.now(), max_wait) << "seed " << seed;
            // First come, first served: a later reservation is never ready earlier.
            ASSERT_GE(r.ready_at, std::min(last_ready, clock.now())) << "seed " << seed;
            last_ready = r.ready_at;
            uses.push_back({r.ready_at.time_since_epoch().count(), n});
        }
        ASSERT_TRUE(within_envelope(q, uses)) << "seed " << seed;
    }
}

TEST(Property, MixedTakersNeverExceedTheEnvelope) {
    // try_acquire and reserve interleaved on one bucket.
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        std::mt19937_64 rng(seed * 104729);
        const quota q = random_quota(rng);
        clock_type clock;
        bucket_type b(q, clock);
        std::vector<grant> uses;
        for (int op = 0; op < 300; ++op) {
            clock.advance(random_step(rng, q));
            const std::uint64_t n = 1 + rng() % q.burst();
            if (rng() % 2 == 0) {
                if (b.try_acquire(n))
                    uses.push_back({clock.now().time_since_epoch().count(), n});
            } else if (auto r = b.reserve(n)) {
                uses.push_back({r.ready_at.time_since_epoch().count(), n});
            }
        }
        ASSERT_TRUE(within_envelope(q, uses)) << "seed " << seed;
    }
}

TEST(Property, AClockGoingBackwardsGrantsNoExtraBurst) {
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        std::mt19937_64 rng(seed * 31337);
        const quota q = random_quota(rng);
        clock_type clock(clock_type::time_point(hours(1)));
        bucket_type b(q, clock);
        std::uint64_t granted = 0;
        std::int64_t lo = clock.now().time_since_epoch().count(), hi = lo;
        for (int op = 0; op < 300; ++op) {
            auto step = random_step(rng, q);
            if (rng() % 3 == 0)
                step = -step; // backwards
            clock.advance(step);
            const std::int64_t t = clock.now().time_since_epoch().count();
            lo = std::min(lo, t);
            hi = std::max(hi, t);
            const std::uint64_t n = 1 + rng() % q.burst();
            if (b.try_acquire(n))
                granted += n;
        }
        // Over the whole run, no more than burst + rate·(latest − earliest time seen).
        const auto period = static_cast<u128>(q.period().count());
        EXPECT_LE(granted * period,
                  static_cast<u128>(q.burst()) * period + q.count() * static_cast<u128>(hi - lo))
            << "seed " << seed << " " << q.to_string();
    }
}

TEST(Property, ExtremeRatesStayExact) {
    for (const quota& q :
         {rategov::per_hour(1), rategov::per_second(1'000'000'000),
          rategov::per(hours(24) * 365 * 2, 1), rategov::per_second(999'999'937)}) {
        clock_type clock;
        bucket_type b(q, clock);
        std::vector<grant> grants;
        std::mt19937_64 rng(42);
        for (int op = 0; op < 500; ++op) {
            const std::uint64_t n = 1 + rng() % std::min<std::uint64_t>(q.burst(), 1000);
            auto r = b.try_acquire(n);
            if (r) {
                grants.push_back({clock.now().time_since_epoch().count(), n});
            } else {
                ASSERT_EQ(r.status, acquire_status::denied) << q.to_string();
                ASSERT_FALSE(b.try_acquire_at(n, r.ready_at - nanoseconds(1))) << q.to_string();
                clock.set(r.ready_at);
            }
        }
        EXPECT_TRUE(within_envelope(q, grants)) << q.to_string();
    }
}

} // namespace
