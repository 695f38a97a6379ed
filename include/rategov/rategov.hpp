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
#include <rategov/governor/metrics.hpp>
#include <rategov/keyed/keyed.hpp>
#include <rategov/quota/quota.hpp>
#include <rategov/testing/manual_clock.hpp>
#include <rategov/testing/provider_simulator.hpp>
