// Many threads hammering one bucket or one governor in virtual time (a manual clock), with
// conservation checked afterwards. Sized to take a few seconds under ThreadSanitizer on two
// cores: every test runs a fixed total number of operations split among its threads.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

#include "run_threads.hpp"

namespace {

using stress::elapsed_ns;
using stress::pacer;
using stress::run_threads;

using namespace std::chrono_literals;

using rategov::acquire_status;
using rategov::amount;
using rategov::quota;
using manual_clock = rategov::testing::manual_clock;

constexpr std::uint64_t total_ops = 160'000; // per test, split among the worker threads

std::uint64_t ops_per_thread(unsigned threads) {
    return total_ops / threads;
}

/// ceil(count · elapsed / period), exact: the most a limit lets accrue in `elapsed`.
std::uint64_t accrued_ceil(const quota& q, std::uint64_t elapsed_ns) {
    const auto p = static_cast<std::uint64_t>(q.period().count());
    return rategov::detail::div_ceil(rategov::detail::mul_64x64(q.count(), elapsed_ns), p);
}

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

class Stress : public ::testing::TestWithParam<unsigned> {};

std::string thread_count_name(const ::testing::TestParamInfo<unsigned>& info) {
    return std::to_string(info.param) + "threads";
}

// --- (a) one bucket ----------------------------------------------------------------------------

struct bucket_totals {
    std::atomic<std::uint64_t> granted{0}, refunded{0}, charged{0}, denied{0}, bad_reads{0};
};

/// try_acquire / reserve / refund / charge mixed. Refunds give back only tokens this thread
/// took, as a real caller would.
void hammer_bucket(rategov::bucket<manual_clock>& b, std::uint64_t burst, std::uint64_t ops,
                   std::chrono::nanoseconds max_wait, unsigned seed, bucket_totals& out,
                   pacer* pace = nullptr) {
    std::mt19937_64 rng(seed);
    std::uint64_t granted = 0, refunded = 0, charged = 0, denied = 0, bad_reads = 0, held = 0;
    for (std::uint64_t k = 0; k < ops; ++k) {
        if (pace != nullptr)
            pace->tick();
        const std::uint64_t n = uniform(rng, 1, 4);
        switch (uniform(rng, 0, 9)) {
        case 0:
        case 1:
        case 2:
        case 3: {
            const auto r = b.try_acquire(n);
            if (r) {
                granted += n;
                held += n;
            } else {
                ++denied;
                if (r.status != acquire_status::denied)
                    ++bad_reads;
            }
            break;
        }
        case 4:
        case 5: {
            const auto r = b.reserve(n, max_wait);
            if (r) {
                granted += n;
                held += n;
            } else {
                ++denied;
            }
            break;
        }
        case 6:
        case 7:
            if (held > 0) {
                const std::uint64_t m = uniform(rng, 1, held < 6 ? held : 6);
                b.refund(m);
                refunded += m;
                held -= m;
            }
            break;
        case 8:
            if (uniform(rng, 0, 7) == 0) { // usage beyond what was taken: never refunded
                b.charge(1);
                charged += 1;
            }
            break;
        default:
            if (b.available() > burst)
                ++bad_reads;
            break;
        }
    }
    out.granted += granted;
    out.refunded += refunded;
    out.charged += charged;
    out.denied += denied;
    out.bad_reads += bad_reads;
}

TEST_P(Stress, BucketWithFrozenClockGrantsAtMostItsBurstNetOfRefunds) {
    const unsigned n = GetParam();
    constexpr std::uint64_t burst = 5'000;
    manual_clock clock; // never advanced: no token ever accrues
    rategov::bucket<manual_clock> b(rategov::per_second(1'000).with_burst(burst), clock);
    bucket_totals t;
    run_threads(n, [&](unsigned i) { hammer_bucket(b, burst, ops_per_thread(n), 0ns, i + 1, t); });

    const std::uint64_t g = t.granted, r = t.refunded, c = t.charged;
    EXPECT_EQ(t.bad_reads.load(), 0u);
    EXPECT_GT(t.denied.load(), 0u) << "the bucket was never exhausted: the test proves nothing";
    EXPECT_GE(g, burst);
    EXPECT_LE(g, burst + r) << "granted " << g << " refunded " << r;
    // At a frozen instant the arithmetic is exact: what is missing from the bucket (or owed)
    // is exactly what was taken and charged and not given back.
    EXPECT_EQ(burst - b.available() + b.debt(), g + c - r)
        << "available " << b.available() << " debt " << b.debt();
}

TEST_P(Stress, BucketWithAdvancingClockGrantsAtMostBurstPlusRateTimesElapsed) {
    const unsigned n = GetParam();
    const quota q = rategov::per(1ms, 1'000).with_burst(2'000); // 1 token per µs
    constexpr auto max_wait = 3us;
    manual_clock clock;
    rategov::bucket<manual_clock> b(q, clock);
    bucket_totals t;
    pacer pace;
    run_threads(n + 1, [&](unsigned i) {
        if (i == n) { // a quarter of a token per worker operation
            pace.drive(n, 1, [&](std::uint64_t) { clock.advance(250ns); });
            return;
        }
        hammer_bucket(b, q.burst(), ops_per_thread(n), max_wait, i + 1, t, &pace);
        pace.finish();
    });

    const std::uint64_t elapsed = elapsed_ns(clock);
    EXPECT_GT(elapsed, 0u);
    const std::uint64_t g = t.granted, r = t.refunded;
    EXPECT_EQ(t.bad_reads.load(), 0u);
    EXPECT_GT(t.denied.load(), 0u) << "the bucket was never exhausted: the test proves nothing";
    // Reservations may take up to max_wait ahead of the time they were made.
    const std::uint64_t bound =
        q.burst() + accrued_ceil(q, elapsed + static_cast<std::uint64_t>(
                                                  std::chrono::nanoseconds(max_wait).count()));
    EXPECT_LE(g, bound + r) << "granted " << g << " refunded " << r << " elapsed " << elapsed
                            << " ns";
    EXPECT_LE(b.available(), q.burst());
}

// --- (b) one governor of three metrics --------------------------------------------------------

struct m0 {};
struct m1 {};
struct m2 {};
using three = rategov::metrics<m0, m1, m2>;
using gov_t = rategov::governor<three, manual_clock>;
using cost_t = gov_t::cost_type;
constexpr std::size_t N = three::size;

struct gov_totals {
    std::array<std::atomic<std::uint64_t>, N> granted{}, refunded{}, charged{};
    std::atomic<std::uint64_t> grants{0}, denials{0}, bad{0};
    // limit() read as none of the limits set, and the last such reading.
    std::atomic<std::uint64_t> mixed_limits{0}, mixed_count{0}, mixed_burst{0};
};

cost_t random_cost(std::mt19937_64& rng, const std::array<std::uint64_t, N>& max) {
    cost_t c;
    for (std::size_t i = 0; i < N; ++i)
        c[i] = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 1, max[i]);
    return c;
}

/// try_acquire of random costs, and reservations committed with random actual usage (from
/// nothing to twice the estimate) or cancelled. Tallies what each metric granted, refunded
/// (surplus, cancellations) and charged (deficits).
void hammer_governor(gov_t& gov, const std::array<std::uint64_t, N>& max_cost, std::uint64_t ops,
                     std::chrono::nanoseconds max_wait, unsigned seed, gov_totals& out,
                     pacer* pace = nullptr, const std::vector<quota>* m2_limits = nullptr) {
    std::mt19937_64 rng(seed);
    std::array<std::uint64_t, N> granted{}, refunded{}, charged{};
    std::uint64_t grants = 0, denials = 0, bad = 0;
    for (std::uint64_t k = 0; k < ops; ++k) {
        if (pace != nullptr)
            pace->tick();
        const cost_t c = random_cost(rng, max_cost);
        const std::uint64_t op = uniform(rng, 0, 7);
        if (op < 4) {
            const auto r = gov.try_acquire(c);
            if (r) {
                ++grants;
                for (std::size_t i = 0; i < N; ++i)
                    granted[i] += c[i];
                if (r.metric != N)
                    ++bad;
            } else {
                ++denials;
                if (r.status != acquire_status::denied || r.metric >= N || c[r.metric] == 0)
                    ++bad;
            }
        } else if (op < 7) {
            auto r = gov.reserve(c, max_wait);
            if (!r) {
                ++denials;
                if (r.pending() || r.metric() >= N)
                    ++bad;
                continue; // holds nothing; dropping it does nothing
            }
            ++grants;
            for (std::size_t i = 0; i < N; ++i)
                granted[i] += c[i];
            if (op == 6) {
                if (uniform(rng, 0, 1) == 0)
                    r.cancel();
                // else dropped: refund_on_drop
                for (std::size_t i = 0; i < N; ++i)
                    refunded[i] += c[i];
                continue;
            }
            cost_t actual;
            for (std::size_t i = 0; i < N; ++i) {
                actual[i] = uniform(rng, 0, 2 * c[i]);
                if (actual[i] > c[i])
                    charged[i] += actual[i] - c[i];
                else
                    refunded[i] += c[i] - actual[i];
            }
            r.commit(actual);
        } else if (m2_limits != nullptr) {
            // The limit in force is always one of those set, never a mix of two.
            const quota in_force = gov.limit<m2>();
            bool known = false;
            for (const quota& q : *m2_limits)
                known = known || q == in_force;
            if (!known) {
                out.mixed_limits.fetch_add(1, std::memory_order_relaxed);
                out.mixed_count.store(in_force.count(), std::memory_order_relaxed);
                out.mixed_burst.store(in_force.burst(), std::memory_order_relaxed);
            }
        } else {
            const auto a = gov.availability();
            (void)a;
        }
    }
    for (std::size_t i = 0; i < N; ++i) {
        out.granted[i] += granted[i];
        out.refunded[i] += refunded[i];
        out.charged[i] += charged[i];
    }
    out.grants += grants;
    out.denials += denials;
    out.bad += bad;
}

const std::array<std::uint64_t, N> max_cost{20, 5, 100};

TEST_P(Stress, GovernorWithFrozenClockGrantsAtMostEachBurstNetOfRefunds) {
    const unsigned n = GetParam();
    const std::array<quota, N> q{rategov::per_second(1'000).with_burst(100'000),
                                 rategov::per_second(1'000).with_burst(25'000),
                                 rategov::per_second(1'000).with_burst(500'000)};
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov_totals t;
    run_threads(
        n, [&](unsigned i) { hammer_governor(gov, max_cost, ops_per_thread(n), 0ns, 100 + i, t); });

    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.denials.load(), 0u) << "never exhausted: the test proves nothing";
    EXPECT_GT(t.grants.load(), 0u);
    const auto avail = gov.availability();
    const auto debt = gov.debts();
    for (std::size_t i = 0; i < N; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i], c = t.charged[i];
        EXPECT_LE(g, q[i].burst() + r) << "metric " << i << ": granted " << g << " refunded " << r;
        // The bucket accounts for every grant and charge; refunds are given back in full
        // except where reservations or debt were queued behind the refunded tokens (then the
        // refund is dropped rather than breaking a promise): never more than asked.
        const std::uint64_t used = q[i].burst() - avail[i] + debt[i];
        EXPECT_GE(used, g + c - r) << "metric " << i << ": available " << avail[i] << " debt "
                                   << debt[i] << ": a refund created tokens";
        EXPECT_LE(used, g + c) << "metric " << i << ": more used than granted and charged";
    }
}

