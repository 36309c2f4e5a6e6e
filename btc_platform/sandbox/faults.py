"""Fault plan: which requests get a broken answer instead of the normal one.

A plan is a list of rules; the first rule that matches a request *and* is in its
active window (after `skip` matches, for `count` matches) decides the fault; a rule
with `probability` < 1 fires on that share of its active matches, drawn from the
plan's seeded generator, so a storm replays the same way for the same seed.
Counters live in the plan, so replacing the plan resets them (one plan per run).
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import asdict, dataclass, field

KINDS = frozenset(
    {
        "429",
        "500",
        "502",
        "503",
        "empty_500",
        "malformed",
        "truncated",
        "timeout",
        "reset",
        "wrong_shape",
        "duplicate_rows",
        "html_200",  # status 200 with an HTML error page, as a proxy or CDN sends
        "gzip_corrupt",  # Content-Encoding: gzip over a corrupt deflate stream
        "trickle",  # the real body, sent in small pieces over `delay_s` (each read is quick)
        "short_page",  # the real body with the last half of its rows dropped
        "drop_mid_body",  # the full Content-Length announced, half the body sent, then the connection closed
    }
)


@dataclass(frozen=True)
class FaultRule:
    # `kind` first because it is the only field without a default; pass the rest by keyword.
    kind: str
    vendor: str = "*"
    path_regex: str = ".*"
    count: int | None = None
    skip: int = 0
    retry_after: float | None = None
    delay_s: float = 2.0
    probability: float = 1.0
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if (self.count is not None and self.count < 0) or self.skip < 0:
            raise ValueError("count and skip must be >= 0")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {self.probability}")
        object.__setattr__(self, "_pattern", re.compile(self.path_regex))

    @classmethod
    def from_dict(cls, d: dict) -> "FaultRule":
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_pattern", None)
        return d

    def matches(self, vendor: str | None, target: str) -> bool:
        # target is the request path with its query string, so a rule can aim at one page.
        return (self.vendor == "*" or self.vendor == vendor) and bool(self._pattern.search(target))


class FaultPlan:
    """Thread-safe rule list with per-rule match counters."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._seen: list[int] = []
        self.replace(rules or [], seed)

    def replace(self, rules: list[FaultRule], seed: int = 0) -> None:
        rules = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in rules]
        with self._lock:
            self._rules = rules
            self._seen = [0] * len(rules)
            self._rng = random.Random(seed)

    def pick(self, vendor: str | None, target: str) -> FaultRule | None:
        """Return the first rule active for this request.

        A request counts against the matching rules up to the chosen one only, so a
        list like [429 count=1, 500 count=1] plays out in order: 429, then 500, then ok.
        """
        with self._lock:
            for i, rule in enumerate(self._rules):
                if not rule.matches(vendor, target):
                    continue
                n = self._seen[i]
                self._seen[i] = n + 1
                if n >= rule.skip and (rule.count is None or n < rule.skip + rule.count):
                    if rule.probability >= 1.0 or self._rng.random() < rule.probability:
                        return rule
        return None

    def describe(self) -> list[dict]:
        with self._lock:
            return [dict(r.to_dict(), seen=n) for r, n in zip(self._rules, self._seen)]
