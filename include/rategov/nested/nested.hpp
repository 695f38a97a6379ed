/// \file
/// Nested limits: a request admitted all-or-nothing across the levels it passes through —
/// an account's limits, its model's, the model variant's — each level a governor over its
/// own metrics, optionally with a cap on requests in flight.
///
/// - `level<Metrics>`: one level's limits. Rate metrics go to a `governor`;
///   `metric::in_flight` (limit `at_most(n)`) to a counting semaphore.
/// - `path<Levels...>`: a request's way through levels, outermost first (any mix of `level`s
///   and `governor`s). It has the governor interface: `try_acquire`, `reserve`, and
///   `call()` works with it. Its cost names the metrics of every level; each level takes
///   its own. Nothing is taken unless every level grants (rolled back exactly otherwise),
///   a reservation is ready when every level is, and its commit reconciles every level.
/// - `nested_limits<Levels...>`: the levels kept per key (account, model, variant),
///   created on first use, as a `keyed` registry per depth; `call(limits, key, ...)`.
///
/// \code
/// using namespace rategov;
/// using account_limits = level<metrics<metric::requests>>;
/// using model_limits = level<metrics<metric::total_prompt, metric::uncached_prompt,
///                                    metric::generated, metric::in_flight>>;
/// account_limits acct(per_minute(6'000));
/// model_limits llama(per_minute(3'600'000), per_minute(900'000), per_minute(36'000),
///                    at_most(64));
/// path route(acct, llama);
/// auto r = route.reserve({amount<metric::requests>{1}, amount<metric::total_prompt>{1200},
///                         amount<metric::uncached_prompt>{800},
///                         amount<metric::generated>{400}});
/// r.wait();  // ... send, then:
/// r.commit(actual);  // every level settled, the in-flight slot given back
/// \endcode
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/bucket/result.hpp>
#include <rategov/client/call.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/in_flight.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/keyed/keyed.hpp>
#include <rategov/quota/quota.hpp>

RATEGOV_NAMESPACE_BEGIN

