/// \file
/// The client loop: wait for the governor, send through the user's transport, classify the
/// outcome, settle the real usage, learn from the response, back off and retry — or give
/// up, for a reason the result names.
///
/// Two forms share one state machine (`call_machine`):
/// - `call(gov, request, estimate, transport, options)` blocks, waiting through the clock's
///   wait policy (virtual time under `testing::manual_clock`);
/// - `call_machine` itself never waits: `next()` says *wait until t*, *send now* or *done*,
///   and an event loop or coroutine does the waiting and the sending.
///
/// \code
/// auto result = rategov::call(gov, request, estimate, transport, options);
/// if (!result) log(result.status, result.attempts);
/// \endcode
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/backoff/backoff.hpp>
#include <rategov/backoff/retry_budget.hpp>
#include <rategov/client/transport.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/feedback/parse.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/in_flight.hpp>

RATEGOV_NAMESPACE_BEGIN

/// A feedback profile for a governor over `Metrics`: reads a status, headers, the wall time
/// and an error code into a `feedback::response_feedback`.
template <class P, class Metrics>
concept feedback_profile = requires(const P& p, int status, const feedback::header_list& h,
                                    feedback::wall_time now, std::string_view code) {
    { p.read(status, h, now, code) } -> std::same_as<feedback::response_feedback<Metrics::size>>;
};

/// How to settle a reservation when the response does not say what was used.
enum class settle : std::uint8_t {
    refund, ///< the provider did not count it: give the estimate back
    keep,   ///< it may have been counted: keep the estimate as the usage
};

/// How a call ended.
enum class call_status : std::uint8_t {
    success,           ///< a 2xx (or what the profile classified as success)
    rejected,          ///< a response never retried: fatal, quota exhausted, or the server
                       ///< said `should_retry: false`
    retries_exhausted, ///< `max_attempts` attempts failed
    budget_exhausted,  ///< a retry was due but the retry budget had none left
    deadline,          ///< the deadline would pass before tokens or the next retry
    cancelled,         ///< the stop token was triggered, or `cancel()` called
    exceeds_capacity,  ///< a part of the estimate exceeds what the call's traffic class may use
                       ///< of its metric's burst (all of it for priority traffic; less the
                       ///< priority headroom for regular traffic): it could never be sent
    error,             ///< the transport threw an exception other than `transport_error`
    unavailable,       ///< no governor to call with (a keyed registry full: nothing evictable)
};

/// Options of one call. `Profile` reads the responses (the seed provider:
/// `feedback::fireworks_profile<M>`); `Backoff` spaces the retries.
///
/// The defaults: up to 5 attempts; full jitter from 250 ms to 20 s; a server hint
/// (`Retry-After`) replaces the backoff, up to 60 s; no deadline; regular traffic; a
/// rejected response without usage (429, 503, 4xx) is refunded, a failure that may have
/// been counted (5xx, a timeout) keeps the estimate.
template <class Governor,
          class Profile = feedback::retry_after_profile<typename Governor::metrics_type>,
          class Backoff = backoff::any_policy>
struct call_options {
    /// A time point of the governor's clock (`deadline`).
    using time_point = typename Governor::time_point;

    /// No tokens are waited for, and no retry is scheduled, past this time.
    time_point deadline = time_point::max();
    /// Cancels the call: a wait ends at once; a reservation not yet sent is refunded.
    std::stop_token stop{};
    /// Attempts in all (sends), ≥ 1; 1 never retries.
    unsigned max_attempts = 5;
    /// The wait before each retry when the server sends no hint.
    Backoff backoff{};
    /// The longest server hint honoured (longer ones are cut to this); 0 ignores hints (the
    /// backoff policy decides alone).
    std::chrono::nanoseconds max_hint = std::chrono::seconds(60);
    /// Regular or priority (see `traffic_class`). Note: `call()` defaults to regular, the
    /// governor's own `try_acquire`/`reserve` to priority.
    traffic_class priority = traffic_class::regular;
    /// Reads each response.
    Profile profile{};
    /// Learns the limits from the responses (nullptr: limits stay fixed; reported remaining
    /// tokens and 429s still empty the governor's buckets). Unused through a `path`: each of
    /// its levels learns with its own `adaptive` member (see `path::learn`).
    adaptive_limits<Governor>* adaptive = nullptr;
    /// Bounds retries across calls (nullptr: only `max_attempts` bounds them).
    backoff::retry_budget* budget = nullptr;
    /// Settles a rejected response (429, 503, other 4xx) that reports no usage.
    settle if_rejected = settle::refund;
    /// Settles an attempt that may have been counted (other 5xx, a `maybe_sent` throw)
    /// and reports no usage.
    settle if_unknown = settle::keep;
    /// Seed of the jitter (0: a fresh seed per call).
    std::uint64_t seed = 0;
    /// Whether a call may hold its place in the governor's queue while it waits for tokens
    /// (exact wake-up, first come first served). `false`: it takes tokens only when they
    /// are there, and otherwise waits until they should be and asks again. Choose `false`
    /// when estimates exceed the usage (e.g. `max_tokens`) and the governor is saturated: a
    /// surplus is given back only while no reservation waits behind it, and with queued
    /// callers one always does.
    bool queue = true;
};

