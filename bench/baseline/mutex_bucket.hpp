/// \file
/// Baselines for the micro benchmarks: the mutex-protected limiters a competent engineer
/// would write first, with the same semantics as `rategov::bucket` and a three-metric
/// `rategov::governor` (a token bucket per metric, integer nanoseconds, `count` tokens per
/// `period` with a capacity of `burst`, all-or-nothing acquisition).
///
/// Token levels are kept exactly, in units of 1/period_ns token (a token is `period_ns`
/// units, time adds `elapsed_ns · count` units), so the rate is exact without division on
/// the hot path. That needs `burst · period_ns < 2^63`, which holds for every quota the
/// benchmarks use; the constructor rejects the others.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <stdexcept>

#include <rategov/quota/quota.hpp>

namespace baseline {

/// One metric's token bucket state; not synchronised (the owner holds the lock).
class token_state {
public:
    explicit token_state(const rategov::quota& q)
        : m_count(q.count())
        , m_burst(q.burst())
        , m_token(static_cast<std::uint64_t>(q.period().count()))
        , m_capacity(checked_capacity(q))
        , m_fill_ns(m_capacity / m_count + 1)
        , m_level(m_capacity) {}

    /// Adds what accrued in `elapsed_ns` (≥ 0), capped at the capacity.
    void refill(std::uint64_t elapsed_ns) noexcept {
        if (elapsed_ns >= m_fill_ns) { // long enough to be full; also avoids overflow below
            m_level = m_capacity;
            return;
        }
        const std::uint64_t level = m_level + elapsed_ns * m_count;
        m_level = level < m_capacity ? level : m_capacity;
    }
    /// Whether `n` tokens are there (after `refill`).
    [[nodiscard]] bool has(std::uint64_t n) const noexcept {
        return n <= m_burst && n * m_token <= m_level; // n ≤ burst: the product cannot overflow
    }
    /// Takes `n` tokens; `has(n)` must hold.
    void take(std::uint64_t n) noexcept { m_level -= n * m_token; }

private:
    static std::uint64_t checked_capacity(const rategov::quota& q) {
        const auto period = static_cast<std::uint64_t>(q.period().count());
        if (q.burst() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / period)
            throw std::invalid_argument("baseline: burst * period_ns must stay below 2^63");
        return q.burst() * period;
    }

    std::uint64_t m_count;    // units added per elapsed ns
    std::uint64_t m_burst;    // tokens
    std::uint64_t m_token;    // units per token (period in ns)
    std::uint64_t m_capacity; // burst · period_ns
    std::uint64_t m_fill_ns;  // ns after which an empty bucket is surely full
    std::uint64_t m_level;    // units available
};

[[nodiscard]] inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// A token bucket behind a std::mutex. The clock is read before the lock is taken; a thread
/// that arrives with an older time than the last update just sees no refill.
class mutex_bucket {
public:
    explicit mutex_bucket(const rategov::quota& q)
        : m_state(q)
        , m_last(now_ns()) {}

    [[nodiscard]] bool try_acquire(std::uint64_t n = 1) {
        const std::int64_t now = now_ns();
        std::lock_guard<std::mutex> lock(m_mutex);
        advance(now);
        if (!m_state.has(n))
            return false;
        m_state.take(n);
        return true;
    }

private:
    void advance(std::int64_t now) noexcept {
        if (now > m_last) {
            m_state.refill(static_cast<std::uint64_t>(now - m_last));
            m_last = now;
        }
    }

    std::mutex m_mutex;
    token_state m_state;
    std::int64_t m_last;
};

/// Three token buckets behind ONE std::mutex; a cost of three amounts is taken
/// all-or-nothing.
class mutex_governor3 {
public:
    using cost_type = std::array<std::uint64_t, 3>;

    mutex_governor3(const rategov::quota& a, const rategov::quota& b, const rategov::quota& c)
        : m_states{token_state(a), token_state(b), token_state(c)}
        , m_last(now_ns()) {}

    [[nodiscard]] bool try_acquire(const cost_type& cost) {
        const std::int64_t now = now_ns();
        std::lock_guard<std::mutex> lock(m_mutex);
        if (now > m_last) {
            const auto elapsed = static_cast<std::uint64_t>(now - m_last);
            for (auto& s : m_states)
                s.refill(elapsed);
            m_last = now;
        }
        for (std::size_t i = 0; i < m_states.size(); ++i)
            if (!m_states[i].has(cost[i]))
                return false;
        for (std::size_t i = 0; i < m_states.size(); ++i)
            m_states[i].take(cost[i]);
        return true;
    }

private:
    std::mutex m_mutex;
    std::array<token_state, 3> m_states;
    std::int64_t m_last;
};

} // namespace baseline