namespace detail {

/// The governor of a level without rate metrics: only a clock.
template <class Clock>
class no_rates {
public:
    explicit no_rates(const Clock& c)
        : m_clock(c) {}
    [[nodiscard]] const Clock& clock() const noexcept { return m_clock; }
    [[nodiscard]] typename Clock::time_point now() const noexcept { return m_clock.now(); }

private:
    Clock m_clock;
};
/// The slots of a level without an in-flight cap, and the adaptive limits of one without
/// rates: nothing.
struct nothing {
    template <class... A>
    explicit nothing(const A&...) noexcept {}
};

template <class List, class Clock, class Drop>
struct rates_governor {
    using type = no_rates<Clock>;
};
template <class T, class... Ts, class Clock, class Drop>
struct rates_governor<type_list<T, Ts...>, Clock, Drop> {
    using type = governor<metrics<T, Ts...>, Clock, Drop>;
};

template <class List>
struct list_size;
template <class... Ts>
struct list_size<type_list<Ts...>> {
    static constexpr std::size_t value = sizeof...(Ts);
};

/// "1.2M", "900k", "36000" (a suffix only when it is exact to one decimal).
[[nodiscard]] inline std::string amount_text(std::uint64_t n) {
    for (const auto& [unit, suffix] : {std::pair<std::uint64_t, const char*>{1'000'000'000, "G"},
                                       {1'000'000, "M"},
                                       {1'000, "k"}}) {
        if (n >= unit && n % (unit / 10) == 0) {
            const std::uint64_t tenths = n / (unit / 10);
            return std::to_string(tenths / 10) +
                   (tenths % 10 != 0 ? "." + std::to_string(tenths % 10) : std::string()) + suffix;
        }
    }
    return std::to_string(n);
}

} // namespace detail

/// One level's limits: its rate metrics in a `governor`, and `metric::in_flight`, if listed,
/// in a counting semaphore (`in_flight_slots`). Limits come in `Metrics` order: a `quota`
/// for each rate metric, `at_most(n)` for `metric::in_flight`.
///
/// Its parts are public members, to use and tune directly: `governor` (absent — a clock
/// only — when every metric is `in_flight`), `adaptive` (adaptive limits of `governor`,
/// bound none until you bind them; a `path` used by `call()` feeds them) and `slots`.
///
/// \code
/// rategov::level<rategov::metrics<rategov::metric::total_prompt, rategov::metric::generated,
///                                 rategov::metric::in_flight>>
///     model(rategov::per_minute(3'600'000), rategov::per_minute(36'000), rategov::at_most(64));
/// model.slots.in_use();                                 // requests in flight now
/// model.governor.set_limit<rategov::metric::generated>(rategov::per_minute(30'000));
/// \endcode
template <class Metrics, class Clock = steady_clock, class DropPolicy = refund_on_drop>
class level {
    static_assert(check_clock<Clock>());
    using rate_list = typename detail::without_tag<Metrics, metric::in_flight>::type;
    static constexpr std::size_t rate_count = detail::list_size<rate_list>::value;
    static constexpr std::size_t cap_index = Metrics::template index_of<metric::in_flight>;

    /// Whether `L...` are a quota per rate metric and `at_most(n)` for `in_flight`, in order
    /// (a static_assert that names the rule otherwise).
    template <class... L>
    static constexpr bool check_limits() {
        // Other arguments (or another count) are another constructor's: no verdict here.
        constexpr bool limits =
            sizeof...(L) == Metrics::size &&
            ((std::is_same_v<L, quota> || std::is_same_v<L, in_flight_cap>)&&...);
        constexpr bool ok = !limits || [] {
            constexpr bool cap[] = {std::is_same_v<L, in_flight_cap>..., false};
            constexpr bool rate[] = {std::is_same_v<L, quota>..., false};
            for (std::size_t i = 0; i < sizeof...(L); ++i)
                if (cap[i] != (i == cap_index) || rate[i] == (i == cap_index))
                    return false;
            return true;
        }();
        static_assert(ok, "rategov: a level's limits come in metrics<...> order: a quota "
                          "(per_minute(n), ...) for each rate metric, at_most(n) for "
                          "metric::in_flight.");
        return ok;
    }

public:
    /// The metrics of this level, `in_flight` included.
    using metrics_type = Metrics;
    /// The clock of the level.
    using clock_type = Clock;
    /// The drop policy of the level's reservations.
    using drop_policy = DropPolicy;
    /// Whether some metric is a rate (then `governor` is a `rategov::governor`).
    static constexpr bool has_rates = rate_count > 0;
    /// Whether `metric::in_flight` is capped here (then `slots` is an `in_flight_slots`).
    static constexpr bool has_cap = Metrics::template contains<metric::in_flight>;
    /// The governor of the rate metrics (a clock holder when there are none).
    using governor_type = typename detail::rates_governor<rate_list, Clock, DropPolicy>::type;
    /// `adaptive_limits<governor_type>`, or nothing without rate metrics.
    using adaptive_type =
        std::conditional_t<has_rates, adaptive_limits<governor_type>, detail::nothing>;
    /// `in_flight_slots`, or nothing without `metric::in_flight`.
    using slots_type = std::conditional_t<has_cap, in_flight_slots, detail::nothing>;

    /// The limits in `Metrics` order, over a default-constructed clock.
    template <class... L>
    requires(sizeof...(L) == Metrics::size &&
             (!std::same_as<L, Clock> && ...)) explicit level(const L&... limits)
        : level(Clock{}, limits...) {}
    /// The limits in `Metrics` order, over `clock` (copied: a handle).
    template <class... L, bool Checked = check_limits<L...>()>
    requires(sizeof...(L) == Metrics::size) level(const Clock& clock, const L&... limits)
        : level(clock, std::tuple<const L&...>(limits...), std::make_index_sequence<rate_count>{}) {
    }
    level(const level&) = delete;
    level& operator=(const level&) = delete;

    /// Keeps `share` of every rate metric's burst and of the in-flight cap for priority
    /// traffic (see `traffic_class`). \throws config_error unless 0 ≤ share < 1.
    void set_priority_headroom(double share) {
        if constexpr (has_rates)
            governor.set_priority_headroom(share);
        if constexpr (has_cap)
            slots.set_priority_headroom(share);
        else
            static_cast<void>(detail::headroom_fixed(share, "level::set_priority_headroom"));
    }

    /// The rate metrics' governor.
    governor_type governor;
    /// Adaptive limits of `governor` (nothing is bound until `adaptive.bound` is called).
    adaptive_type adaptive{governor};
    /// The semaphore of `metric::in_flight`.
    slots_type slots;

private:
    template <class Tuple, std::size_t... I>
    level(const Clock& clock, const Tuple& limits, std::index_sequence<I...>)
        : governor(clock, std::get<rate_position(I)>(limits)...)
        , slots(cap_of(limits)) {}

    /// The position in `Metrics` of the i-th rate metric.
    static constexpr std::size_t rate_position(std::size_t i) noexcept {
        return i < cap_index ? i : i + 1;
    }
    template <class Tuple>
    static auto cap_of(const Tuple& limits) noexcept {
        if constexpr (has_cap)
            return in_flight_cap(std::get<cap_index>(limits));
        else
            return 0;
    }
};

namespace detail {

/// How a path reaches the parts of one of its levels: a `level` or a bare `governor`.
template <class L>
struct level_access;
template <class M, class C, class D, class S>
struct level_access<governor<M, C, D, S>> {
    using metrics_type = M;
    using clock_type = C;
    using drop_policy = D;
    using governor_type = governor<M, C, D, S>;
    static constexpr bool has_rates = true, has_cap = false, has_adaptive = false;
    static governor_type& rates(governor_type& g) noexcept { return g; }
};
template <class M, class C, class D>
struct level_access<level<M, C, D>> {
    using metrics_type = M;
    using clock_type = C;
    using drop_policy = D;
    using governor_type = typename level<M, C, D>::governor_type;
    static constexpr bool has_rates = level<M, C, D>::has_rates;
    static constexpr bool has_cap = level<M, C, D>::has_cap;
    static constexpr bool has_adaptive = has_rates;
    static governor_type& rates(level<M, C, D>& l) noexcept { return l.governor; }
};

template <class T, class... Ts>
inline constexpr bool all_same_v = (std::is_same_v<T, Ts> && ...);

template <class T>
struct empty_receipts {};

} // namespace detail

template <class Path>
class path_result;
template <class Path>
class admission;
template <class Path>
class path_reservation;

/// Why a path refused a request, or nothing (`level == levels`) when it granted: the level
/// and metric that refused, what the request asked of that metric, and that level's limit
/// for it. `describe()` of an `admission` or a `path_reservation` puts it in words.
struct path_refusal {
    /// The level that refused (outermost 0), or the number of levels.
    std::size_t level = 0;
    /// The metric that refused, as an index in the path's `metrics_type` (its size: none).
    std::size_t metric = 0;
    /// What the request asked of that metric.
    std::uint64_t amount = 0;
    /// That level's burst of the metric (its cap, for `metric::in_flight`); for regular
    /// traffic, what it may use of it.
    std::uint64_t limit = 0;
    /// For a refusal for want of a slot: what to wait on.
    slot_ticket ticket{};
};

/// A request's way through nested levels of limits, outermost first: e.g. an account's,
/// then its model's, then the model variant's. Each of `Levels` is a `level<...>` or a
/// `governor<...>` (every one over the same clock and drop policy); the path holds
/// references to them, which must outlive it and its reservations.
///
/// - Its cost (`cost_type`) names the metrics of every level (`metrics_type`: their union,
///   in order of first appearance); each level takes its own metrics' amounts.
/// - `try_acquire` and `reserve` take the cost from every level all-or-nothing, lock-free:
///   in-flight slots first, then each level's metrics; a refusal anywhere gives back what
///   the others took exactly (as each governor's own rollback does).
/// - A reservation is ready when every level is: one combined ready time, the tokens of
///   every level placed at it. Its `commit(actual)` reconciles every level and gives the
///   in-flight slots back; `cancel()` and a drop give everything back (a drop applies the
///   drop policy to the tokens; slots are given back whatever it is).
/// - A request too large for a level is refused at once, `exceeds_capacity`, naming the
///   level and metric: `describe()` says e.g. "a request of 1.2M prompt tokens exceeds the
///   model's burst of 900k".
/// - `call()` works with a path; it waits for slots as for tokens, and feeds each level's
///   adaptive limits (see `learn`).
///
/// Level names in messages: "account", "model", "variant" for one to three levels (by
/// depth), "level N" beyond; `named({...})` sets others.
///
/// \code
/// rategov::path route(account, llama, llama_turbo);     // levels outermost first
/// using cost_t = decltype(route)::cost_type;             // every level's metrics
/// auto r = route.reserve(cost_t{rategov::amount<rategov::metric::requests>{1},
///                               rategov::amount<rategov::metric::generated>{400}});
/// if (!r) log(r.describe());                             // which level, which metric
/// \endcode
template <class... Levels>
class path {
    static_assert(sizeof...(Levels) >= 1, "rategov: a path needs at least one level.");
    static constexpr std::size_t L = sizeof...(Levels);
    template <std::size_t K>
    using level_t = std::tuple_element_t<K, std::tuple<Levels...>>;
    template <std::size_t K>
    using access = detail::level_access<std::remove_cv_t<level_t<K>>>;
    template <std::size_t K>
    using gov_t = typename access<K>::governor_type;
    static_assert(detail::all_same_v<typename detail::level_access<Levels>::clock_type...>,
                  "rategov: every level of a path must run on the same clock type.");
    static_assert(detail::all_same_v<typename detail::level_access<Levels>::drop_policy...>,
                  "rategov: every level of a path must have the same drop policy.");

public:
    /// Every level's metrics, each once, in order of first appearance.
    using metrics_type = metrics_union_t<typename detail::level_access<Levels>::metrics_type...>;
    /// The clock of every level.
    using clock_type = typename access<0>::clock_type;
    /// A time point of `clock_type`.
    using time_point = typename clock_type::time_point;
    /// A duration of `clock_type`.
    using duration = typename clock_type::duration;
    /// A request's cost over `metrics_type`.
    using cost_type = cost<metrics_type>;
    /// The levels' common drop policy, applied to a dropped reservation's tokens.
    using drop_policy = typename access<0>::drop_policy;
    /// What `try_acquire` returns.
    using admission_type = admission<path>;
    /// What `reserve` returns.
    using reservation_type = path_reservation<path>;
    /// The number of levels.
    static constexpr std::size_t levels = L;

    /// A path through `levels`, outermost first (kept by reference).
    /// \throws config_error if one object is two of the levels (it would be taken twice).
    explicit path(Levels&... lv)
        : m_levels(&lv...) {
        const void* at[] = {static_cast<const void*>(&lv)...};
        for (std::size_t k = 0; k < L; ++k) {
            m_names[k] = default_name(k);
            for (std::size_t j = 0; j < k; ++j)
                if (at[j] == at[k])
                    detail::throw_config_error(
                        "path: levels " + std::to_string(j) + " and " + std::to_string(k) +
                        " are one object (or one holds the other at its start); a level may "
                        "appear once");
        }
    }

    /// Names the levels for messages, outermost first (the strings must outlive the path).
    path& named(const std::array<std::string_view, L>& names) noexcept {
        m_names = names;
        return *this;
    }
    /// The name of level k (k < levels).
    [[nodiscard]] std::string_view name(std::size_t k) const noexcept { return m_names[k]; }

    /// Level K.
    template <std::size_t K>
    [[nodiscard]] level_t<K>& at() const noexcept {
        return *std::get<K>(m_levels);
    }

    // --- acquisition -------------------------------------------------------------------------

    /// Takes `c` from every level now, or nothing (see the class comment). Lock-free. The
    /// admission holds the in-flight slots until it is dropped or `release()`d; the tokens
    /// are taken for good, as a governor's `try_acquire` takes them.
    [[nodiscard]] admission_type try_acquire(const cost_type& c,
                                             traffic_class who = traffic_class::priority) noexcept {
        return try_acquire_at(c, now(), who);
    }
    /// The same at a caller-supplied time.
    [[nodiscard]] RATEGOV_ALWAYS_INLINE admission_type try_acquire_at(
        const cost_type& c, time_point at, traffic_class who = traffic_class::priority) noexcept {
        admission_type out(*this, slots_for(c));
        if (!take_slots(out, who)) {
            if (out.m_status == acquire_status::denied)
                refuse_if_too_large(out, c, at, who); // never "wait for a slot" for that
            return out;
        }
        prior_tuple prior{};
        std::array<std::uint64_t, L> tau{};
        std::size_t failed = L;
        level_step failure{};
        const bool ok = all([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (!access<K>::has_rates) {
                return true;
            } else {
                auto& g = rates<K>();
                tau[K] = g.tick_of(at);
                const auto d = g.take_all(project<K>(c), tau[K], who, std::get<K>(prior));
                if (d.status == acquire_status::granted)
                    return true;
                failed = K;
                failure = {d.status, g.time_of(d.ready), d.metric};
                return false;
            }
        });
        if (ok) {
            out.m_status = acquire_status::granted;
            out.m_ready_at = at;
            return out;
        }
        refuse_taken(out, c, at, who, failed, failure, prior, tau);
        return out;
    }

    /// Pays forward across every level: takes `c` now, placed at the one time from which
    /// every level has its part (`ready_at()`), and the in-flight slots at once. Refused,
    /// nothing taken, when that time is more than `max_wait` away, when a level has no free
    /// slot (`slot_ticket()` says what to wait on; no time is known), when regular traffic
    /// finds a queue ahead, or when a part exceeds a level's burst (`exceeds_capacity`).
    [[nodiscard]] reservation_type reserve(const cost_type& c, duration max_wait = duration::max(),
                                           traffic_class who = traffic_class::priority) noexcept {
        return reserve_at(c, now(), max_wait, who);
    }
    /// The same at a caller-supplied time `at` instead of now.
    [[nodiscard]] reservation_type
    reserve_at(const cost_type& c, time_point at, duration max_wait = duration::max(),
               traffic_class who = traffic_class::priority) noexcept {
        reservation_type out(*this, c, slots_for(c));
        if (max_wait < duration::zero())
            max_wait = duration::zero(); // as a governor reads it: no wait at all
        // Too large for a level: refused at once, before any wait is considered.
        if (refuse_if_too_large(out, c, at, who))
            return out;
        // Read every level without taking anything, at `probe` (first now): regular traffic
        // behind a queue, the combined ready time (the latest any level needs), and the
        // lead — a level placed at the ready time that alone would be ready earlier holds
        // its tokens back until then from every other path through it (an account from its
        // other models), so not beyond a full bucket's reach. Either refuses now, with the
        // time to ask again; the reading is repeated at that time, so that asking then
        // succeeds if nothing else changes (both times only grow; a few passes settle).
        std::array<std::uint64_t, L> tau{};
        std::array<std::size_t, L> bottleneck{};
        std::array<time_point, L> own{}; // when each level alone would be ready
        time_point ready = at, probe = at;
        std::size_t slowest = L, named = L;
        for (int pass = 0; pass < 8; ++pass) {
            ready = probe;
            slowest = L;
            time_point admit = probe;
            std::size_t blocker = L;
            each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (access<K>::has_rates) {
                    auto& g = rates<K>();
                    tau[K] = g.tick_of(probe);
                    const auto p = g.plan(project<K>(c), tau[K], who);
                    bottleneck[K] = p.metric;
                    own[K] = g.time_of(p.ready);
                    if (p.status != acquire_status::granted) { // regular traffic behind a queue
                        if (blocker == L || own[K] > admit) {
                            admit = own[K];
                            blocker = K;
                        }
                    } else if (own[K] > ready) {
                        ready = own[K];
                        slowest = K;
                    }
                }
            });
            if (blocker < L) { // ask again when every queue admits it
                probe = std::max(admit, probe + duration(1));
                named = blocker;
                continue;
            }
            if (pass == 0 && later_than(ready, at, max_wait)) {
                set_refusal_at(out, slowest, bottleneck, ready, c, who);
                return out;
            }
            time_point ask = probe;
            each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (access<K>::has_rates) {
                    if (own[K] < ready) {
                        auto& g = rates<K>();
                        const std::uint64_t target = g.tick_of(ready);
                        const std::uint64_t reach = g.lead(project<K>(c), who);
                        if (target - tau[K] > reach)
                            ask = std::max(ask, g.time_of(target - reach));
                    }
                }
            });
            if (ask == probe)
                break; // fits at `probe`
            probe = ask;
            named = slowest;
        }
        if (probe > at) {
            set_refusal_at(out, named, bottleneck, probe, c, who);
            return out;
        }
        if (!take_slots(out, who))
            return out;
        // Place every level at the ready time. A level that another caller moved later
        // meanwhile stays where it is, and the levels placed before it are placed again.
        std::array<std::optional<time_point>, L> placed{};
        for (;;) {
            bool moved = false;
            const bool placed_ok = all([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (!access<K>::has_rates) {
                    return true;
                } else {
                    if (placed[K] == ready)
                        return true;
                    auto& g = rates<K>();
                    auto& taken = std::get<K>(out.m_taken);
                    const auto proj = project<K>(c);
                    if (placed[K])
                        g.give_back(proj, taken);
                    taken = {};
                    const auto r = g.place(proj, tau[K], g.ticks_of(max_wait), g.tick_of(ready),
                                           bottleneck[K], who, taken);
                    if (r.status != acquire_status::granted) {
                        placed[K].reset();
                        give_back_placed(out, c, placed);
                        out.release_slots();
                        set_refusal<K>(out, r.status, g.time_of(r.ready), r.metric, c, who);
                        return false;
                    }
                    const time_point t = r.ready == tau[K] ? at : g.time_of(r.ready);
                    placed[K] = t;
                    if (t > ready) {
                        ready = t;
                        moved = true;
                        return false;
                    }
                    return true;
                }
            });
            if (!placed_ok && !moved)
                return out;
            if (!moved) {
                out.m_status = acquire_status::granted;
                out.m_ready_at = ready;
                return out;
            }
        }
    }

    // --- settling, as a governor's reservation needs -----------------------------------------

    /// Takes `c` unconditionally at every level (usage that already happened).
    void charge(const cost_type& c) noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                rates<K>().charge(project<K>(c));
        });
    }
    /// Gives `c` back at every level without receipts (see `governor::refund`).
    void refund(const cost_type& c) noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                rates<K>().refund(project<K>(c));
        });
    }

    // --- observation, for the client loop --------------------------------------------------------

    /// For each metric, what the deepest level that limits it has available now (free slots
    /// for `metric::in_flight`): the level whose limits a provider's response reports.
    [[nodiscard]] std::array<std::uint64_t, metrics_type::size> availability() const noexcept {
        std::array<std::uint64_t, metrics_type::size> out{};
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates) {
                const auto a = rates<K>().availability();
                for (std::size_t i = 0; i < a.size(); ++i)
                    out[rate_map<K>[i]] = a[i]; // deeper levels overwrite
            }
            if constexpr (access<K>::has_cap)
                out[in_flight_index] = at<K>().slots.available();
        });
        return out;
    }
    /// Makes metric i (in `metrics_type`) hold at most `n` now at the deepest level that
    /// limits its rate (e.g. what the server reports remaining). Ignored for `in_flight`.
    void cap_available(std::size_t i, std::uint64_t n) noexcept {
        if (i >= metrics_type::size)
            return;
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                if (feedback_level[i] == K)
                    rates<K>().cap_available(local_index<K>(i), n);
        });
    }

    /// Applies a response's feedback to the levels, as the client loop does for one
    /// governor. Each metric's report (limit, remaining) goes to the deepest level that
    /// limits it — the provider reports a model's limits on the model's responses — to that
    /// level's adaptive limits when the metric is bound there, else its remaining count caps
    /// the bucket. A 429 is the deepest level's (the model or variant the request
    /// addressed): its bound metrics decrease and the metrics the request used there are
    /// emptied; the levels outside it (an account, shared with other models) are not slowed
    /// by one model's 429. `given_back` is what settling the reservation gave back (per
    /// metric). `call()` calls it after each response.
    void learn(const feedback::response_feedback<metrics_type::size>& fb, time_point sent_at,
               const std::array<std::uint64_t, metrics_type::size>& given_back,
               const cost_type& estimate) noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates) {
                auto& g = rates<K>();
                constexpr std::size_t n = gov_t<K>::metrics_type::size;
                bool bounded[n] = {};
                if constexpr (access<K>::has_adaptive) {
                    feedback::response_feedback<n> local{
                        K == deepest_rates || fb.kind != feedback::outcome::over_limit
                            ? fb.kind
                            : feedback::outcome::retryable, // a 429 is the deepest level's
                        {},
                        fb.retry_after,
                        fb.should_retry};
                    std::array<std::uint64_t, n> back{};
                    for (std::size_t i = 0; i < n; ++i) {
                        bounded[i] = at<K>().adaptive.bounded(i);
                        if (feedback_level[rate_map<K>[i]] == K) {
                            local.metrics[i] = fb.metrics[rate_map<K>[i]];
                            back[i] = given_back[rate_map<K>[i]];
                        }
                    }
                    at<K>().adaptive.on_response(local, sent_at, back);
                }
                for (std::size_t i = 0; i < n; ++i) {
                    const std::size_t u = rate_map<K>[i];
                    if (bounded[i] || feedback_level[u] != K)
                        continue;
                    if (fb.metrics[u].remaining)
                        g.cap_available(i, *fb.metrics[u].remaining);
                    if (K == deepest_rates && fb.kind == feedback::outcome::over_limit &&
                        estimate[u] != 0)
                        g.cap_available(i, 0);
                }
            }
        });
    }

    /// The clock of the levels.
    [[nodiscard]] const clock_type& clock() const noexcept { return rates<0>().clock(); }
    /// Its time now.
    [[nodiscard]] time_point now() const noexcept { return rates<0>().now(); }

