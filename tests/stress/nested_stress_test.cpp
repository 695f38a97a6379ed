// Concurrency stress of nested limits (`rategov::path` through `rategov::level`s) and of the
// in-flight semaphore (`rategov::in_flight_slots`), in virtual time (a manual clock) except
// where a real clock is needed to catch a lost wake-up:
//
// - rates across three levels — an account shared by two models, each with a variant, and a
//   two-level path through the first model — taken all-or-nothing by racing threads
//   (`try_acquire`, `reserve` settled by commit, cancel, drop and moves): nothing is granted
//   beyond any level's limit, and on a frozen clock every level's accounting is exact;
// - in-flight caps at every level: the requests holding slots never outnumber a cap, and
//   every slot comes back whatever way a request ends (granted, refused by a rate after its
//   slots were taken, too large, moved, committed, cancelled, dropped);
// - `call()` through a path whose model admits two requests at once, ending in every way
//   (success, exceptions, 429s and retries, cancellation and deadlines while waiting for a
//   slot): at most two requests inside the transport, and no slot left taken;
// - a blocked wait for a slot is woken by the release (real clock; a watchdog turns a hang
//   into a failure).
//
// Sized to take a few seconds in all under ThreadSanitizer on two cores.
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

#include "run_threads.hpp"

namespace {

using stress::elapsed_ns;
using stress::run_threads;

using namespace std::chrono_literals;

namespace m = rategov::metric;
using rategov::acquire_status;
using rategov::call_status;
using rategov::quota;
using rategov::traffic_class;
using manual_clock = rategov::testing::manual_clock;

constexpr unsigned threads = 4;

std::uint64_t uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
}

/// ceil(count · elapsed / period), exact: the most a limit lets accrue in `elapsed`.
std::uint64_t accrued_ceil(const quota& q, std::uint64_t elapsed) {
    const auto p = static_cast<std::uint64_t>(q.period().count());
    return rategov::detail::div_ceil(rategov::detail::mul_64x64(q.count(), elapsed), p);
}

/// Violations seen by any thread: counted, with the first few described.
class problems {
public:
    void add(const std::string& what) {
        m_count.fetch_add(1, std::memory_order_relaxed);
        const std::lock_guard lock(m_mutex);
        if (m_first.size() < 12)
            m_first.push_back(what);
    }
    [[nodiscard]] std::uint64_t count() const { return m_count.load(); }
    [[nodiscard]] std::string report() const {
        std::string s = std::to_string(count()) + " problem(s)";
        const std::lock_guard lock(m_mutex);
        for (const auto& f : m_first)
            s += "\n  " + f;
        return s;
    }

private:
    std::atomic<std::uint64_t> m_count{0};
    mutable std::mutex m_mutex;
    std::vector<std::string> m_first;
};

/// Requests a stop when `limit` of real time passes before `disarm()`: a hang becomes a
/// cancelled wait, and a failure.
class watchdog {
public:
    explicit watchdog(std::chrono::seconds limit)
        : m_thread([this, limit](std::stop_token disarmed) {
            const auto until = std::chrono::steady_clock::now() + limit;
            while (!disarmed.stop_requested() && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(5ms);
            if (!disarmed.stop_requested()) {
                m_fired.store(true);
                m_hang.request_stop();
            }
        }) {}
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog() { disarm(); }

    [[nodiscard]] std::stop_token token() const { return m_hang.get_token(); }
    [[nodiscard]] bool fired() const { return m_fired.load(); }
    void disarm() {
        m_thread.request_stop();
        if (m_thread.joinable())
            m_thread.join();
    }

private:
    std::stop_source m_hang;
    std::atomic<bool> m_fired{false};
    std::jthread m_thread; // last: started once the rest is built
};

std::string status_name(acquire_status s) {
    switch (s) {
    case acquire_status::granted:
        return "granted";
    case acquire_status::denied:
        return "denied";
    case acquire_status::exceeds_capacity:
        return "exceeds_capacity";
    }
    return "?";
}

// =============================================================================================
// Rates across three levels
// =============================================================================================

using account_t = rategov::level<rategov::metrics<m::requests>, manual_clock>;
using model_t = rategov::level<rategov::metrics<m::total_prompt, m::uncached_prompt, m::generated>,
                               manual_clock>;
using variant_t = rategov::level<rategov::metrics<m::generated>, manual_clock>;
using deep_path_t = rategov::path<account_t, model_t, variant_t>;
using short_path_t = rategov::path<account_t, model_t>;
using metrics_t = deep_path_t::metrics_type;
using cost_t = deep_path_t::cost_type;
static_assert(std::is_same_v<cost_t, short_path_t::cost_type>);

constexpr std::size_t U = metrics_t::size;
constexpr std::size_t u_req = metrics_t::index_of<m::requests>;
constexpr std::size_t u_prompt = metrics_t::index_of<m::total_prompt>;
constexpr std::size_t u_uncached = metrics_t::index_of<m::uncached_prompt>;
constexpr std::size_t u_gen = metrics_t::index_of<m::generated>;
// The local index of a model's metric u is u - 1 (see rate_world::available).
static_assert(U == 4 && u_req == 0 && u_prompt == 1 && u_uncached == 2 && u_gen == 3);

// The level objects: the account, two models, two variants.
constexpr std::size_t n_levels = 5;
constexpr std::size_t l_account = 0, l_model1 = 1, l_model2 = 2, l_variant1 = 3, l_variant2 = 4;

using per_metric = std::array<std::uint64_t, U>;
using per_level = std::array<per_metric, n_levels>;

/// A path's levels (objects), outermost first.
struct route {
    std::array<std::size_t, 3> levels;
    std::size_t depth;
};
// deep1: account, model 1, variant 1; deep2: account, model 2, variant 2; shallow: account,
// model 1.
constexpr std::array<route, 3> routes{{{{l_account, l_model1, l_variant1}, 3},
                                       {{l_account, l_model2, l_variant2}, 3},
                                       {{l_account, l_model1, 0}, 2}}};

struct rate_limits {
    quota requests;                    // the account's
    quota prompt, uncached, generated; // each model's
    quota variant_generated;           // each variant's
};

/// The levels and paths of the rate tests, over one manual clock.
class rate_world {
public:
    explicit rate_world(const rate_limits& l)
        : limits(l)
        , account(clock, l.requests)
        , model1(clock, l.prompt, l.uncached, l.generated)
        , model2(clock, l.prompt, l.uncached, l.generated)
        , variant1(clock, l.variant_generated)
        , variant2(clock, l.variant_generated) {}

    manual_clock clock;
    rate_limits limits;
    account_t account;
    model_t model1, model2;
    variant_t variant1, variant2;
    deep_path_t deep1{account, model1, variant1};
    deep_path_t deep2{account, model2, variant2};
    short_path_t shallow{account, model1};

    /// Level `lvl`'s limit of metric u, if it limits u.
    [[nodiscard]] std::optional<quota> quota_of(std::size_t lvl, std::size_t u) const {
        if (lvl == l_account)
            return u == u_req ? std::optional<quota>(limits.requests) : std::nullopt;
        if (lvl == l_model1 || lvl == l_model2) {
            if (u == u_prompt)
                return limits.prompt;
            if (u == u_uncached)
                return limits.uncached;
            if (u == u_gen)
                return limits.generated;
            return std::nullopt;
        }
        return u == u_gen ? std::optional<quota>(limits.variant_generated) : std::nullopt;
    }
    /// Available tokens of metric u at level `lvl` (which must limit it).
    [[nodiscard]] std::uint64_t available(std::size_t lvl, std::size_t u) const {
        switch (lvl) {
        case l_account:
            return account.governor.available(0);
        case l_model1:
            return model1.governor.available(u - 1);
        case l_model2:
            return model2.governor.available(u - 1);
        case l_variant1:
            return variant1.governor.available(0);
        default:
            return variant2.governor.available(0);
        }
    }
    /// Debt of metric u at level `lvl` (which must limit it).
    [[nodiscard]] std::uint64_t debt(std::size_t lvl, std::size_t u) const {
        switch (lvl) {
        case l_account:
            return account.governor.debts()[0];
        case l_model1:
            return model1.governor.debts()[u - 1];
        case l_model2:
            return model2.governor.debts()[u - 1];
        case l_variant1:
            return variant1.governor.debts()[0];
        default:
            return variant2.governor.debts()[0];
        }
    }

    /// Runs f on path `which` (0: deep1, 1: deep2, 2: shallow).
    template <class F>
    void on_path(std::size_t which, F&& f) {
        if (which == 0)
            f(deep1);
        else if (which == 1)
            f(deep2);
        else
            f(shallow);
    }

