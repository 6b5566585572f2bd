"""What one Alipay AI call costs (PROTOCOL B5, B6), as pure functions, plus the monthly request counter.

Why pure: LiteLLM reads ``_hidden_params["response_cost"]`` (LITELLM_NOTES "Cost"), the proxy's spend log
trusts it, and a price must be reproducible from a logged response alone. So every price here is a
function of the node's ``usage``, its ``actions``, the deployment's ``PricingConfig`` and the request's
position in the month (which the caller gets from a ``MonthlyCounter``, the one stateful part).

Pricing decisions (B6 leaves them open; each is the reading that bills what the contract says and no more):

* **request tier** — ``units = max(1, ceil((input_chars + output_chars) / 1000))``: "each started 1,000
  characters", and a request always starts its first block (an empty request is still a request).
  ``base = units × price_per_request_cny × tier factor``. The factor is that of the highest tier
  threshold the request's 1-based position in the month *exceeds*: with the default tiers requests
  1–10,000 pay 100 %, 10,001–100,000 pay 90 %, and so on. Per-request factors make the discount
  progressive (marginal) over the month, never retroactive.
* **token** — ``base = (prompt_tokens × input price + completion_tokens × output price) / 1e6``. When
  ``0 < chars < 5,000`` the whole base is scaled by ``5000 / chars``: the request is billed as if it had
  5,000 characters *of the same composition* (same tokens per character, same input/output split).
  Why this reading: it needs no tokens-per-character guess, it is continuous at 5,000 characters (no
  price cliff), monotone in length, and keeps the input/output prices meaningful. When no characters are
  reported (``0``/missing) there is nothing to extrapolate from, so the token price is billed unscaled and
  the breakdown says ``minimum_applied: False``. The monthly tiers do not apply to this scheme.
* **payment actions** — 0.6 % of each action whose ``status`` is ``SUCCESS``; FAILED ones cost nothing.
  Each fee is rounded half-up to the fen/cent (0.01) in the action's currency, as payment fees are
  settled, and converted to CNY when the action is in USD. An action in another currency, or with an
  amount that is not a non-negative number, is not guessed at: it is listed under
  ``unpriced_actions`` and adds nothing.
* **embeddings** — input characters and prompt tokens only (output 0). Several gateway calls for one
  ``litellm.embedding`` (inputs split in batches of 32) are several requests: pass the per-call usages
  as a sequence and the first call's month position.
* **streaming** — priced like chat from the final chunk's ``usage`` (``stream_usage`` collects it).
* Arithmetic is in ``Decimal`` (no binary-float drift in sums of 0.03s); ``Cost`` holds floats because
  that is what LiteLLM stores. ``usd = cny / cny_per_usd``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import ConfigurationError
from ..resilience.redis_clients import RedisClients
from ..transport.sync_driver import SYNC
from ..wire.signing import BEIJING

SCHEMES = ("request", "token")
CHARS_PER_UNIT = 1000
TOKEN_MIN_CHARS = 5000
ACTION_FEE_RATE = Decimal("0.006")
#: (requests already made this month, price factor): the default progressive discount.
DEFAULT_TIERS: tuple[tuple[int, float], ...] = ((0, 1.0), (10_000, 0.9), (100_000, 0.8), (1_000_000, 0.7))
#: Setting names (as in ``settings.ENV``) this module reads.
SETTINGS = (
    "pricing_scheme", "price_per_request_cny", "price_input_per_million_cny",
    "price_output_per_million_cny", "cny_per_usd", "pricing_tiers",
)
MONTH_KEY_PREFIX = "litellm_alipay:month"
#: A month key lives this long after the month starts: every month fits, with days to spare for late reads.
MONTH_KEY_TTL = timedelta(days=40)

_CENT = Decimal("0.01")
_MILLION = Decimal(1_000_000)


# ------------------------------------------------------------------------------------------ config
def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigurationError(name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ConfigurationError(name, f"must be a {'non-negative' if allow_zero else 'positive'} number, "
                                       f"got {value!r}")
    return number


def parse_tiers(value: Any) -> tuple[tuple[int, float], ...]:
    """Tiers from a list of ``[threshold, factor]`` pairs, a ``{threshold: factor}`` mapping, or the JSON
    of either (environment variables are strings). Thresholds start at 0 and rise; factors lie in (0, 1]
    and never rise, since a volume discount that made later requests dearer is a typo, not a contract."""
    name = "pricing_tiers"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(name, "must be JSON such as [[0, 1.0], [10000, 0.9]]") from None
    if isinstance(value, Mapping):
        value = sorted(value.items(), key=lambda item: float(item[0]))
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
        raise ConfigurationError(name, "must be a non-empty list of [threshold, factor] pairs")
    tiers: list[tuple[int, float]] = []
    for pair in value:
        if not isinstance(pair, Sequence) or isinstance(pair, str | bytes) or len(pair) != 2:
            raise ConfigurationError(name, f"each tier must be a [threshold, factor] pair, got {pair!r}")
        raw_threshold, raw_factor = pair
        try:
            threshold = int(str(raw_threshold))
        except ValueError:
            raise ConfigurationError(name, f"threshold {raw_threshold!r} is not a whole number") from None
        factor = _positive(name, raw_factor)
        if threshold < 0 or factor > 1:
            raise ConfigurationError(name, f"tier {pair!r}: threshold must be >= 0 and factor in (0, 1]")
        if tiers and (threshold <= tiers[-1][0] or factor > tiers[-1][1]):
            raise ConfigurationError(name, "thresholds must rise and factors must not rise")
        tiers.append((threshold, factor))
    if tiers[0][0] != 0:
        raise ConfigurationError(name, "the first tier must start at threshold 0")
    return tuple(tiers)


@dataclass(frozen=True)
class PricingConfig:
    """One deployment's contract prices. Validated on construction, so a bad price fails at startup
    (naming the setting) rather than as a wrong bill later."""

    scheme: str = "request"
    price_per_request_cny: float = 0.03
    price_input_per_million_cny: float | None = None
    price_output_per_million_cny: float | None = None
    cny_per_usd: float = 7.1
    tiers: tuple[tuple[int, float], ...] = DEFAULT_TIERS

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ConfigurationError("pricing_scheme", f"must be one of {SCHEMES}, got {self.scheme!r}")
        _positive("price_per_request_cny", self.price_per_request_cny, allow_zero=True)
        _positive("cny_per_usd", self.cny_per_usd)
        for name in ("price_input_per_million_cny", "price_output_per_million_cny"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value, allow_zero=True)
            elif self.scheme == "token":
                # No default: a token price is per contract, and an invented one would mis-bill silently.
                raise ConfigurationError(name, "is required when pricing_scheme is token")
        object.__setattr__(self, "tiers", parse_tiers(self.tiers))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> PricingConfig:
        """From raw setting values (deployment ``litellm_params``, env strings, or ``AlipaySettings``
        fields); ``None``/blank means the default."""

        def given(name: str) -> Any:
            value = settings.get(name)
            return None if value is None or (isinstance(value, str) and not value.strip()) else value

        scheme = given("pricing_scheme")
        per_request, rate, tiers = given("price_per_request_cny"), given("cny_per_usd"), given("pricing_tiers")
        prices = {
            name: _positive(name, given(name), allow_zero=True)
            for name in ("price_input_per_million_cny", "price_output_per_million_cny")
            if given(name) is not None
        }
        return cls(
            scheme=str(scheme).strip().lower() if scheme is not None else "request",
            price_per_request_cny=0.03 if per_request is None
            else _positive("price_per_request_cny", per_request, allow_zero=True),
            cny_per_usd=7.1 if rate is None else _positive("cny_per_usd", rate),
            tiers=DEFAULT_TIERS if tiers is None else parse_tiers(tiers),
            **prices,
        )

    @classmethod
    def from_object(cls, obj: Any) -> PricingConfig:
        """From anything carrying the setting names as attributes, e.g. ``AlipaySettings``."""
        return cls.from_settings({name: getattr(obj, name, None) for name in SETTINGS})


# ------------------------------------------------------------------------------------------- cost
@dataclass(frozen=True)
class Cost:
    """A priced call: what LiteLLM records (``usd``), what the contract bills (``cny``), and why."""

    usd: float
    cny: float
    breakdown: dict[str, Any] = field(default_factory=dict)


def _get(usage: Any, key: str) -> int:
    """An integer usage field from a mapping or a LiteLLM ``Usage`` object; missing/None/bad -> 0."""
    value = usage.get(key) if isinstance(usage, Mapping) else getattr(usage, key, None)
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _dec(value: float) -> Decimal:
    return Decimal(str(value))


def tier_for(position: int, tiers: Sequence[tuple[int, float]]) -> tuple[int, float]:
    """``(threshold, factor)`` for the request at 1-based ``position`` in the month."""
    if position < 1:
        raise ValueError(f"month_position is 1-based, got {position}")
    chosen = tiers[0]
    for tier in tiers:
        if position > tier[0]:
            chosen = tier
    return chosen


def _price_request(input_chars: int, output_chars: int, prompt_tokens: int, completion_tokens: int,
                   config: PricingConfig, position: int) -> tuple[Decimal, dict[str, Any]]:
    """The base price (no action fees) of one gateway request and its itemisation."""
    if position < 1:
        raise ValueError(f"month_position is 1-based, got {position}")
    chars = input_chars + output_chars
    item: dict[str, Any] = {
        "input_chars": input_chars, "output_chars": output_chars, "chars": chars,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "month_position": position,
    }
    if config.scheme == "request":
        threshold, factor = tier_for(position, config.tiers)
        units = max(1, -(-chars // CHARS_PER_UNIT))
        base = units * _dec(config.price_per_request_cny) * _dec(factor)
        item.update(units=units, unit_price_cny=config.price_per_request_cny, tier_threshold=threshold,
                    tier_factor=factor, tier_discount=float(1 - _dec(factor)))
    else:
        assert config.price_input_per_million_cny is not None
        assert config.price_output_per_million_cny is not None
        token_price = (prompt_tokens * _dec(config.price_input_per_million_cny)
                       + completion_tokens * _dec(config.price_output_per_million_cny)) / _MILLION
        applied = 0 < chars < TOKEN_MIN_CHARS
        scale = Decimal(TOKEN_MIN_CHARS) / chars if applied else Decimal(1)
        base = token_price * scale
        item.update(token_price_cny=float(token_price), minimum_chars=TOKEN_MIN_CHARS,
                    minimum_applied=applied, billed_chars=TOKEN_MIN_CHARS if applied else chars,
                    minimum_scale=float(scale))
    item["base_cny"] = float(base)
    return base, item


def _fee_to_cny(amount: Any, currency: Any, config: PricingConfig) -> tuple[Decimal, Decimal] | str:
    """``(fee in its currency, fee in CNY)``, or why the action cannot be priced."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return "amount is not a number"
    if not value.is_finite() or value < 0:
        return "amount is not a non-negative number"
    unit = str(currency or "CNY").upper()
    fee = (value * ACTION_FEE_RATE).quantize(_CENT, rounding=ROUND_HALF_UP)
    if unit == "CNY":
        return fee, fee
    if unit == "USD":
        return fee, fee * _dec(config.cny_per_usd)
    return f"currency {unit} has no configured rate"


