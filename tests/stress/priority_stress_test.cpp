// Regular and priority traffic from several threads on one governor of three metrics with a
// priority headroom, in virtual time (a manual clock): the headroom is never eaten by regular
// traffic, nothing is granted beyond the limits, and the accounting balances once every
// reservation is settled. Sized to take a few seconds under ThreadSanitizer on two cores.
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

#include "run_threads.hpp"

namespace {

using stress::elapsed_ns;
using stress::run_threads;

using namespace std::chrono_literals;

using rategov::acquire_status;
using rategov::quota;
using rategov::traffic_class;
using manual_clock = rategov::testing::manual_clock;

constexpr traffic_class regular = traffic_class::regular;
constexpr traffic_class priority = traffic_class::priority;

constexpr unsigned threads = 4;
constexpr std::uint64_t total_ops = 320'000; // per test, split among the threads
constexpr std::uint64_t ops_per_thread = total_ops / threads;

// A headroom that is a whole number of 1/65536, and bursts divisible by 4: the regular part
// of each metric is exactly three quarters of its burst.
constexpr double headroom = 0.25;

struct m0 {};
struct m1 {};
struct m2 {};
using three = rategov::metrics<m0, m1, m2>;
using gov_t = rategov::governor<three, manual_clock>;
using cost_t = gov_t::cost_type;
constexpr std::size_t N = three::size;
using per_metric = std::array<std::uint64_t, N>;

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

/// ceil(count · elapsed / period), exact: the most a limit lets accrue in `elapsed`.
std::uint64_t accrued_ceil(const quota& q, std::uint64_t elapsed_ns) {
    const auto p = static_cast<std::uint64_t>(q.period().count());
    return rategov::detail::div_ceil(rategov::detail::mul_64x64(q.count(), elapsed_ns), p);
}

cost_t random_cost(std::mt19937_64& rng, const per_metric& max) {
    cost_t c;
    for (std::size_t i = 0; i < N; ++i)
        c[i] = uniform(rng, 0, 3) == 0 ? 0 : uniform(rng, 1, max[i]);
    return c;
}

per_metric bursts_of(const std::array<quota, N>& q) {
    return {q[0].burst(), q[1].burst(), q[2].burst()};
}

per_metric kept_of(const std::array<quota, N>& q) {
    return {q[0].burst() / 4, q[1].burst() / 4, q[2].burst() / 4};
}

/// What the threads did, per metric and in all.
struct totals {
    std::array<std::atomic<std::uint64_t>, N> granted{}, refunded{}, regular_granted{};
    std::atomic<std::uint64_t> grants{0}, regular_grants{0}, priority_grants{0};
    std::atomic<std::uint64_t> denials{0}, regular_denials{0}, bad{0};
    std::atomic<std::uint64_t> headroom_breaches{0}; // a read saw a metric below its headroom

