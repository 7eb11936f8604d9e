"""What happens in the shop during one minute, as log lines of its services.

:func:`minute_lines` is pure: the seed and the minute decide every line, so a
minute written during a backfill and the same minute written live are the same
text. Its business events are exactly :func:`pang.traffic.cycles.minute_counts`
of the minute (with the running incident's drops): ``order.placed``,
``payment.approved`` and ``payment.failed`` lines, all timestamped inside the
minute, so counting them per minute gives back the rollups.

The requests behind them:

- a **checkout** per order placed, one trace id across gateway -> cart ->
  order -> payment -> shipment (payment only for the orders that got a payment
  event; shipment only for approved ones). Payments beyond the minute's orders
  are retries of earlier orders (gateway -> payment);
- **browsing** (searches, product pages, cart additions): about
  ``browse_per_order`` requests per expected order, times ``scale``;
- the gateway's health checks, periodic jobs of search, cart and shipment;
- **error bursts**: about one hour in four has 5-40 seconds of ERROR lines with
  stack traces in one service, with no effect on the business (noise an alert
  must not fire on);
- **incidents**: during a bad deploy of X that slows Y, Y's latency climbs, Y
  logs timeouts with stack traces, the gateway answers 504 to the checkouts
  that fail (about as many as the orders dropped), and X logs its restarts at
  the deploy and the rollback; during a payment-provider outage, payment logs
  the provider's errors.

``scale`` multiplies everything that is not a business event (browsing, the
non-business lines of checkouts, failures, bursts), so a small machine can run
the shop's full business rate with a fraction of the log volume.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pang.traffic import formats
from pang.traffic.cycles import RateModel, floor_minute, minute_counts, poisson, rng_for
from pang.traffic.formats import Failure, Stamp
from pang.traffic.incidents import SERVICES, Incident, Schedule

__all__ = ["PODS", "Line", "Volume", "minute_lines", "pod_names"]

PODS: dict[str, int] = {"gateway": 3, "search": 2, "cart": 2, "order": 2, "payment": 2, "shipment": 1}
_LINES_STREAM = 2
_MAX_OFF = 59.999


class Line(NamedTuple):
    off: float  # seconds into the minute
    service: str
    pod: int
    text: str  # one log event (a stack trace makes it several physical lines)


@dataclass(frozen=True)
class Volume:
    """How much non-business logging there is around the business events."""

    scale: float = 1.0  # multiplies all non-business lines
    browse_per_order: float = 3.0
    max_failures_per_minute: int = 400  # logged failures (stack traces) per minute, before scale

    def __post_init__(self) -> None:
        if not 0 <= self.scale <= 100:
            raise ValueError("scale must be between 0 and 100")


def pod_names(seed: int) -> dict[str, list[str]]:
    """Kubernetes-like pod names per service, fixed by the seed (``gateway-7c9f4-qz2lx``)."""
    rng = random.Random(f"{seed}:pods")
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    out: dict[str, list[str]] = {}
    for service in SERVICES:
        rs = "".join(rng.choice("0123456789abcdef") for _ in range(5))
        out[service] = [f"{service}-{rs}-{''.join(rng.choice(alphabet) for _ in range(5))}" for _ in range(PODS[service])]
    return out


# --------------------------------------------------------------------------- catalogs

_WORDS = ("shoes", "jacket", "lamp", "coffee", "headphones", "backpack", "socks", "kettle", "desk", "charger",
          "sofa", "watch", "gloves", "mug", "pillow", "drill", "tent", "scarf", "blender", "monitor")
_PROVIDERS = ("adyen", "stripe", "paypal")
_DECLINES = ("card_declined", "insufficient_funds", "3ds_failed", "expired_card")
_CARRIERS = ("dhl", "ups", "dpd", "hermes")

_FAIL: dict[str, Failure] = {
    "cart": Failure(
        "org.springframework.dao.QueryTimeoutException", "Redis command timed out after 2 second(s)",
        ("org.springframework.data.redis.connection.lettuce.LettuceExceptionConverter.convert(LettuceExceptionConverter.java:70)",
         "org.springframework.data.redis.connection.lettuce.LettuceConnection.await(LettuceConnection.java:1015)",
         "com.shop.cart.CartRepository.load(CartRepository.java:57)",
         "com.shop.cart.CartService.checkout(CartService.java:112)",
         "com.shop.cart.CartController.checkout(CartController.java:48)"),
        Failure("io.lettuce.core.RedisCommandTimeoutException", "Command timed out after 2 second(s)",
                ("io.lettuce.core.internal.ExceptionFactory.createTimeoutException(ExceptionFactory.java:63)",
                 "io.lettuce.core.internal.Futures.awaitOrCancel(Futures.java:233)"), more=48),
    ),
    "order": Failure(
        "org.springframework.transaction.CannotCreateTransactionException", "Could not open JPA EntityManager for transaction",
        ("org.springframework.orm.jpa.JpaTransactionManager.doBegin(JpaTransactionManager.java:466)",
         "org.springframework.transaction.support.AbstractPlatformTransactionManager.startTransaction(AbstractPlatformTransactionManager.java:531)",
         "com.shop.order.OrderService.place(OrderService.java:74)",
         "com.shop.order.OrderController.create(OrderController.java:39)"),
        Failure("java.sql.SQLTransientConnectionException",
                "HikariPool-1 - Connection is not available, request timed out after 3000ms.",
                ("com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)",
                 "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)"), more=61),
    ),
    "payment": Failure(
        "context.deadlineExceededError", "calling provider: context deadline exceeded",
        ("shop/payment/provider.(*Client).Charge(provider/client.go:142)",
         "shop/payment/checkout.(*Service).Pay(checkout/service.go:88)",
         "shop/payment/api.(*Handler).pay(api/handler.go:61)",
         "net/http.HandlerFunc.ServeHTTP(net/http/server.go:2171)"),
    ),
    "search": Failure(
        "org.apache.lucene.store.AlreadyClosedException", "this IndexReader is closed",
        ("org.apache.lucene.index.IndexReader.ensureOpen(IndexReader.java:257)",
         "org.apache.lucene.search.IndexSearcher.search(IndexSearcher.java:646)",
         "com.shop.search.ProductIndex.query(ProductIndex.java:93)",
         "com.shop.search.SearchController.search(SearchController.java:41)"),
    ),
    "shipment": Failure(
        "org.springframework.web.client.HttpServerErrorException", "503 Service Unavailable: carrier API",
        ("org.springframework.web.client.DefaultResponseErrorHandler.handleError(DefaultResponseErrorHandler.java:128)",
         "org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:915)",
         "com.shop.shipment.CarrierClient.book(CarrierClient.java:66)",
         "com.shop.shipment.ShipmentService.request(ShipmentService.java:52)"),
    ),
}
_PROVIDER_DOWN = Failure(
    "provider.UnavailableError", "provider answered 503 Service Unavailable",
    ("shop/payment/provider.(*Client).Charge(provider/client.go:151)",
     "shop/payment/checkout.(*Service).Pay(checkout/service.go:88)",
     "shop/payment/api.(*Handler).pay(api/handler.go:61)"),
)
_BURST_MESSAGES = {
    "search": "search failed",
    "cart": "loading cart failed",
    "order": "order lookup failed",
    "payment": "refund status poll failed",
    "shipment": "carrier booking failed",
}


# --------------------------------------------------------------------------- one minute


class _Minute:
    """Collects the lines of one minute; small helpers so the flows read like what happens."""

    def __init__(self, minute: datetime, seed: int, pods: dict[str, int]) -> None:
        self.minute = minute
        self.index = int(minute.timestamp()) // 60
        self.rng = rng_for(seed, minute, _LINES_STREAM)
        self.stamp = Stamp(minute)
        self.pods = pods
        self.lines: list[Line] = []
        self._ids = 0

    def trace(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def order_id(self) -> str:
        self._ids += 1
        return f"O{self.index}{self._ids:05d}"

    def thread(self, service: str) -> str:
        if service == "shipment":
            return f"kafka-consumer-{self.rng.randint(1, 4)}"
        return f"http-nio-8080-exec-{self.rng.randint(1, 40)}"

    def emit(self, service: str, off: float, level: str, message: str, trace: str | None = None, *,
             fields: dict[str, Any] | None = None, failure: Failure | None = None, action: str | None = None,
             pod: int | None = None) -> None:
        off = 0.0 if off < 0 else (_MAX_OFF if off > _MAX_OFF else off)
        text = formats.render(service, self.stamp, off, level, message, trace, thread=self.thread(service),
                              fields=fields, failure=failure, action=action)
        if pod is None:
            pod = self.rng.randrange(self.pods[service])
        self.lines.append(Line(off, service, pod, text))

    def access(self, off: float, method: str, path: str, status: int, ms: int, trace: str | None, upstream: str) -> None:
        level = "error" if status >= 500 else ("warn" if status >= 400 else "info")
        self.emit("gateway", off, level, f"{method} {path} {status} {ms}ms", trace, fields={
            "http.request.method": method, "url.path": path, "http.response.status_code": status,
            "duration_ms": ms, "upstream": upstream,
        })


def minute_lines(
    minute: datetime,
    seed: int,
    model: RateModel,
    schedule: Schedule,
    volume: Volume = Volume(),
) -> tuple[list[Line], dict[str, int]]:
    """Every log event of the minute starting at ``minute`` (sorted by time) and its business counts."""
    minute = floor_minute(minute)
    incident = schedule.active(minute)
    counts = minute_counts(model, minute, seed, incident.effects if incident else None)
    m = _Minute(minute, seed, PODS)
    rng = m.rng
    scale = volume.scale
    expected_orders = model.orders(minute)
    slowed = incident.slowed_service if incident is not None and incident.kind == "bad_deploy" else None

    _checkouts(m, counts, scale, slowed, incident)
    _browsing(m, poisson(rng, expected_orders * volume.browse_per_order * scale), slowed)
    _background(m, scale)
    if incident is not None:
        cap = max(1, int(volume.max_failures_per_minute * min(scale, 1.0))) if scale > 0 else 0
        _failures(m, incident, expected_orders, counts, cap)
    for dep in schedule.deployments(minute, minute + timedelta(minutes=1)):
        if floor_minute(dep.at) == minute:
            _restart(m, dep.service, dep.to_version)
        if dep.rolled_back is not None and floor_minute(dep.rolled_back) == minute:
            _restart(m, dep.service, dep.from_version)
    _bursts(m, seed, scale)
    m.lines.sort(key=lambda line: line.off)
    return m.lines, counts


def _checkouts(m: _Minute, counts: dict[str, int], scale: float, slowed: str | None, incident: Incident | None) -> None:
    rng = m.rng
    n_orders, n_ok, n_failed = counts["orders"], counts["payments"], counts["payment_failures"]
    outcomes = ["payment.approved"] * n_ok + ["payment.failed"] * n_failed
    rng.shuffle(outcomes)
    provider_down = incident is not None and incident.kind == "provider_outage"
    for i in range(max(n_orders, len(outcomes))):
        trace = m.trace()
        order_id = m.order_id()
        amount = round(rng.lognormvariate(3.7, 0.8), 2)
        outcome = outcomes[i] if i < len(outcomes) else None
        full = scale >= 1.0 or rng.random() < scale  # the non-business lines of this request
        slow_ms = rng.randint(1200, 4800) if slowed else 0
        if i < n_orders:
            t = rng.random() * 60.0
            cart_ms = rng.randint(8, 40) + (slow_ms if slowed == "cart" else 0)
            order_ms = rng.randint(15, 90) + (slow_ms if slowed == "order" else 0)
            if full:
                m.emit("cart", t - (cart_ms + order_ms) / 1000, "INFO", "cart checked out", trace,
                       fields={"cart_id": f"C{rng.getrandbits(40):010x}", "items": rng.randint(1, 6), "latency_ms": cart_ms})
            m.emit("order", t, "INFO", "order placed", trace, action="order.placed", fields={
                "order_id": order_id, "amount": amount, "currency": "EUR", "items": rng.randint(1, 6),
                "customer_id": f"U{rng.randint(1, 2_000_000)}", "latency_ms": order_ms,
            })
            path, upstream = "/api/checkout", "order"
        else:  # a payment retried for an earlier order
            t = rng.random() * 60.0
            path, upstream = f"/api/orders/{order_id}/payment", "payment"
        done = t
        if outcome is not None:
            pay_ms = rng.randint(120, 900) + (slow_ms if slowed == "payment" else 0)
            done = t + pay_ms / 1000
            provider = rng.choice(_PROVIDERS)
            if outcome == "payment.approved":
                m.emit("payment", done, "INFO", "payment approved", trace, action=outcome, fields={
                    "order_id": order_id, "amount": amount, "currency": "EUR", "provider": provider, "latency_ms": pay_ms})
                if full:
                    m.emit("shipment", done + 0.05, "INFO", "shipment requested", trace,
                           fields={"order_id": order_id, "carrier": rng.choice(_CARRIERS)})
            else:
                if provider_down:
                    reason = "provider_unavailable"
                elif slowed == "payment":
                    reason = "timeout"
                else:
                    reason = rng.choice(_DECLINES)
                m.emit("payment", done, "WARN", "payment failed", trace, action=outcome, fields={
                    "order_id": order_id, "amount": amount, "currency": "EUR", "provider": provider,
                    "reason": reason, "latency_ms": pay_ms})
        if full:
            total = int((done - t) * 1000) + rng.randint(20, 120) + slow_ms * (slowed in ("cart", "order"))
            status = 201 if outcome != "payment.failed" else 402
            m.access(done + 0.004, "POST", path, status, total, trace, upstream)
            if slowed is not None and rng.random() < 0.2:
                m.emit(slowed, done, "WARN", f"slow request: {slow_ms} ms", trace, fields={"latency_ms": slow_ms})


def _browsing(m: _Minute, n: int, slowed: str | None) -> None:
    rng = m.rng
    for _ in range(n):
        trace = m.trace()
        t = rng.random() * 60.0
        kind = rng.random()
        if kind < 0.5:
            query = " ".join(rng.sample(_WORDS, rng.randint(1, 2)))
            ms = rng.randint(8, 60)
            m.emit("search", t, "INFO", "search served", trace, fields={"q": f'"{query}"', "hits": rng.randint(0, 400), "took_ms": ms})
            m.access(t + ms / 1000 + 0.002, "GET", "/api/search", 200, ms + rng.randint(2, 15), trace, "search")
        elif kind < 0.8:
            m.access(t, "GET", f"/api/products/{rng.randint(10_000, 99_999)}", 200 if rng.random() > 0.01 else 404,
                     rng.randint(5, 40), trace, "catalog")
        else:
            ms = rng.randint(5, 30) + (rng.randint(1200, 4800) if slowed == "cart" else 0)
            m.emit("cart", t, "INFO", "item added to cart", trace,
                   fields={"sku": f"SKU-{rng.randint(10_000, 99_999)}", "qty": rng.randint(1, 3), "latency_ms": ms})
            m.access(t + ms / 1000 + 0.002, "POST", "/api/cart/items", 200, ms + rng.randint(2, 15), trace, "cart")


def _background(m: _Minute, scale: float) -> None:
    rng = m.rng
    for pod in range(PODS["gateway"]):  # kubelet probes, every 10 s
        first = rng.random() * 10
        for k in range(6):
            if scale >= 1.0 or rng.random() < scale:
                m.emit("gateway", first + 10 * k, "info", "GET /healthz 200 0ms", None, pod=pod, fields={
                    "http.request.method": "GET", "url.path": "/healthz", "http.response.status_code": 200,
                    "duration_ms": 0, "upstream": "self"})
    if scale > 0:
        for pod in range(PODS["search"]):
            m.emit("search", rng.random() * 60, "INFO", "index refreshed", None, pod=pod,
                   fields={"docs": 1_250_000 + rng.randint(-500, 500), "took_ms": rng.randint(40, 300)})
        m.emit("shipment", rng.random() * 60, "INFO", "carrier updates polled", None,
               fields={"updates": rng.randint(0, 300)})
        if m.index % 5 == 0:
            m.emit("cart", rng.random() * 60, "INFO", "expired carts evicted", None, fields={"evicted": rng.randint(50, 900)})


def _failures(m: _Minute, incident: Incident, expected_orders: float, counts: dict[str, int], cap: int) -> None:
    """The errors an incident makes visible in the logs (bounded by ``cap`` per minute)."""
    rng = m.rng
    if incident.kind == "provider_outage":
        n = min(cap, counts["payment_failures"])
        for _ in range(n):
            t = rng.random() * 60
            m.emit("payment", t, "ERROR", "provider call failed", m.trace(), failure=_PROVIDER_DOWN,
                   fields={"provider": rng.choice(_PROVIDERS), "attempt": rng.randint(1, 3)})
        return
    slowed = incident.slowed_service or "order"
    lost = max(0.0, incident.effects.get("orders", 0.0), incident.effects.get("payments", 0.0))
    n = min(cap, poisson(rng, expected_orders * lost))
    failure = _FAIL.get(slowed)
    for _ in range(n):
        trace = m.trace()
        t = rng.random() * 60
        m.emit(slowed, t, "ERROR", "checkout step failed", trace, failure=failure, fields={"latency_ms": rng.randint(3000, 5000)})
        m.access(t + 0.01, "POST", "/api/checkout", rng.choice((502, 504, 504, 504)), rng.randint(5000, 5100), trace, slowed)


def _restart(m: _Minute, service: str, version: str) -> None:
    """A rolling restart onto ``version``: each pod stops and starts within the minute."""
    rng = m.rng
    for pod in range(PODS[service]):
        t = rng.random() * 40
        if formats.STYLES[service] in ("access_json", "zap_json"):
            m.emit(service, t, "INFO", "shutting down", None, pod=pod, fields={"signal": "SIGTERM"})
            m.emit(service, t + 5, "INFO", "starting", None, pod=pod, fields={"version": version})
        else:
            m.emit(service, t, "INFO", "Commencing graceful shutdown. Waiting for active requests to complete", None, pod=pod)
            m.emit(service, t + 4, "INFO", f"Starting ShopApplication v{version} using Java 21.0.5 with PID 1", None, pod=pod)
            m.emit(service, t + 4 + rng.uniform(5, 12), "INFO", "Started ShopApplication", None, pod=pod,
                   fields={"version": version})


def _bursts(m: _Minute, seed: int, scale: float) -> None:
    """Error bursts with no business effect: about one hour in four, 5-40 s in one service."""
    if scale <= 0:
        return
    start_s = m.index * 60
    hour = start_s // 3600
    for h in (hour - 1, hour):
        rng = random.Random(f"{seed}:burst:{h}")
        if rng.random() >= 0.25:
            continue
        service = rng.choice(("search", "cart", "order", "payment", "shipment"))
        begin = h * 3600 + rng.randrange(3600)
        length = rng.randint(5, 40)
        per_second = rng.randint(2, 8) * min(scale, 1.0)
        lo, hi = max(begin, start_s), min(begin + length, start_s + 60)
        for s in range(lo, hi):
            k = int(per_second) + (m.rng.random() < per_second - int(per_second))
            for _ in range(k):
                m.emit(service, s - start_s + m.rng.random(), "ERROR", _BURST_MESSAGES[service], m.trace(),
                       failure=_FAIL[service])
