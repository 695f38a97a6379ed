/// \file
/// What the Redis governors share: their `options`, the `failure_policy`, the health report
/// (`store_status`), and the round trip to the GCRA script with its circuit breaker.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rategov/bucket/result.hpp>
#include <rategov/config.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/redis/connection.hpp>
#include <rategov/redis/scripts.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace redis {

/// What a Redis governor answers while Redis cannot be reached (down, stalled past the
/// command timeout, or refusing the script).
enum class failure_policy : std::uint8_t {
    /// Deny: `ready_at` = now + `options::retry_interval`. Safe for the limit, stops traffic.
    fail_closed,
    /// Grant everything: the limit is not enforced while Redis is down.
    fail_open,
    /// The default: an in-process `rategov::governor` holding `1/expected_processes` of each
    /// metric's count and burst decides, so that the hosts together stay near the limit if
    /// `expected_processes` is right.
    local_share,
};

/// Where the scripts read the time.
enum class time_source : std::uint8_t {
    /// The Redis server's `TIME` (the default): hosts need no clock agreement; waits come
    /// back as offsets that the client adds to its own clock's now().
    server,
    /// The caller's clock (its time since epoch, in µs, ≥ 0): every host must share that
    /// clock's epoch. For tests that drive time exactly (`testing::manual_clock`).
    client,
};

/// Options of a Redis governor. The defaults suit one Redis on the LAN.
///
/// \code
/// rategov::redis::options opt;                       // 127.0.0.1:6379, 50 ms timeouts
/// opt.endpoint.host = "redis.internal";
/// opt.on_failure = rategov::redis::failure_policy::fail_closed;
/// opt.retry_interval = std::chrono::milliseconds(500);
/// \endcode
struct options {
    /// The Redis server (validated: `config_error` for an empty host, a bad port or a
    /// timeout that is not positive).
    redis::endpoint endpoint{};
    /// Prefix of the hash key: the governor's key `k` lives in `<prefix>{k}` (the braces
    /// make it one Redis Cluster hash slot).
    std::string key_prefix = "rategov:";
    /// What to answer while Redis cannot be reached (default `local_share`).
    failure_policy on_failure = failure_policy::local_share;
    /// How many processes share the key, ≥ 1: `local_share` holds 1/this of each limit, and
    /// a leased governor leases at most burst / (2 × this) of a metric at once.
    unsigned expected_processes = 4;
    /// After a failure, Redis is tried again at most once per this interval (a circuit
    /// breaker); meanwhile the failure policy answers at once. > 0.
    std::chrono::milliseconds retry_interval{250};
    /// Whose time the scripts use (default: the server's).
    redis::time_source time = time_source::server;
    /// An idle key expires this long after its bucket would be full again (≥ 0).
    std::chrono::milliseconds expiry_margin{1000};
    /// Idle connections kept per governor (≥ 1); more are opened under concurrency.
    std::size_t max_idle_connections = 8;
    /// Leased governor: a lease aims to last this long at the observed local rate, and
    /// leased tokens unused this long are given back before new ones are taken (> 0).
    std::chrono::milliseconds lease_horizon{100};
};

/// A snapshot of a governor's view of Redis, for tests and monitoring.
struct store_status {
    /// Whether the last round trip succeeded (false until one has, if the first failed).
    bool healthy = true;
    /// Round trips that got an answer.
    std::uint64_t round_trips = 0;
    /// Round trips that failed (unreachable, timeout, broken connection, error reply).
    std::uint64_t failures = 0;
    /// Operations answered without Redis (by the failure policy), the circuit breaker open
    /// or after a failed round trip.
    std::uint64_t fallbacks = 0;
    /// Times the script was (re)loaded into Redis (`SCRIPT LOAD`; after a restart too).
    std::uint64_t script_loads = 0;
    /// The last failure.
    redis::error last_error{};
};

