from edge_sidecar.decision_cache import DecisionCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache: DecisionCache[str, int] = DecisionCache(clock=clock)
    cache.put("k", 1, ttl_s=2.0)
    assert cache.get("k") == 1
    clock.now = 1.99
    assert cache.get("k") == 1
    clock.now = 2.0
    assert cache.get("k") is None


def test_zero_ttl_is_not_cached_and_size_is_bounded() -> None:
    cache: DecisionCache[int, int] = DecisionCache(max_entries=3, clock=FakeClock())
    cache.put(99, 1, ttl_s=0)
    assert cache.get(99) is None
    for i in range(10):
        cache.put(i, i, ttl_s=10)
    assert len(cache) == 3
    assert cache.get(9) == 9
    assert cache.get(0) is None