    void add(const per_metric& g, const per_metric& r, const per_metric& rg) {
        for (std::size_t i = 0; i < N; ++i) {
            granted[i] += g[i];
            refunded[i] += r[i];
            regular_granted[i] += rg[i];
        }
    }
};

/// One worker: regular and/or priority try_acquire and reserve (max_wait), reservations
/// committed with usage up to the estimate (never more: no charges) or cancelled. With
/// `refunds` false, every reservation is committed with its estimate. With `kept` set (a
/// frozen clock and regular traffic only), every read checks that each metric still holds
/// its headroom. `advance`: virtual time this thread adds every 4 operations (0: frozen).
struct worker_options {
    bool regular_traffic = true;
    bool priority_traffic = true;
    bool refunds = true;
    std::chrono::nanoseconds max_wait{0};
    std::chrono::nanoseconds advance{0};
    const per_metric* kept = nullptr;
};

void work(gov_t& gov, manual_clock& clock, const per_metric& max_cost, unsigned seed,
          const worker_options& opt, totals& out) {
    std::mt19937_64 rng(seed);
    per_metric granted{}, refunded{}, regular_granted{};
    std::uint64_t grants = 0, regular_grants = 0, priority_grants = 0, denials = 0,
                  regular_denials = 0, bad = 0, breaches = 0;
    auto pick_class = [&] {
        if (!opt.priority_traffic)
            return regular;
        if (!opt.regular_traffic)
            return priority;
        return uniform(rng, 0, 2) == 0 ? priority : regular; // two thirds regular
    };
    auto note_grant = [&](const cost_t& c, traffic_class who) {
        ++grants;
        ++(who == regular ? regular_grants : priority_grants);
        for (std::size_t i = 0; i < N; ++i) {
            granted[i] += c[i];
            if (who == regular)
                regular_granted[i] += c[i];
        }
    };
    auto note_denial = [&](traffic_class who) {
        ++denials;
        if (who == regular)
            ++regular_denials;
    };
    for (std::uint64_t k = 0; k < ops_per_thread; ++k) {
        if (opt.advance.count() > 0 && k % 4 == 0)
            clock.advance(opt.advance);
        const cost_t c = random_cost(rng, max_cost);
        const traffic_class who = pick_class();
        const std::uint64_t op = uniform(rng, 0, 9);
        if (op < 4) {
            const auto r = gov.try_acquire(c, who);
            if (r) {
                note_grant(c, who);
                if (r.metric != N)
                    ++bad;
            } else {
                note_denial(who);
                // Costs stay within the regular part: never exceeds_capacity.
                if (r.status != acquire_status::denied || r.metric >= N || c[r.metric] == 0)
                    ++bad;
            }
        } else if (op < 9) {
            auto r = gov.reserve(c, opt.max_wait, who);
            if (!r) {
                note_denial(who);
                if (r.pending() || r.status() != acquire_status::denied || r.metric() >= N)
                    ++bad;
                continue; // holds nothing
            }
            note_grant(c, who);
            if (!opt.refunds) {
                r.commit(c);
                continue;
            }
            if (op == 8) {
                r.cancel();
                for (std::size_t i = 0; i < N; ++i)
                    refunded[i] += c[i];
                continue;
            }
            cost_t actual;
            for (std::size_t i = 0; i < N; ++i) {
                actual[i] = uniform(rng, 0, c[i]);
                refunded[i] += c[i] - actual[i];
            }
            r.commit(actual);
        } else {
            const auto avail = gov.availability();
            if (opt.kept != nullptr)
                for (std::size_t i = 0; i < N; ++i)
                    if (avail[i] < (*opt.kept)[i])
                        ++breaches;
        }
    }
    out.add(granted, refunded, regular_granted);
    out.grants += grants;
    out.regular_grants += regular_grants;
    out.priority_grants += priority_grants;
    out.denials += denials;
    out.regular_denials += regular_denials;
    out.bad += bad;
    out.headroom_breaches += breaches;
}

// Costs well within each metric's regular part (3/4 of the burst).
const per_metric max_cost{20, 5, 100};

// --- frozen clock ------------------------------------------------------------------------------

TEST(PriorityStress, RegularFloodOnAFrozenClockNeverEatsThePriorityHeadroom) {
    const std::array<quota, N> q{rategov::per_second(1'000).with_burst(4'000),
                                 rategov::per_second(1'000).with_burst(1'000),
                                 rategov::per_second(1'000).with_burst(20'000)};
    manual_clock clock; // never advanced
    gov_t gov(clock, q[0], q[1], q[2]);
    gov.set_priority_headroom(headroom);
    const per_metric kept = kept_of(q), burst = bursts_of(q);
    totals t;
    worker_options opt;
    opt.priority_traffic = false;
    opt.kept = &kept;
    run_threads(threads, [&](unsigned i) { work(gov, clock, max_cost, 10 + i, opt, t); });

    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_EQ(t.headroom_breaches.load(), 0u) << "a metric was seen below its headroom";
    EXPECT_GT(t.regular_denials.load(), 0u) << "never exhausted: the test proves nothing";
    EXPECT_GT(t.regular_grants.load(), 0u);
    const auto avail = gov.availability();
    const auto debt = gov.debts();
    for (std::size_t i = 0; i < N; ++i) {
        EXPECT_GE(avail[i], kept[i]) << "metric " << i << ": regular traffic ate the headroom";
        EXPECT_EQ(debt[i], 0u) << "metric " << i;
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        const std::uint64_t used = burst[i] - avail[i];
        EXPECT_LE(g, burst[i] - kept[i] + r)
            << "metric " << i << ": granted " << g << " refunded " << r;
        EXPECT_GE(used, g - r) << "metric " << i << ": a refund created tokens";
        EXPECT_LE(used, g) << "metric " << i << ": more used than granted";
    }
    // The headroom is all there for priority traffic, at once.
    cost_t all;
    for (std::size_t i = 0; i < N; ++i)
        all[i] = avail[i];
    EXPECT_TRUE(gov.try_acquire(all, priority));
    EXPECT_EQ(gov.availability(), (per_metric{}));
}

TEST(PriorityStress, MixedTrafficOnAFrozenClockWithoutRefundsIsExact) {
    // No refunds, no time: every token taken stays taken, so the accounting is exact, and
    // regular traffic, which must leave each headroom free, got at most the regular part.
    const std::array<quota, N> q{rategov::per_second(1'000).with_burst(40'000),
                                 rategov::per_second(1'000).with_burst(10'000),
                                 rategov::per_second(1'000).with_burst(200'000)};
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov.set_priority_headroom(headroom);
    const per_metric kept = kept_of(q), burst = bursts_of(q);
    totals t;
    worker_options opt;
    opt.refunds = false;
    run_threads(threads, [&](unsigned i) { work(gov, clock, max_cost, 20 + i, opt, t); });

    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.regular_denials.load(), 0u) << "never exhausted: the test proves nothing";
    EXPECT_GT(t.regular_grants.load(), 0u);
    EXPECT_GT(t.priority_grants.load(), 0u);
    const auto avail = gov.availability();
    for (std::size_t i = 0; i < N; ++i) {
        EXPECT_EQ(t.refunded[i].load(), 0u);
        EXPECT_EQ(burst[i] - avail[i], t.granted[i].load()) << "metric " << i;
        EXPECT_LE(t.regular_granted[i].load(), burst[i] - kept[i]) << "metric " << i;
    }
    EXPECT_EQ(gov.debts(), (per_metric{}));
}