namespace detail {

/// Largest level the script keeps (2^52): every product it forms stays below 2^53.
inline constexpr std::uint64_t level_max = std::uint64_t{1} << 52;

/// Units of the script's exact arithmetic for one quota (see scripts.hpp).
struct units {
    std::uint64_t per_token = 0; // ut
    std::uint64_t per_us = 0;    // uu
};

/// The units of `q`, or nullopt (with `why` set) when a burst would pass 2^48 units (a
/// level holds 2^52: room for a queue or a debt of 15 bursts).
inline std::optional<units> units_of(const quota& q, std::string* why = nullptr) {
    const auto period = static_cast<std::uint64_t>(q.period().count());
    const std::uint64_t g1 = std::gcd(q.count(), period);
    const std::uint64_t c1 = q.count() / g1;
    const std::uint64_t p1 = period / g1;
    const std::uint64_t g2 = std::gcd(std::uint64_t{1000}, p1);
    const std::uint64_t a = 1000 / g2;
    units u{p1 / g2, 0};
    if (c1 > level_max / a) {
        if (why != nullptr)
            *why = "rate of quota " + q.to_string() + " is too fine for the Redis store";
        return std::nullopt;
    }
    u.per_us = a * c1;
    if (q.burst() > level_max / 16 / u.per_token) { // room for a queue or debt of 15 bursts
        if (why != nullptr)
            *why = "quota " + q.to_string() +
                   ": burst × period units pass 2^48 in the Redis store; lower the burst or "
                   "use a coarser rate";
        return std::nullopt;
    }
    return u;
}

/// Marks a receipt whose tokens came from Redis (in `receipt::version`).
inline constexpr std::uint64_t from_redis = 0x5245'4449'5321'0001ULL;
/// Marks a receipt whose tokens came from a leased pool.
inline constexpr std::uint64_t from_pool = 0x5245'4449'5321'0002ULL;

/// The answer of the script.
template <std::size_t N>
struct state {
    acquire_status status = acquire_status::denied;
    std::int64_t wait_us = 0;
    std::size_t metric = N;
    std::int64_t now_us = 0;
    std::array<std::uint64_t, N> available{};
    std::array<std::uint64_t, N> debt{};
    std::array<quota, N> limits;
    std::array<std::uint64_t, N> taken{}; // what a granted `lease` took
};

/// One key's round trip: argument building, the circuit breaker, health counters and the
/// limits last seen. Thread-safe.
template <std::size_t N>
class store {
public:
    store(const options& opt, const std::string& key, const std::array<quota, N>& limits)
        : m_opt(checked(opt, key))
        , m_key(opt.key_prefix + "{" + key + "}")
        , m_pool(opt.endpoint, opt.max_idle_connections)
        , m_limits(limits) {
        for (std::size_t i = 0; i < N; ++i) {
            std::string why;
            const auto u = units_of(limits[i], &why);
            if (!u)
                rategov::detail::throw_config_error("redis governor: metric " + std::to_string(i) +
                                                    ": " + why);
            m_units[i] = *u;
        }
    }

    [[nodiscard]] const options& opts() const noexcept { return m_opt; }
    [[nodiscard]] const std::string& key() const noexcept { return m_key; }

