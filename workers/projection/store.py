"""The projection's Redis side: apply a batch of updates atomically and never backwards, read
where the projection stands, wipe it for a rebuild (shell: Redis I/O).

One Lua script applies a batch: Redis runs it atomically, so a hash, its index sets, the
notification and the projected offsets move together, and a projector killed between two
batches leaves a projection that is exactly "everything up to the offsets in meta". The
script refuses to apply anything when the meta record is missing: Redis was flushed or
restarted empty, and the projector must rebuild rather than write a partial copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis

from workers.projection.layout import RedisLayout
from workers.projection.updates import Update

MAX_UPDATES_PER_SCRIPT = 500
"""Updates one script call applies: Redis runs nothing else meanwhile, so a call stays short
(~1 ms for 500 hashes) whatever a batch holds."""

_OFFSET_FIELD = "offset:"
"""Meta fields `offset:<topic>:<partition>` hold the next offset to project."""

# KEYS: meta, then per update its hash and its index sets.
# ARGV: channel, ttl_ms (0: none), update count, then per update: source, offset, rank,
# topic_key, field count (0: a tombstone), index count, field/value pairs; then meta field count and
# field/value pairs (set unconditionally); then position count and source/next-offset pairs
# (set only forwards).
_APPLY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local channel, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local a, k, applied = 4, 2, 0
for _ = 1, n do
  local hash = KEYS[k]
  local source, offset, rank, topic_key = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
  local nfields, nindexes = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  a = a + 6
  local held = redis.call('HMGET', hash, 'source', 'offset', 'rank', 'topic_key', 'indexes')
  local newer
  if not held[2] then
    newer = nfields > 0
  elseif nfields == 0 then
    newer = held[4] == topic_key and (held[1] ~= source or offset > tonumber(held[2]))
  elseif tonumber(rank) ~= tonumber(held[3]) then
    newer = tonumber(rank) > tonumber(held[3])
  else
    newer = held[1] ~= source or offset > tonumber(held[2])
  end
  if newer then
    if nfields == 0 then
      if held[5] and held[5] ~= '' then
        for index in string.gmatch(held[5], '[^\\n]+') do redis.call('SREM', index, hash) end
      end
      redis.call('DEL', hash)
    else
      local indexes = {}
      for i = 1, nindexes do indexes[i] = KEYS[k + i] end
      local args = {hash, 'source', source, 'offset', ARGV[a - 5], 'rank', rank,
                    'topic_key', topic_key, 'indexes', table.concat(indexes, '\\n')}
      for i = 0, 2 * nfields - 1 do args[#args + 1] = ARGV[a + i] end
      redis.call('HSET', unpack(args))
      if ttl > 0 then redis.call('PEXPIRE', hash, ttl) end
      for i = 1, nindexes do
        redis.call('SADD', indexes[i], hash)
        if ttl > 0 then redis.call('PEXPIRE', indexes[i], ttl) end
      end
    end
    redis.call('PUBLISH', channel, hash)
    applied = applied + 1
  end
  a = a + 2 * nfields
  k = k + 1 + nindexes
end
local nmeta = tonumber(ARGV[a])
for i = 1, nmeta do redis.call('HSET', KEYS[1], ARGV[a + 2 * i - 1], ARGV[a + 2 * i]) end
a = a + 1 + 2 * nmeta
local npositions = tonumber(ARGV[a])
for i = 1, npositions do
  local field, next_offset = ARGV[a + 2 * i - 1], tonumber(ARGV[a + 2 * i])
  local held_offset = tonumber(redis.call('HGET', KEYS[1], field) or '-1')
  if next_offset > held_offset then redis.call('HSET', KEYS[1], field, next_offset) end
end
return applied
"""


class ProjectionLost(Exception):
    """Redis no longer holds the projection (flushed, or restarted without persistence)."""


class ProjectionStore:
    def __init__(self, client: Redis, layout: RedisLayout, ttl_ms: int) -> None:
        self.client = client
        self.layout = layout
        self.ttl_ms = ttl_ms
        self._apply = client.register_script(_APPLY)

    async def positions(self) -> dict[str, int] | None:
        """`topic:partition` -> the next offset to project; None when there is no projection."""
        meta = await self.client.hgetall(self.layout.meta)
        if not meta:
            return None
        return {
            field[len(_OFFSET_FIELD) :]: int(value)
            for field, value in ((_str(f), _str(v)) for f, v in meta.items())
            if field.startswith(_OFFSET_FIELD)
        }

    async def held(self) -> bool:
        """Whether Redis still holds the projection (its meta record)."""
        return bool(await self.client.exists(self.layout.meta))

    async def reset(self, meta: Mapping[str, str]) -> None:
        """Delete every key of the projection and start a new one (a rebuild's first step)."""
        batch: list[Any] = []
        async for key in self.client.scan_iter(match=self.layout.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.client.unlink(*batch)
                batch.clear()
        if batch:
            await self.client.unlink(*batch)
        await self.client.hset(self.layout.meta, mapping=cast(Mapping[Any, Any], meta))

    async def apply(
        self,
        updates: Sequence[Update],
        positions: Mapping[str, int],
        meta: Mapping[str, str],
    ) -> int:
        """Apply `updates`, then record `positions` and `meta`; how many hashes changed.
        ProjectionLost when Redis holds no projection (nothing is applied then)."""
        applied = 0
        chunks = [
            updates[i : i + MAX_UPDATES_PER_SCRIPT]
            for i in range(0, len(updates), MAX_UPDATES_PER_SCRIPT)
        ] or [[]]
        for number, chunk in enumerate(chunks, start=1):
            last = number == len(chunks)
            keys, argv = self._arguments(chunk, positions if last else {}, meta if last else {})
            result = int(await self._apply(keys=keys, args=argv))
            if result < 0:
                raise ProjectionLost(self.layout.meta)
            applied += result
        return applied

    def _arguments(
        self, updates: Sequence[Update], positions: Mapping[str, int], meta: Mapping[str, str]
    ) -> tuple[list[str], list[str | int]]:
        keys: list[str] = [self.layout.meta]
        argv: list[str | int] = [self.layout.changes, self.ttl_ms, len(updates)]
        for update in updates:
            fields = update.fields or {}
            keys.append(update.hash_key)
            keys.extend(update.indexes)
            argv += [update.source, update.offset, update.rank, update.topic_key]
            argv += [len(fields), len(update.indexes)]
            for name, value in fields.items():
                argv += [name, value]
        argv.append(len(meta))
        for name, value in meta.items():
            argv += [name, value]
        argv.append(len(positions))
        for source, next_offset in positions.items():
            argv += [_OFFSET_FIELD + source, next_offset]
        return keys, argv


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
