// Reservations settled (surplus refunded exactly, deficit charged, or cancelled) while
// another thread changes the limit (keep or proportional inheritance), on a frozen and on an
// advancing manual clock. Conservation afterwards: refunds never create tokens.
//
// Frozen clock, ending with the original limit: keep and proportional (all limits share one
// burst, so the two inheritances carry the same tokens) never add tokens, so what is missing
// from the bucket is at least what was granted and charged minus what was asked back.
//
// Advancing clock: some reservations are cancelled late, once time has restored all of their
// tokens (their end lay at most one burst past the accrual at their ready time, and time
// restores at least the smallest rate of the run): such a refund must give nothing back, so
// what the bucket holds in use at the end is at least what was granted and charged minus the
// other refunds and the most the largest rate can have restored.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
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

using rategov::inheritance;
using rategov::quota;
using manual_clock = rategov::testing::manual_clock;

struct m0 {};
using one = rategov::metrics<m0>;
using gov_t = rategov::governor<one, manual_clock>;
using cost_t = gov_t::cost_type;
using reservation_t = gov_t::reservation_type;

constexpr std::uint64_t total_ops = 120'000; // per test, split among the workers
constexpr std::uint64_t burst = 200;

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

/// Limits sharing one burst, with close rates (per ms), so that the bound with the largest
/// rate stays tight. Odd counts give units per token that are no multiples of one another.
const std::vector<quota> limits{
    rategov::per(1ms, 1'000).with_burst(burst), rategov::per(1ms, 1'009).with_burst(burst),
    rategov::per(1ms, 1'013).with_burst(burst), rategov::per(1ms, 997).with_burst(burst)};
const quota& original = limits[0];
constexpr std::uint64_t rate_max_per_ms = 1'013;
constexpr std::uint64_t rate_min_per_ms = 997;

cost_t of(std::uint64_t n) {
    return cost_t{rategov::amount<m0>{n}};
}

/// ceil(count_per_ms · ns / 10^6).
std::uint64_t accrual_ceil(std::uint64_t per_ms, std::uint64_t ns) {
    return rategov::detail::div_ceil(rategov::detail::mul_64x64(per_ms, ns), 1'000'000);
}

struct totals {
    std::atomic<std::uint64_t> granted{0}, refunded{0}, charged{0}, denied{0}, late{0};
    std::atomic<std::uint64_t> late_tokens{0};
};

/// Progress shared by the workers and the drivers (clock, limit changer): the drivers act
/// once per `every` worker operations, and the workers wait for them.
struct pace {
    std::atomic<std::uint64_t> progress{0};
    std::atomic<std::uint64_t> driven[2] = {};
    std::atomic<unsigned> done{0};
    std::uint64_t every[2] = {0, 0};

    void tick() {
        const std::uint64_t p = progress.fetch_add(1, std::memory_order_relaxed) + 1;
        for (unsigned d = 0; d < 2; ++d)
            while (every[d] != 0 && p > (driven[d].load(std::memory_order_acquire) + 64) * every[d])
                std::this_thread::yield();
    }
    template <class F>
    std::uint64_t drive(unsigned workers, unsigned d, F f) {
        std::uint64_t calls = 0;
        while (done.load(std::memory_order_acquire) < workers) {
            if (calls < progress.load(std::memory_order_relaxed) / every[d]) {
                f(calls);
                driven[d].store(++calls, std::memory_order_release);
            } else {
                std::this_thread::yield();
            }
        }
        return calls;
    }
};

/// Reserves random estimates; commits most at once with a random actual usage (surplus or
/// deficit), cancels some at once, and (with `late_after` > 0) keeps some to cancel once
/// the clock has moved `late_after` ns past their ready time.
void work(gov_t& gov, const manual_clock& clock, std::uint64_t ops, std::chrono::nanoseconds wait,
          std::uint64_t late_after, unsigned seed, totals& out, pace& p) {
    std::mt19937_64 rng(seed);
    std::uint64_t granted = 0, refunded = 0, charged = 0, denied = 0, late = 0, late_tokens = 0;
    struct held {
        reservation_t r;
        std::uint64_t ready;
    };
    std::deque<held> kept;
    const auto settle_late = [&](bool all) {
        while (!kept.empty() && (all || elapsed_ns(clock) > kept.front().ready + late_after)) {
            const bool restored = elapsed_ns(clock) > kept.front().ready + late_after;
            if (!restored)
                refunded += kept.front().r.estimate()[0]; // may legitimately come back
            else {
                ++late;
                late_tokens += kept.front().r.estimate()[0];
            }
            kept.front().r.cancel();
            kept.pop_front();
        }
    };
    for (std::uint64_t k = 0; k < ops; ++k) {
        p.tick();
        settle_late(false);
        const std::uint64_t n = uniform(rng, 1, 16);
        auto r = gov.reserve(of(n), wait);
        if (!r) {
            ++denied;
            continue;
        }
        granted += n;
        const std::uint64_t op = uniform(rng, 0, 9);
        if (late_after > 0 && op == 0 && kept.size() < 64) {
            const auto ready = static_cast<std::uint64_t>(r.ready_at().time_since_epoch().count());
            kept.push_back({std::move(r), ready});
        } else if (op <= 1) {
            r.cancel();
            refunded += n;
        } else {
            const std::uint64_t actual = uniform(rng, 0, 2 * n);
            if (actual > n)
                charged += actual - n;
            else
                refunded += n - actual;
            r.commit(of(actual));
        }
    }
    settle_late(true);
    out.granted += granted;
    out.refunded += refunded;
    out.charged += charged;
    out.denied += denied;
    out.late += late;
    out.late_tokens += late_tokens;
}

struct RefundStress : ::testing::TestWithParam<inheritance> {};

std::string inheritance_name(const ::testing::TestParamInfo<inheritance>& info) {
    return info.param == inheritance::keep ? "keep" : "proportional";
}

TEST_P(RefundStress, FrozenClockRefundsNeverCreateTokens) {
    const inheritance how = GetParam();
    constexpr unsigned workers = 4;
    manual_clock clock(manual_clock::time_point(1s)); // never advanced
    gov_t gov(clock, original);
    totals t;
    pace p;
    p.every[0] = 7;
    std::uint64_t sets = 0;
    run_threads(workers + 1, [&](unsigned i) {
        if (i == workers) {
            std::mt19937_64 rng(99);
            sets = p.drive(workers, 0, [&](std::uint64_t) {
                gov.set_limit<m0>(limits[uniform(rng, 0, limits.size() - 1)], how);
            });
            return;
        }
        work(gov, clock, total_ops / workers, 0ns, 0, 10 + i, t, p);
        p.done.fetch_add(1, std::memory_order_release);
    });
    gov.set_limit<m0>(original, how); // end with the limit we started with
    ASSERT_EQ(gov.limit<m0>(), original);
    EXPECT_GT(sets, 1'000u);
    EXPECT_GT(t.denied.load(), 0u) << "never exhausted: the test proves nothing";
    const std::uint64_t g = t.granted, r = t.refunded, c = t.charged;
    const std::uint64_t avail = gov.availability()[0], debt = gov.debts()[0];
    EXPECT_LE(avail, burst);
    // Keep and proportional (one burst for all) never add tokens; a refund gives back at
    // most what it asks, and loses tokens across three changes or more.
    EXPECT_GE(burst - avail + debt, g + c - r)
        << "granted " << g << " charged " << c << " refunded " << r << " available " << avail
        << " debt " << debt << " over " << sets << " changes: a refund created tokens";
    EXPECT_LE(g, burst + r);
}

TEST_P(RefundStress, AdvancingClockRefundsNeverGiveBackWhatTimeRestored) {
    const inheritance how = GetParam();
    constexpr unsigned workers = 4;
    constexpr auto max_wait = 4us;
    const auto wait_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(max_wait).count());
    // A reservation's end lies at most a burst past the accrual at its ready time; keep (and
    // proportional with one burst) carry the tokens ahead of it; time restores at least the
    // smallest rate: by then all of it is restored (plus 1 µs for rounding).
    const std::uint64_t restored_after = burst * 1'000'000 / rate_min_per_ms + 1'000;
    manual_clock clock(manual_clock::time_point(1s));
    gov_t gov(clock, original);
    totals t;
    pace p;
    p.every[0] = 1; // the clock: 1/4 token per worker operation at 1 token per µs
    // The limit: every 150 operations, so that a late refund (after about 800) comes after a
    // handful of changes — around the most a receipt is carried across.
    p.every[1] = 150;
    std::uint64_t sets = 0;
    const std::uint64_t start = elapsed_ns(clock);
    run_threads(workers + 2, [&](unsigned i) {
        if (i == workers) {
            p.drive(workers, 0, [&](std::uint64_t) { clock.advance(250ns); });
            return;
        }
        if (i == workers + 1) {
            std::mt19937_64 rng(7);
            sets = p.drive(workers, 1, [&](std::uint64_t) {
                gov.set_limit<m0>(limits[uniform(rng, 0, limits.size() - 1)], how);
            });
            return;
        }
        work(gov, clock, total_ops / workers, max_wait, restored_after, 20 + i, t, p);
        p.done.fetch_add(1, std::memory_order_release);
    });
    const std::uint64_t elapsed = elapsed_ns(clock) - start;
    EXPECT_GT(sets, 100u);
    EXPECT_GT(t.late.load(), 100u) << "too few late refunds: the test proves little";
    EXPECT_GT(t.denied.load(), 0u) << "never exhausted: the test proves nothing";
    // What the bucket holds in use now (keep and proportional with one burst carry tokens
    // one for one, rounding against the caller) is at least everything granted and charged,
    // minus what could legitimately come back and what time can have restored.
    const std::uint64_t g = t.granted, r = t.refunded, c = t.charged;
    const std::uint64_t avail = gov.availability()[0], debt = gov.debts()[0];
    const std::uint64_t accrued = accrual_ceil(rate_max_per_ms, elapsed);
    EXPECT_LE(g + c, burst - avail + debt + accrued + r)
        << "granted " << g << " charged " << c << " refunded (not late) " << r << " late "
        << t.late.load() << " (" << t.late_tokens.load() << " tokens) available " << avail
        << " debt " << debt << " accrued at most " << accrued << " over " << elapsed << " ns, "
        << sets << " changes: a late refund gave back tokens time had restored";
    EXPECT_LE(g, burst + accrual_ceil(rate_max_per_ms, elapsed + wait_ns) + r);
    EXPECT_LE(gov.availability()[0], burst);
}

INSTANTIATE_TEST_SUITE_P(Inheritance, RefundStress,
                         ::testing::Values(inheritance::keep, inheritance::proportional),
                         inheritance_name);

} // namespace