private:
    template <class Path>
    friend class admission;
    template <class Path>
    friend class path_reservation;
    template <class Path>
    friend class path_result;

    template <class G>
    struct prior_of {
        using type = std::array<std::uint64_t, 0>;
    };
    template <class M, class C, class D, class S>
    struct prior_of<governor<M, C, D, S>> {
        using type = std::array<std::uint64_t, M::size>;
    };
    template <class G>
    using prior_t = typename prior_of<G>::type;
    template <class G>
    struct receipts_of {
        using type = std::array<receipt, 0>;
    };
    template <class M, class C, class D, class S>
    struct receipts_of<governor<M, C, D, S>> {
        using type = typename governor<M, C, D, S>::receipts;
    };
    template <class Seq>
    struct per_level;
    template <std::size_t... K>
    struct per_level<std::index_sequence<K...>> {
        using prior = std::tuple<prior_t<gov_t<K>>...>;
        using receipts = std::tuple<typename receipts_of<gov_t<K>>::type...>;
    };
    /// The words each level's grants replaced (a `try_acquire`'s rollback).
    using prior_tuple = typename per_level<std::make_index_sequence<L>>::prior;
    /// What each level's grants took (a reservation's).
    using receipts_tuple = typename per_level<std::make_index_sequence<L>>::receipts;
    /// A level's decision as a time.
    struct level_step {
        acquire_status status;
        time_point ready;
        std::size_t metric;
    };

    static constexpr std::size_t in_flight_index =
        metrics_type::template index_of<metric::in_flight>;
    /// The deepest level with rate metrics (L: none).
    static constexpr std::size_t deepest_rates = [] {
        std::size_t out = L;
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            ((out = access<K>::has_rates ? K : out), ...);
        }
        (std::make_index_sequence<L>{});
        return out;
    }();

    /// Where level K's governor's i-th metric sits in `metrics_type`.
    template <std::size_t K>
    static constexpr auto rate_map = [] {
        if constexpr (access<K>::has_rates)
            return detail::index_map<typename gov_t<K>::metrics_type>::template in<metrics_type>;
        else
            return std::array<std::size_t, 0>{};
    }();
    /// For each metric of `metrics_type`, the deepest level that limits its rate (L: none).
    static constexpr std::array<std::size_t, metrics_type::size> feedback_level = [] {
        std::array<std::size_t, metrics_type::size> out{};
        out.fill(L);
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            (([&] {
                 for (const std::size_t u : rate_map<K>)
                     out[u] = K;
             }()),
             ...);
        }
        (std::make_index_sequence<L>{});
        return out;
    }();
    /// The index in level K's governor of metric u of `metrics_type` (u must be there).
    template <std::size_t K>
    [[nodiscard]] static constexpr std::size_t local_index(std::size_t u) noexcept {
        for (std::size_t i = 0; i < rate_map<K>.size(); ++i)
            if (rate_map<K>[i] == u)
                return i;
        return rate_map<K>.size();
    }

    template <class F>
    static RATEGOV_ALWAYS_INLINE bool all(F&& f) {
        return [&]<std::size_t... K>(std::index_sequence<K...>) {
            return (f(std::integral_constant<std::size_t, K>{}) && ...);
        }
        (std::make_index_sequence<L>{});
    }
    template <class F>
    static void each(F&& f) {
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            (f(std::integral_constant<std::size_t, K>{}), ...);
        }
        (std::make_index_sequence<L>{});
    }

    template <std::size_t K>
    [[nodiscard]] RATEGOV_ALWAYS_INLINE gov_t<K>& rates() const noexcept {
        return access<K>::rates(*std::get<K>(m_levels));
    }
    /// Level K's part of `c`.
    template <std::size_t K>
    [[nodiscard]] RATEGOV_ALWAYS_INLINE static typename gov_t<K>::cost_type
    project(const cost_type& c) noexcept {
        typename gov_t<K>::cost_type out;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((out[I] = c[rate_map<K>[I]]), ...);
        }
        (std::make_index_sequence<rate_map<K>.size()>{});
        return out;
    }
    /// The slots a request holds at a capped level: its `in_flight` amount, at least 1.
    [[nodiscard]] static std::uint64_t slots_for(const cost_type& c) noexcept {
        if constexpr (metrics_type::template contains<metric::in_flight>)
            return c[in_flight_index] == 0 ? 1 : c[in_flight_index];
        else
            return 1;
    }

    /// Takes the slots of every capped level into `out`, or none (a refusal set in `out`).
    template <class Result>
    [[nodiscard]] bool take_slots(Result& out, traffic_class who) const noexcept {
        return all([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (!access<K>::has_cap) {
                return true;
            } else {
                in_flight_slots& s = at<K>().slots;
                const std::uint32_t seen = s.generation();
                const acquire_status st = s.try_take(out.m_slots, who);
                if (st == acquire_status::granted) {
                    out.m_held[K] = true;
                    return true;
                }
                out.release_slots();
                out.m_status = st;
                out.m_ready_at = time_point::max();
                out.m_refusal = {K, in_flight_index, out.m_slots, s.allowed(who),
                                 st == acquire_status::denied ? slot_ticket{&s, seen}
                                                              : slot_ticket{}};
                return false;
            }
        });
    }

    /// Records in `out` a refusal by level K's governor (metric `m` in its own order).
    template <std::size_t K, class Result>
    void set_refusal(Result& out, acquire_status st, time_point ready, std::size_t m,
                     const cost_type& c, traffic_class who) const noexcept {
        out.m_status = st;
        out.m_ready_at = st == acquire_status::exceeds_capacity ? time_point::max() : ready;
        const std::size_t local = m < rate_map<K>.size() ? m : 0;
        const std::size_t u = rate_map<K>[local];
        out.m_refusal = {K, u, c[u], rates<K>().allowance(local, who), {}};
    }

    /// A request too large for a level (a part beyond its burst, or more slots than its cap,
    /// less the priority headroom for regular traffic) can never be admitted: records that
    /// refusal in `out`, giving back any slots it holds, and returns true. Reads only.
    template <class Result>
    bool refuse_if_too_large(Result& out, const cost_type& c, time_point when,
                             traffic_class who) const noexcept {
        return !all([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_cap) {
                const in_flight_slots& s = at<K>().slots;
                if (out.m_slots > s.allowed(who)) {
                    out.release_slots();
                    out.m_status = acquire_status::exceeds_capacity;
                    out.m_ready_at = time_point::max();
                    out.m_refusal = {K, in_flight_index, out.m_slots, s.allowed(who), {}};
                    return false;
                }
            }
            if constexpr (access<K>::has_rates) {
                auto& g = rates<K>();
                const auto e = g.earliest(project<K>(c), g.tick_of(when), who);
                if (e.status == acquire_status::exceeds_capacity) {
                    out.release_slots();
                    set_refusal<K>(out, e.status, time_point::max(), e.metric, c, who);
                    return false;
                }
            }
            return true;
        });
    }

    /// Whether `ready` is more than `wait` (≥ 0) after `at`, without overflow.
    [[nodiscard]] static bool later_than(time_point ready, time_point at, duration wait) noexcept {
        if (ready <= at)
            return false;
        if constexpr (std::is_floating_point_v<typename duration::rep>)
            return ready - at > wait; // no overflow to fear
        const auto diff = static_cast<std::uint64_t>(ready.time_since_epoch().count()) -
                          static_cast<std::uint64_t>(at.time_since_epoch().count());
        return diff > static_cast<std::uint64_t>(wait.count());
    }

    /// The same for the level k found at run time.
    template <class Result>
    void set_refusal_at(Result& out, std::size_t k, const std::array<std::size_t, L>& metric,
                        time_point ready, const cost_type& c, traffic_class who) const noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                if (k == K)
                    set_refusal<K>(out, acquire_status::denied, ready, metric[K], c, who);
        });
    }

    /// After level `failed` refused a take: gives back what the levels before it took, the
    /// slots, and records the refusal — for a denial, with the earliest time every level
    /// could grant.
    template <class Prior>
    RATEGOV_COLD void refuse_taken(admission_type& out, const cost_type& c, time_point at,
                                   traffic_class who, std::size_t failed, level_step failure,
                                   const Prior& prior,
                                   const std::array<std::uint64_t, L>& tau) const noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                if (K < failed)
                    rates<K>().roll_back(project<K>(c), std::get<K>(prior),
                                         gov_t<K>::metrics_type::size, tau[K]);
        });
        out.release_slots();
        if (failure.status == acquire_status::denied && refuse_if_too_large(out, c, at, who))
            return; // another level could never grant it: say so, not when to ask again
        time_point ready = failure.ready;
        if (failure.status == acquire_status::denied) {
            each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (access<K>::has_rates) {
                    auto& g = rates<K>();
                    const auto e = g.earliest(project<K>(c), g.tick_of(at), who);
                    if (e.status == acquire_status::denied && g.time_of(e.ready) > ready)
                        ready = g.time_of(e.ready);
                }
            });
        }
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates)
                if (failed == K)
                    set_refusal<K>(out, failure.status, ready, failure.metric, c, who);
        });
    }

    /// Gives back every level placed so far (a reservation being refused).
    void give_back_placed(reservation_type& out, const cost_type& c,
                          const std::array<std::optional<time_point>, L>& placed) const noexcept {
        each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (access<K>::has_rates) {
                if (placed[K])
                    rates<K>().give_back(project<K>(c), std::get<K>(out.m_taken));
                std::get<K>(out.m_taken) = {};
            }
        });
    }

    [[nodiscard]] static std::string_view default_name(std::size_t k) noexcept {
        if (L == 1)
            return "account";
        constexpr std::string_view names[] = {"account", "model", "variant"};
        return L <= 3 ? names[k] : std::string_view("level");
    }

    std::tuple<Levels*...> m_levels;
    std::array<std::string_view, L> m_names{};
};