/// What happened during a call.
template <class TimePoint>
struct call_summary {
    /// The unit of `waited` and `backed_off`: the clock's duration.
    using duration = typename TimePoint::duration;

    /// How the call ended (`cancelled` until it has).
    call_status status = call_status::cancelled;
    /// The outcome of the last attempt (`nullopt` when nothing was sent).
    std::optional<feedback::outcome> last_outcome{};
    /// Sends made (0 when the call ended before the first).
    unsigned attempts = 0;
    /// Time spent waiting for the governor's tokens.
    duration waited{0};
    /// Time spent backing off between attempts.
    duration backed_off{0};
    /// For `exceeds_capacity` and `deadline`: the metric that refused (else the number of
    /// metrics).
    std::size_t metric = 0;
    /// Through a `path`: the level that refused, for `exceeds_capacity` and `deadline` (0
    /// otherwise).
    std::size_t level = 0;
    /// For `exceeds_capacity` through a `path`: the refusal in words (e.g. "a request of
    /// 1.2M prompt tokens exceeds the model's burst of 900k: ..."); else empty.
    std::string refusal{};
    /// The last exception the transport threw, if any.
    std::exception_ptr error{};

    /// Whether the call succeeded (`status == call_status::success`).
    [[nodiscard]] explicit operator bool() const noexcept { return status == call_status::success; }
};

/// The result of the blocking `call`: the summary and the last response received.
template <class Response, class TimePoint>
struct call_result : call_summary<TimePoint> {
    /// The last attempt's response; `nullopt` when nothing was sent or the last attempt threw.
    std::optional<Response> response{};
};

namespace client_detail {

/// A seed for a call's jitter: different per call and per process.
[[nodiscard]] inline std::uint64_t fresh_seed() noexcept {
    static const std::uint64_t process = [] {
        try {
            std::random_device rd;
            return (std::uint64_t{rd()} << 32) ^ rd();
        } catch (...) {
            return std::uint64_t{0x5851F42D4C957F2DULL};
        }
    }();
    static std::atomic<std::uint64_t> counter{0};
    // relaxed: a distinct value per call is all that matters.
    return process ^ (counter.fetch_add(0x9E3779B97F4A7C15ULL, std::memory_order_relaxed) + 1);
}

} // namespace client_detail