def action_fees(actions: Iterable[Mapping[str, Any]] | None, config: PricingConfig
                ) -> tuple[Decimal, list[dict[str, Any]], list[dict[str, Any]]]:
    """``(total CNY, priced items, unpriced items)`` of the 0.6 % fee on executed actions (B5)."""
    total = Decimal(0)
    priced: list[dict[str, Any]] = []
    unpriced: list[dict[str, Any]] = []
    for action in actions or ():
        if not isinstance(action, Mapping) or action.get("status") != "SUCCESS":
            continue
        ident = {key: action.get(key) for key in ("action", "out_request_no", "trade_no", "amount", "currency")}
        result = _fee_to_cny(action.get("amount"), action.get("currency"), config)
        if isinstance(result, str):
            unpriced.append({**ident, "reason": result})
            continue
        fee, fee_cny = result
        total += fee_cny
        priced.append({**ident, "fee": float(fee), "fee_cny": float(fee_cny)})
    return total, priced, unpriced


def _cost(kind: str, base: Decimal, items: list[dict[str, Any]], actions: Iterable[Mapping[str, Any]] | None,
          config: PricingConfig) -> Cost:
    fees, priced, unpriced = action_fees(actions, config)
    total = base + fees
    usd = total / _dec(config.cny_per_usd)
    breakdown: dict[str, Any] = {"scheme": config.scheme, "kind": kind}
    if len(items) == 1:
        breakdown.update(items[0])
    else:
        breakdown["requests"] = items
        for key in ("input_chars", "output_chars", "chars", "prompt_tokens", "completion_tokens"):
            breakdown[key] = sum(item[key] for item in items)
    breakdown.update(
        base_cny=float(base), action_fees=priced, action_fees_cny=float(fees),
        unpriced_actions=unpriced, cny_per_usd=config.cny_per_usd, total_cny=float(total),
        total_usd=float(usd),
    )
    return Cost(usd=float(usd), cny=float(total), breakdown=breakdown)


