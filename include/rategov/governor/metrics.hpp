/// \file
/// Metrics named by tag types, and the `cost` vector addressed by tag.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

/// Ready-made metric tags for LLM APIs; any empty struct of your own works as a tag too.
///
/// A tag may name itself for messages (`static constexpr std::string_view name`), as these
/// do; a refusal then reads "prompt tokens: 1200000 exceed the model's burst of 900000"
/// rather than "metric 1: …".
namespace metric {
/// Requests (calls) per period.
struct requests {
    static constexpr std::string_view name = "requests"; ///< for messages
};
/// Prompt tokens, cached and uncached.
struct total_prompt {
    static constexpr std::string_view name = "prompt tokens"; ///< for messages
};
/// Prompt tokens not served from the provider's cache.
struct uncached_prompt {
    static constexpr std::string_view name = "uncached prompt tokens"; ///< for messages
};
/// Generated (output) tokens.
struct generated {
    static constexpr std::string_view name = "generated tokens"; ///< for messages
};
/// Requests started, as a metric of their own. In a governor it refills over time like the
/// others (a rate of starts, not a cap on requests in flight: that is `in_flight`).
struct concurrent {
    static constexpr std::string_view name = "requests started"; ///< for messages
};
/// Requests in flight: a cap, not a rate. A `rategov::level` whose metrics list it holds a
/// counting semaphore for it (limit `rategov::at_most(n)`): a request takes its slots with
/// the rest of its cost, all or nothing, and gives them back exactly once, when its
/// reservation is settled — committed, cancelled or dropped. A request's amount of it is
/// the number of slots it holds (0 counts as 1: every request is in flight).
struct in_flight {
    static constexpr std::string_view name = "requests in flight"; ///< for messages
};
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

/// A tag's name for messages: its `name` member if it has one, else "metric".
template <class Tag>
[[nodiscard]] constexpr std::string_view metric_name() noexcept {
    if constexpr (requires { std::string_view(Tag::name); })
        return Tag::name;
    else
        return "metric";
}

namespace detail {
template <class... Ts>
struct type_list {};
template <class List, class Tag>
struct add_tag;
template <class... Ts, class Tag>
struct add_tag<type_list<Ts...>, Tag> {
    using type = std::conditional_t<(std::is_same_v<Tag, Ts> || ...), type_list<Ts...>,
                                    type_list<Ts..., Tag>>;
};
template <class... Ts>
struct add_tag<type_list<Ts...>, void> {
    using type = type_list<Ts...>;
};
template <class List, class... Tags>
struct add_tags {
    using type = List;
};
template <class List, class Tag, class... Tags>
struct add_tags<List, Tag, Tags...> {
    using type = typename add_tags<typename add_tag<List, Tag>::type, Tags...>::type;
};
template <class List, class M>
struct add_metrics;
template <class List, class... Tags>
struct add_metrics<List, metrics<Tags...>> {
    using type = typename add_tags<List, Tags...>::type;
};
template <class List, class... Ms>
struct union_list {
    using type = List;
};
template <class List, class M, class... Ms>
struct union_list<List, M, Ms...> {
    using type = typename union_list<typename add_metrics<List, M>::type, Ms...>::type;
};
template <class List>
struct as_metrics;
template <class... Ts>
struct as_metrics<type_list<Ts...>> {
    using type = metrics<Ts...>;
};
/// The tags of `M` other than `Drop`, as a `type_list` (which may be empty).
template <class M, class Drop>
struct without_tag;
template <class... Tags, class Drop>
struct without_tag<metrics<Tags...>, Drop> {
    using type =
        typename add_tags<type_list<>,
                          std::conditional_t<std::is_same_v<Tags, Drop>, void, Tags>...>::type;
};
template <class M>
struct index_map;
template <class... Tags>
struct index_map<metrics<Tags...>> {
    /// Where each of `Tags` sits in `To`.
    template <class To>
    static constexpr std::array<std::size_t, sizeof...(Tags)> in = {To::template index_of<Tags>...};
};
template <class M>
struct names_of;
template <class... Tags>
struct names_of<metrics<Tags...>> {
    static constexpr std::array<std::string_view, sizeof...(Tags)> value = {metric_name<Tags>()...};
};
} // namespace detail

/// The metrics of several lists, each tag once, in the order of first appearance:
/// `metrics_union_t<metrics<A, B>, metrics<B, C>>` is `metrics<A, B, C>`.
template <class... Ms>
using metrics_union_t = typename detail::as_metrics<
    typename detail::union_list<detail::type_list<>, Ms...>::type>::type;

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