    /// Whether some part of `c` exceeds the burst of a level on route `rt`.
    [[nodiscard]] bool too_large(const route& rt, const cost_t& c) const {
        for (std::size_t k = 0; k < rt.depth; ++k)
            for (std::size_t u = 0; u < U; ++u)
                if (const auto q = quota_of(rt.levels[k], u); q && c[u] > q->burst())
                    return true;
        return false;
    }
    /// Adds c's parts to `to` at every level of route `rt`, for the metrics each limits.
    void add(per_level& to, const route& rt, const cost_t& c) const {
        for (std::size_t k = 0; k < rt.depth; ++k)
            for (std::size_t u = 0; u < U; ++u)
                if (quota_of(rt.levels[k], u))
                    to[rt.levels[k]][u] += c[u];
    }

    /// Checks a path's answer (admission or reservation) to `c` at `at` on route `rt`.
    template <class Result>
    void check(const route& rt, const cost_t& c, manual_clock::time_point at, const Result& r,
               problems& p) const {
        const bool large = too_large(rt, c);
        if (r) {
            if (large)
                p.add("granted a request with a part larger than a burst");
            if (r.level() != rt.depth || r.metric() != U || r.slot())
                p.add("a grant names a refusal: level " + std::to_string(r.level()) + " metric " +
                      std::to_string(r.metric()));
            return;
        }
        if ((r.status() == acquire_status::exceeds_capacity) != large) {
            p.add(status_name(r.status()) + " for a request " +
                  (large ? "larger than a burst" : "within every burst"));
            return;
        }
        if (r.level() >= rt.depth || r.metric() >= U) {
            p.add("a refusal names level " + std::to_string(r.level()) + " metric " +
                  std::to_string(r.metric()));
            return;
        }
        const std::size_t lvl = rt.levels[r.level()];
        const std::optional<quota> q = quota_of(lvl, r.metric());
        if (!q || c[r.metric()] == 0 || r.slot() || r.refusal().amount != c[r.metric()] ||
            r.refusal().limit != q->burst()) {
            p.add("a refusal by a level that does not limit the metric, or of nothing: level " +
                  std::to_string(r.level()) + " metric " + std::to_string(r.metric()));
            return;
        }
        if (r.status() == acquire_status::exceeds_capacity) {
            if (c[r.metric()] <= q->burst() || r.ready_at() != manual_clock::time_point::max())
                p.add("exceeds_capacity names a part within its burst");
        } else if (r.ready_at() <= at) {
            p.add("a denial ready at or before the time asked");
        }
    }
};

/// A random cost: mostly within every burst; about 1 in 50 exceeds a model's prompt burst,
/// and 1 in 50 exceeds a variant's generated burst (but not a model's).
cost_t random_cost(std::mt19937_64& rng, const rate_limits& l) {
    cost_t c;
    const std::uint64_t r = uniform(rng, 0, 7);
    c[u_req] = r == 0 ? 0u : r == 7 ? 2u : 1u;
    c[u_prompt] = uniform(rng, 0, 7) == 0 ? 0 : uniform(rng, 1, 2000);
    c[u_uncached] = uniform(rng, 0, c[u_prompt]);
    c[u_gen] = uniform(rng, 0, 7) == 0 ? 0 : uniform(rng, 1, 400);
    const std::uint64_t odd = uniform(rng, 0, 99);
    if (odd == 0)
        c[u_prompt] = l.prompt.burst() + uniform(rng, 1, 1000);
    else if (odd == 1)
        c[u_gen] = uniform(rng, l.variant_generated.burst() + 1, l.generated.burst());
    return c;
}

/// Refusals seen, per level object (cumulative, combined after the threads end).
struct refusal_counts {
    std::array<std::atomic<std::uint64_t>, n_levels> by_level{};
    std::atomic<std::uint64_t> grants{0}, denials{0}, too_large{0}, inner{0};