/// A path through `levels...`, outermost first.
template <class... Levels>
path(Levels&...) -> path<Levels...>;

/// What a path's `try_acquire` and `reserve` have in common: the outcome, the refusal that
/// explains it, and the in-flight slots held (given back when it is destroyed, at the
/// latest). Move-only.
template <class Path>
class path_result {
public:
    /// A time point of the path's clock.
    using time_point = typename Path::time_point;

    /// Granted, denied or exceeds_capacity.
    [[nodiscard]] acquire_status status() const noexcept { return m_status; }
    /// Whether granted.
    [[nodiscard]] explicit operator bool() const noexcept {
        return m_status == acquire_status::granted;
    }
    /// Granted: when the tokens may be used. Denied: the earliest time every level could
    /// grant — `time_point::max()` when a level has no free slot (see `slot()`).
    /// Exceeds capacity: `time_point::max()`.
    [[nodiscard]] time_point ready_at() const noexcept { return m_ready_at; }
    /// The level that refused (outermost 0), or the number of levels when granted.
    [[nodiscard]] std::size_t level() const noexcept { return m_refusal.level; }
    /// The metric that refused (index in the path's `metrics_type`), or its size.
    [[nodiscard]] std::size_t metric() const noexcept { return m_refusal.metric; }
    /// The refusal in numbers (see `path_refusal`).
    [[nodiscard]] const path_refusal& refusal() const noexcept { return m_refusal; }
    /// For a request refused for want of a slot: the semaphore and generation to wait on
    /// (`slot().wait(clock, until)`, or a `release_listener` on it); else empty.
    [[nodiscard]] slot_ticket slot() const noexcept { return m_refusal.ticket; }
    /// The in-flight slots asked for at each capped level.
    [[nodiscard]] std::uint64_t slots() const noexcept { return m_slots; }