TEST(PriorityStress, MixedTrafficOnAFrozenClockWithRefundsBalances) {
    const std::array<quota, N> q{rategov::per_second(1'000).with_burst(4'000),
                                 rategov::per_second(1'000).with_burst(1'000),
                                 rategov::per_second(1'000).with_burst(20'000)};
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov.set_priority_headroom(headroom);
    const per_metric burst = bursts_of(q);
    totals t;
    worker_options opt;
    run_threads(threads, [&](unsigned i) { work(gov, clock, max_cost, 30 + i, opt, t); });

    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.denials.load(), 0u) << "never exhausted: the test proves nothing";
    const auto avail = gov.availability();
    const auto debt = gov.debts();
    for (std::size_t i = 0; i < N; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        EXPECT_LE(g, burst[i] + r) << "metric " << i;
        // Refunds come back in full except behind queued reservations (dropped, never
        // created): used lies between what is held and what was granted.
        const std::uint64_t used = burst[i] - avail[i] + debt[i];
        EXPECT_GE(used, g - r) << "metric " << i << ": a refund created tokens";
        EXPECT_LE(used, g) << "metric " << i;
    }
}

// --- advancing clock ---------------------------------------------------------------------------

TEST(PriorityStress, MixedTrafficWithAdvancingClockGrantsAtMostBurstPlusRateTimesElapsed) {
    // Each thread moves the clock by 1 µs every 4 operations; reservations may wait 5 µs.
    const std::array<quota, N> q{rategov::per(1ms, 1'000).with_burst(1'000),
                                 rategov::per(1ms, 250).with_burst(100),
                                 rategov::per(1ms, 5'000).with_burst(4'000)};
    constexpr auto max_wait = 5us;
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov.set_priority_headroom(headroom);
    const per_metric burst = bursts_of(q), kept = kept_of(q);
    totals t;
    worker_options opt;
    opt.max_wait = max_wait;
    opt.advance = 1us;
    run_threads(threads, [&](unsigned i) { work(gov, clock, max_cost, 40 + i, opt, t); });

    const std::uint64_t elapsed = elapsed_ns(clock);
    EXPECT_EQ(elapsed, total_ops / 4 * 1'000) << "every step of every thread counted";
    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.regular_denials.load(), 0u) << "never exhausted: the test proves nothing";
    EXPECT_GT(t.regular_grants.load(), 0u);
    EXPECT_GT(t.priority_grants.load(), 0u);
    const std::uint64_t ahead =
        elapsed + static_cast<std::uint64_t>(std::chrono::nanoseconds(max_wait).count());
    for (std::size_t i = 0; i < N; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        const std::uint64_t bound = burst[i] + accrued_ceil(q[i], ahead);
        EXPECT_LE(g, bound + r) << "metric " << i << ": granted " << g << " refunded " << r
                                << " elapsed " << elapsed << " ns";
        // And the limit was used: the threads were never starved of tokens by the headroom.
        EXPECT_GE(g - r, accrued_ceil(q[i], elapsed) / 2) << "metric " << i;
    }

    // Every reservation is settled: once time has refilled the buckets, nothing is lost or
    // left queued, and the headroom works as on a new governor.
    clock.advance(1s);
    EXPECT_EQ(gov.availability(), burst);
    EXPECT_EQ(gov.debts(), (per_metric{}));
    cost_t part, over;
    per_metric part_avail{};
    for (std::size_t i = 0; i < N; ++i) {
        part[i] = burst[i] - kept[i];
        part_avail[i] = part[i];
        over[i] = 0;
    }
    over[1] = burst[1] - kept[1] + 1;
    EXPECT_EQ(gov.try_acquire(over, regular).status, acquire_status::exceeds_capacity);
    auto r = gov.reserve(part, 0ns, regular);
    ASSERT_TRUE(r);
    EXPECT_EQ(r.ready_at(), clock.now());
    EXPECT_EQ(gov.availability(), kept);
    EXPECT_FALSE(gov.try_acquire(cost_t{rategov::amount<m1>{1}}, regular));
    EXPECT_TRUE(gov.try_acquire(cost_t{rategov::amount<m0>{kept[0]}, rategov::amount<m1>{kept[1]},
                                       rategov::amount<m2>{kept[2]}},
                                priority));
    r.cancel();
    EXPECT_EQ(gov.availability(), part_avail) << "the cancelled regular part came back exactly";
}