def price_chat(usage: Mapping[str, Any] | Any, actions: Iterable[Mapping[str, Any]] | None,
               config: PricingConfig, month_position: int = 1) -> Cost:
    """The cost of one chat call (streamed or not) from its B1 ``usage`` (tokens and ``input_chars`` /
    ``output_chars``; a LiteLLM ``Usage`` plus ``_hidden_params["alipay"]`` merged into one mapping
    works) and its B5 ``actions``. ``month_position`` is the call's 1-based place in the app's month."""
    base, item = _price_request(_get(usage, "input_chars"), _get(usage, "output_chars"),
                                _get(usage, "prompt_tokens"), _get(usage, "completion_tokens"),
                                config, month_position)
    return _cost("chat", base, [item], actions, config)


def price_embedding(usage: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Any, config: PricingConfig,
                    month_position: int = 1) -> Cost:
    """The cost of an embedding: input characters and prompt tokens only. ``usage`` is one B2 usage,
    or the per-call usages of a split request, priced as requests ``month_position``,
    ``month_position + 1``, …"""
    usages = list(usage) if isinstance(usage, Sequence) and not isinstance(usage, str | bytes) else [usage]
    if not usages:
        raise ValueError("price_embedding needs at least one usage")
    base = Decimal(0)
    items = []
    for offset, one in enumerate(usages):
        part, item = _price_request(_get(one, "input_chars"), 0, _get(one, "prompt_tokens"), 0,
                                    config, month_position + offset)
        base += part
        items.append(item)
    return _cost("embedding", base, items, None, config)