    /// The outcome in words, e.g. "a request of 1.2M prompt tokens exceeds the model's burst
    /// of 900k", "all 64 of the model's slots for requests in flight are in use".
    [[nodiscard]] std::string describe() const {
        if (m_status == acquire_status::granted)
            return "granted";
        const path_refusal& r = m_refusal;
        if (r.level >= Path::levels || r.metric >= names.size())
            return "refused"; // (no level named: not made by a path)
        const std::string lvl = "the " + std::string(m_path.name(r.level)) + "'s ";
        const std::string what(names[r.metric]);
        const bool slot = r.metric == Path::in_flight_index;
        if (m_status == acquire_status::exceeds_capacity)
            return "a request of " + detail::amount_text(r.amount) + " " + what + " exceeds " +
                   lvl + (slot ? "cap of " : "burst of ") + detail::amount_text(r.limit) +
                   (slot ? ": it can never be admitted; lower its in_flight amount"
                         : ": it can never be admitted; split it into parts of at most the "
                           "burst, or raise the burst (quota::with_burst)");
        if (slot)
            return "all " + detail::amount_text(r.limit) + " of " + lvl + "slots for " + what +
                   " are in use: ask again when one is released";
        return "denied by " + lvl + what + ": ready at ready_at()";
    }

protected:
    /// Nothing held yet.
    path_result(const Path& p, std::uint64_t slots) noexcept
        : m_path(p)
        , m_slots(slots) {}
    /// Takes over what `o` holds; `o` holds nothing.
    path_result(path_result&& o) noexcept
        : m_path(o.m_path)
        , m_slots(o.m_slots)
        , m_held(std::exchange(o.m_held, {}))
        , m_status(o.m_status)
        , m_ready_at(o.m_ready_at)
        , m_refusal(o.m_refusal) {}
    /// Gives back what this holds, then takes over what `o` holds.
    path_result& operator=(path_result&& o) noexcept {
        if (this != &o) {
            release_slots();
            m_path = o.m_path;
            m_slots = o.m_slots;
            m_held = std::exchange(o.m_held, {});
            m_status = o.m_status;
            m_ready_at = o.m_ready_at;
            m_refusal = o.m_refusal;
        }
        return *this;
    }
    path_result(const path_result&) = delete;
    path_result& operator=(const path_result&) = delete;
    ~path_result() { release_slots(); }

