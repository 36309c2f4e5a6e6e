"""The one decoder from a model's answer to a trading action.

The GRPO reward, the evaluation and anything else that reads a model's answer must agree on what the
answer means, or a policy is trained against one reading and judged by another. This module is that
single reading. It accepts the phrasings the datasets teach (`preferences.action_text`), short forms
(`BUY`, `LIMIT SELL at 50bps`, `limit_buy_25bps`) and JSON objects (`{"action": "limit_buy",
"offset_bps": 25}`, optionally in a ```json fence); the first sentence of a text answer decides.
Anything ambiguous is rejected with a reason rather than guessed: an unparseable answer earns the
caller's penalty, never a lucky score.

Actions are named exactly as `PreferenceSpec.actions()` names them (`buy`, `sell`, `hold`,
`limit_buy_25bps`, `limit_sell_12.5bps`), which are also the keys of the `score_<action>` reward
columns. This module imports nothing heavy (no torch).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

MAX_OFFSET_BPS = 10_000.0
KINDS = ("market", "hold", "limit")
SIDES = ("buy", "sell")


class ActionDecodeError(ValueError):
    """An answer that names no single valid action; `.reason` says what was wrong."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _fmt_offset(offset: float) -> str:
    return str(int(offset)) if float(offset).is_integer() else str(offset)  # as PreferenceSpec.actions()


def _check_offset(offset: float) -> float:
    if not math.isfinite(offset) or offset <= 0:
        raise ActionDecodeError(f"limit offset must be a positive number of bps, got {offset:g}")
    if offset > MAX_OFFSET_BPS:
        raise ActionDecodeError(f"limit offset {offset:g} bps is absurd (> {MAX_OFFSET_BPS:g} bps)")
    return float(offset)


@dataclass(frozen=True)
class Action:
    kind: str  # "market", "hold" or "limit"
    side: str | None = None  # "buy"/"sell"; None for hold
    offset_bps: float | None = None  # limit orders only

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ActionDecodeError(f"unknown action kind {self.kind!r}")
        if (self.side is None) != (self.kind == "hold") or (self.side is not None and self.side not in SIDES):
            raise ActionDecodeError(f"side {self.side!r} does not fit a {self.kind} action")
        if (self.offset_bps is None) != (self.kind != "limit"):
            raise ActionDecodeError("a limit action needs offset_bps and only a limit action has one")
        if self.offset_bps is not None:
            object.__setattr__(self, "offset_bps", _check_offset(float(self.offset_bps)))

    @property
    def name(self) -> str:
        """The PreferenceSpec action name: buy, sell, hold, limit_buy_25bps, limit_sell_12.5bps."""
        if self.kind == "hold":
            return "hold"
        if self.kind == "market":
            return self.side
        return f"limit_{self.side}_{_fmt_offset(self.offset_bps)}bps"

    @classmethod
    def from_name(cls, name: str) -> Action:
        if name == "hold":
            return cls("hold")
        if name in SIDES:
            return cls("market", name)
        m = re.fullmatch(r"limit_(buy|sell)_(\d+(?:\.\d+)?)bps", name)
        if not m:
            raise ActionDecodeError(f"unknown action name {name!r}")
        return cls("limit", m[1], float(m[2]))


# ---- decoding -------------------------------------------------------------------------------