def stream_usage(chunks: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(usage, actions)`` of a B3 stream: the last chunk carrying ``usage`` wins; ``actions`` are
    collected from any chunk that carries them. Feed the result to ``price_chat``."""
    usage: dict[str, Any] = {}
    actions: list[dict[str, Any]] = []
    for chunk in chunks:
        if isinstance(chunk.get("usage"), Mapping):
            usage = dict(chunk["usage"])
        actions.extend(a for a in chunk.get("actions") or () if isinstance(a, Mapping))
    return usage, actions


# ----------------------------------------------------------------------------------- month count
def beijing_now() -> datetime:
    return datetime.now(BEIJING)


def month_key(app_id: str, when: datetime) -> str:
    """``litellm_alipay:month:{app_id}:{YYYY-MM}``; the month is Beijing's (Alipay bills in UTC+8)."""
    return f"{MONTH_KEY_PREFIX}:{app_id}:{when.astimezone(BEIJING):%Y-%m}"


def month_expiry(when: datetime) -> int:
    """Unix time at which the month's key may go: 40 days after the Beijing month began. A fixed
    instant (EXPIREAT), so every INCR may set it again without extending the key's life."""
    local = when.astimezone(BEIJING)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int((start + MONTH_KEY_TTL).timestamp())


class MonthlyCounter:
    """How many requests an app made this month. ``book`` counts ``requests`` more and returns the
    1-based month position of the first of them: the ``month_position`` pricing needs."""

    def __init__(self, clock: Callable[[], datetime] = beijing_now) -> None:
        self.clock = clock

    def book(self, app_id: str, requests: int = 1) -> int:
        raise NotImplementedError

    async def abook(self, app_id: str, requests: int = 1) -> int:
        return self.book(app_id, requests)

    def count(self, app_id: str) -> int:
        raise NotImplementedError


def _check_requests(requests: int) -> None:
    if requests < 1:
        raise ValueError(f"requests must be at least 1, got {requests}")


class InMemoryMonthlyCounter(MonthlyCounter):
    """One process's count: right for a single worker; use Redis when several workers share an app."""

    def __init__(self, clock: Callable[[], datetime] = beijing_now) -> None:
        super().__init__(clock)
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[str, int]] = {}  # app_id -> (month key, count): old months drop

    def book(self, app_id: str, requests: int = 1) -> int:
        _check_requests(requests)
        key = month_key(app_id, self.clock())
        with self._lock:
            current_key, count = self._counts.get(app_id, (key, 0))
            if current_key != key:
                count = 0
            self._counts[app_id] = (key, count + requests)
        return count + 1

    def count(self, app_id: str) -> int:
        key = month_key(app_id, self.clock())
        current_key, count = self._counts.get(app_id, (key, 0))
        return count if current_key == key else 0