    template <class Result>
    void note(const route& rt, const Result& r, std::array<std::uint64_t, n_levels>& local,
              std::uint64_t& g, std::uint64_t& d, std::uint64_t& x, std::uint64_t& in) const {
        if (r) {
            ++g;
            return;
        }
        if (r.level() < rt.depth)
            ++local[rt.levels[r.level()]];
        if (r.level() > 0)
            ++in; // an outer level granted its part, then gave it back
        ++(r.status() == acquire_status::exceeds_capacity ? x : d);
    }
    void add(const std::array<std::uint64_t, n_levels>& local, std::uint64_t g, std::uint64_t d,
             std::uint64_t x, std::uint64_t in) {
        for (std::size_t i = 0; i < n_levels; ++i)
            by_level[i] += local[i];
        grants += g;
        denials += d;
        too_large += x;
        inner += in;
    }
    [[nodiscard]] std::string text() const {
        std::string s = "grants " + std::to_string(grants.load()) + ", denials " +
                        std::to_string(denials.load()) + ", too large " +
                        std::to_string(too_large.load()) + ", refused by an inner level " +
                        std::to_string(inner.load()) + "; refusals by level:";
        for (std::size_t i = 0; i < n_levels; ++i)
            s += " " + std::to_string(by_level[i].load());
        return s;
    }
    void expect_exercised() const {
        EXPECT_GT(grants.load(), 0u) << text();
        EXPECT_GT(denials.load(), 0u) << text();
        EXPECT_GT(too_large.load(), 0u) << text();
        EXPECT_GT(inner.load(), 0u) << text();
        for (std::size_t i = 0; i < n_levels; ++i)
            EXPECT_GT(by_level[i].load(), 0u) << "level " << i << " never refused: " << text();
    }
};

/// On a frozen clock: every level's available tokens are its burst less what `used` says
/// stays taken there, and nothing is owed.
void check_exact(const rate_world& w, const per_level& used, problems& p, unsigned round) {
    for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
        for (std::size_t u = 0; u < U; ++u)
            if (const auto q = w.quota_of(lvl, u)) {
                const std::uint64_t expected =
                    used[lvl][u] <= q->burst() ? q->burst() - used[lvl][u] : 0;
                const std::uint64_t got = w.available(lvl, u), debt = w.debt(lvl, u);
                if (used[lvl][u] > q->burst() || got != expected || debt != 0)
                    p.add("round " + std::to_string(round) + ", level " + std::to_string(lvl) +
                          ", metric " + std::to_string(u) + ": burst " +
                          std::to_string(q->burst()) + ", used " + std::to_string(used[lvl][u]) +
                          ", available " + std::to_string(got) + " (expected " +
                          std::to_string(expected) + "), debt " + std::to_string(debt));
            }
}

/// Every metric of every level is full and owes nothing.
void check_full(const rate_world& w, problems& p, const char* when) {
    for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
        for (std::size_t u = 0; u < U; ++u)
            if (const auto q = w.quota_of(lvl, u)) {
                const std::uint64_t got = w.available(lvl, u), debt = w.debt(lvl, u);
                if (got != q->burst() || debt != 0)
                    p.add(std::string(when) + ", level " + std::to_string(lvl) + ", metric " +
                          std::to_string(u) + ": available " + std::to_string(got) + " of " +
                          std::to_string(q->burst()) + ", debt " + std::to_string(debt));
            }
}

per_level sum(const std::vector<per_level>& by_thread) {
    per_level out{};
    for (const auto& t : by_thread)
        for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
            for (std::size_t u = 0; u < U; ++u)
                out[lvl][u] += t[lvl][u];
    return out;
}

// Limits of the frozen-clock tests: nothing refills within an hour, and each round advances
// two hours, which fills every bucket again.
const rate_limits frozen_limits{rategov::per(1h, 900), rategov::per(1h, 600'000),
                                rategov::per(1h, 300'000), rategov::per(1h, 120'000),
                                rategov::per(1h, 40'000)};

// The same, tighter, for reservations (most of whose tokens come back).
const rate_limits frozen_reservation_limits{rategov::per(1h, 150), rategov::per(1h, 250'000),
                                            rategov::per(1h, 125'000), rategov::per(1h, 50'000),
                                            rategov::per(1h, 12'000)};

// Limits of the advancing-clock tests (1 µs of virtual time every 4 operations per thread).
const rate_limits moving_limits{
    rategov::per(1ms, 1'000).with_burst(200), rategov::per(1ms, 600'000).with_burst(300'000),
    rategov::per(1ms, 300'000).with_burst(150'000), rategov::per(1ms, 120'000).with_burst(40'000),
    rategov::per(1ms, 40'000).with_burst(10'000)};

// The same with a tighter account, for reservations.
const rate_limits moving_reservation_limits{
    rategov::per(1ms, 500).with_burst(100), moving_limits.prompt, moving_limits.uncached,
    moving_limits.generated, moving_limits.variant_generated};

TEST(NestedStress, TryAcquireOnAFrozenClockIsAllOrNothingAndExact) {
    // Round after round on a frozen clock, the threads take random costs through the three
    // paths until levels run out. At the end of each round every level holds exactly its
    // burst less what the granted requests took there: a refused request, whichever level
    // refused it, left nothing taken at the levels before. Then two hours refill everything.
    constexpr unsigned rounds = 160;
    constexpr std::uint64_t ops = 350; // per thread and round
    rate_world w(frozen_limits);
    problems p;
    refusal_counts seen;
    std::vector<per_level> granted(threads, per_level{});
    unsigned round = 0;
    std::barrier sync(static_cast<std::ptrdiff_t>(threads), [&]() noexcept {
        check_exact(w, sum(granted), p, round);
        for (auto& g : granted)
            g = per_level{};
        w.clock.advance(2h);
        check_full(w, p, "refilled");
        ++round;
    });
    run_threads(threads, [&](unsigned t) {
        std::mt19937_64 rng(1000 + t);
        std::array<std::uint64_t, n_levels> refused{};
        std::uint64_t g = 0, d = 0, x = 0, in = 0;
        for (unsigned k = 0; k < rounds; ++k) {
            for (std::uint64_t i = 0; i < ops; ++i) {
                const std::size_t which = uniform(rng, 0, 2);
                const route& rt = routes[which];
                const cost_t c = random_cost(rng, w.limits);
                const auto at = w.clock.now();
                w.on_path(which, [&](auto& path) {
                    const auto a = path.try_acquire_at(c, at);
                    w.check(rt, c, at, a, p);
                    seen.note(rt, a, refused, g, d, x, in);
                    if (a)
                        w.add(granted[t], rt, c);
                });
            }
            sync.arrive_and_wait();
        }
        seen.add(refused, g, d, x, in);
    });
    EXPECT_EQ(round, rounds);
    EXPECT_EQ(p.count(), 0u) << p.report();
    seen.expect_exercised();
}

TEST(NestedStress, TryAcquireWithAdvancingClockGrantsAtMostBurstPlusRateTimesElapsed) {
    // Every thread moves the clock by 1 µs every 4 operations: no level of any path grants
    // more of a metric than its burst plus what its rate accrued in the elapsed time.
    constexpr std::uint64_t ops = 80'000; // per thread
    rate_world w(moving_limits);
    problems p;
    refusal_counts seen;
    std::vector<per_level> granted(threads, per_level{});
    run_threads(threads, [&](unsigned t) {
        std::mt19937_64 rng(2000 + t);
        std::array<std::uint64_t, n_levels> refused{};
        std::uint64_t g = 0, d = 0, x = 0, in = 0;
        for (std::uint64_t i = 0; i < ops; ++i) {
            if (i % 4 == 0)
                w.clock.advance(1us);
            const std::size_t which = uniform(rng, 0, 2);
            const route& rt = routes[which];
            const cost_t c = random_cost(rng, w.limits);
            const auto at = w.clock.now();
            w.on_path(which, [&](auto& path) {
                const auto a = path.try_acquire_at(c, at);
                w.check(rt, c, at, a, p);
                seen.note(rt, a, refused, g, d, x, in);
                if (a)
                    w.add(granted[t], rt, c);
            });
        }
        seen.add(refused, g, d, x, in);
    });
    const std::uint64_t elapsed = elapsed_ns(w.clock);
    EXPECT_EQ(elapsed, threads * ops / 4 * 1'000) << "every step of every thread counted";
    EXPECT_EQ(p.count(), 0u) << p.report();
    seen.expect_exercised();
    const per_level total = sum(granted);
    for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
        for (std::size_t u = 0; u < U; ++u)
            if (const auto q = w.quota_of(lvl, u)) {
                EXPECT_LE(total[lvl][u], q->burst() + accrued_ceil(*q, elapsed))
                    << "level " << lvl << " metric " << u << ": granted over " << elapsed << " ns";
            }
    w.clock.advance(1s);
    problems full;
    check_full(w, full, "after 1 s");
    EXPECT_EQ(full.count(), 0u) << full.report();
}

// --- reservations ----------------------------------------------------------------------------

/// A reservation on one of the rate paths, held by a thread.
struct held_reservation {
    std::optional<deep_path_t::reservation_type> deep;
    std::optional<short_path_t::reservation_type> shallow;
    std::size_t route = 0;
    cost_t estimate{};

    [[nodiscard]] bool engaged() const { return deep.has_value() || shallow.has_value(); }
    template <class F>
    void with(F&& f) {
        if (deep)
            f(*deep);
        else if (shallow)
            f(*shallow);
    }
    void clear() {
        deep.reset();
        shallow.reset();
    }
};

/// What happened to the reservations, per level object and metric.
struct reservation_ledger {
    per_level granted{};  // estimates of granted reservations (and try_acquire grants)
    per_level refunded{}; // estimate − actual of commits below the estimate; cancels; drops
    per_level used{};     // actual usage committed (and try_acquire grants)
};

/// One worker's reservations: reserve (max_wait), try_acquire, commit (actual ≤ estimate,
/// or up to twice the estimate with `overuse`), cancel, drop, move and move-assign.
struct reservation_worker {
    reservation_worker(rate_world& world, problems& found, refusal_counts& counts,
                       std::uint64_t seed, std::chrono::nanoseconds wait, bool over)
        : w(world)
        , p(found)
        , seen(counts)
        , rng(seed)
        , max_wait(wait)
        , overuse(over) {}

    rate_world& w;
    problems& p;
    refusal_counts& seen;
    std::mt19937_64 rng;
    std::chrono::nanoseconds max_wait;
    bool overuse;
    reservation_ledger ledger{};
    std::array<held_reservation, 4> pool{};
    std::array<std::uint64_t, n_levels> refused{};
    std::uint64_t g = 0, d = 0, x = 0, in = 0, moves = 0, settled_twice = 0;

    void refund(const held_reservation& h, const cost_t& back) {
        w.add(ledger.refunded, routes[h.route], back);
    }

    /// Settles entry j: commit (random actual), cancel, or drop.
    void settle(held_reservation& h) {
        if (!h.engaged())
            return;
        const std::uint64_t how = uniform(rng, 0, 3);
        const route& rt = routes[h.route];
        if (how <= 1) {
            cost_t actual;
            cost_t back;
            for (std::size_t u = 0; u < U; ++u) {
                const std::uint64_t e = h.estimate[u];
                actual[u] = overuse && uniform(rng, 0, 3) == 0 ? uniform(rng, e, 2 * e + 1)
                                                               : uniform(rng, 0, e);
                back[u] = e > actual[u] ? e - actual[u] : 0;
            }
            h.with([&](auto& r) {
                r.commit(actual);
                if (r.pending())
                    p.add("pending after commit");
                // A second settlement does nothing (the exact accounting catches it).
                if (uniform(rng, 0, 1) == 0)
                    r.cancel();
                else
                    r.commit(h.estimate);
                ++settled_twice;
            });
            w.add(ledger.used, rt, actual);
            refund(h, back);
        } else if (how == 2) {
            h.with([&](auto& r) {
                r.cancel();
                r.cancel();
            });
            refund(h, h.estimate);
        } else {
            refund(h, h.estimate); // dropped: refund_on_drop
        }
        h.clear();
    }

    void step() {
        const std::uint64_t op = uniform(rng, 0, 19);
        held_reservation& h = pool[uniform(rng, 0, pool.size() - 1)];
        if (op < 10) { // reserve into h, dropping (by move assignment) what it held
            const std::size_t which = uniform(rng, 0, 2);
            const route& rt = routes[which];
            const cost_t c = random_cost(rng, w.limits);
            const auto at = w.clock.now();
            w.on_path(which, [&](auto& path) {
                auto r = path.reserve_at(c, at, max_wait);
                w.check(rt, c, at, r, p);
                seen.note(rt, r, refused, g, d, x, in);
                if (!r) {
                    if (r.pending())
                        p.add("a refused reservation is pending");
                    return;
                }
                if (!r.pending() || r.ready_at() < at || r.ready_at() - at > max_wait)
                    p.add("a granted reservation not pending, or ready out of bounds");
                if (r.estimate() != c)
                    p.add("a reservation holds another estimate");
                w.add(ledger.granted, rt, c);
                if (h.engaged())
                    refund(h, h.estimate); // dropped by the assignment below
                using res_t = std::remove_cvref_t<decltype(r)>;
                auto& slot = [&]() -> std::optional<res_t>& {
                    if constexpr (std::is_same_v<res_t, deep_path_t::reservation_type>)
                        return h.deep;
                    else
                        return h.shallow;
                }();
                if (slot)
                    *slot = std::move(r); // path_reservation's move assignment
                else {
                    h.clear();
                    slot.emplace(std::move(r));
                }
                h.route = which;
                h.estimate = c;
            });
        } else if (op < 12) { // try_acquire: taken for good
            const std::size_t which = uniform(rng, 0, 2);
            const route& rt = routes[which];
            const cost_t c = random_cost(rng, w.limits);
            const auto at = w.clock.now();
            w.on_path(which, [&](auto& path) {
                const auto a = path.try_acquire_at(c, at);
                w.check(rt, c, at, a, p);
                seen.note(rt, a, refused, g, d, x, in);
                if (a) {
                    w.add(ledger.granted, rt, c);
                    w.add(ledger.used, rt, c);
                }
            });
        } else if (op < 17) {
            settle(h);
        } else { // move another entry into h (dropping what h held)
            held_reservation& from = pool[uniform(rng, 0, pool.size() - 1)];
            if (&from == &h || !from.engaged())
                return;
            if (h.engaged())
                refund(h, h.estimate);
            h = std::move(from); // moves (or move-assigns) each optional
            from.clear();        // destroys what was moved from: holds nothing
            ++moves;
        }
    }
    void settle_all() {
        for (auto& h : pool)
            settle(h);
    }
    void finish() { seen.add(refused, g, d, x, in); }
};

TEST(NestedStress, ReservationsSettledOnAFrozenClockBalanceExactly) {
    // On a frozen clock, reservations (no wait) are committed with usage up to their
    // estimate, cancelled, dropped, moved and overwritten while other threads take. At the
    // end of each round, once all are settled, every level holds exactly its burst less the
    // usage committed there: every surplus, cancel and drop came back exactly, once.
    constexpr unsigned rounds = 140;
    constexpr std::uint64_t ops = 350; // per thread and round
    rate_world w(frozen_reservation_limits);
    problems p;
    refusal_counts seen;
    std::vector<reservation_worker> workers;
    workers.reserve(threads);
    for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back(w, p, seen, 3000 + t, 0ns, false);
    unsigned round = 0;
    std::uint64_t moves = 0;
    std::barrier sync(static_cast<std::ptrdiff_t>(threads), [&]() noexcept {
        per_level used{};
        for (auto& wk : workers) {
            for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
                for (std::size_t u = 0; u < U; ++u)
                    used[lvl][u] += wk.ledger.used[lvl][u];
            wk.ledger = {};
            moves += wk.moves;
            wk.moves = 0;
        }
        check_exact(w, used, p, round);
        w.clock.advance(2h);
        check_full(w, p, "refilled");
        ++round;
    });
    run_threads(threads, [&](unsigned t) {
        reservation_worker& wk = workers[t];
        for (unsigned k = 0; k < rounds; ++k) {
            for (std::uint64_t i = 0; i < ops; ++i)
                wk.step();
            wk.settle_all();
            sync.arrive_and_wait();
        }
        wk.finish();
    });
    EXPECT_EQ(round, rounds);
    EXPECT_EQ(p.count(), 0u) << p.report();
    EXPECT_GT(moves, 0u);
    seen.expect_exercised();
}

TEST(NestedStress, QueuedReservationsWithOverAndUnderUseSettleCompletely) {
    // The clock moves (1 µs every 4 operations per thread) and reservations may wait 20 µs:
    // they queue ahead at every level, and are committed with usage below or above their
    // estimate (a deficit is charged), cancelled, dropped, moved. No level grants more than
    // its burst plus what its rate accrues until the last ready time, plus what came back;
    // once all are settled and time has passed, every level is full and owes nothing.
    constexpr std::uint64_t ops = 70'000; // per thread
    constexpr auto max_wait = 20us;
    rate_world w(moving_reservation_limits);
    problems p;
    refusal_counts seen;
    std::vector<reservation_worker> workers;
    workers.reserve(threads);
    for (unsigned t = 0; t < threads; ++t)
        workers.emplace_back(w, p, seen, 4000 + t, max_wait, true);
    run_threads(threads, [&](unsigned t) {
        reservation_worker& wk = workers[t];
        for (std::uint64_t i = 0; i < ops; ++i) {
            if (i % 4 == 0)
                w.clock.advance(1us);
            wk.step();
        }
        wk.settle_all();
        wk.finish();
    });
    const std::uint64_t elapsed = elapsed_ns(w.clock);
    const std::uint64_t ahead =
        elapsed + static_cast<std::uint64_t>(std::chrono::nanoseconds(max_wait).count());
    EXPECT_EQ(p.count(), 0u) << p.report();
    seen.expect_exercised();
    per_level granted{}, refunded{};
    std::uint64_t moves = 0;
    for (const auto& wk : workers) {
        moves += wk.moves;
        for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
            for (std::size_t u = 0; u < U; ++u) {
                granted[lvl][u] += wk.ledger.granted[lvl][u];
                refunded[lvl][u] += wk.ledger.refunded[lvl][u];
            }
    }
    EXPECT_GT(moves, 0u);
    for (std::size_t lvl = 0; lvl < n_levels; ++lvl)
        for (std::size_t u = 0; u < U; ++u)
            if (const auto q = w.quota_of(lvl, u)) {
                EXPECT_LE(granted[lvl][u], q->burst() + accrued_ceil(*q, ahead) + refunded[lvl][u])
                    << "level " << lvl << " metric " << u << ": refunded " << refunded[lvl][u]
                    << ", elapsed " << elapsed << " ns";
            }
    w.clock.advance(10s);
    problems full;
    check_full(w, full, "after 10 s");
    EXPECT_EQ(full.count(), 0u) << full.report();
}

// =============================================================================================
// In-flight caps
// =============================================================================================

using slot_account_t = rategov::level<rategov::metrics<m::requests, m::in_flight>, manual_clock>;
// in_flight between the rates: the limits come in metrics order, the cap in the middle.
using slot_model_t =
    rategov::level<rategov::metrics<m::total_prompt, m::in_flight, m::generated>, manual_clock>;
using slot_variant_t = rategov::level<rategov::metrics<m::in_flight>, manual_clock>; // no rates
using slot_path_t = rategov::path<slot_account_t, slot_model_t, slot_variant_t>;
using slot_cost_t = slot_path_t::cost_type;
using slot_metrics_t = slot_path_t::metrics_type;
constexpr std::size_t s_req = slot_metrics_t::index_of<m::requests>;
constexpr std::size_t s_inflight = slot_metrics_t::index_of<m::in_flight>;
constexpr std::size_t s_prompt = slot_metrics_t::index_of<m::total_prompt>;
constexpr std::size_t s_gen = slot_metrics_t::index_of<m::generated>;
constexpr std::size_t SU = slot_metrics_t::size;
static_assert(SU == 4);

// The level objects: the account; models 1 and 2; variants 1 and 2 (of model 1) and 3 (of
// model 2). Every cap but model 2's can bind: two variants of two slots under model 1's
// three, and three paths under the account's four.
constexpr std::size_t n_slot_levels = 6;
constexpr std::array<std::uint64_t, n_slot_levels> caps{4, 3, 3, 2, 2, 2};
constexpr std::array<std::array<std::size_t, 3>, 3> slot_routes{{{0, 1, 3}, {0, 1, 4}, {0, 2, 5}}};

const quota slot_requests = rategov::per(1ms, 100).with_burst(12);
const quota slot_prompt = rategov::per(1ms, 10'000).with_burst(3'000);
const quota slot_generated = rategov::per(1ms, 2'000).with_burst(600);

class slot_world {
public:
    manual_clock clock;
    slot_account_t account{clock, slot_requests, rategov::at_most(caps[0])};
    slot_model_t model1{clock, slot_prompt, rategov::at_most(caps[1]), slot_generated};
    slot_model_t model2{clock, slot_prompt, rategov::at_most(caps[2]), slot_generated};
    slot_variant_t variant1{clock, rategov::at_most(caps[3])};
    slot_variant_t variant2{clock, rategov::at_most(caps[4])};
    slot_variant_t variant3{clock, rategov::at_most(caps[5])};
    std::array<slot_path_t, 3> paths{slot_path_t(account, model1, variant1),
                                     slot_path_t(account, model1, variant2),
                                     slot_path_t(account, model2, variant3)};

    [[nodiscard]] const rategov::in_flight_slots& slots(std::size_t lvl) const {
        switch (lvl) {
        case 0:
            return account.slots;
        case 1:
            return model1.slots;
        case 2:
            return model2.slots;
        case 3:
            return variant1.slots;
        case 4:
            return variant2.slots;
        default:
            return variant3.slots;
        }
    }
    /// The rate limit of metric u at route position k (account or model), if any.
    [[nodiscard]] static std::optional<quota> rate_of(std::size_t k, std::size_t u) {
        if (k == 0)
            return u == s_req ? std::optional<quota>(slot_requests) : std::nullopt;
        if (k == 1) {
            if (u == s_prompt)
                return slot_prompt;
            if (u == s_gen)
                return slot_generated;
        }
        return std::nullopt;
    }
    void expect_full_rates() const {
        EXPECT_EQ(account.governor.available(0), slot_requests.burst());
        for (const slot_model_t* mdl : {&model1, &model2}) {
            EXPECT_EQ(mdl->governor.available(0), slot_prompt.burst());
            EXPECT_EQ(mdl->governor.available(1), slot_generated.burst());
            EXPECT_EQ(mdl->governor.debts(), (std::array<std::uint64_t, 2>{}));
        }
        EXPECT_EQ(account.governor.debts(), (std::array<std::uint64_t, 1>{}));
    }
};

/// Requests holding slots per level, counted by the holders: incremented after a grant,
/// decremented before the release, so that the count never exceeds what the semaphore
/// holds — and must never exceed the cap.
struct slot_counters {
    std::array<std::atomic<std::uint64_t>, n_slot_levels> held{};
    std::array<std::atomic<std::uint64_t>, n_slot_levels> peak{};

    void in(std::size_t path, std::uint64_t s, problems& p) {
        for (const std::size_t lvl : slot_routes[path]) {
            const std::uint64_t now = held[lvl].fetch_add(s, std::memory_order_acq_rel) + s;
            if (now > caps[lvl])
                p.add("level " + std::to_string(lvl) + ": " + std::to_string(now) +
                      " slots held at once, cap " + std::to_string(caps[lvl]));
            std::uint64_t old = peak[lvl].load(std::memory_order_relaxed);
            while (old < now && !peak[lvl].compare_exchange_weak(old, now))
                ;
        }
    }
    void out(std::size_t path, std::uint64_t s) {
        for (const std::size_t lvl : slot_routes[path])
            held[lvl].fetch_sub(s, std::memory_order_acq_rel);
    }
};

/// An admission or a reservation held by a thread, and whether its slots still count.
struct slot_holding {
    std::optional<slot_path_t::admission_type> admission;
    std::optional<slot_path_t::reservation_type> reservation;
    std::size_t path = 0;
    std::uint64_t slots = 0;
    bool live = false; // holds slots (counted in slot_counters)
};

/// Checks a refusal on the slot paths: a slot refusal names a capped level of the path, with
/// a ticket on its semaphore when denied; a rate refusal names a rate of that level.
template <class Result>
void check_slot_refusal(const slot_world& w, std::size_t path, const slot_cost_t& c,
                        std::uint64_t s, const Result& r, problems& p) {
    if (r.level() >= 3) {
        p.add("a refusal names level " + std::to_string(r.level()));
        return;
    }
    const std::size_t lvl = slot_routes[path][r.level()];
    if (r.metric() == s_inflight) {
        const bool too_many = s > caps[lvl];
        const bool exceeds = r.status() == acquire_status::exceeds_capacity;
        if (exceeds != too_many || r.refusal().amount != s || r.refusal().limit != caps[lvl] ||
            r.ready_at() != manual_clock::time_point::max())
            p.add("slot refusal " + status_name(r.status()) + " at level " + std::to_string(lvl) +
                  " for " + std::to_string(s) + " slots of " + std::to_string(caps[lvl]));
        if (exceeds ? static_cast<bool>(r.slot()) : r.slot().slots != &w.slots(lvl))
            p.add("slot refusal with a wrong ticket");
        return;
    }
    const std::optional<quota> q = slot_world::rate_of(r.level(), r.metric());
    if (!q || r.slot() || c[r.metric()] == 0 ||
        (r.status() == acquire_status::exceeds_capacity) != (c[r.metric()] > q->burst()))
        p.add("rate refusal " + status_name(r.status()) + " at route level " +
              std::to_string(r.level()) + " metric " + std::to_string(r.metric()));
}

TEST(NestedInFlightStress, SlotsNeverExceedTheCapsAndAllComeBack) {
    // Threads take admissions and reservations through three paths under in-flight caps at
    // every level (the variants' levels have no rates), hold up to three each, and release,
    // commit, cancel, drop, move and overwrite them. Rates are tight (and thread 0 moves the
    // clock), so many requests are refused by a rate after their slots were taken; some ask
    // for more slots than a cap, or more tokens than a burst. The holders never outnumber a
    // cap, and at the end no slot is taken and every rate is full again.
    constexpr std::uint64_t ops = 120'000; // per thread
    slot_world w;
    problems p;
    slot_counters counters;
    std::atomic<std::uint64_t> slot_denials{0}, slot_too_many{0}, rate_refusals{0}, grants{0},
        moves{0}, over_reads{0};
    run_threads(threads, [&](unsigned t) {
        std::mt19937_64 rng(5000 + t);
        std::array<slot_holding, 3> pool{};
        std::uint64_t sd = 0, st = 0, rr = 0, gr = 0, mv = 0, ov = 0;
        auto drop_count = [&](slot_holding& h) {
            if (h.live)
                counters.out(h.path, h.slots);
            h.live = false;
        };
        for (std::uint64_t i = 0; i < ops; ++i) {
            if (t == 0 && i % 4 == 0)
                w.clock.advance(10us);
            const std::uint64_t op = uniform(rng, 0, 99);
            slot_holding& h = pool[uniform(rng, 0, pool.size() - 1)];
            if (op < 60) {
                const std::size_t path = uniform(rng, 0, 2);
                slot_cost_t c;
                c[s_req] = 1;
                c[s_prompt] = uniform(rng, 0, 500);
                c[s_gen] =
                    uniform(rng, 0, 60) == 0 ? slot_generated.burst() + 1 : uniform(rng, 0, 100);
                const std::uint64_t pick = uniform(rng, 0, 39);
                c[s_inflight] = pick == 0   ? 3u
                                : pick == 1 ? 5u
                                : pick < 8  ? 2u
                                : pick < 20 ? 1u
                                            : 0u;
                const std::uint64_t s = c[s_inflight] == 0 ? 1 : c[s_inflight];
                const auto at = w.clock.now();
                const bool reserve = op >= 30;
                auto note_refusal = [&](const auto& r) {
                    check_slot_refusal(w, path, c, s, r, p);
                    if (r.metric() == s_inflight)
                        ++(r.status() == acquire_status::exceeds_capacity ? st : sd);
                    else
                        ++rr;
                };
                // Keeps a granted result in h (in `into`, emptying `other`); false if refused.
                auto hold = [&](auto&& result, auto& into, auto& other) {
                    if (!result) {
                        note_refusal(result);
                        return false;
                    }
                    ++gr;
                    counters.in(path, s, p);
                    drop_count(h);
                    if (into)
                        *into = std::move(result); // gives back (settles as a drop) what h held
                    else
                        into.emplace(std::move(result));
                    other.reset();
                    return true;
                };
                if (!reserve) {
                    auto a = w.paths[path].try_acquire_at(c, at);
                    if (a.slots() != s)
                        p.add("an admission asks for another number of slots");
                    if (!hold(a, h.admission, h.reservation))
                        continue;
                } else {
                    const auto wait = uniform(rng, 0, 1) == 0 ? 0ns : 50us;
                    auto r = w.paths[path].reserve_at(c, at, wait);
                    if (!hold(r, h.reservation, h.admission))
                        continue;
                }
                h.path = path;
                h.slots = s;
                h.live = true;
            } else if (op < 80) { // settle h
                drop_count(h);
                if (h.admission) {
                    h.admission->release();
                    h.admission->release(); // does nothing
                    if (uniform(rng, 0, 1) == 0)
                        h.admission.reset();
                } else if (h.reservation) {
                    const std::uint64_t how = uniform(rng, 0, 2);
                    if (how == 0) {
                        slot_cost_t actual = h.reservation->estimate();
                        actual[s_prompt] = uniform(rng, 0, 2 * actual[s_prompt]);
                        h.reservation->commit(actual);
                        h.reservation->cancel(); // does nothing
                    } else if (how == 1) {
                        h.reservation->cancel();
                        h.reservation->commit(h.reservation->estimate()); // does nothing
                    } else {
                        h.reservation.reset();
                    }
                }
            } else if (op < 92) { // move another entry into h
                slot_holding& from = pool[uniform(rng, 0, pool.size() - 1)];
                if (&from == &h)
                    continue;
                drop_count(h);
                h = std::move(from); // moves (or move-assigns) each optional
                from.admission.reset();
                from.reservation.reset();
                from.live = false;
                ++mv;
            } else { // look
                for (std::size_t lvl = 0; lvl < n_slot_levels; ++lvl) {
                    const auto& sl = w.slots(lvl);
                    if (sl.in_use() > sl.limit())
                        ++ov;
                }
            }
        }
        for (auto& h : pool) {
            drop_count(h);
            h.admission.reset();
            h.reservation.reset();
        }
        slot_denials += sd;
        slot_too_many += st;
        rate_refusals += rr;
        grants += gr;
        moves += mv;
        over_reads += ov;
    });
    const std::string stats = "grants " + std::to_string(grants.load()) + ", slot denials " +
                              std::to_string(slot_denials.load()) + ", too many slots " +
                              std::to_string(slot_too_many.load()) + ", rate refusals " +
                              std::to_string(rate_refusals.load()) + ", moves " +
                              std::to_string(moves.load());
    EXPECT_EQ(p.count(), 0u) << p.report() << "\n" << stats;
    EXPECT_EQ(over_reads.load(), 0u) << "a semaphore was seen holding more than its cap";
    EXPECT_GT(grants.load(), 0u) << stats;
    EXPECT_GT(slot_denials.load(), 0u) << stats;
    EXPECT_GT(slot_too_many.load(), 0u) << stats;
    EXPECT_GT(rate_refusals.load(), 0u) << stats;
    EXPECT_GT(moves.load(), 0u) << stats;
    for (std::size_t lvl = 0; lvl < n_slot_levels; ++lvl) {
        EXPECT_EQ(w.slots(lvl).in_use(), 0u) << "level " << lvl << ": slots leaked";
        EXPECT_EQ(counters.held[lvl].load(), 0u) << "level " << lvl;
        if (lvl != 2) { // model 2's cap cannot bind (its one variant has fewer slots)
            EXPECT_EQ(counters.peak[lvl].load(), caps[lvl])
                << "level " << lvl << ": the cap was never reached";
        }
    }
    w.clock.advance(10s);
    w.expect_full_rates();
}

TEST(NestedInFlightStress, RequestLargerThanAnInnerCapIsExceedsCapacityWhileAnOuterLevelIsFull) {
    // A request that can never be admitted — more slots than the variant's cap, or more
    // tokens than the model's burst — is refused `exceeds_capacity` "at once" (see `path`),
    // whatever else is busy: not `denied` with a slot ticket to wait on because the
    // account's slots happen to be taken, which would have `call()` wait for a release only
    // to be refused again.
    slot_world w;
    std::vector<slot_path_t::admission_type> holders;
    for (std::size_t path = 0; path < 3; ++path) {
        slot_cost_t one;
        one[s_req] = 1;
        holders.push_back(w.paths[path].try_acquire(one));
        ASSERT_TRUE(holders.back()) << holders.back().describe();
    }
    slot_cost_t one_more;
    one_more[s_req] = 1;
    holders.push_back(w.paths[2].try_acquire(one_more));
    ASSERT_TRUE(holders.back()) << holders.back().describe();
    ASSERT_EQ(w.account.slots.in_use(), caps[0]); // the account is full

    slot_cost_t too_many_slots;
    too_many_slots[s_req] = 1;
    too_many_slots[s_inflight] = 3; // the variants admit 2
    slot_cost_t too_many_tokens;
    too_many_tokens[s_req] = 1;
    too_many_tokens[s_gen] = slot_generated.burst() + 1;
    for (const slot_cost_t& c : {too_many_slots, too_many_tokens}) {
        const auto a = w.paths[0].try_acquire(c);
        EXPECT_EQ(a.status(), acquire_status::exceeds_capacity)
            << "try_acquire: level " << a.level() << " metric " << a.metric() << ": "
            << a.describe();
        const auto r = w.paths[0].reserve(c);
        EXPECT_EQ(r.status(), acquire_status::exceeds_capacity)
            << "reserve: level " << r.level() << " metric " << r.metric() << ": " << r.describe();
    }
    // call() ends at once, exceeds_capacity — not at its deadline, as if waiting for a slot
    // that could never be enough.
    rategov::call_options<slot_path_t> opt;
    opt.deadline = w.clock.now();
    std::uint64_t sends = 0;
    const auto res = rategov::call(
        w.paths[0], 0, too_many_slots,
        [&](int) {
            ++sends;
            rategov::response<slot_metrics_t> r;
            r.status = 200;
            return r;
        },
        opt);
    EXPECT_EQ(res.status, call_status::exceeds_capacity)
        << "call(): status " << static_cast<int>(res.status) << ", level " << res.level
        << ", metric " << res.metric;
    EXPECT_EQ(sends, 0u);
    holders.clear();
    for (std::size_t lvl = 0; lvl < n_slot_levels; ++lvl)
        EXPECT_EQ(w.slots(lvl).in_use(), 0u) << "level " << lvl;
}

// =============================================================================================
// call() through a capped path
// =============================================================================================

using call_account_t = rategov::level<rategov::metrics<m::requests, m::in_flight>, manual_clock>;
using call_model_t =
    rategov::level<rategov::metrics<m::total_prompt, m::generated, m::in_flight>, manual_clock>;
using call_path_t = rategov::path<call_account_t, call_model_t>;
using call_metrics_t = call_path_t::metrics_type;
using call_cost_t = call_path_t::cost_type;
using call_response_t = rategov::response<call_metrics_t>;
using call_options_t = rategov::call_options<call_path_t>;
using call_time_t = call_path_t::time_point;
constexpr std::size_t c_inflight = call_metrics_t::index_of<m::in_flight>;
constexpr std::uint64_t call_account_cap = 3, call_model_cap = 2;

/// How the transport answers a call.
enum class scenario : std::uint8_t {
    success_with_usage,
    success,
    throws_runtime_error,
    not_sent_then_success,   // transport_error(not_sent), then 200
    maybe_sent_then_fatal,   // transport_error(maybe_sent), then a fatal transport_error
    too_many_then_success,   // 429, 429, then 200
    too_many_always,         // 429 until the attempts run out
    more_slots_than_account, // 4 slots: the account admits 3
    more_slots_than_model,   // 3 slots: the model admits 2
};
constexpr std::size_t n_scenarios = 9;

struct call_request {
    scenario what;
    std::size_t path;
};

TEST(NestedCallStress, CallsEndingEveryWayLeaveNoSlotTaken) {
    // Threads run call() through two paths (an account capped at 3 in flight, each model at
    // 2), with transports that succeed, throw, answer 429 and retry, and calls that are
    // cancelled (a stop source fired from another thread) or run out of their deadline —
    // often while waiting for a slot. Inside the transport, at most two requests per model
    // and three per account; every call ends as its scenario says; and at the end no slot is
    // taken and every rate is full again once time has passed. (wait_mode::advance: backoffs
    // and waits for tokens move the time, and a wait for a slot with a deadline ends there.)
    constexpr std::uint64_t calls = 2000; // per thread
    manual_clock clock(call_time_t(100s));
    call_account_t account(clock, rategov::per_second(2'000).with_burst(50),
                           rategov::at_most(call_account_cap));
    call_model_t model1(clock, rategov::per_second(1'000'000).with_burst(100'000),
                        rategov::per_second(200'000).with_burst(20'000),
                        rategov::at_most(call_model_cap));
    call_model_t model2(clock, rategov::per_second(1'000'000).with_burst(100'000),
                        rategov::per_second(200'000).with_burst(20'000),
                        rategov::at_most(call_model_cap));
    std::array<call_path_t, 2> paths{call_path_t(account, model1), call_path_t(account, model2)};
    std::array<const call_model_t*, 2> models{&model1, &model2};

    problems p;
    std::array<std::atomic<std::uint64_t>, 3> inside{}; // account, model 1, model 2
    std::array<std::atomic<std::uint64_t>, 3> inside_peak{};
    std::array<std::atomic<std::uint64_t>, 10> by_status{};
    std::atomic<std::uint64_t> sends{0};

    // A stop source fired every 200 µs (real time) and replaced: the calls that take its
    // token are cancelled at some point of their wait, if they are still waiting.
    std::mutex stop_mutex;
    std::stop_source stop;
    watchdog dog(25s); // the other calls: a hang ends them `cancelled`
    std::atomic<bool> workers_done{false};
    auto current_stop = [&] {
        const std::lock_guard lock(stop_mutex);
        return stop.get_token();
    };

    auto enter = [&](std::size_t i, std::uint64_t cap) {
        const std::uint64_t now = inside[i].fetch_add(1, std::memory_order_acq_rel) + 1;
        if (now > cap)
            p.add("counter " + std::to_string(i) + ": " + std::to_string(now) +
                  " requests inside the transport, cap " + std::to_string(cap));
        std::uint64_t old = inside_peak[i].load(std::memory_order_relaxed);
        while (old < now && !inside_peak[i].compare_exchange_weak(old, now))
            ;
    };
    auto transport = [&](const call_request& rq,
                         const rategov::attempt_info<call_time_t>& info) -> call_response_t {
        sends.fetch_add(1, std::memory_order_relaxed);
        enter(0, call_account_cap);
        enter(1 + rq.path, call_model_cap);
        // Hold the slot a little while, checking the semaphores.
        for (int k = 0; k < 16; ++k) {
            const std::uint64_t a = account.slots.in_use(), mdl = models[rq.path]->slots.in_use();
            if (a == 0 || a > call_account_cap || mdl == 0 || mdl > call_model_cap)
                p.add("inside the transport: account slots " + std::to_string(a) +
                      ", model slots " + std::to_string(mdl));
            std::this_thread::yield();
        }
        inside[1 + rq.path].fetch_sub(1, std::memory_order_acq_rel);
        inside[0].fetch_sub(1, std::memory_order_acq_rel);
        call_response_t r;
        switch (rq.what) {
        case scenario::success_with_usage:
            r.status = 200;
            r.usage =
                call_cost_t{rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{700},
                            rategov::amount<m::generated>{info.attempt * 90}};
            return r;
        case scenario::throws_runtime_error:
            throw std::runtime_error("transport broke");
        case scenario::not_sent_then_success:
            if (info.attempt == 1)
                throw rategov::transport_error("connect refused", rategov::delivery::not_sent);
            r.status = 200;
            return r;
        case scenario::maybe_sent_then_fatal:
            if (info.attempt == 1)
                throw rategov::transport_error("read timeout", rategov::delivery::maybe_sent);
            throw rategov::transport_error("bad certificate", rategov::delivery::not_sent,
                                           rategov::feedback::outcome::fatal);
        case scenario::too_many_then_success:
            r.status = info.attempt < 3 ? 429 : 200;
            if (r.status == 429)
                r.headers.add("Retry-After", "1");
            return r;
        case scenario::too_many_always:
            r.status = 429;
            return r;
        default:
            r.status = 200;
            return r;
        }
    };

    std::thread canceller([&] {
        while (!workers_done.load()) {
            {
                const std::lock_guard lock(stop_mutex);
                stop.request_stop();
                stop = std::stop_source();
            }
            std::this_thread::sleep_for(200us); // pacing only; nothing is timed
        }
    });
    run_threads(threads, [&](unsigned t) {
        std::mt19937_64 rng(6000 + t);
        for (std::uint64_t k = 0; k < calls; ++k) {
            const auto what = static_cast<scenario>(uniform(rng, 0, n_scenarios - 1));
            const std::size_t path = uniform(rng, 0, 1);
            call_cost_t estimate{rategov::amount<m::requests>{1},
                                 rategov::amount<m::total_prompt>{uniform(rng, 100, 2000)},
                                 rategov::amount<m::generated>{uniform(rng, 10, 400)}};
            estimate[c_inflight] = what == scenario::more_slots_than_account ? 4u
                                   : what == scenario::more_slots_than_model ? 3u
                                                                             : uniform(rng, 0, 1);
            call_options_t opt;
            opt.seed = 1 + k;
            opt.max_attempts = 3;
            opt.priority =
                uniform(rng, 0, 1) == 0 ? traffic_class::regular : traffic_class::priority;
            const std::uint64_t modifier = uniform(rng, 0, 5);
            const bool stoppable = modifier == 0, bounded = modifier == 1;
            opt.stop = stoppable ? current_stop() : dog.token();
            if (bounded)
                opt.deadline = clock.now() + 50ms;
            const auto res =
                rategov::call(paths[path], call_request{what, path}, estimate, transport, opt);
            ++by_status[static_cast<std::size_t>(res.status)];
            call_status expected = call_status::success;
            switch (what) {
            case scenario::throws_runtime_error:
                expected = call_status::error;
                break;
            case scenario::maybe_sent_then_fatal:
                expected = call_status::rejected;
                break;
            case scenario::too_many_always:
                expected = call_status::retries_exhausted;
                break;
            case scenario::more_slots_than_account:
            case scenario::more_slots_than_model:
                expected = call_status::exceeds_capacity;
                break;
            default:
                break;
            }
            const bool ok = res.status == expected ||
                            (stoppable && res.status == call_status::cancelled) ||
                            (bounded && res.status == call_status::deadline);
            if (!ok)
                p.add("scenario " + std::to_string(static_cast<int>(what)) +
                      (stoppable ? " (stop)" : "") + (bounded ? " (deadline)" : "") +
                      " ended with status " + std::to_string(static_cast<int>(res.status)) +
                      " after " + std::to_string(res.attempts) + " attempts");
            if (res.status == call_status::exceeds_capacity &&
                (res.attempts != 0 || res.metric != c_inflight ||
                 res.level != (what == scenario::more_slots_than_account ? 0u : 1u)))
                p.add("exceeds_capacity at level " + std::to_string(res.level) + " metric " +
                      std::to_string(res.metric) + " after " + std::to_string(res.attempts) +
                      " attempts");
            if (res.status == call_status::error && res.attempts != 1)
                p.add("error after " + std::to_string(res.attempts) + " attempts");
            if (res.status == call_status::retries_exhausted && res.attempts != 3)
                p.add("retries exhausted after " + std::to_string(res.attempts) + " attempts");
        }
    });
    workers_done.store(true);
    canceller.join();
    dog.disarm();
    EXPECT_FALSE(dog.fired()) << "a call hung";

    std::string stats = "sends " + std::to_string(sends.load()) + "; by status:";
    for (const auto& n : by_status)
        stats += " " + std::to_string(n.load());
    EXPECT_EQ(p.count(), 0u) << p.report() << "\n" << stats;
    EXPECT_EQ(account.slots.in_use(), 0u) << "account slots leaked; " << stats;
    EXPECT_EQ(model1.slots.in_use(), 0u) << "model 1 slots leaked; " << stats;
    EXPECT_EQ(model2.slots.in_use(), 0u) << "model 2 slots leaked; " << stats;
    for (const call_status s : {call_status::success, call_status::error, call_status::rejected,
                                call_status::retries_exhausted, call_status::exceeds_capacity})
        EXPECT_GT(by_status[static_cast<std::size_t>(s)].load(), 0u)
            << "status " << static_cast<int>(s) << " never seen; " << stats;
    EXPECT_GT(by_status[static_cast<std::size_t>(call_status::cancelled)].load() +
                  by_status[static_cast<std::size_t>(call_status::deadline)].load(),
              0u)
        << stats;
    EXPECT_TRUE(inside_peak[1].load() == call_model_cap || inside_peak[2].load() == call_model_cap)
        << "no model ever ran two requests at once; " << stats;
    clock.advance(1h);
    EXPECT_EQ(account.governor.available(0), 50u);
    for (const call_model_t* mdl : {&model1, &model2}) {
        EXPECT_EQ(mdl->governor.availability(), (std::array<std::uint64_t, 2>{100'000, 20'000}));
        EXPECT_EQ(mdl->governor.debts(), (std::array<std::uint64_t, 2>{}));
    }
}

// =============================================================================================
// Blocking waits for a slot
// =============================================================================================

using real_model_t =
    rategov::level<rategov::metrics<m::generated, m::in_flight>, rategov::steady_clock>;
using real_path_t = rategov::path<real_model_t>;
using real_cost_t = real_path_t::cost_type;
using real_response_t = rategov::response<real_path_t::metrics_type>;

/// A model with two slots on the real clock, the path through it, a cost of one token, and
/// the test's start, watchdog and problems.
struct NestedSlotWaitStress : ::testing::Test {
    real_model_t model{rategov::steady_clock{}, rategov::per_second(1'000'000),
                       rategov::at_most(2)};
    real_path_t path{model};
    const real_cost_t one{rategov::amount<m::generated>{1}};
    const std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();
    watchdog dog{25s};
    problems p;
};

TEST_F(NestedSlotWaitStress, BlockedWaitsForASlotAreWokenByTheRelease) {
    // Real clock (a lost wake-up would block for an hour): one thread holds both slots of a
    // model; another waits in call(), a third on a refusal's slot ticket. Each must go on
    // only after the holder released, and both finish.
    constexpr unsigned rounds = 200;
    std::atomic<bool> released{false};
    std::atomic<std::uint64_t> inside{0};
    auto transport = [&](int) {
        if (!released.load())
            p.add("call() sent before the holder released a slot");
        const std::uint64_t n = inside.fetch_add(1) + 1;
        if (n > 2 || model.slots.in_use() > 2)
            p.add("more than two requests in flight");
        std::this_thread::yield();
        inside.fetch_sub(1);
        real_response_t r;
        r.status = 200;
        return r;
    };
    for (unsigned round = 0; round < rounds && !dog.fired(); ++round) {
        released.store(false);
        auto a1 = path.try_acquire(one);
        auto a2 = path.try_acquire(one);
        ASSERT_TRUE(a1 && a2) << "round " << round;
        ASSERT_EQ(model.slots.in_use(), 2u);
        std::thread caller([&] {
            rategov::call_options<real_path_t> opt;
            opt.stop = dog.token();
            opt.seed = 7;
            const auto res = rategov::call(path, 0, one, transport, opt);
            if (res.status != call_status::success || res.attempts != 1)
                p.add("round " + std::to_string(round) + ": call ended with status " +
                      std::to_string(static_cast<int>(res.status)));
        });
        std::thread ticket_waiter([&] {
            for (;;) {
                auto a = path.try_acquire(one);
                if (a) {
                    if (!released.load())
                        p.add("a slot granted before the holder released one");
                    return;
                }
                const rategov::slot_ticket ticket = a.slot();
                if (!ticket || ticket.slots != &model.slots) {
                    p.add("a slot refusal without a ticket on the model's slots");
                    return;
                }
                if (!ticket.wait(model.governor.clock(), rategov::steady_clock::time_point::max(),
                                 dog.token())) {
                    p.add("round " + std::to_string(round) + ": the ticket's wait never ended");
                    return;
                }
                if (!released.load())
                    p.add("a ticket's wait ended before any release");
            }
        });
        std::this_thread::sleep_for(300us); // let them block (pacing only; nothing is timed)
        released.store(true);
        a1.release();
        std::this_thread::sleep_for(100us);
        a2.release();
        caller.join();
        ticket_waiter.join();
        EXPECT_EQ(model.slots.in_use(), 0u) << "round " << round;
    }
    dog.disarm();
    EXPECT_FALSE(dog.fired()) << "a wait for a slot hung";
    EXPECT_EQ(p.count(), 0u) << p.report();
    EXPECT_EQ(model.slots.in_use(), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - began, 30s);
}

TEST_F(NestedSlotWaitStress, CancelledWaitForASlotTakesNothing) {
    // Real clock: while a holder keeps every slot, call()s wait for one and are cancelled
    // through their stop token: each ends `cancelled` without sending, leaving exactly the
    // holder's slots taken.
    constexpr unsigned rounds = 100;
    std::atomic<std::uint64_t> sends{0};
    auto transport = [&](int) {
        sends.fetch_add(1);
        real_response_t r;
        r.status = 200;
        return r;
    };
    for (unsigned round = 0; round < rounds && !dog.fired(); ++round) {
        real_cost_t both = one;
        both.set<m::in_flight>(2);
        auto held = path.try_acquire(both);
        ASSERT_TRUE(held) << "round " << round;
        std::stop_source stop;
        std::array<std::thread, 2> callers;
        for (auto& c : callers)
            c = std::thread([&] {
                rategov::call_options<real_path_t> opt;
                opt.stop = stop.get_token();
                const auto res = rategov::call(path, 0, one, transport, opt);
                if (res.status != call_status::cancelled || res.attempts != 0)
                    p.add("round " + std::to_string(round) + ": status " +
                          std::to_string(static_cast<int>(res.status)) + " after " +
                          std::to_string(res.attempts) + " attempts");
            });
        std::this_thread::sleep_for(300us); // pacing only
        stop.request_stop();
        for (auto& c : callers)
            c.join();
        EXPECT_EQ(model.slots.in_use(), 2u) << "round " << round << ": only the holder's";
        held.release();
        EXPECT_EQ(model.slots.in_use(), 0u) << "round " << round;
    }
    dog.disarm();
    EXPECT_FALSE(dog.fired()) << "a cancelled wait hung";
    EXPECT_EQ(p.count(), 0u) << p.report();
    EXPECT_EQ(sends.load(), 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - began, 30s);
}

TEST(NestedInFlightStress, DeadlineExpiresWhileWaitingForASlot) {
    // Virtual time: while a holder keeps the model's slots, call()s with a deadline wait for
    // one; another thread moves the clock to the deadline (even rounds) or past it (odd
    // rounds). Each ends `deadline` without sending, and leaves exactly the holder's slots
    // taken; when the clock stops at the deadline itself, the result names the model's
    // in-flight cap as what it waited for.
    constexpr unsigned rounds = 100;
    const auto began = std::chrono::steady_clock::now();
    // wait_mode::block: the waits leave the time to this thread (in wait_mode::advance, a
    // wait for a slot moves the time to its deadline itself).
    manual_clock clock(call_time_t(100s), rategov::testing::wait_mode::block);
    call_account_t account(clock, rategov::per_second(1'000), rategov::at_most(8));
    call_model_t model(clock, rategov::per_second(1'000'000), rategov::per_second(1'000'000),
                       rategov::at_most(call_model_cap));
    call_path_t path(account, model);
    const call_cost_t one{rategov::amount<m::requests>{1}};
    watchdog dog(25s);
    problems p;
    std::atomic<std::uint64_t> sends{0}, named{0};
    auto transport = [&](const call_request&) {
        sends.fetch_add(1);
        call_response_t r;
        r.status = 200;
        return r;
    };
    for (unsigned round = 0; round < rounds && !dog.fired(); ++round) {
        call_cost_t both = one;
        both[c_inflight] = 2;
        auto held = path.try_acquire(both);
        ASSERT_TRUE(held) << "round " << round;
        const auto deadline = clock.now() + 1s;
        std::array<std::thread, 2> callers;
        for (auto& c : callers)
            c = std::thread([&] {
                call_options_t opt;
                opt.deadline = deadline;
                opt.stop = dog.token();
                const auto res =
                    rategov::call(path, call_request{scenario::success, 0}, one, transport, opt);
                if (res.status != call_status::deadline || res.attempts != 0)
                    p.add("round " + std::to_string(round) + ": status " +
                          std::to_string(static_cast<int>(res.status)) + " after " +
                          std::to_string(res.attempts) + " attempts");
                if (round % 2 == 0 && (res.metric != c_inflight || res.level != 1))
                    p.add("round " + std::to_string(round) + ": the deadline names level " +
                          std::to_string(res.level) + " metric " + std::to_string(res.metric));
                if (res.metric == c_inflight)
                    named.fetch_add(1);
            });
        std::this_thread::sleep_for(300us); // pacing only
        clock.advance(round % 2 == 0 ? 1s : 2s);
        for (auto& c : callers)
            c.join();
        EXPECT_EQ(model.slots.in_use(), 2u) << "round " << round << ": only the holder's";
        EXPECT_EQ(account.slots.in_use(), 2u) << "round " << round << ": only the holder's";
        held.release();
        EXPECT_EQ(model.slots.in_use(), 0u) << "round " << round;
        EXPECT_EQ(account.slots.in_use(), 0u) << "round " << round;
    }
    dog.disarm();
    EXPECT_FALSE(dog.fired()) << "a wait past its deadline hung";
    EXPECT_EQ(p.count(), 0u) << p.report();
    EXPECT_EQ(sends.load(), 0u);
    EXPECT_GT(named.load(), 0u) << "no call had waited for a slot before its deadline";
    EXPECT_LT(std::chrono::steady_clock::now() - began, 30s);
}

} // namespace