_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)(?:```|$)", re.S)
_PREFIX = re.compile(r"^(?:final\s+)?(?:action|decision|answer)\s*[:=]\s*", re.I)
_SENTENCE_END = re.compile(r"[.!?;:](?=\s|$)|\n")
_NEGATED = re.compile(r"\b(?:not|don't|dont|never|no)\s+(?:limit\s+)?(?:buy|sell|hold)\b")
_MENTION = re.compile(r"\b(limit\s+)?(buy|sell)\b|\bhold\b")
_BARE_LIMIT = re.compile(r"\blimit\b(?!\s+(?:buy|sell)\b)")
_OFFSET = re.compile(r"(?<![\w.,])(-?)\s*(\d[\d,]*(?:\.\d+)?)\s*(?:bps|bp|basis\s+points?)\b")


def _parse_words(text: str) -> tuple[str, str | None, float | None]:
    """(kind, side, offset) from a short phrase; raises ActionDecodeError."""
    s = text.lower().replace("_", " ")
    if _NEGATED.search(s):
        raise ActionDecodeError(f"negated action in {text.strip()!r}")
    found = {(("limit" if m[1] else "market") if m[2] else "hold", m[2]) for m in _MENTION.finditer(s)}
    if not found:
        raise ActionDecodeError(f"no action named (expected BUY, SELL, HOLD or LIMIT BUY/SELL) in {text.strip()!r}")
    if len(found) > 1:
        names = ", ".join(sorted({"market": sd, "limit": f"limit {sd}"}.get(k, k) for k, sd in found))
        raise ActionDecodeError(f"conflicting actions named: {names}")
    if _BARE_LIMIT.search(s):
        raise ActionDecodeError(f"'limit' not followed by buy or sell in {text.strip()!r}")
    (kind, side), = found
    offsets = {(-1 if m[1] else 1) * float(m[2].replace(",", "")) for m in _OFFSET.finditer(s)}
    if len(offsets) > 1:
        raise ActionDecodeError(f"conflicting offsets: {sorted(offsets)} bps")
    offset = offsets.pop() if offsets else None
    if offset is not None and kind != "limit":
        raise ActionDecodeError(f"offset of {offset:g} bps given for a {kind} action (a limit order says LIMIT)")
    return kind, side, offset


def _make(kind: str, side: str | None, offset: float | None) -> Action:
    if kind == "limit" and offset is None:
        raise ActionDecodeError(f"limit {side} without an offset in bps")
    if offset is not None:
        _check_offset(offset)
    return Action(kind, side, offset)


def _decode_json(body: str) -> Action:
    try:
        obj, _ = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as exc:
        raise ActionDecodeError(f"invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("action"), str):
        raise ActionDecodeError("invalid JSON action: expected an object with a string \"action\"")
    kind, side, offset = _parse_words(obj["action"])
    raw = obj.get("offset_bps")
    if raw is not None:
        try:
            if isinstance(raw, bool):
                raise ValueError
            given = float(str(raw).lower().removesuffix("bps").strip()) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise ActionDecodeError(f"invalid JSON action: offset_bps {raw!r} is not a number") from None
        if kind != "limit":
            raise ActionDecodeError(f"offset_bps given for a {kind} action")
        if offset is not None and offset != given:
            raise ActionDecodeError(f"conflicting offsets: {offset:g} in action, {given:g} in offset_bps")
        offset = given
    return _make(kind, side, offset)


def decode_action(text: str) -> Action:
    """The action a model's answer names; raises ActionDecodeError (with `.reason`) otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ActionDecodeError("empty completion")
    s = _PREFIX.sub("", text.strip())
    fence = _FENCE.match(s)
    if fence:
        s = fence[1].strip()
    if s.startswith(("{", "[")):
        return _decode_json(s)
    end = _SENTENCE_END.search(s)
    head = s[: end.start()] if end else s
    return _make(*_parse_words(head))


def try_decode(text: str) -> tuple[Action | None, str | None]:
    """(action, None) or (None, reason)."""
    try:
        return decode_action(text), None
    except ActionDecodeError as exc:
        return None, exc.reason


# ---- rewards --------------------------------------------------------------------------------

def _completion_text(completion) -> str:
    """A TRL completion as text: a string, or conversational [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, Mapping))
    return ""


def reward_for(completion: str, scores: Mapping[str, float], invalid_penalty: float) -> float:
    """The realized score of the action the completion names; `invalid_penalty` when it names no
    valid action or one the data never scored (an offset outside the dataset's candidates)."""
    action, _ = try_decode(_completion_text(completion))
    if action is None:
        return float(invalid_penalty)
    score = scores.get(action.name)
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return float(invalid_penalty)
    return float(score)


def scores_from_row(row: Mapping) -> dict[str, float]:
    """{action: score} from a GRPO row's `score_<action>` columns, NaN/None skipped."""
    out = {}
    for key, value in row.items():
        if not isinstance(key, str) or not key.startswith("score_") or value is None:
            continue
        value = float(value)
        if not math.isnan(value):
            out[key.removeprefix("score_")] = value
    return out
