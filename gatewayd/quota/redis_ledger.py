"""The shared quota ledger: counters in Redis, for several gateway replicas.

Each counter is up to three Redis hashes, all under one hash tag (``{key_prefix}``) so that a
cluster keeps them on one node and a script may touch them together:

* ``{p}:c:<counter>`` — usage per window slot (field: slot, value: amount);
* ``{p}:h:<counter>`` — holds (field: reservation id, value: ``amount:expires_at``);
* ``{p}:b:<counter>`` — a token bucket (``tokens``, ``stamp``).

``reserve`` and ``settle`` are each one Lua script: one round trip, atomic on the server
(a reserve carries the settlements the engine has waiting, so a request usually costs one
round trip in all).
The reserve script makes the same check as ``ledger.line_fits`` (used + held + estimate
against the cap; a bucket's refilled level less the estimate against its floor), drops
stale slots and expired holds as it reads, and writes holds only when every line fits.
Times come from the gateway (``now``), so replicas must keep their clocks in sync (NTP);
key expiries are relative, so idle counters vanish by themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gatewayd.quota import bucket as buckets
from gatewayd.quota.ledger import (
    Booking,
    BucketState,
    LedgerUnavailable,
    Line,
    Refund,
    Settlement,
    Snapshot,
    State,
    WindowLine,
    WindowState,
)

# Both scripts take their arguments as one JSON document in ARGV[1] and answer one: packing
# dozens of RESP arguments and parsing nested replies costs the client more than the
# round trip. Numbers that must stay exact (slots, amounts, levels) travel as strings.
# KEYS are still declared, 2 per settlement and per line, as a cluster requires.
#
# settle(now, entries, ko) applies settlements whose keys start after KEYS[ko]:
#   window: KEYS counter, holds; ["w", slot, amount, keep_ms, reservation whose hold to
#           drop ("" for none)]
#   bucket: KEYS bucket, bucket; ["b", tokens, burst, rate]
COMMON = """
local function num(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end
local function settle(now, entries, ko)
  for i, e in ipairs(entries) do
    local k1, k2 = KEYS[ko + 2 * i - 1], KEYS[ko + 2 * i]
    if e[1] == 'w' then
      if e[3] > 0 then
        redis.call('HINCRBY', k1, int(e[2]), int(e[3]))
        if redis.call('PTTL', k1) < e[4] then redis.call('PEXPIRE', k1, int(e[4])) end
      end
      if e[5] ~= '' then redis.call('HDEL', k2, e[5]) end
    else
      local tb = redis.call('HMGET', k1, 'tokens', 'stamp')
      if tb[1] then
        local burst, rate = e[3], e[4]
        local tokens = math.min(burst, tonumber(tb[1]) + e[2])
        local level = math.min(burst, tokens + math.max(0, now - tonumber(tb[2])) * rate)
        redis.call('HSET', k1, 'tokens', num(tokens))
        redis.call('PEXPIRE', k1, int(math.ceil((burst - level) / rate * 1000) + 1000))
      end
    end
  end
end
"""

# ARGV[1]: [now, settlements]. Answers "1".
SETTLE = COMMON + """
local p = cjson.decode(ARGV[1])
settle(p[1], p[2], 0)
return 1
"""

# ARGV[1]: [reservation, now, hold_until, hold_ttl_ms, settlements (applied first), lines]
#   window line: ["w", estimate, cap (-1: never refuses), first counted slot]
#   bucket line: ["b", estimate, rate, burst, floor (null: never refuses)]
# KEYS: the settlements', then 2 per line: its counter (or bucket) hash and holds hash.
# Answers [admitted, states]: window [fits, used, held, [slot, amount, ...] where it does
# not fit]; bucket [fits, level].
RESERVE = COMMON + """
local p = cjson.decode(ARGV[1])
local reservation, now, hold_until, hold_ttl = p[1], p[2], num(p[3]), int(p[4])
settle(now, p[5], 0)
local ko = 2 * #p[5]
local lines = p[6]
local states, levels = {}, {}
local all_fit = true
for i, l in ipairs(lines) do
  local ckey, hkey = KEYS[ko + 2 * i - 1], KEYS[ko + 2 * i]
  local estimate = l[2]
  local fits
  if l[1] == 'w' then
    local cap, first = l[3], l[4]
    local used, counted, stale = 0, {}, {}
    local flat = redis.call('HGETALL', ckey)
    for j = 1, #flat, 2 do
      if tonumber(flat[j]) < first then
        stale[#stale + 1] = flat[j]
      else
        used = used + tonumber(flat[j + 1])
        counted[#counted + 1] = flat[j]
        counted[#counted + 1] = flat[j + 1]
      end
    end
    if #stale > 0 then redis.call('HDEL', ckey, unpack(stale)) end
    local held, expired = 0, {}
    local hflat = redis.call('HGETALL', hkey)
    for j = 1, #hflat, 2 do
      local sep = string.find(hflat[j + 1], ':', 1, true)
      if tonumber(string.sub(hflat[j + 1], sep + 1)) <= now then
        expired[#expired + 1] = hflat[j]
      else
        held = held + tonumber(string.sub(hflat[j + 1], 1, sep - 1))
      end
    end
    if #expired > 0 then redis.call('HDEL', hkey, unpack(expired)) end
    fits = cap < 0 or used + held + estimate <= cap
    if fits then counted = {} end
    states[i] = {fits and 1 or 0, int(used), int(held), counted}
  else
    local rate, burst = l[3], l[4]
    local level = burst
    local tb = redis.call('HMGET', ckey, 'tokens', 'stamp')
    if tb[1] then
      level = math.min(burst, tonumber(tb[1]) + math.max(0, now - tonumber(tb[2])) * rate)
    end
    fits = l[5] == cjson.null or level - estimate >= l[5]
    levels[i] = level
    states[i] = {fits and 1 or 0, num(level)}
  end
  if not fits then all_fit = false end
end
if all_fit then
  for i, l in ipairs(lines) do
    if l[1] == 'w' then
      if l[2] > 0 then
        redis.call('HSET', KEYS[ko + 2 * i], reservation, int(l[2]) .. ':' .. hold_until)
        redis.call('PEXPIRE', KEYS[ko + 2 * i], hold_ttl)
      end
    else
      local after = levels[i] - l[2]
      redis.call('HSET', KEYS[ko + 2 * i - 1], 'tokens', num(after), 'stamp', num(now))
      redis.call('PEXPIRE', KEYS[ko + 2 * i - 1],
                 int(math.ceil((l[4] - after) / l[3] * 1000) + 1000))
    end
  end
end
return cjson.encode({all_fit and 1 or 0, states})
"""

KINDS = ("c", "h", "b")


def _keep_ms(until: float, now: float) -> int:
    return max(1, math.ceil((until - now) * 1000)) + 1000


class RedisLedger:
    """Counters in one Redis (or one cluster slot), shared by every gateway using it."""

    def __init__(self, client: redis.Redis, *, key_prefix: str = "clawgress:quota",
                 label: str = "redis") -> None:
        self._client = client
        self._tag = "{" + key_prefix + "}"
        self._label = label
        self._reserve = client.register_script(RESERVE)
        self._settle = client.register_script(SETTLE)

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "clawgress:quota",
                 timeout_s: float = 0.25) -> RedisLedger:
        """A ledger on ``url``; no connection is made until the first call.

        A call that fails to connect is tried once more (a pooled connection may be stale
        after the server restarted); one that timed out is not: it may have run.
        """
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            health_check_interval=0,
        )
        return cls(client, key_prefix=key_prefix, label=f"redis {_without_password(url)}")

    @property
    def name(self) -> str:
        return self._label

    def key(self, kind: str, counter: str) -> str:
        return f"{self._tag}:{kind}:{counter}"

    def _fail(self, exc: Exception) -> LedgerUnavailable:
        return LedgerUnavailable(f"quota backend {self._label}: {exc}")

    def _settlements(self, entries: Sequence[Settlement], now: float,
                     keys: list[str]) -> list[list[Any]]:
        out: list[list[Any]] = []
        for e in entries:
            if isinstance(e, Booking):
                keys += (self.key("c", e.counter), self.key("h", e.counter))
                out.append(["w", e.slot, e.amount, _keep_ms(e.keep_until, now), e.reservation])
            elif isinstance(e, Refund):
                keys += (self.key("b", e.counter), self.key("b", e.counter))
                out.append(["b", e.tokens, e.burst, e.rate])
        return out

    def reserve(self, reservation: str, lines: Sequence[Line], now: float,
                hold_until: float, settle: Sequence[Settlement] = ()) -> Snapshot:
        keys: list[str] = []
        done = self._settlements(settle, now, keys)
        wanted: list[list[Any]] = []
        for line in lines:
            if isinstance(line, WindowLine):
                keys += (self.key("c", line.counter), self.key("h", line.counter))
                wanted.append(["w", line.estimate, -1 if line.cap is None else line.cap,
                               line.first_slot])
            else:
                b = line.bucket
                keys += (self.key("b", line.counter), self.key("b", line.counter))
                wanted.append(["b", line.estimate, b.rate, b.burst,
                               b.floor if line.enforce else None])
        payload = orjson.dumps([reservation, now, hold_until, _keep_ms(hold_until, now),
                                done, wanted])
        try:
            reply: Any = orjson.loads(self._reserve(keys=keys, args=[payload],
                                                    client=self._client))
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None
        fits: list[bool] = []
        states: list[State] = []
        for line, item in zip(lines, reply[1], strict=True):
            fits.append(bool(item[0]))
            if isinstance(line, WindowLine):
                flat = item[3] if isinstance(item[3], list) else []  # {}: an empty table
                slots = tuple((int(flat[j]), int(flat[j + 1])) for j in range(0, len(flat), 2))
                states.append(WindowState(int(item[1]), int(item[2]), tuple(sorted(slots))))
            else:
                states.append(BucketState(float(item[1])))
        return Snapshot(bool(reply[0]), tuple(fits), tuple(states))

    def settle(self, entries: Sequence[Settlement], now: float) -> None:
        keys: list[str] = []
        done = self._settlements(entries, now, keys)
        if not done:
            return
        try:
            self._settle(keys=keys, args=[orjson.dumps([now, done])], client=self._client)
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None

    def read(self, lines: Sequence[Line], now: float) -> tuple[State, ...]:
        pipe = self._client.pipeline(transaction=False)
        for line in lines:
            if isinstance(line, WindowLine):
                pipe.hgetall(self.key("c", line.counter))
                pipe.hgetall(self.key("h", line.counter))
            else:
                pipe.hmget(self.key("b", line.counter), ["tokens", "stamp"])
        try:
            replies: list[Any] = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None
        out: list[State] = []
        i = 0
        for line in lines:
            if isinstance(line, WindowLine):
                usage, holds = replies[i], replies[i + 1]
                i += 2
                slots = tuple(sorted((int(s), int(a)) for s, a in usage.items()
                                     if int(s) >= line.first_slot))
                held = 0
                for value in holds.values():
                    amount, _, expires = value.decode().partition(":")
                    if float(expires) > now:
                        held += int(amount)
                out.append(WindowState(sum(a for _, a in slots), held, slots))
            else:
                tokens, stamp = replies[i]
                i += 1
                out.append(BucketState(buckets.level(
                    float(tokens) if tokens is not None else None,
                    float(stamp) if stamp is not None else now, now, line.bucket)))
        return tuple(out)

    def counters(self) -> set[str]:
        head = len(self._tag) + 3
        try:
            return {key.decode()[head:]
                    for key in self._client.scan_iter(match=self._glob() + ":*", count=1000)}
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None

    def _glob(self) -> str:
        # The tag's braces are literal in a SCAN pattern; escape glob characters.
        return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self._tag)

    def reset(self, counters: Iterable[str]) -> int:
        wanted = sorted(set(counters))
        pipe = self._client.pipeline(transaction=True)
        for counter in wanted:
            pipe.delete(*(self.key(k, counter) for k in KINDS))
        try:
            deleted: list[int] = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None
        return sum(1 for n in deleted if n)

    def ping(self) -> bool:
        """One round trip with nothing in it (the benchmark's reference)."""
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError) as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        self._client.close()


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return scheme + sep + rest
