/// \file
/// Metrics named by tag types, and the `cost` vector addressed by tag.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

/// Ready-made metric tags for LLM APIs; any empty struct of your own works as a tag too.
namespace metric {
struct requests {};        ///< requests (calls) per period
struct total_prompt {};    ///< prompt tokens, cached and uncached
struct uncached_prompt {}; ///< prompt tokens not served from the provider's cache
struct generated {};       ///< generated (output) tokens
/// Requests started, as a metric of their own. In a governor it refills over time like the
/// others (a rate of starts, not a cap on requests in flight).
struct concurrent {};
} // namespace metric

namespace detail {
template <class T, class... Ts>
inline constexpr std::size_t index_of_v = [] {
    constexpr bool same[] = {std::is_same_v<T, Ts>..., false};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
        if (same[i])
            return i;
    return sizeof...(Ts);
}();

template <class... Ts>
inline constexpr bool distinct_v = [] {
    constexpr std::size_t idx[] = {index_of_v<Ts, Ts...>..., 0};
    for (std::size_t i = 0; i < sizeof...(Ts); ++i)
        if (idx[i] != i)
            return false;
    return true;
}();
} // namespace detail

/// The metrics a governor limits, each named by a tag type, in the order in which an
/// acquisition takes them (list the scarcest first: a denial then costs no rollback).
///
/// \code
/// using llm = rategov::metrics<rategov::metric::requests, rategov::metric::total_prompt,
///                              rategov::metric::uncached_prompt, rategov::metric::generated>;
/// \endcode
template <class... Tags>
struct metrics {
    static_assert(sizeof...(Tags) > 0, "rategov: metrics<> needs at least one metric tag.");
    static_assert(detail::distinct_v<Tags...>,
                  "rategov: each metric tag may appear only once in metrics<...>.");

    /// Number of metrics.
    static constexpr std::size_t size = sizeof...(Tags);
    /// Whether `Tag` is one of them.
    template <class Tag>
    static constexpr bool contains = (std::is_same_v<Tag, Tags> || ...);
    /// Position of `Tag` (== size when absent).
    template <class Tag>
    static constexpr std::size_t index_of = detail::index_of_v<Tag, Tags...>;
};

namespace detail {
template <class M, class Tag>
constexpr std::size_t checked_index() {
    static_assert(M::template contains<Tag>,
                  "rategov: this cost or call names a metric the governor does not have; add "
                  "the tag to rategov::metrics<...> or remove it from the cost.");
    return M::template index_of<Tag>;
}
} // namespace detail

/// An amount of one metric, for building a `cost`: `rategov::amount<metric::generated>{400}`.
template <class Tag>
struct amount {
    /// The amount, in the metric's own unit (requests, tokens, …).
    std::uint64_t value;
};

/// How much of each metric a request takes, addressed by tag; metrics not named are 0.
///
/// \code
/// rategov::cost<llm> c{rategov::amount<metric::requests>{1},
///                      rategov::amount<metric::total_prompt>{1200},
///                      rategov::amount<metric::generated>{400}};
/// c.set<metric::uncached_prompt>(800);
/// std::uint64_t g = c.get<metric::generated>();
/// \endcode
template <class Metrics>
class cost {
public:
    /// Number of metrics (`Metrics::size`).
    static constexpr std::size_t size = Metrics::size;

    constexpr cost() = default;
    /// From amounts of named metrics; naming a metric twice adds the amounts.
    template <class... Tags>
    requires(sizeof...(Tags) > 0) constexpr cost(amount<Tags>... amounts) {
        ((m_values[detail::checked_index<Metrics, Tags>()] += amounts.value), ...);
    }

    /// Sets the amount of `Tag`.
    template <class Tag>
    constexpr cost& set(std::uint64_t n) noexcept {
        m_values[detail::checked_index<Metrics, Tag>()] = n;
        return *this;
    }
    /// The amount of `Tag`.
    template <class Tag>
    [[nodiscard]] constexpr std::uint64_t get() const noexcept {
        return m_values[detail::checked_index<Metrics, Tag>()];
    }
    /// The amount of the i-th metric (in `metrics<...>` order). Unchecked: `i < size`.
    [[nodiscard]] constexpr std::uint64_t operator[](std::size_t i) const noexcept {
        return m_values[i];
    }
    /// The amount of the i-th metric, to modify. Unchecked: `i < size`.
    [[nodiscard]] constexpr std::uint64_t& operator[](std::size_t i) noexcept {
        return m_values[i];
    }

    /// Whether every metric's amount is equal.
    friend constexpr bool operator==(const cost&, const cost&) = default;

private:
    std::array<std::uint64_t, size> m_values{};
};

RATEGOV_NAMESPACE_END