    /// Runs `op` with `args` at `now_us` (ignored with the server's time). nullopt when Redis
    /// could not answer or the breaker is open (counted as a fallback).
    std::optional<state<N>> run(std::string_view op, std::int64_t now_us,
                                const std::vector<std::string>& args) {
        if (!may_call()) {
            m_fallbacks.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
        std::vector<std::string> head;
        head.reserve(4 + 5 * N);
        head.emplace_back(op);
        head.push_back(m_opt.time == time_source::server ? std::string()
                                                         : std::to_string(now_us < 0 ? 0 : now_us));
        head.push_back(std::to_string(m_opt.expiry_margin.count()));
        head.push_back(std::to_string(N));
        {
            std::lock_guard lock(m_mutex);
            for (std::size_t i = 0; i < N; ++i) {
                head.push_back(std::to_string(m_limits[i].count()));
                head.push_back(std::to_string(m_limits[i].period().count()));
                head.push_back(std::to_string(m_limits[i].burst()));
                head.push_back(std::to_string(m_units[i].per_token));
                head.push_back(std::to_string(m_units[i].per_us));
            }
        }
        std::vector<std::string_view> argv(head.begin(), head.end());
        argv.insert(argv.end(), args.begin(), args.end());
        command_result r;
        {
            auto c = m_pool.acquire();
            const std::uint64_t loads = c->script_loads();
            r = c->eval(scripts::gcra, {m_key}, argv);
            m_script_loads.fetch_add(c->script_loads() - loads, std::memory_order_relaxed);
        }
        std::optional<state<N>> s;
        if (r)
            s = parse(*r.value);
        else if (r.error.kind == error_kind::none)
            r.error = {error_kind::server, "no reply"};
        if (!s) {
            if (r)
                r.error = {error_kind::server, "unexpected reply from the rategov script"};
            failed(std::move(r.error));
            return std::nullopt;
        }
        succeeded(*s);
        return s;
    }

    /// Replaces metric i's limit in the arguments of later calls (and the cache).
    void remember_limit(std::size_t i, const quota& q, units u) {
        std::lock_guard lock(m_mutex);
        m_limits[i] = q;
        m_units[i] = u;
    }
    [[nodiscard]] std::array<quota, N> limits() const {
        std::lock_guard lock(m_mutex);
        return m_limits;
    }
    [[nodiscard]] quota limit(std::size_t i) const {
        std::lock_guard lock(m_mutex);
        return m_limits[i];
    }

    void count_fallback() noexcept { m_fallbacks.fetch_add(1, std::memory_order_relaxed); }

    [[nodiscard]] store_status status() const {
        store_status s;
        // relaxed: independent counters for monitoring; no ordering with anything else.
        s.round_trips = m_round_trips.load(std::memory_order_relaxed);
        s.failures = m_failures.load(std::memory_order_relaxed);
        s.fallbacks = m_fallbacks.load(std::memory_order_relaxed);
        s.script_loads = m_script_loads.load(std::memory_order_relaxed);
        std::lock_guard lock(m_mutex);
        s.healthy = m_healthy;
        s.last_error = m_last_error;
        return s;
    }

private:
    static const options& checked(const options& opt, const std::string& key) {
        validate(opt.endpoint);
        if (key.empty())
            rategov::detail::throw_config_error("redis governor: empty key");
        if (opt.expected_processes == 0)
            rategov::detail::throw_config_error("redis::options: expected_processes 0 — at "
                                                "least one process uses the key");
        // At most 2^40 ms (35 years): the script's integers stay exact, and nanosecond
        // conversions do not overflow.
        constexpr std::int64_t ms_max = std::int64_t{1} << 40;
        if (opt.retry_interval.count() <= 0 || opt.retry_interval.count() > ms_max)
            rategov::detail::throw_config_error("redis::options: retry_interval of " +
                                                std::to_string(opt.retry_interval.count()) +
                                                " ms — it must be within [1, 2^40] ms");
        if (opt.expiry_margin.count() < 0 || opt.expiry_margin.count() > ms_max)
            rategov::detail::throw_config_error("redis::options: expiry_margin of " +
                                                std::to_string(opt.expiry_margin.count()) +
                                                " ms — it must be within [0, 2^40] ms");
        if (opt.lease_horizon.count() <= 0 || opt.lease_horizon.count() > ms_max)
            rategov::detail::throw_config_error("redis::options: lease_horizon of " +
                                                std::to_string(opt.lease_horizon.count()) +
                                                " ms — it must be within [1, 2^40] ms");
        if (opt.max_idle_connections == 0)
            rategov::detail::throw_config_error("redis::options: max_idle_connections 0 — "
                                                "keep at least one");
        return opt;
    }

    [[nodiscard]] static std::int64_t real_now() noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }

    /// The circuit breaker: 0 = closed (call Redis); otherwise the real time at which one
    /// caller may probe Redis again.
    bool may_call() noexcept {
        // (1) acquire: pairs with the release in (2)/(3), so that a caller that sees the
        //     breaker closed also sees the counters of the round trip that closed it.
        std::int64_t at = m_retry_at.load(std::memory_order_acquire);
        if (at == 0)
            return true;
        const std::int64_t now = real_now();
        if (now < at)
            return false;
        // One caller wins the probe; the others keep using the failure policy until it
        // closes the breaker (or moves the next probe on).
        const std::int64_t next = now + interval_ns();
        return m_retry_at.compare_exchange_strong(at, next, std::memory_order_acq_rel,
                                                  std::memory_order_acquire);
    }

    [[nodiscard]] std::int64_t interval_ns() const noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(m_opt.retry_interval).count();
    }

    void failed(error e) {
        m_failures.fetch_add(1, std::memory_order_relaxed);
        m_fallbacks.fetch_add(1, std::memory_order_relaxed);
        m_retry_at.store(real_now() + interval_ns(), std::memory_order_release); // (2)
        std::lock_guard lock(m_mutex);
        m_healthy = false;
        m_last_error = std::move(e);
    }

    void succeeded(const state<N>& s) {
        m_round_trips.fetch_add(1, std::memory_order_relaxed);
        m_retry_at.store(0, std::memory_order_release); // (3)
        std::lock_guard lock(m_mutex);
        m_healthy = true;
        for (std::size_t i = 0; i < N; ++i) {
            if (m_limits[i] == s.limits[i])
                continue;
            if (auto u = units_of(s.limits[i])) {
                m_limits[i] = s.limits[i];
                m_units[i] = *u;
            }
        }
    }