/// The client loop as a state machine that never waits and never sends: the caller does
/// both. For event loops and coroutines.
///
/// \code
/// rategov::call_machine m(gov, estimate, options);
/// for (;;) {
///     auto s = m.next();
///     if (s.what == decltype(m)::action::wait) { co_await timer_until(s.until); continue; }
///     if (s.what == decltype(m)::action::done) break;
///     try { m.on_response(co_await send(request)); }          // action::send
///     catch (...) { m.on_exception(std::current_exception()); }
/// }
/// auto summary = m.result();
/// \endcode
///
/// Thread-compatible (one machine per call, used by one thread at a time). Destroying a
/// machine settles what it holds: an unsent reservation is refunded; one in flight is
/// settled as `if_unknown`.
template <class Governor, class Options = call_options<Governor>>
class call_machine {
    using metrics_type = typename Governor::metrics_type;
    static_assert(feedback_profile<std::remove_cvref_t<decltype(std::declval<Options&>().profile)>,
                                   metrics_type>,
                  "rategov: call_options::profile must have `read(int status, const Headers&, "
                  "feedback::wall_time, std::string_view) -> "
                  "feedback::response_feedback<metrics::size>`; use a profile from "
                  "<rategov/feedback/profiles.hpp>.");
    static_assert(backoff::policy<std::remove_cvref_t<decltype(std::declval<Options&>().backoff)>>,
                  "rategov: call_options::backoff must satisfy rategov::backoff::policy "
                  "(`delay(unsigned retry, nanoseconds previous, Random&) -> nanoseconds`).");

public:
    /// The governor the call takes its tokens from.
    using governor_type = Governor;
    /// The options the call runs with.
    using options_type = Options;
    /// A time point of the governor's clock (`step::until`).
    using time_point = typename Governor::time_point;
    /// A duration of the governor's clock.
    using duration = typename Governor::duration;
    /// The call's estimate: one amount per metric.
    using cost_type = typename Governor::cost_type;
    /// What `result()` returns.
    using summary = call_summary<time_point>;
    /// What a response said, as the profile read it (`last_feedback()`).
    using feedback_type = feedback::response_feedback<metrics_type::size>;

    /// What the caller should do next.
    enum class action : std::uint8_t {
        wait, ///< wait until `until` (or until the stop token fires), then call `next()`
        send, ///< send the request now, then `on_response` or `on_exception`
        done, ///< finished: see `result()`
        /// a send is outstanding: feed its `on_response` or `on_exception` first (never
        /// send again on this answer)
        in_flight,
    };
    /// What `next()` returns: the action, and for `wait` the time to wait until.
    struct step {
        /// What the caller should do.
        action what;
        time_point until; ///< for `wait`: when to call `next()` again
        /// For `wait` through a `path` whose in-flight cap is full: the wait ends as well
        /// when a slot is released (`slot.wait(clock, until, stop)`, or a
        /// `release_listener` on `*slot.slots`). Empty otherwise.
        slot_ticket slot{};
    };

    /// Starts a call for `estimate` on `gov` (which must outlive the machine).
    /// \throws config_error if `options.max_attempts` is 0.
    call_machine(Governor& gov, const cost_type& estimate, Options options)
        : m_gov(&gov)
        , m_estimate(estimate)
        , m_options(std::move(options))
        , m_random(m_options.seed != 0 ? m_options.seed : client_detail::fresh_seed()) {
        if (m_options.max_attempts == 0)
            detail::throw_config_error("call_options::max_attempts 0: a call needs at least "
                                       "one attempt");
        if (m_options.budget != nullptr)
            m_options.budget->on_call();
        m_summary.metric = metrics_type::size;
        m_phase_began = gov.now();
    }
    call_machine(const call_machine&) = delete;
    call_machine& operator=(const call_machine&) = delete;
    ~call_machine() {
        if (m_phase == phase::sending)
            settle_as(m_options.if_unknown);
        if (m_phase == phase::backoff && m_options.budget != nullptr && m_summary.last_outcome)
            m_options.budget->give_back(*m_summary.last_outcome); // a retry never sent
        // An unsent reservation is refunded by its own drop policy... unless the governor's
        // policy keeps it: an unsent request used nothing, so cancel explicitly.
        if (m_reservation)
            m_reservation->cancel();
    }

