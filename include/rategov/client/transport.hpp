/// \file
/// What a user plugs into the client loop: a transport that sends one request and returns
/// a response with a status, header lookup and (when known) the actual usage.
///
/// \code
/// struct my_transport {
///     rategov::response<llm> operator()(const my_request& req) {
///         auto http = my_http_client.post(req.url, req.body);       // your HTTP library
///         rategov::response<llm> r;
///         r.status = http.status;
///         for (auto& [k, v] : http.headers) r.headers.add(k, v);
///         if (http.status == 200) r.usage = usage_from_body(http.body);
///         return r;
///     }
/// };
/// \endcode
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <rategov/config.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/metrics.hpp>

RATEGOV_NAMESPACE_BEGIN

/// Headers a response owns (copied from the HTTP library): a `feedback::header_lookup`,
/// names matched case-insensitively, the first of duplicates winning.
class owned_headers {
public:
    owned_headers() = default;
    /// Adds one header (kept in arrival order).
    void add(std::string name, std::string value) {
        m_entries.emplace_back(std::move(name), std::move(value));
    }
    /// The value of `name`, or `nullopt`.
    [[nodiscard]] std::optional<std::string_view> operator()(std::string_view name) const noexcept {
        for (const auto& [n, v] : m_entries)
            if (feedback::header_name_matches(n, name))
                return std::string_view(v);
        return std::nullopt;
    }
    /// The number of headers added, duplicates included.
    [[nodiscard]] std::size_t size() const noexcept { return m_entries.size(); }
    /// The headers as (name, value) pairs, in arrival order.
    [[nodiscard]] auto begin() const noexcept { return m_entries.begin(); }
    /// The end of the (name, value) pairs, for `begin()`.
    [[nodiscard]] auto end() const noexcept { return m_entries.end(); }

private:
    std::vector<std::pair<std::string, std::string>> m_entries;
};

/// A ready response type for transports: the HTTP status, the headers, the actual usage per
/// metric when the transport knows it (from the body's `usage`, say), and the provider's
/// error code when there is one (e.g. `"insufficient_quota"`).
template <class Metrics, class Headers = owned_headers>
struct response {
    /// The HTTP status code (e.g. 200, 429).
    int status = 0;
    /// The response's headers, read by the feedback profile.
    Headers headers{};
    /// What the request actually consumed per metric; `nullopt` when unknown (the estimate
    /// then stands).
    std::optional<cost<Metrics>> usage{};
    /// The provider's error code, empty when there is none.
    std::string error_code{};
};

/// What the client loop needs of a response: `status` (convertible to int), `headers` (a
/// `feedback::header_lookup`) and `usage` (convertible to `std::optional<cost<Metrics>>`;
/// `nullopt` when unknown). An `error_code` member convertible to `std::string_view` is
/// passed to the feedback profile when present.
template <class R, class Metrics>
concept response_for = requires(const R& r) {
    { r.status } -> std::convertible_to<int>;
    requires feedback::header_lookup<std::remove_cvref_t<decltype(r.headers)>>;
    { r.usage } -> std::convertible_to<std::optional<cost<Metrics>>>;
};

/// Whether a failed attempt may have reached the provider (and been counted).
enum class delivery : std::uint8_t {
    not_sent,   ///< surely never left (no connection, refused before sending): refunded
    maybe_sent, ///< may have been received and counted (timeout after sending, reset)
};

/// What a transport throws for a failure of the transport itself (timeout, connection
/// error). `where()` tells the client loop how to settle the reservation; `kind()` whether
/// to retry (`outcome::retryable` by default; `outcome::fatal` never retries; a failure is
/// never a `success`: that kind is taken as `retryable`). Any other
/// exception ends the call at once (`call_status::error`) and is settled as `maybe_sent`.
/// \code
/// if (curl_code == CURLE_COULDNT_CONNECT)
///     throw rategov::transport_error("connect failed", rategov::delivery::not_sent);
/// \endcode
class transport_error : public std::runtime_error {
public:
    /// A failure described by `what`, which `where` may have reached the provider, of kind
    /// `kind` (`outcome::success` is taken as `outcome::retryable`).
    explicit transport_error(const std::string& what, delivery where = delivery::maybe_sent,
                             feedback::outcome kind = feedback::outcome::retryable)
        : std::runtime_error(what)
        , m_where(where)
        , m_kind(kind == feedback::outcome::success ? feedback::outcome::retryable : kind) {}
    /// Whether the failed attempt may have reached the provider.
    [[nodiscard]] delivery where() const noexcept { return m_where; }
    /// What kind of failure it is: whether the call may retry (never `outcome::success`).
    [[nodiscard]] feedback::outcome kind() const noexcept { return m_kind; }

private:
    delivery m_where;
    feedback::outcome m_kind;
};

/// What the loop tells a transport about the attempt it is making (a transport may accept
/// it as a second argument, e.g. to bound its own timeout by the deadline).
template <class TimePoint>
struct attempt_info {
    unsigned attempt;       ///< 1 for the first
    TimePoint deadline;     ///< the call's deadline (`TimePoint::max()`: none)
    traffic_class priority; ///< the call's traffic class
};

/// A transport for `Request`: callable as `t(request)` or `t(request, attempt_info)`,
/// returning a `response_for<Metrics>`. It may throw (see `transport_error`).
template <class T, class Request, class Metrics, class TimePoint>
concept transport_for =
    (std::invocable<T&, const Request&, const attempt_info<TimePoint>&> &&
     response_for<std::invoke_result_t<T&, const Request&, const attempt_info<TimePoint>&>,
                  Metrics>) ||
    (std::invocable<T&, const Request&> &&
     response_for<std::invoke_result_t<T&, const Request&>, Metrics>);

namespace client_detail {

/// Calls the transport with the attempt information if it takes it.
template <class T, class Request, class TimePoint>
decltype(auto) invoke_transport(T& t, const Request& req, const attempt_info<TimePoint>& info) {
    if constexpr (std::invocable<T&, const Request&, const attempt_info<TimePoint>&>)
        return std::invoke(t, req, info);
    else
        return std::invoke(t, req);
}

/// The error code of a response, when it has one.
template <class R>
[[nodiscard]] std::string_view error_code_of(const R& r) noexcept {
    if constexpr (requires { std::string_view(r.error_code); })
        return std::string_view(r.error_code);
    else
        return {};
}

} // namespace client_detail

RATEGOV_NAMESPACE_END
