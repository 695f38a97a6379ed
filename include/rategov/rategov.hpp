/// \file
/// Umbrella header: includes every public rategov header, nothing else.
#pragma once

#include <rategov/adaptive/adaptive.hpp>
#include <rategov/backoff/backoff.hpp>
#include <rategov/backoff/retry_budget.hpp>
#include <rategov/bucket/bucket.hpp>
#include <rategov/bucket/result.hpp>
#include <rategov/client/call.hpp>
#include <rategov/client/transport.hpp>
#include <rategov/clock/clock.hpp>
#include <rategov/config.hpp>
#include <rategov/feedback/parse.hpp>
#include <rategov/feedback/profiles.hpp>
#include <rategov/governor/governor.hpp>
#include <rategov/governor/in_flight.hpp>
#include <rategov/governor/metrics.hpp>
#include <rategov/keyed/keyed.hpp>
#include <rategov/nested/nested.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/testing/manual_clock.hpp>
#include <rategov/testing/provider_simulator.hpp>

#if defined(RATEGOV_DOXYGEN)
/// rategov: keeps a program inside the rate limits of the APIs it calls. Every public name
/// is here (the `detail` namespaces are not part of the API).
namespace rategov {
/// The versioned inline namespace: write `rategov::name`; the mangled names carry `v0`.
inline namespace v0 {
/// Tag types naming what a governor limits (`metric::generated`, ...).
namespace metric {}
/// Reading responses: header profiles that turn status and headers into limits and hints.
namespace feedback {}
/// Backoff policies, their random source and the retry budget.
namespace backoff {}
/// The manual clock and the provider simulator, for tests in virtual time.
namespace testing {}
} // namespace v0
} // namespace rategov
#endif