TEST(PriorityStress, MixedTrafficWithLongReservationsSettlesCompletely) {
    // Long waits: reservations queue far ahead (priority without bound, regular one beyond
    // the regular part at a time) and are all settled; then, with time enough, every bucket
    // is full again and owes nothing.
    const std::array<quota, N> q{rategov::per(1ms, 1'000).with_burst(1'000),
                                 rategov::per(1ms, 250).with_burst(100),
                                 rategov::per(1ms, 5'000).with_burst(4'000)};
    constexpr auto max_wait = 200us;
    manual_clock clock;
    gov_t gov(clock, q[0], q[1], q[2]);
    gov.set_priority_headroom(headroom);
    const per_metric burst = bursts_of(q);
    totals t;
    worker_options opt;
    opt.max_wait = max_wait;
    opt.advance = 1us;
    run_threads(threads, [&](unsigned i) { work(gov, clock, max_cost, 50 + i, opt, t); });

    const std::uint64_t elapsed = elapsed_ns(clock);
    EXPECT_EQ(t.bad.load(), 0u);
    EXPECT_GT(t.regular_denials.load(), 0u);
    const std::uint64_t ahead =
        elapsed + static_cast<std::uint64_t>(std::chrono::nanoseconds(max_wait).count());
    for (std::size_t i = 0; i < N; ++i) {
        const std::uint64_t g = t.granted[i], r = t.refunded[i];
        EXPECT_LE(g, burst[i] + accrued_ceil(q[i], ahead) + r)
            << "metric " << i << ": granted " << g << " refunded " << r;
    }
    clock.advance(1s);
    EXPECT_EQ(gov.availability(), burst);
    EXPECT_EQ(gov.debts(), (per_metric{}));
}

// --- admission under contention ----------------------------------------------------------------

/// A barrier whose waiters spin (yielding now and then), so that they leave it together and
/// race, rather than one by one as a blocking barrier wakes them. `between()` runs on the
/// last thread to arrive, before the others are released.
class spin_barrier {
public:
    explicit spin_barrier(unsigned n)
        : m_n(n) {}
    template <class F>
    void arrive_and_wait(F between) {
        const unsigned gen = m_generation.load(std::memory_order_acquire);
        if (m_count.fetch_add(1, std::memory_order_acq_rel) + 1 == m_n) {
            between();
            m_count.store(0, std::memory_order_relaxed);
            m_generation.fetch_add(1, std::memory_order_release);
            // Give the spinning waiters the time to see the release, so that this thread
            // does not run ahead of them.
            for (unsigned k = 0; k < release_lag; ++k)
                static_cast<void>(m_generation.load(std::memory_order_acquire));
            return;
        }
        for (unsigned spins = 0; m_generation.load(std::memory_order_acquire) == gen; ++spins)
            if (spins % 64 == 63)
                std::this_thread::yield();
    }

private:
    static constexpr unsigned release_lag = 256;
    unsigned m_n;
    std::atomic<unsigned> m_count{0};
    std::atomic<unsigned> m_generation{0};
};