    /// Gives back the slots held (exactly once: each level's flag is cleared as it goes).
    void release_slots() noexcept {
        Path::each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
            if constexpr (Path::template access<K>::has_cap)
                if (std::exchange(m_held[K], false))
                    m_path.template at<K>().slots.release(m_slots);
        });
    }

    friend Path; ///< the path fills the outcome in

    /// The names of the path's metrics, for messages.
    static constexpr auto names = detail::names_of<typename Path::metrics_type>::value;

    Path m_path;                                      ///< the levels (references)
    std::uint64_t m_slots;                            ///< slots per capped level
    std::array<bool, Path::levels> m_held{};          ///< whether level K's slots are held
    acquire_status m_status = acquire_status::denied; ///< the outcome
    time_point m_ready_at{};                          ///< see ready_at()
    path_refusal m_refusal{Path::levels, Path::metrics_type::size, 0, 0, {}}; ///< see refusal()
};

/// What a path's `try_acquire` returns: the outcome, and while granted, the in-flight slots
/// of the capped levels — held until `release()` or destruction. (The tokens were taken for
/// good, as a governor's `try_acquire` takes them; use `reserve` to reconcile the usage.)
///
/// \code
/// if (auto a = route.try_acquire(cost)) {
///     send();          // the slot is held while `a` lives
/// } else if (a.status() == rategov::acquire_status::exceeds_capacity) {
///     log(a.describe());
/// }
/// \endcode
template <class Path>
class admission : public path_result<Path> {
public:
    /// Takes over `o`'s slots.
    admission(admission&&) noexcept = default;
    /// Gives back this one's slots, then takes over `o`'s.
    admission& operator=(admission&&) noexcept = default;
    ~admission() = default;