    /// What to do now. Checks the stop token and the deadline; takes the tokens when they
    /// can be had (a reservation, held until the response is settled).
    [[nodiscard]] step next() {
        for (;;) {
            const time_point now = m_gov->now();
            if (m_phase == phase::done)
                return {action::done, now};
            if (m_options.stop.stop_requested() && m_phase != phase::sending) {
                finish(call_status::cancelled, now);
                continue;
            }
            switch (m_phase) {
            case phase::acquire: {
                if (now > m_options.deadline) { // at the deadline itself, a send may go
                    finish(call_status::deadline, now);
                    continue;
                }
                const duration max_wait = !m_options.queue ? duration::zero()
                                          : m_options.deadline == time_point::max()
                                              ? duration::max()
                                              : m_options.deadline - now;
                auto r = m_gov->reserve_at(m_estimate, now, max_wait, m_options.priority);
                if (r.status() == acquire_status::exceeds_capacity) {
                    note_refusal(r);
                    if constexpr (requires { r.describe(); })
                        m_summary.refusal = r.describe();
                    finish(call_status::exceeds_capacity, now);
                    continue;
                }
                if constexpr (requires { r.slot(); }) {
                    // No free slot: wait until one is released (no time is known), up to the
                    // deadline; at the deadline itself, give up.
                    if (const slot_ticket t = r.slot()) {
                        if (t.released())
                            continue; // one was released since: ask again now
                        if (now >= m_options.deadline) {
                            note_refusal(r);
                            finish(call_status::deadline, now);
                            continue;
                        }
                        return {action::wait, m_options.deadline, t};
                    }
                }
                if (r.status() == acquire_status::denied) {
                    // Regular traffic behind others: ask again at ready_at. Past the
                    // deadline (or a priority wait beyond it): give up now, not then.
                    if (r.ready_at() > m_options.deadline) {
                        note_refusal(r);
                        finish(call_status::deadline, now);
                        continue;
                    }
                    return {action::wait, r.ready_at()};
                }
                m_reservation.emplace(std::move(r));
                m_phase = phase::holding;
                continue;
            }
            case phase::holding:
                if (now < m_reservation->ready_at())
                    return {action::wait, m_reservation->ready_at()};
                m_summary.waited += now - m_phase_began;
                m_phase = phase::sending;
                m_sent_at = now;
                ++m_summary.attempts;
                return {action::send, now};
            case phase::sending:
                return {action::in_flight, now}; // waiting for on_response / on_exception
            case phase::backoff:
                if (now < m_backoff_until)
                    return {action::wait, m_backoff_until};
                m_summary.backed_off += now - m_phase_began;
                m_phase = phase::acquire;
                m_phase_began = now;
                continue;
            case phase::done:
                break;
            }
        }
    }

    /// Feeds the response of the attempt just sent: classifies it, settles the reservation
    /// (with `usage` when reported), applies the feedback, and decides: done or retry.
    /// Ignored unless a send is outstanding.
    template <class Response>
    requires response_for<Response, metrics_type>
    void on_response(const Response& r) {
        if (m_phase != phase::sending)
            return;
        m_feedback =
            m_options.profile.read(static_cast<int>(r.status), r.headers, feedback::wall_time_now(),
                                   client_detail::error_code_of(r));
        // A 2xx was served (and billed) whatever else the headers say: an over-limit flag on
        // it is a warning to learn from, never a reason to send the request again.
        const bool served = r.status >= 200 && r.status < 300;
        const feedback::outcome kind = served && m_feedback.kind == feedback::outcome::over_limit
                                           ? feedback::outcome::success
                                           : m_feedback.kind;
        const std::optional<cost_type> usage = r.usage;
        // What the settlement gives back (measured: time or a limit change may have restored
        // part of the surplus already), so that adaptation judges demand as before it.
        std::array<std::uint64_t, metrics_type::size> given_back{};
        if (usage && (m_options.adaptive != nullptr || path_learns)) {
            const auto before = m_gov->availability();
            m_reservation->commit(*usage);
            const auto after = m_gov->availability();
            for (std::size_t i = 0; i < metrics_type::size; ++i)
                given_back[i] = after[i] > before[i] ? after[i] - before[i] : 0;
        } else if (usage) {
            m_reservation->commit(*usage);
        } else if (kind == feedback::outcome::success)
            m_reservation->commit(m_estimate);
        else
            settle_as(kind == feedback::outcome::retryable ? m_options.if_unknown
                                                           : m_options.if_rejected);
        m_reservation.reset();
        learn(m_feedback.kind, given_back);
        m_summary.last_outcome = kind;
        const time_point now = m_gov->now();
        if (kind == feedback::outcome::success)
            finish(call_status::success, now);
        else if (kind == feedback::outcome::fatal || kind == feedback::outcome::quota_exhausted ||
                 m_feedback.should_retry == false)
            finish(call_status::rejected, now);
        else
            retry_after_failure(kind, m_feedback.retry_after, now);
    }

