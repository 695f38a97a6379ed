/// \file
/// The outcome of an acquisition: granted, denied (with the earliest time it could succeed),
/// or too large ever to be granted.
#pragma once

#include <cstdint>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN

/// What happened to a request for tokens.
enum class acquire_status : std::uint8_t {
    granted,          ///< the tokens were taken (for `reserve`: from `ready_at` on)
    denied,           ///< not now; `ready_at` is the earliest time it could succeed
    exceeds_capacity, ///< more than the burst: it can never succeed, do not wait
};

/// What a grant took, to give back exactly later (`bucket::refund(n, receipt)`, and what a
/// governor's reservation keeps). Opaque: copy it, pass it back, nothing else. All zero when
/// nothing was taken.
struct receipt {
    std::uint64_t word = 0;    ///< the state word the grant wrote (0: nothing taken)
    std::uint64_t prior = 0;   ///< the state word it replaced
    std::uint64_t tokens = 0;  ///< how many tokens it took
    std::uint64_t version = 0; ///< the limit-change version it was taken under
    /// Memberwise equality (two receipts of one grant compare equal).
    friend constexpr bool operator==(const receipt&, const receipt&) = default;
};

/// Result of `try_acquire` / `reserve` on a bucket. Converts to `true` when granted.
///
/// - `granted`: for `try_acquire`, `ready_at` is the time of the call; for `reserve`, the
///   time from which the caller may use the tokens (later callers queue behind it).
/// - `denied`: nothing was taken; `ready_at` is the earliest time the same request could be
///   granted if nobody else takes tokens meanwhile (for `reserve`: the ready time that
///   would have exceeded `max_wait`).
/// - `exceeds_capacity`: the request is larger than the burst; `ready_at` is
///   `TimePoint::max()`. Split the work or raise the burst.
///
/// \code
/// if (auto r = bucket.try_acquire(1); !r) {
///     if (r.status == rategov::acquire_status::denied) retry_at(r.ready_at);
/// }
/// \endcode
template <class TimePoint>
struct acquire_result {
    /// Granted, denied or exceeds capacity (see above).
    acquire_status status;
    /// When the tokens are (or could be) usable; `TimePoint::max()` for `exceeds_capacity`.
    TimePoint ready_at;
    /// What was taken, for an exact `refund(n, receipt)` (zero unless granted).
    rategov::receipt receipt{};

    /// Whether `status` is `acquire_status::granted`.
    [[nodiscard]] constexpr bool granted() const noexcept {
        return status == acquire_status::granted;
    }
    /// `granted()`.
    [[nodiscard]] constexpr explicit operator bool() const noexcept { return granted(); }
};

/// How a bucket's tokens carry over when its limit changes (`set_limit`).
enum class inheritance : std::uint8_t {
    keep,         ///< keep the number of available tokens (capped at the new burst); debt stays
    proportional, ///< keep the fill ratio: a half-full bucket stays half full
    reset,        ///< start full under the new limit, as a new bucket would
};

RATEGOV_NAMESPACE_END