    /// Gives the slots back now (the request is complete). Later calls do nothing.
    void release() noexcept { this->release_slots(); }

private:
    friend Path;
    admission(const Path& p, std::uint64_t slots) noexcept
        : path_result<Path>(p, slots) {}
};

/// An estimated cost taken from every level of a path, to be settled with the real usage:
/// `commit(actual)` reconciles every level (surplus given back exactly, deficit charged)
/// and gives the in-flight slots back; `cancel()` gives everything back. Each settles at
/// most once. Dropped unsettled, the drop policy settles the tokens, and the slots are
/// given back whatever the policy. A refused reservation holds nothing: `cancel()` does
/// nothing, `commit(actual)` charges `actual` at every level. Move-only.
///
/// \code
/// auto r = route.reserve(estimate, std::chrono::seconds(5));
/// if (r.slot()) r.slot().wait(route.clock(), deadline);  // no free slot: wait, ask again
/// r.wait();                                               // until every level is ready
/// r.commit(usage);                                        // every level, and the slot
/// \endcode
template <class Path>
class path_reservation : public path_result<Path> {
    using base = path_result<Path>;

public:
    /// The path's cost type.
    using cost_type = typename Path::cost_type;
    /// A time point of the path's clock.
    using time_point = typename Path::time_point;

    /// Takes over what `o` holds; `o` holds nothing.
    path_reservation(path_reservation&& o) noexcept
        : base(std::move(o))
        , m_estimate(o.m_estimate)
        , m_taken(o.m_taken)
        , m_live(std::exchange(o.m_live, false)) {}
    /// Settles what this holds as a drop would, then takes over what `o` holds.
    path_reservation& operator=(path_reservation&& o) noexcept {
        if (this != &o) {
            settle_on_drop();
            base::operator=(std::move(o));
            m_estimate = o.m_estimate;
            m_taken = o.m_taken;
            m_live = std::exchange(o.m_live, false);
        }
        return *this;
    }
    path_reservation(const path_reservation&) = delete;
    path_reservation& operator=(const path_reservation&) = delete;
    ~path_reservation() { settle_on_drop(); }

    /// The estimated cost this reservation holds.
    [[nodiscard]] const cost_type& estimate() const noexcept { return m_estimate; }
    /// Whether it still holds tokens and slots to settle.
    [[nodiscard]] bool pending() const noexcept {
        return m_live && this->m_status == acquire_status::granted;
    }
    /// Blocks until `ready_at()` through the clock's wait policy. Returns at once unless
    /// granted.
    void wait() const {
        if (pending())
            sleep_until(this->m_path.clock(), this->m_ready_at);
    }

    /// Settles with the real usage at every level, and gives the slots back.
    void commit(const cost_type& actual) noexcept {
        if (!std::exchange(m_live, false))
            return;
        if (this->m_status == acquire_status::granted) {
            Path::each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (Path::template access<K>::has_rates)
                    this->m_path.template rates<K>().reconcile(
                        Path::template project<K>(m_estimate), Path::template project<K>(actual),
                        std::get<K>(m_taken));
            });
        } else {
            this->m_path.charge(actual);
        }
        this->release_slots();
    }
    /// Gives the whole estimate back at every level, and the slots.
    void cancel() noexcept {
        if (!std::exchange(m_live, false))
            return;
        if (this->m_status == acquire_status::granted)
            Path::each([&]<std::size_t K>(std::integral_constant<std::size_t, K>) {
                if constexpr (Path::template access<K>::has_rates)
                    this->m_path.template rates<K>().give_back(
                        Path::template project<K>(m_estimate), std::get<K>(m_taken));
            });
        this->release_slots();
    }

private:
    friend Path;
    path_reservation(const Path& p, const cost_type& estimate, std::uint64_t slots) noexcept
        : base(p, slots)
        , m_estimate(estimate) {}

    void settle_on_drop() noexcept {
        if (pending())
            Path::drop_policy::on_drop(*this);
        m_live = false;
        this->release_slots();
    }

    cost_type m_estimate;
    typename Path::receipts_tuple m_taken{};
    bool m_live = true;
};

// --- levels kept per key ---------------------------------------------------------------------

/// The keys of a request's levels, made once from (account, model, variant) and reused: the
/// key at depth 0 is (account), at depth 1 (account, model), at depth 2 (account, model,
/// variant). Building one hashes each key once; a lookup with it then allocates nothing.
/// \code
/// const rategov::nested_key key("acct-1", "llama-v3p1-8b", "turbo"); // once, then reused
/// auto h = limits.get(key);                                          // three lookups
/// \endcode
class nested_key {
public:
    /// The keys of `variant` (empty: the base deployment) of `model` on `account`.
    explicit nested_key(const std::string& account, const std::string& model = {},
                        const std::string& variant = {})
        : m_keys{model_key(account, {}, {}), model_key(account, model, {}),
                 model_key(account, model, variant)} {}
    /// The keys of `k`'s account, model and variant.
    explicit nested_key(const model_key& k)
        : nested_key(k.account(), k.model(), k.variant()) {}

    /// The key of the level at `depth` (0: the account's; 2 and beyond: the variant's).
    [[nodiscard]] const model_key& at(std::size_t depth) const noexcept {
        return m_keys[depth < 3 ? depth : 2];
    }

private:
    std::array<model_key, 3> m_keys;
};

namespace detail {
/// The default `on_create` of `nested_limits`: nothing to finish.
struct no_level_setup {
    template <class Level>
    void operator()(const model_key&, Level&) const noexcept {}
};
} // namespace detail

/// Levels of limits kept per key and created on first use — an account's, its models',
/// their variants' — as one `keyed` registry per depth (one to three). `get(key)` returns a
/// handle that holds every level of the key's path (none is evicted while it lives) and
/// gives the `path` through them; `call(limits, key, ...)` runs a call on it.
///
/// An evicted level starts afresh (full) when its key comes back: keep `idle_after` at
/// least as long as the longest period of its limits, so that only full buckets go.
///
/// \code
/// using account_limits = rategov::level<rategov::metrics<rategov::metric::requests>>;
/// using model_limits = rategov::level<rategov::metrics<
///     rategov::metric::total_prompt, rategov::metric::uncached_prompt,
///     rategov::metric::generated, rategov::metric::in_flight>>;
/// rategov::nested_limits<account_limits, model_limits> limits(
///     rategov::steady_clock{}, {.max_keys = 1024},
///     std::tuple{[](const rategov::model_key&) {
///                    return account_limits(rategov::per_minute(6'000));
///                },
///                [](const rategov::model_key&) {
///                    return model_limits(rategov::per_minute(3'600'000),
///                                        rategov::per_minute(900'000),
///                                        rategov::per_minute(36'000), rategov::at_most(64));
///                }});
/// const rategov::nested_key key("acct-1", "llama-v3p1-8b");
/// auto r = rategov::call(limits, key, request, estimate, transport);
/// \endcode
template <class... Levels>
class nested_limits {
    static_assert(sizeof...(Levels) >= 1 && sizeof...(Levels) <= 3,
                  "rategov: nested_limits keys one to three levels (account, model, variant).");
    static constexpr std::size_t L = sizeof...(Levels);

public:
    /// The path through one key's levels.
    using path_type = path<Levels...>;
    /// The clock of the levels, and of the registries' idleness.
    using clock_type = typename path_type::clock_type;
    /// The options of each registry (`max_keys` is per depth).
    using options_type = keyed_options<clock_type>;
    /// The registry of depth K.
    template <std::size_t K>
    using registry_type =
        keyed<model_key, std::tuple_element_t<K, std::tuple<Levels...>>, clock_type>;

