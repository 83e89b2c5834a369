"""End-to-end payment time against a running `ecom` whose Stripe is a localstripe (issue 14).

Run by bench/payments.sh. Each of --shoppers threads, until --seconds have passed, places an
order, creates a Stripe payment for it, confirms the PaymentIntent at localstripe with a
test card (what Stripe.js does in the shopper's browser) and polls the order until the
webhook localstripe sends has made it `paid`. Prints how many rounds completed and p50/p99
of create→paid (payment POST sent → order seen paid) and of the whole round (order POST
sent → order seen paid). Standard library only; every request has a timeout.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse

POLL_SECONDS = 0.02


class Http:
    """One kept-alive HTTP/1.1 connection to a loopback host."""

    def __init__(self, base, token=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.token = token
        self.conn = None

    def call(self, method, path, body=None, form=None, expect=(200,)):
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                res = self.conn.getresponse()
                payload = res.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        if res.status not in expect:
            raise RuntimeError(f"{method} {path}: {res.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def login(base, email, password):
    pair = Http(base).call("POST", "/auth/login", {"email": email, "password": password})
    return pair["access_token"]


def percentile(values, p):
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def shopper(args, product_id, email, results, failures, lock):
    Http(args.base).call("POST", "/auth/register", {"email": email, "password": args.password},
                         expect=(201,))
    store = Http(args.base, login(args.base, email, args.password))
    stripe = Http(args.localstripe, args.key)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            start = time.monotonic()
            order = store.call("POST", "/orders",
                               {"items": [{"product_id": product_id, "quantity": 1}]},
                               expect=(201,))
            created = time.monotonic()
            payment = store.call("POST", f"/orders/{order['id']}/payments",
                                 {"provider": "stripe"}, expect=(201,))
            intent = payment["reference"]
            stripe.call("POST", f"/v1/payment_intents/{intent}",
                        form={"payment_method": "pm_card_visa"})
            stripe.call("POST", f"/v1/payment_intents/{intent}/confirm", form={})
            give_up = time.monotonic() + args.timeout
            while store.call("GET", f"/orders/{order['id']}")["status"] != "paid":
                if time.monotonic() > give_up:
                    raise RuntimeError(f"order {order['id']} not paid within {args.timeout} s")
                time.sleep(POLL_SECONDS)
            paid = time.monotonic()
            with lock:
                results.append((paid - created, paid - start))
        except (RuntimeError, OSError, http.client.HTTPException, ValueError, KeyError) as e:
            with lock:
                failures.append(str(e))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--localstripe", required=True)
    parser.add_argument("--key", required=True, help="localstripe's secret key")
    parser.add_argument("--admin-email", required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    args.password = "bench-shopper-password-57"

    admin = Http(args.base, login(args.base, args.admin_email, args.admin_password))
    run = int(time.time())
    # A product per shopper: the figures are the payments', not a queue on one stock row.
    products = [admin.call("POST", "/products", {
        "name": f"Bench payment lamp {run}-{i}", "description": "paid for by the payments bench",
        "price": "10.00", "stock": 1000000, "category_name": "Bench"}, expect=(201,))["id"]
        for i in range(args.shoppers)]

    results, failures, lock = [], [], threading.Lock()
    threads = [threading.Thread(target=shopper, daemon=True, args=(
        args, products[i], f"pay-{run}-{i}@example.com", results, failures, lock))
        for i in range(args.shoppers)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + args.timeout + 60)
    elapsed = time.monotonic() - began

    to_paid = sorted(r[0] for r in results)
    whole = sorted(r[1] for r in results)
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    print(f"payments: {args.shoppers} shoppers, {elapsed:.1f} s, {len(results)} orders paid "
          f"({len(results) / elapsed:.2f}/s), {len(failures)} failed")
    print(f"  create payment -> order paid: p50 {ms(percentile(to_paid, 50))}, "
          f"p99 {ms(percentile(to_paid, 99))}, max {ms(to_paid[-1]) if to_paid else '-'}")
    print(f"  place order -> order paid:    p50 {ms(percentile(whole, 50))}, "
          f"p99 {ms(percentile(whole, 99))}, max {ms(whole[-1]) if whole else '-'}")
    for failure in failures[:5]:
        print(f"  failure: {failure}")
    raise SystemExit(1 if failures or not results else 0)


if __name__ == "__main__":
    main()