class RedisMonthlyCounter(MonthlyCounter):
    """The count shared by every worker: ``INCRBY`` + ``EXPIREAT`` in one MULTI, so a crash between the
    two cannot leave a key that never expires. Redis is imported only when this class is used."""

    def __init__(self, url: str, clock: Callable[[], datetime] = beijing_now) -> None:
        super().__init__(clock)
        self.url = url
        self._clients = RedisClients(url)

    def book(self, app_id: str, requests: int = 1) -> int:
        """``abook`` driven from sync (``transport/sync_driver.py``)."""
        return SYNC.run(self.abook(app_id, requests))

    async def abook(self, app_id: str, requests: int = 1) -> int:
        _check_requests(requests)
        now = self.clock()
        key = month_key(app_id, now)
        pipe = self._clients.for_running_loop().pipeline(transaction=True)
        pipe.incrby(key, requests)
        pipe.expireat(key, month_expiry(now))
        total, _ = await pipe.execute()
        return int(total) - requests + 1

    def count(self, app_id: str) -> int:
        return int(self._clients.sync().get(month_key(app_id, self.clock())) or 0)

    def close(self) -> None:
        self._clients.close()

    async def aclose(self) -> None:
        """Close this loop's async client."""
        await self._clients.aclose()


def monthly_counter(redis_url: str | None, clock: Callable[[], datetime] = beijing_now) -> MonthlyCounter:
    """Redis-backed when the deployment has ``redis_url``, else in-process."""
    return RedisMonthlyCounter(redis_url, clock) if redis_url else InMemoryMonthlyCounter(clock)


_shared: dict[str | None, MonthlyCounter] = {}
_shared_lock = threading.Lock()


def shared_counter(redis_url: str | None) -> MonthlyCounter:
    """One counter per store for the whole process: the volume discount is per app, whatever the model."""
    with _shared_lock:
        found = _shared.get(redis_url)
        if found is None:
            counter = monthly_counter(redis_url)
            if redis_url:  # bookkeeping never fails a call: a local count while Redis is away
                from ..resilience.failopen import FailOpen

                counter = FailOpen(counter, InMemoryMonthlyCounter(), "month counter")  # type: ignore[assignment]
            found = _shared[redis_url] = counter
        return found