    /// Holds the levels of one key (move-only): a `path` through them while it lives.
    class handle {
    public:
        /// Whether every level was found or made.
        [[nodiscard]] explicit operator bool() const noexcept { return m_path.has_value(); }
        /// `full` if a registry could make no entry (then it holds nothing); else `created`
        /// if a level was created; else `found` (`absent` from `find`: a level is missing).
        [[nodiscard]] keyed_status status() const noexcept { return m_status; }
        /// The path through the levels held (the handle must hold them).
        [[nodiscard]] path_type& path() noexcept { return *m_path; }
        /// The path through the levels held (the handle must hold them).
        [[nodiscard]] path_type* operator->() noexcept { return &*m_path; }

    private:
        friend nested_limits;
        std::tuple<typename keyed<model_key, Levels, clock_type>::handle...> m_held{};
        std::optional<path_type> m_path{};
        keyed_status m_status = keyed_status::found;
    };

    /// One factory per level (in a tuple, outermost first): `std::get<K>(factories)(key)`
    /// returns the limits of a new key at depth K (`key` is the prefix of that depth).
    /// `on_create(key, level)`, if given, finishes each new level in place — e.g. binds its
    /// adaptive limits; it is called with the level of each depth (a generic lambda).
    /// \throws config_error for bad `options` (see `keyed`).
    template <class... F, class OnCreate = detail::no_level_setup>
    requires(sizeof...(F) == L) nested_limits(const clock_type& clock, options_type options,
                                              std::tuple<F...> factories, OnCreate on_create = {})
        : m_registries(make_registries(clock, options, factories, on_create,
                                       std::make_index_sequence<L>{})) {}
    nested_limits(const nested_limits&) = delete;
    nested_limits& operator=(const nested_limits&) = delete;

    /// The levels of `key`, each created with its factory if absent. Lock-free and
    /// allocation-free when every level exists. Empty (`status() == full`) when a registry
    /// is full. Levels are looked up from the deepest out: a full registry stops the lookup
    /// before anything outside it is created (levels inside it, created by this lookup, stay,
    /// full and unused, until evicted). A full registry with `when_full::evict_idlest`
    /// evicts its idlest level without holders, whose bucket starts afresh if its key
    /// returns: size `max_keys` for the keys in use.
    /// \throws whatever a factory throws (the levels created before it stay).
    [[nodiscard]] handle get(const nested_key& key) { return lookup<true>(key); }
    /// The levels of `key` if every one exists; never creates (`status() == absent`).
    [[nodiscard]] handle find(const nested_key& key) { return lookup<false>(key); }

    /// The registry of depth K (0: accounts).
    template <std::size_t K>
    [[nodiscard]] registry_type<K>& registry() noexcept {
        return *std::get<K>(m_registries);
    }
    /// Evicts the levels idle for `idle_after` at every depth (see `keyed::evict_idle`);
    /// returns how many.
    std::size_t evict_idle(typename clock_type::duration idle_after) {
        std::size_t n = 0;
        std::apply([&](auto&... r) { ((n += r->evict_idle(idle_after)), ...); }, m_registries);
        return n;
    }
    /// The same with each registry's `options.idle_after`.
    std::size_t evict_idle() {
        std::size_t n = 0;
        std::apply([&](auto&... r) { ((n += r->evict_idle()), ...); }, m_registries);
        return n;
    }

private:
    template <class Factories, class OnCreate, std::size_t... K>
    static auto make_registries(const clock_type& clock, options_type options, Factories& factories,
                                const OnCreate& on_create, std::index_sequence<K...>) {
        return std::tuple{std::make_unique<registry_type<K>>(
            clock, options, std::move(std::get<K>(factories)),
            [on_create](const model_key& k, std::tuple_element_t<K, std::tuple<Levels...>>& v) {
                on_create(k, v);
            })...};
    }

    /// Looks the levels up from the deepest out, so that a registry too full for a new key
    /// stops the lookup before the levels outside it are made (an outer level always has
    /// more keys under it than fit).
    template <bool Create>
    [[nodiscard]] handle lookup(const nested_key& key) {
        handle h;
        const bool ok = [&]<std::size_t... I>(std::index_sequence<I...>) {
            return ([&] {
                constexpr std::size_t K = L - 1 - I;
                auto kh = Create ? registry<K>().get(key.at(K)) : registry<K>().find(key.at(K));
                if (!kh) {
                    h.m_status = kh.status();
                    return false;
                }
                if (kh.status() == keyed_status::created)
                    h.m_status = keyed_status::created;
                std::get<K>(h.m_held) = std::move(kh);
                return true;
            }() && ...);
        }
        (std::make_index_sequence<L>{});
        if (!ok) {
            h.m_held = {};
            return h;
        }
        std::apply([&](auto&... held) { h.m_path.emplace(*held...); }, h.m_held);
        return h;
    }

    std::tuple<std::unique_ptr<keyed<model_key, Levels, clock_type>>...> m_registries;
};

/// `call()` through nested levels kept per key: takes (creating if absent) every level of
/// `key` for the whole call and runs it on the path through them. Each level's adaptive
/// limits learn from the responses (see `path::learn`). When a registry is full, returns
/// `call_status::unavailable` without sending.
/// \code
/// const rategov::nested_key key("acct-1", "llama-v3p1-8b", "turbo");  // made once
/// auto r = rategov::call(limits, key, request, estimate, transport, options);
/// \endcode
template <class... Lv, class Request, class Transport, class Options = call_options<path<Lv...>>>
auto call(nested_limits<Lv...>& limits, const nested_key& key, const Request& request,
          const typename path<Lv...>::cost_type& estimate, Transport&& transport,
          Options options = {}) {
    auto h = limits.get(key);
    using result_t = decltype(call(h.path(), request, estimate, std::forward<Transport>(transport),
                                   std::move(options)));
    if (!h) {
        result_t out;
        out.status = call_status::unavailable;
        out.metric = path<Lv...>::metrics_type::size;
        return out;
    }
    return call(h.path(), request, estimate, std::forward<Transport>(transport),
                std::move(options));
}

RATEGOV_NAMESPACE_END