    /// Feeds an exception the transport threw for the attempt just sent (see
    /// `transport_error`). Ignored unless a send is outstanding.
    void on_exception(std::exception_ptr e) {
        if (m_phase != phase::sending)
            return;
        m_summary.error = e;
        delivery where = delivery::maybe_sent;
        std::optional<feedback::outcome> kind;
        try {
            std::rethrow_exception(e);
        } catch (const transport_error& te) {
            where = te.where();
            kind = te.kind();
        } catch (...) {
        }
        if (where == delivery::not_sent)
            m_reservation->cancel();
        else
            settle_as(m_options.if_unknown);
        m_reservation.reset();
        const time_point now = m_gov->now();
        if (!kind) {
            finish(call_status::error, now);
            return;
        }
        m_summary.last_outcome = *kind;
        if (*kind == feedback::outcome::fatal || *kind == feedback::outcome::quota_exhausted)
            finish(call_status::rejected, now);
        else if (*kind == feedback::outcome::success) // a transport's odd choice: no retry
            finish(call_status::success, now);
        else
            retry_after_failure(*kind, std::nullopt, now);
    }

    /// Ends the call now: an unsent reservation is refunded; one in flight is settled as
    /// `if_unknown` (its response will not be read). Does nothing once the call is done.
    void cancel() {
        if (m_phase == phase::done)
            return; // the result is final
        if (m_phase == phase::sending) {
            settle_as(m_options.if_unknown);
            m_reservation.reset();
        }
        finish(call_status::cancelled, m_gov->now());
    }

    /// The summary so far (final once `next()` returned `done`).
    [[nodiscard]] const summary& result() const noexcept { return m_summary; }
    /// What the last response said (all empty before one).
    [[nodiscard]] const feedback_type& last_feedback() const noexcept { return m_feedback; }
    /// Whether the call is over.
    [[nodiscard]] bool done() const noexcept { return m_phase == phase::done; }
    /// The attempt about to be (or being) sent, from 1.
    [[nodiscard]] attempt_info<time_point> attempt() const noexcept {
        return {m_summary.attempts, m_options.deadline, m_options.priority};
    }
    /// The call's options.
    [[nodiscard]] const Options& options() const noexcept { return m_options; }

private:
    enum class phase : std::uint8_t { acquire, holding, sending, backoff, done };

    /// Whether the governor routes feedback itself (a `path`: to each level).
    static constexpr bool path_learns =
        requires(Governor & g, const feedback_type& fb, time_point t,
                 const std::array<std::uint64_t, metrics_type::size>& back, const cost_type& c) {
        g.learn(fb, t, back, c);
    };

    template <class Reservation>
    void note_refusal(const Reservation& r) noexcept {
        m_summary.metric = r.metric();
        if constexpr (requires { r.level(); })
            m_summary.level = r.level();
    }

    void settle_as(settle how) noexcept {
        if (!m_reservation)
            return;
        if (how == settle::keep)
            m_reservation->commit(m_estimate);
        else
            m_reservation->cancel();
    }

    void finish(call_status s, time_point now) noexcept {
        if (m_phase == phase::acquire || m_phase == phase::holding) // waited, never sent
            m_summary.waited += now - m_phase_began;
        if (m_phase == phase::backoff) {
            m_summary.backed_off += now - m_phase_began;
            if (m_options.budget != nullptr && m_summary.last_outcome) // a retry never sent
                m_options.budget->give_back(*m_summary.last_outcome);
        }
        if (m_reservation && m_phase != phase::sending)
            m_reservation->cancel();
        m_reservation.reset();
        m_summary.status = s;
        m_phase = phase::done;
    }

    /// Applies the response's feedback to the limits.
    void learn(feedback::outcome kind,
               const std::array<std::uint64_t, metrics_type::size>& given_back = {}) noexcept {
        if constexpr (path_learns) {
            // Each level learns what concerns it, with its own adaptive limits.
            static_cast<void>(kind);
            m_gov->learn(m_feedback, m_sent_at, given_back, m_estimate);
        } else {
            learn_here(kind, given_back);
        }
    }

    /// `learn` for a governor: its adaptive limits (if any) or its buckets.
    void learn_here(feedback::outcome kind,
                    const std::array<std::uint64_t, metrics_type::size>& given_back) noexcept {
        adaptive_limits<Governor>* ad = m_options.adaptive;
        if (ad != nullptr)
            ad->on_response(m_feedback, m_sent_at, given_back);
        for (std::size_t i = 0; i < metrics_type::size; ++i) {
            if (ad != nullptr && ad->bounded(i))
                continue; // the adaptive layer did it
            if (m_feedback.metrics[i].remaining)
                m_gov->cap_available(i, *m_feedback.metrics[i].remaining);
            // A 429 says the server has no tokens for us now: empty the metrics this call
            // used, so that the next calls pace instead of bursting into more 429s.
            if (kind == feedback::outcome::over_limit && m_estimate[i] != 0)
                m_gov->cap_available(i, 0);
        }
    }