    static std::optional<state<N>> parse(const reply& r) {
        if (r.kind != reply::type::array ||
            (r.elements.size() != 4 + 5 * N && r.elements.size() != 4 + 6 * N))
            return std::nullopt;
        std::array<long long, 4 + 6 * N> v{};
        for (std::size_t k = 0; k < r.elements.size(); ++k) {
            const auto x = r.elements[k].as_integer();
            if (!x || *x < 0)
                return std::nullopt;
            v[k] = *x;
        }
        if (v[0] > 2 || v[2] > static_cast<long long>(N))
            return std::nullopt;
        std::array<std::optional<quota>, N> q;
        for (std::size_t i = 0; i < N; ++i) {
            const std::size_t b = 4 + 5 * i;
#if RATEGOV_HAS_EXCEPTIONS
            try {
                q[i] =
                    quota(static_cast<std::uint64_t>(v[b + 2]), std::chrono::nanoseconds(v[b + 3]))
                        .with_burst(static_cast<std::uint64_t>(v[b + 4]));
            } catch (const config_error&) {
                return std::nullopt; // the key holds limits that are not a quota
            }
#else
            q[i] = quota(static_cast<std::uint64_t>(v[b + 2]), std::chrono::nanoseconds(v[b + 3]))
                       .with_burst(static_cast<std::uint64_t>(v[b + 4]));
#endif
        }
        state<N> s{
            acquire_status::denied, v[1], static_cast<std::size_t>(v[2]), v[3], {}, {},
            [&]<std::size_t... I>(std::index_sequence<I...>){return std::array<quota, N>{*q[I]...};
    }
    (std::make_index_sequence<N>{})
};
s.status = v[0] == 0   ? acquire_status::granted
           : v[0] == 1 ? acquire_status::denied
                       : acquire_status::exceeds_capacity;
for (std::size_t i = 0; i < N; ++i) {
    s.available[i] = static_cast<std::uint64_t>(v[4 + 5 * i]);
    s.debt[i] = static_cast<std::uint64_t>(v[5 + 5 * i]);
    s.taken[i] = static_cast<std::uint64_t>(v[4 + 5 * N + i]);
}
return s;
} // namespace detail

options m_opt;
std::string m_key;
connection_pool m_pool;
mutable std::mutex m_mutex; // guards the limits, units, health and last error
std::array<quota, N> m_limits;
std::array<units, N> m_units{};
bool m_healthy = true;
error m_last_error{};
std::atomic<std::int64_t> m_retry_at{0};
std::atomic<std::uint64_t> m_round_trips{0};
std::atomic<std::uint64_t> m_failures{0};
std::atomic<std::uint64_t> m_fallbacks{0};
std::atomic<std::uint64_t> m_script_loads{0};
}; // namespace redis

/// Decimal strings of a vector of integers (script arguments).
template <class Array>
std::vector<std::string> to_args(const Array& a) {
    std::vector<std::string> out;
    out.reserve(a.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        out.push_back(std::to_string(a[i]));
    return out;
}

/// µs of a time point since its clock's epoch (floor; ≥ 0).
template <class TimePoint>
[[nodiscard]] std::int64_t micros_of(TimePoint tp) noexcept {
    const auto us = std::chrono::floor<std::chrono::microseconds>(tp.time_since_epoch()).count();
    return us < 0 ? 0 : static_cast<std::int64_t>(us);
}

/// `at + us` microseconds, rounded up to the clock's unit and saturated.
template <class TimePoint>
[[nodiscard]] TimePoint after(TimePoint at, std::int64_t us) noexcept {
    using D = typename TimePoint::duration;
    const auto d = std::chrono::ceil<D>(std::chrono::microseconds(us));
    if (at > TimePoint::max() - d)
        return TimePoint::max();
    return at + d;
}

/// Microseconds of a duration, rounded down, clamped to [0, level_max].
template <class D>
[[nodiscard]] std::int64_t wait_micros(D d) noexcept {
    if (d <= D::zero())
        return 0;
    constexpr auto cap = std::chrono::microseconds(static_cast<std::int64_t>(level_max));
    if (d >= std::chrono::duration_cast<D>(cap))
        return cap.count();
    return std::chrono::floor<std::chrono::microseconds>(d).count();
}

} // namespace detail
} // namespace redis
RATEGOV_NAMESPACE_END
