/// \file
/// The Lua script that keeps a multi-metric GCRA in one Redis hash, so that every operation
/// on all of a key's metrics is one atomic step in Redis.
///
/// **Layout.** One hash per key (`rategov:{<key>}`), fields: `n` (number of metrics), `t`
/// (time of the last update, µs) and per metric i: `c<i>`, `p<i>`, `b<i>` (count, period in
/// ns, burst, as decimal strings), `ut<i>`, `uu<i>` (units per token and per µs) and `l<i>`
/// (the level: tokens in use, in units; 0 = full bucket, above `b·ut` = debt or queue).
///
/// **Units.** With g = gcd(1000·count, period_ns), a token is `ut = period_ns/g` units and
/// a microsecond drains `uu = 1000·count/g` units, so the level is an exact integer. The
/// client checks that `burst·ut` and `uu` stay below 2^52 (a Lua number is a double, exact
/// below 2^53); levels saturate at 2^52.
///
/// **Call.** `EVALSHA sha 1 key op now_us margin_ms n  c p b ut uu (× n)  args…` where `now_us`
/// is the empty string for the server's `TIME` (the default: hosts need no clock
/// agreement) or the caller's time in µs. The limits are used only to create a missing
/// key: the first caller's limits hold until `set` changes them for everyone. Ops:
///
/// | op        | args                      | effect                                          |
/// |-----------|---------------------------|-------------------------------------------------|
/// | `take`    | n costs                   | all metrics grant or none                        |
/// | `reserve` | n costs, max_wait_us      | pays forward if every metric is ready in time    |
/// | `lease`   | n least, n most           | as `take` for `least`, then up to `most` if free |
/// | `adjust`  | n signed deltas           | level += delta (charge > 0, refund < 0), ≥ 0     |
/// | `cap`     | i, tokens                 | metric i holds at most `tokens` now              |
/// | `set`     | i, c, p, b, ut, uu, how   | new limit; how: 0 keep, 1 proportional, 2 reset  |
/// | `peek`    | —                         | nothing changes                                  |
///
/// **Reply.** `{status, wait_us, metric, now_us, then per metric: available, debt, count,
/// period_ns, burst}`; status 0 granted, 1 denied, 2 exceeds capacity; `wait_us` is the
/// wait until every metric could grant (denied) or until a reservation is ready; `metric`
/// the refusing (or bottleneck) metric, n when none. A granted `lease` appends what it took
/// of each metric.
///
/// **Expiry.** Each write sets `PEXPIRE` to the time the fullest metric takes to refill
/// completely plus `margin_ms`: an idle key disappears once it would be full anyway.
#pragma once

#include <string_view>

#include <rategov/config.hpp>

