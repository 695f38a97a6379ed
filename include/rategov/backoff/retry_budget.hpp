/// \file
/// A retry budget: under a sustained failure, retries stay a bounded fraction of calls.
///
/// Every call deposits `ratio` of a retry (0.1 by default); every retry withdraws its cost
/// (one retry by default, per outcome: see `retry_costs`); a retry that finds the
/// balance short is not made. The balance starts at `initial` retries and never exceeds
/// `max`. So over any stretch of n calls at most `ratio · n + max` retries that cost at
/// least one happen, and from an empty balance at most `ratio · n` — however long the
/// failure lasts. Retries that cost 0 (after a 429, by default) are not bounded by the
/// budget: `max_attempts` and the governor's pacing bound them. This is the
/// scheme of Finagle's `RetryBudget` and, with other constants, of the AWS SDKs' standard
/// retry quota and gRPC's retry throttling, kept in integer micro-retries in one atomic
/// word (lock-free; deposits and withdrawals are exact).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include <rategov/config.hpp>
#include <rategov/feedback/profiles.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace backoff {

/// What a retry after each kind of failure costs, in retries. 0 makes that kind free.
struct retry_costs {
    /// After a 429: the governor already paces these (its limit fell), and the server's
    /// Retry-After spaces them; charging them would give up on calls the limit will
    /// admit. Free by default.
    std::uint32_t over_limit = 0;
    /// After a 503/529: the provider is shedding load; retries add to it.
    std::uint32_t load_shed = 1;
    /// After another retryable failure (5xx, timeout, connection error).
    std::uint32_t retryable = 1;
};

/// A lock-free retry budget shared by the calls of one client (or one key).
/// \code
/// rategov::backoff::retry_budget budget;            // 10 % of calls, 10 at start, 100 max
/// budget.on_call();                                 // once per call, before its first try
/// if (failed && budget.try_spend(outcome)) retry(); // else give up: the budget is spent
/// \endcode
class retry_budget {
public:
    /// `ratio`: retries earned per call (0 ≤ ratio ≤ 1000); `initial` and `max`: the balance
    /// at start and its bound, in retries (initial ≤ max ≤ 2^40).
    /// \throws config_error naming the bad value.
    explicit retry_budget(double ratio = 0.1, std::uint64_t initial = 10, std::uint64_t max = 100,
                          retry_costs c = {})
        : m_costs(c) {
        if (!(ratio >= 0.0 && ratio <= 1000.0))
            detail::throw_config_error("retry_budget: ratio " + std::to_string(ratio) +
                                       " is not within [0, 1000]");
        if (ratio > 0.0 && ratio < 1e-6)
            detail::throw_config_error("retry_budget: ratio " + std::to_string(ratio) +
                                       " is below the resolution 1e-6 (use 0 for none)");
        if (max > max_retries)
            detail::throw_config_error("retry_budget: max " + std::to_string(max) +
                                       " exceeds 2^40 retries");
        if (initial > max)
            detail::throw_config_error("retry_budget: initial " + std::to_string(initial) +
                                       " exceeds max " + std::to_string(max));
        m_deposit = static_cast<std::uint64_t>(std::llround(ratio * static_cast<double>(unit)));
        m_max = max * unit;
        m_balance.store(initial * unit, std::memory_order_relaxed);
    }
    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    /// Records one call (its first attempt): deposits `ratio` of a retry, up to `max`.
    void on_call() noexcept { deposit(m_deposit); }

    /// Withdraws the cost of one retry after a failure of kind `why`; false (nothing
    /// withdrawn) when the balance is short. Success, fatal and quota-exhausted outcomes are
    /// never retried: false.
    [[nodiscard]] bool try_spend(feedback::outcome why) noexcept {
        const std::optional<std::uint64_t> cost = cost_of(why);
        return cost && try_spend_units(*cost * unit);
    }

    /// Gives back what `try_spend(why)` took, for a retry that was never sent (its call was
    /// cancelled during the backoff), up to `max`.
    void give_back(feedback::outcome why) noexcept {
        if (const std::optional<std::uint64_t> cost = cost_of(why))
            deposit(*cost * unit);
    }

    /// Withdraws `n` retries; false (nothing withdrawn) when the balance is short.
    [[nodiscard]] bool try_spend(std::uint32_t n = 1) noexcept {
        return try_spend_units(std::uint64_t{n} * unit);
    }

    /// Retries the balance affords now (whole ones).
    [[nodiscard]] std::uint64_t available() const noexcept {
        return m_balance.load(std::memory_order_relaxed) / unit;
    }

private:
    static constexpr std::uint64_t unit = 1'000'000; // micro-retries: 2^40 retries fit
    static constexpr std::uint64_t max_retries = std::uint64_t{1} << 40;

    [[nodiscard]] std::optional<std::uint64_t> cost_of(feedback::outcome why) const noexcept {
        switch (why) {
        case feedback::outcome::over_limit:
            return m_costs.over_limit;
        case feedback::outcome::load_shed:
            return m_costs.load_shed;
        case feedback::outcome::retryable:
            return m_costs.retryable;
        default:
            return std::nullopt; // never retried
        }
    }

    /// Adds `units` to the balance, up to `max`.
    void deposit(std::uint64_t units) noexcept {
        if (units == 0)
            return;
        // relaxed: the balance is a counter; no other memory is published through it.
        std::uint64_t b = m_balance.load(std::memory_order_relaxed);
        while (b < m_max) {
            const std::uint64_t next = m_max - b > units ? b + units : m_max;
            if (m_balance.compare_exchange_weak(b, next, std::memory_order_relaxed))
                return;
        }
    }

    bool try_spend_units(std::uint64_t cost) noexcept {
        std::uint64_t b = m_balance.load(std::memory_order_relaxed);
        do {
            if (b < cost)
                return false;
        } while (!m_balance.compare_exchange_weak(b, b - cost, std::memory_order_relaxed));
        return true;
    }

    retry_costs m_costs;
    std::uint64_t m_deposit = 0;
    std::uint64_t m_max = 0;
    alignas(RATEGOV_CACHE_LINE) std::atomic<std::uint64_t> m_balance{0};
};

} // namespace backoff
RATEGOV_NAMESPACE_END