class PriorityAdmissionStress : public ::testing::TestWithParam<unsigned> {};

TEST_P(PriorityAdmissionStress, RegularReservationsQueueAtMostOneRequestBeyondTheRegularPart) {
    // Round after round, on a governor of three metrics (burst 100, regular part 75) where a
    // priority reservation holds 40 of each, the threads each ask at once for a regular
    // reservation of 40 on each metric, waiting as long as needed. One at a time, the first
    // is admitted (40 ≤ 75 in use) and queued (80 in use); every other one is refused, since
    // 80 > 75 is queued beyond the regular part. So one regular reservation per round, and a
    // metric never has more than the regular part plus one regular request in use.
    const unsigned n = GetParam();
    const quota q = rategov::per_second(100).with_burst(100);
    constexpr std::uint64_t each = 40, part = 75;
    constexpr unsigned rounds = 500, trials = 8;
    manual_clock clock;
    gov_t gov(clock, q, q, q);
    gov.set_priority_headroom(headroom);
    const cost_t c{rategov::amount<m0>{each}, rategov::amount<m1>{each}, rategov::amount<m2>{each}};

    std::vector<std::optional<gov_t::reservation_type>> held(n);
    std::optional<gov_t::reservation_type> ahead = gov.reserve(c, 0ns, priority);
    ASSERT_TRUE(*ahead);
    std::atomic<unsigned> granted_now{0};
    unsigned phase = 0, worst = 0, violating_rounds = 0, unbalanced = 0;
    std::uint64_t worst_used = 0;
    auto between = [&] {
        if (phase % 2 == 0) { // every thread has asked: look at what is in use
            const unsigned g = granted_now.exchange(0);
            worst = g > worst ? g : worst;
            const auto avail = gov.availability();
            const auto debt = gov.debts();
            bool over = false;
            for (std::size_t i = 0; i < N; ++i) {
                const std::uint64_t used = q.burst() - avail[i] + debt[i];
                worst_used = used > worst_used ? used : worst_used;
                over = over || used > part + each;
            }
            violating_rounds += over ? 1 : 0;
        } else { // every reservation settled: fill up again, and hold 40 for priority
            ahead->commit(c);
            clock.advance(10s);
            if (gov.availability() != per_metric{100, 100, 100})
                ++unbalanced;
            ahead = gov.reserve(c, 0ns, priority);
            if (!*ahead)
                ++unbalanced;
        }
        ++phase;
    };
    // Whether threads race depends on where the scheduler puts them: several trials, each
    // with threads of its own.
    for (unsigned trial = 0; trial < trials; ++trial) {
        spin_barrier sync(n);
        run_threads(n, [&](unsigned i) {
            for (unsigned k = 0; k < rounds; ++k) {
                sync.arrive_and_wait([] {});
                auto r = gov.reserve(c, std::chrono::nanoseconds::max(), regular);
                if (r) {
                    granted_now.fetch_add(1);
                    held[i].emplace(std::move(r));
                } else if (r.status() != acquire_status::denied) {
                    ADD_FAILURE() << "status " << static_cast<int>(r.status());
                }
                sync.arrive_and_wait(between);
                if (held[i]) {
                    held[i]->commit(c);
                    held[i].reset();
                }
                sync.arrive_and_wait(between);
            }
        });
    }
    ahead->commit(c);
    EXPECT_EQ(unbalanced, 0u);
    EXPECT_LE(worst, 1u) << "regular reservations granted in one round";
    EXPECT_EQ(violating_rounds, 0u) << "rounds (of " << rounds * trials
                                    << ") in which regular reservations were queued beyond the "
                                    << "regular part plus one request; worst: " << worst_used
                                    << " in use of burst 100 (regular part 75, one request 40)";
}

INSTANTIATE_TEST_SUITE_P(Threads, PriorityAdmissionStress, ::testing::Values(2u, 4u),
                         [](const ::testing::TestParamInfo<unsigned>& param_info) {
                             return std::to_string(param_info.param) + "threads";
                         });

} // namespace