    void retry_after_failure(feedback::outcome kind, std::optional<std::chrono::milliseconds> hint,
                             time_point now) {
        if (m_summary.attempts >= m_options.max_attempts) {
            finish(call_status::retries_exhausted, now);
            return;
        }
        const std::chrono::nanoseconds computed =
            m_options.backoff.delay(m_summary.attempts - 1, m_previous_delay, m_random);
        m_previous_delay = computed;
        const std::chrono::nanoseconds delay = backoff::hinted(computed, hint, m_options.max_hint);
        const time_point until = later(now, delay);
        if (until > m_options.deadline) {
            finish(call_status::deadline, now);
            return;
        }
        if (m_options.budget != nullptr && !m_options.budget->try_spend(kind)) {
            finish(call_status::budget_exhausted, now);
            return;
        }
        m_phase = phase::backoff;
        m_phase_began = now;
        m_backoff_until = until;
    }

    /// now + d, saturating at time_point::max().
    [[nodiscard]] static time_point later(time_point now, std::chrono::nanoseconds d) noexcept {
        const auto dd = std::chrono::ceil<duration>(d);
        if (dd > time_point::max() - now)
            return time_point::max();
        return now + dd;
    }

    Governor* m_gov;
    cost_type m_estimate;
    Options m_options;
    backoff::splitmix64 m_random;
    std::optional<typename Governor::reservation_type> m_reservation{};
    summary m_summary{};
    feedback_type m_feedback{};
    phase m_phase = phase::acquire;
    time_point m_phase_began{};
    time_point m_sent_at{};
    time_point m_backoff_until{};
    std::chrono::nanoseconds m_previous_delay{0};
};

/// The blocking client loop: reserves `estimate` on `gov` (waiting as needed), sends
/// `request` through `transport`, settles the real usage, applies the response's feedback,
/// and retries per `options` — waiting through the clock's wait policy, so that it runs in
/// virtual time under a manual clock. Returns what happened and the last response.
///
/// \code
/// rategov::call_options<gov_t, rategov::feedback::fireworks_profile<llm>> opt;
/// opt.adaptive = &adaptive;
/// opt.deadline = gov.now() + 30s;
/// auto r = rategov::call(gov, request, estimate, my_transport, opt);
/// if (r) use(r.response->body);
/// \endcode
template <class Governor, class Request, class Transport, class Options = call_options<Governor>>
requires transport_for < std::remove_cvref_t<Transport>, Request,
typename Governor::metrics_type,
    typename Governor::time_point > auto call(Governor& gov, const Request& request,
                                              const typename Governor::cost_type& estimate,
                                              Transport&& transport, Options options = {}) {
    using time_point = typename Governor::time_point;
    using response_type = std::remove_cvref_t<decltype(client_detail::invoke_transport(
        transport, request, std::declval<const attempt_info<time_point>&>()))>;
    const std::stop_token stop = options.stop;
    call_machine<Governor, Options> machine(gov, estimate, std::move(options));
    call_result<response_type, time_point> out;
    using action = typename call_machine<Governor, Options>::action;
    for (;;) {
        const auto s = machine.next();
        if (s.what == action::done)
            break;
        if (s.what == action::wait) {
            if (s.slot) // no in-flight slot: until one is released or `until`
                static_cast<void>(s.slot.wait(gov.clock(), s.until, stop));
            else
                static_cast<void>(sleep_until(gov.clock(), s.until, stop));
            continue;
        }
        out.response.reset(); // the response is always the last attempt's, or none
        try {
            out.response.emplace(
                client_detail::invoke_transport(transport, request, machine.attempt()));
        } catch (...) {
            machine.on_exception(std::current_exception());
            continue;
        }
        machine.on_response(*out.response);
    }
    static_cast<call_summary<time_point>&>(out) = machine.result();
    return out;
}

RATEGOV_NAMESPACE_END
