"""One bounded cache of scan-order index tables, shared by every order in the process.

Keys are (order, spatial shape, device); orders compare by value (type and constructor parameters), so the 24
blocks of a model that each hold their own ``cross_scan(4)`` share one set of tables per input size. The cache is
least-recently-used, bounded by bytes: ``index_cache.max_bytes`` (default ``DEFAULT_MAX_BYTES`` = 256 MiB, about
four 1024x1024 cross-scan entries or a hundred 200x200 ones) can be changed at any time; ``index_cache.clear()``
frees everything. A table larger than the whole budget is built, used and not kept.

    from ssmblocks.scan_orders import index_cache
    index_cache.max_bytes = 64 * 2**20
    index_cache.clear()
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from torch import Tensor

__all__ = ["DEFAULT_MAX_BYTES", "IndexCache", "index_cache"]

DEFAULT_MAX_BYTES = 256 * 2**20


def _nbytes(tensors: tuple[Tensor, ...]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views of one table count once)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


class IndexCache:
    """Least-recently-used cache of tensor tuples, bounded by their total bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._entries: OrderedDict[Hashable, tuple[tuple[Tensor, ...], int]] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.RLock()          # threads of one server share the cache
        self.max_bytes = max_bytes

    @property
    def max_bytes(self) -> int:
        """The byte budget; lowering it evicts the least recently used entries at once."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"the index cache budget must be >= 0 bytes, got {value}")
        with self._lock:
            self._max_bytes = int(value)
            self._evict()

    @property
    def nbytes(self) -> int:
        """Bytes held now (always <= ``max_bytes``)."""
        return self._nbytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def clear(self) -> None:
        """Drops every entry."""
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    def get(self, key: Hashable, build: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        """The entry for ``key``, built with ``build()`` and kept (if it fits the budget) on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
        value = build()                         # outside the lock: building may take a while
        size = _nbytes(value)
        with self._lock:
            if key not in self._entries and size <= self._max_bytes:
                self._entries[key] = (value, size)
                self._nbytes += size
                self._evict()
        return value

    def _evict(self) -> None:
        while self._nbytes > self._max_bytes:
            _, (_, size) = self._entries.popitem(last=False)
            self._nbytes -= size

    def __repr__(self) -> str:
        return f"IndexCache({len(self)} entries, {self._nbytes / 2**20:.1f} of {self._max_bytes / 2**20:.0f} MiB)"


index_cache = IndexCache()