RATEGOV_NAMESPACE_BEGIN
namespace redis {
namespace scripts {

/// The multi-metric GCRA script (see the file comment for its protocol).
inline constexpr std::string_view gcra = R"lua(
local op = ARGV[1]
local now
if ARGV[2] == '' then
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
else
  now = tonumber(ARGV[2])
end
local margin = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local key = KEYS[1]
local LMAX = 4503599627370496
local o = 5 + 5 * n
local h = redis.call('HGETALL', key)
local s = {}
for i = 1, #h, 2 do s[h[i]] = h[i + 1] end
local dirty = false
if s['n'] == nil then
  dirty = true
  s['n'] = tostring(n)
  s['t'] = tostring(now)
  for i = 0, n - 1 do
    local a = 5 + 5 * i
    s['c' .. i] = ARGV[a]; s['p' .. i] = ARGV[a + 1]; s['b' .. i] = ARGV[a + 2]
    s['ut' .. i] = ARGV[a + 3]; s['uu' .. i] = ARGV[a + 4]; s['l' .. i] = '0'
  end
elseif tonumber(s['n']) ~= n then
  return redis.error_reply('RATEGOV key ' .. key .. ' holds ' .. s['n'] .. ' metrics, not ' .. n)
end

local function fdiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then q = q - 1 elseif (q + 1) * b <= a then q = q + 1 end
  return q
end
local function cdiv(a, b)
  local q = fdiv(a, b)
  if q * b < a then q = q + 1 end
  return q
end

local t = tonumber(s['t'])
local e = now - t
if e < 0 then e = 0 end
local L, cap, ut, uu, b = {}, {}, {}, {}, {}
for i = 0, n - 1 do
  ut[i] = tonumber(s['ut' .. i]); uu[i] = tonumber(s['uu' .. i]); b[i] = tonumber(s['b' .. i])
  cap[i] = b[i] * ut[i]
  local l = tonumber(s['l' .. i])
  if e > 0 and l > 0 then
    local q = fdiv(l, uu[i])
    if e > q then l = 0 else l = math.max(0, l - e * uu[i]) end
  end
  L[i] = l
end
if now > t then t = now end

local function wait_of(i, need)
  local ex = L[i] + need * ut[i] - cap[i]
  if ex <= 0 then return 0 end
  return cdiv(ex, uu[i])
end

local status, wait, which = 0, 0, n
local taken = nil
if op == 'take' or op == 'reserve' or op == 'lease' then
  local costs, most = {}, {}
  for i = 0, n - 1 do costs[i] = tonumber(ARGV[o + i]) end
  if op == 'lease' then
    taken = {}
    for i = 0, n - 1 do most[i] = tonumber(ARGV[o + n + i]) end
  end
  for i = 0, n - 1 do
    if costs[i] > b[i] then status = 2; which = i; break end
  end
  if status == 0 then
    for i = 0, n - 1 do
      if costs[i] > 0 then
        local w = wait_of(i, costs[i])
        if w > wait then wait = w; which = i end
      end
    end
    local limit = 0
    local full = false
    if op == 'reserve' then
      limit = tonumber(ARGV[o + n])
      -- a queue beyond what a level holds is refused, never capped
      for i = 0, n - 1 do
        if costs[i] > 0 and math.max(L[i], wait * uu[i]) + costs[i] * ut[i] > LMAX then
          full = true; which = i
        end
      end
    end
    if wait > limit or full then
      status = 1
    else
      for i = 0, n - 1 do
        local k = costs[i]
        if taken then
          local a = 0
          if L[i] < cap[i] then a = fdiv(cap[i] - L[i], ut[i]) end
          if a > most[i] then a = most[i] end
          if a > k then k = a end
          taken[i] = k
        end
        if k > 0 then
          L[i] = math.min(LMAX, math.max(L[i], wait * uu[i]) + k * ut[i])
        end
      end
      dirty = true
      if op ~= 'reserve' then which = n end
    end
  end
elseif op == 'adjust' then
  for i = 0, n - 1 do
    local d = tonumber(ARGV[o + i])
    L[i] = math.max(0, math.min(LMAX, L[i] + d * ut[i]))
  end
  dirty = true
elseif op == 'cap' then
  local i = tonumber(ARGV[o])
  local m = tonumber(ARGV[o + 1])
  if i >= 0 and i < n and m < b[i] then
    L[i] = math.max(L[i], cap[i] - m * ut[i])
    dirty = true
  end
elseif op == 'set' then
  local i = tonumber(ARGV[o])
  if i >= 0 and i < n then
    local nb = tonumber(ARGV[o + 3]); local nut = tonumber(ARGV[o + 4])
    local ncap = nb * nut
    local how = ARGV[o + 6]
    local nl = 0
    if how ~= '2' then
      if L[i] > cap[i] then
        nl = math.min(LMAX, ncap + cdiv(L[i] - cap[i], ut[i]) * nut)
      else
        local a = fdiv(cap[i] - L[i], ut[i])
        if how == '1' then a = math.floor(a * nb / b[i]) end
        if a > nb then a = nb end
        nl = ncap - a * nut
      end
    end
    s['c' .. i] = ARGV[o + 1]; s['p' .. i] = ARGV[o + 2]; s['b' .. i] = ARGV[o + 3]
    s['ut' .. i] = ARGV[o + 4]; s['uu' .. i] = ARGV[o + 5]
    b[i] = nb; ut[i] = nut; uu[i] = tonumber(ARGV[o + 5]); cap[i] = ncap; L[i] = nl
    dirty = true
  end
elseif op ~= 'peek' then
  return redis.error_reply('RATEGOV unknown op ' .. op)
end

if dirty then
  local args = {'n', s['n'], 't', string.format('%.0f', t)}
  local drain = 0
  for i = 0, n - 1 do
    for _, f in ipairs({'c', 'p', 'b', 'ut', 'uu'}) do
      args[#args + 1] = f .. i; args[#args + 1] = s[f .. i]
    end
    args[#args + 1] = 'l' .. i; args[#args + 1] = string.format('%.0f', L[i])
    local d = cdiv(L[i], uu[i])
    if d > drain then drain = d end
  end
  redis.call('HSET', key, unpack(args))
  redis.call('PEXPIRE', key, cdiv(drain, 1000) + margin)
end

local out = {status, wait, which, now}
for i = 0, n - 1 do
  local avail, debt = 0, 0
  if L[i] <= cap[i] then avail = fdiv(cap[i] - L[i], ut[i]) else debt = cdiv(L[i] - cap[i], ut[i]) end
  out[#out + 1] = avail; out[#out + 1] = debt
  out[#out + 1] = s['c' .. i]; out[#out + 1] = s['p' .. i]; out[#out + 1] = s['b' .. i]
end
if taken then
  for i = 0, n - 1 do out[#out + 1] = taken[i] or 0 end
end
return out
)lua";

} // namespace scripts
} // namespace redis
RATEGOV_NAMESPACE_END