TEST_P(Stress, GovernorWithAdvancingClockGrantsAtMostBurstPlusRateTimesElapsed) {
    const unsigned n = GetParam();
    const std::array<quota, N> q{rategov::per(1ms, 1'000), rategov::per(1ms, 250),
                                 rategov::per(1ms, 5'000)};
    constexpr auto max_wait = 5us;
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov_totals t;
    pacer pace;
    run_threads(n + 1, [&](unsigned i) {
        if (i == n) {
            pace.drive(n, 4, [&](std::uint64_t) { clock.advance(1us); });
            return;
        }
        hammer_governor(gov, max_cost, ops_per_thread(n), max_wait, 200 + i, t, &pace);
        pace.finish();
    });

    const std::uint64_t elapsed = elapsed_ns(clock);
    EXPECT_GT(elapsed, 0u);
    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.denials.load(), 0u) << "never exhausted: the test proves nothing";
    for (std::size_t i = 0; i < N; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        const std::uint64_t bound =
            q[i].burst() +
            accrued_ceil(q[i], elapsed + static_cast<std::uint64_t>(
                                             std::chrono::nanoseconds(max_wait).count()));
        EXPECT_LE(g, bound + r) << "metric " << i << ": granted " << g << " refunded " << r
                                << " elapsed " << elapsed << " ns";
    }
}

TEST_P(Stress, GovernorDenialsLeaveNothingTaken) {
    const unsigned n = GetParam();
    // Small bursts, so that the tokens the threads hold make many requests fail part-way.
    const std::array<quota, N> q{rategov::per_second(1'000).with_burst(100),
                                 rategov::per_second(1'000).with_burst(30),
                                 rategov::per_second(1'000).with_burst(500)};
    manual_clock clock; // frozen
    gov_t gov(clock, q[0], q[1], q[2]);
    std::atomic<std::uint64_t> grants{0}, partial_denials{0}, bad{0};
    run_threads(n, [&](unsigned i) {
        std::mt19937_64 rng(300 + i);
        std::deque<cost_t> held; // what this thread took and has not given back
        std::uint64_t my_grants = 0, my_partial = 0, my_bad = 0;
        for (std::uint64_t k = 0; k < ops_per_thread(n); ++k) {
            const cost_t c = random_cost(rng, max_cost);
            const std::uint64_t op = uniform(rng, 0, 3);
            if (op < 2) {
                const auto r = gov.try_acquire(c);
                if (r) {
                    ++my_grants;
                    held.push_back(c);
                } else if (r.status != acquire_status::denied) {
                    ++my_bad;
                } else if (r.metric > 0) {
                    ++my_partial; // earlier metrics were taken, then rolled back
                }
            } else if (op == 2) {
                auto r = gov.reserve(c, 0ns);
                if (r) {
                    ++my_grants;
                    if (uniform(rng, 0, 1) == 0)
                        r.cancel();
                    // else dropped: refunded
                } else if (r.metric() > 0 && r.status() == acquire_status::denied) {
                    ++my_partial;
                }
            } else if (!held.empty()) {
                gov.refund(held.front());
                held.pop_front();
            }
            if (held.size() > 8) {
                gov.refund(held.front());
                held.pop_front();
            }
        }
        for (const cost_t& c : held)
            gov.refund(c);
        grants += my_grants;
        partial_denials += my_partial;
        bad += my_bad;
    });

    EXPECT_EQ(bad.load(), 0u);
    EXPECT_GT(grants.load(), 0u);
    EXPECT_GT(partial_denials.load(), 0u) << "no rollback happened: the test proves nothing";
    EXPECT_EQ(gov.availability(),
              (std::array<std::uint64_t, N>{q[0].burst(), q[1].burst(), q[2].burst()}));
    EXPECT_EQ(gov.debts(), (std::array<std::uint64_t, N>{}));
}

// set_limit on m2 from another thread, among limits that share a period: whatever the
// interleaving, m2 never grants beyond the largest burst and the largest rate in force.
const std::vector<quota> m2_limits{rategov::per(1ms, 2'000).with_burst(2'000),
                                   rategov::per(1ms, 5'000).with_burst(6'000),
                                   rategov::per(1ms, 800).with_burst(10'000)};

std::uint64_t max_burst_of(const std::vector<quota>& qs) {
    std::uint64_t m = 0;
    for (const quota& q : qs)
        m = q.burst() > m ? q.burst() : m;
    return m;
}
std::uint64_t max_count_of(const std::vector<quota>& qs) {
    std::uint64_t m = 0;
    for (const quota& q : qs)
        m = q.count() > m ? q.count() : m;
    return m;
}

/// Moves m2 to the next limit (inheritance::keep), starting from m2_limits[0].
void next_limit(gov_t& gov, std::uint64_t k) {
    gov.set_limit<m2>(m2_limits[(k + 1) % 3]);
}

TEST_P(Stress, GovernorSetLimitRacingWithFrozenClockNeverGrantsBeyondTheLimits) {
    const unsigned n = GetParam();
    const std::array<quota, N> q{rategov::per(1ms, 1'000).with_burst(100'000),
                                 rategov::per(1ms, 250).with_burst(25'000), m2_limits[0]};
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov_totals t;
    pacer pace;
    std::uint64_t sets = 0;
    run_threads(n + 1, [&](unsigned i) {
        if (i == n) {
            sets = pace.drive(n, 50, [&](std::uint64_t k) { next_limit(gov, k); });
            return;
        }
        hammer_governor(gov, max_cost, ops_per_thread(n), 0ns, 400 + i, t, &pace, &m2_limits);
        pace.finish();
    });

    EXPECT_GT(sets, 100u) << "the limit barely changed: the test proves little";
    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_EQ(t.mixed_limits.load(), 0u)
        << "limit<m2>() returned a quota that was never set, e.g. count " << t.mixed_count.load()
        << " per 1 ms, burst " << t.mixed_burst.load();
    EXPECT_GT(t.denials.load(), 0u);
    for (std::size_t i = 0; i < 2; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        EXPECT_LE(g, q[i].burst() + r) << "metric " << i;
    }
    const std::uint64_t g = t.granted[2], r = t.refunded[2];
    EXPECT_LE(g, max_burst_of(m2_limits) + r) << "granted " << g << " refunded " << r;
    // inheritance::keep carries the available tokens over and never adds any: with no time
    // passing, m2 cannot grant more than it started with.
    EXPECT_LE(g, q[2].burst() + r)
        << "granted " << g << " refunded " << r << " over " << sets << " limit changes";
}

TEST_P(Stress, GovernorSetLimitRacingWithAdvancingClockNeverGrantsBeyondTheLimits) {
    const unsigned n = GetParam();
    const std::array<quota, N> q{rategov::per(1ms, 1'000), rategov::per(1ms, 250), m2_limits[0]};
    constexpr auto max_wait = 5us;
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov_totals t;
    pacer pace(2);
    std::uint64_t sets = 0;
    run_threads(n + 2, [&](unsigned i) {
        if (i == n) {
            pace.drive(n, 4, [&](std::uint64_t) { clock.advance(1us); });
            return;
        }
        if (i == n + 1) {
            sets = pace.drive(
                n, 50, [&](std::uint64_t k) { next_limit(gov, k); }, 1);
            return;
        }
        hammer_governor(gov, max_cost, ops_per_thread(n), max_wait, 500 + i, t, &pace, &m2_limits);
        pace.finish();
    });

    const std::uint64_t elapsed = elapsed_ns(clock);
    const auto ahead =
        elapsed + static_cast<std::uint64_t>(std::chrono::nanoseconds(max_wait).count());
    EXPECT_GT(sets, 100u) << "the limit barely changed: the test proves little";
    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_EQ(t.mixed_limits.load(), 0u)
        << "limit<m2>() returned a quota that was never set, e.g. count " << t.mixed_count.load()
        << " per 1 ms, burst " << t.mixed_burst.load();
    EXPECT_GT(t.denials.load(), 0u);
    for (std::size_t i = 0; i < 2; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        EXPECT_LE(g, q[i].burst() + accrued_ceil(q[i], ahead) + r) << "metric " << i;
    }
    const quota fastest = rategov::per(1ms, max_count_of(m2_limits));
    const std::uint64_t g = t.granted[2], r = t.refunded[2];
    EXPECT_LE(g, max_burst_of(m2_limits) + accrued_ceil(fastest, ahead) + r)
        << "granted " << g << " refunded " << r << " elapsed " << elapsed << " ns over " << sets
        << " limit changes";
}

TEST_P(Stress, GovernorLimitReadRacingWithSetLimitIsAlwaysALimitThatWasSet) {
    // limit() read while another thread changes the limit as fast as it can: every reading
    // must be one of the quotas set (count, period and burst of the same one).
    const unsigned n = GetParam();
    manual_clock clock;
    gov_t gov(clock, rategov::per(1ms, 1'000), rategov::per(1ms, 250), m2_limits[0]);
    pacer pace;
    std::atomic<std::uint64_t> mixed{0}, mixed_count{0}, mixed_burst{0};
    std::uint64_t sets = 0;
    run_threads(n + 1, [&](unsigned i) {
        if (i == n) {
            sets = pace.drive(n, 1, [&](std::uint64_t k) { next_limit(gov, k); });
            return;
        }
        for (std::uint64_t k = 0; k < ops_per_thread(n); ++k) {
            pace.tick();
            const quota in_force = gov.limit<m2>();
            if (in_force != m2_limits[0] && in_force != m2_limits[1] && in_force != m2_limits[2]) {
                mixed.fetch_add(1, std::memory_order_relaxed);
                mixed_count.store(in_force.count(), std::memory_order_relaxed);
                mixed_burst.store(in_force.burst(), std::memory_order_relaxed);
            }
        }
        pace.finish();
    });
    EXPECT_GT(sets, 1'000u);
    EXPECT_EQ(mixed.load(), 0u) << "limit<m2>() returned a quota that was never set, e.g. count "
                                << mixed_count.load() << " per 1 ms, burst " << mixed_burst.load()
                                << " (" << sets << " limit changes)";
}

INSTANTIATE_TEST_SUITE_P(Threads, Stress, ::testing::Values(2u, 4u, 8u), thread_count_name);

} // namespace
