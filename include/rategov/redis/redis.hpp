/// \file
/// Umbrella header of the optional Redis store: `redis::governor`, `redis::leased_governor`,
/// their options, and the connection they use. Needs hiredis (pkg-config `hiredis`); not
/// included by `rategov/rategov.hpp`.
#pragma once

#include <rategov/redis/connection.hpp>
#include <rategov/redis/governor.hpp>
#include <rategov/redis/leased_governor.hpp>
#include <rategov/redis/scripts.hpp>
#include <rategov/redis/store.hpp>
