"""A shopper's, a guest's cart's and an admin's journey through the client generated from /openapi.json.

Run by sdk/journey.sh: journey.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD, with LOCALSTRIPE_URL
and LOCALSTRIPE_KEY naming the localstripe the server uses as Stripe. Every call to the
store goes through the generated `ecom_client` package; any unexpected status or body
fails. Only the shopper's browser step (Stripe.js confirming the PaymentIntent) talks to
localstripe directly.
"""

import base64
import datetime
import email as email_parser
import glob
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal

from ecom_client import AuthenticatedClient, Client
from ecom_client.api.admin import admin_change_user_role, admin_get_sales_report
from ecom_client.api.auth import login, refresh_token, register_user, verify_email
from ecom_client.api.carts import checkout_cart, create_cart, get_cart, merge_cart, set_cart_item
from ecom_client.api.catalog import (
    create_product,
    create_product_review,
    get_product,
    list_products,
)
from ecom_client.api.orders import (
    cancel_order,
    create_order,
    get_order,
    get_order_history,
    list_orders,
)
from ecom_client.api.payments import admin_refund_payment, create_payment, list_order_payments
from ecom_client.api.events import list_my_events
from ecom_client.api.users import get_current_user
from ecom_client.api.webhooks import create_webhook, list_webhook_deliveries
from ecom_client.models import (
    ChangeRoleRequest,
    CreateOrderRequest,
    CreatePaymentRequest,
    CreateProductRequest,
    CreateReviewRequest,
    CreateWebhookRequest,
    LoginForm,
    LoginRequest,
    MergeRequest,
    OrderActor,
    OrderItemRequest,
    OrderOut,
    OrderStatus,
    PaymentStatus,
    Problem,
    RefreshRequest,
    RefundRequest,
    RegisterRequest,
    VerifyEmailRequest,
    SetQuantityRequest,
)

BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD = sys.argv[1:4]
LOCALSTRIPE_URL = os.environ["LOCALSTRIPE_URL"]
LOCALSTRIPE_KEY = os.environ["LOCALSTRIPE_KEY"]
MAIL_DIR = os.environ["MAIL_DIR"]
STEPS = 0


def call(endpoint, expected, **kwargs):
    """Calls endpoint.sync_detailed and checks the status and the parsed body's type."""
    global STEPS
    res = endpoint.sync_detailed(**kwargs)
    name = endpoint.__name__.rsplit(".", 1)[-1]
    if res.status_code != expected:
        raise AssertionError(
            f"{name}: expected {expected}, got {res.status_code}: {res.content[:500]!r}"
        )
    if expected < 400 and isinstance(res.parsed, Problem):
        raise AssertionError(f"{name}: a success parsed as a Problem")
    # An error body is a Problem, or extends one (a checkout's CartHasProblems).
    if expected >= 400 and not isinstance(getattr(res.parsed, "code", None), str):
        raise AssertionError(f"{name}: an error not parsed as a Problem: {res.content!r}")
    STEPS += 1
    print(f"  ok {name} -> {res.status_code}")
    return res.parsed


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def authed(token):
    return AuthenticatedClient(base_url=BASE_URL, token=token, raise_on_unexpected_status=True)


class WebhookReceiver(http.server.BaseHTTPRequestHandler):
    """A shop's other system: takes the store's webhook POSTs on loopback and keeps them."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        WebhookReceiver.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/hooks/ecom"


def verify_standard_webhook(secret, headers, body):
    """The receiver's check (Standard Webhooks): HMAC-SHA256 over "{id}.{timestamp}.{body}"."""
    headers = {k.lower(): v for k, v in headers.items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, o) for o in offered)


def mailed_token(to, path, wait=30):
    """The token of the link to `path` in the newest mail to `to` among the server's .eml files."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for name in sorted(glob.glob(os.path.join(MAIL_DIR, "*.eml")), key=os.path.getmtime,
                           reverse=True):
            with open(name, "rb") as f:
                mail = email_parser.message_from_binary_file(f)
            if mail["To"] and to in mail["To"]:
                text = mail.get_payload(decode=True).decode() if not mail.is_multipart() else \
                    mail.get_payload(0).get_payload(decode=True).decode()
                found = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_\-]+)", text)
                if found:
                    return mail["Message-ID"], found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} with a {path} link in {MAIL_DIR}")


def stripe_js_confirm(intent_id, payment_method):
    """What Stripe.js does in the shopper's browser: attach the card, confirm the intent."""
    for path, form in ((f"/v1/payment_intents/{intent_id}", {"payment_method": payment_method}),
                       (f"/v1/payment_intents/{intent_id}/confirm", {})):
        req = urllib.request.Request(
            LOCALSTRIPE_URL + path, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Authorization": f"Bearer {LOCALSTRIPE_KEY}"})
        with urllib.request.urlopen(req, timeout=10) as res:
            intent = json.load(res)
    return intent


anonymous = Client(base_url=BASE_URL, raise_on_unexpected_status=True)
run = uuid.uuid4().hex[:8]

print("admin: log in (OAuth2 password form), create two products")
pair = call(login, 200, client=anonymous,
            body=LoginForm(username=ADMIN_EMAIL, password=ADMIN_PASSWORD, grant_type="password"))
admin = authed(pair.access_token)
keyboard = call(create_product, 201, client=admin, body=CreateProductRequest(
    name=f"Journey Keyboard {run}", description="Quiet mechanical keys", price="49.99",
    stock=10, category_name="Journey"))
cable = call(create_product, 201, client=admin, body=CreateProductRequest(
    name=f"Journey Cable {run}", description="Braided USB-C cable", price="9.50", stock=5,
    category_id=keyboard.category.id))
check(keyboard.price == "49.99" and keyboard.category.name == "Journey", f"product: {keyboard}")

print("shopper: register, log in, refresh")
email = f"shopper-{run}@example.com"
password = "violet-harbor-compass-17"
user = call(register_user, 201, client=anonymous,
            body=RegisterRequest(email=email.upper(), password=password, full_name="Journey Shopper"))
check(user.email == email and user.role == "user", f"registered: {user}")
call(register_user, 409, client=anonymous, body=RegisterRequest(email=email, password=password))
first = call(login, 200, client=anonymous, body=LoginRequest(email=email, password=password))
check(first.token_type == "bearer" and first.expires_in > 0, f"token pair: {first}")
pair = call(refresh_token, 200, client=anonymous,
            body=RefreshRequest(refresh_token=first.refresh_token))
check(pair.refresh_token != first.refresh_token, "refresh rotates the refresh token")
shopper = authed(pair.access_token)
me = call(get_current_user, 200, client=shopper)
check(me.id == user.id and me.email_verified is False, f"me: {me}")

print("shopper: follow the verification link mailed at register")
message_id, token = mailed_token(email, "/verify-email")
check(message_id, "the mail has a Message-ID")
call(verify_email, 204, client=anonymous, body=VerifyEmailRequest(token=token))
check(call(get_current_user, 200, client=shopper).email_verified is True, "verified")
used = call(verify_email, 400, client=anonymous, body=VerifyEmailRequest(token=token))
check(used.code == "invalid_or_expired_token", f"a used link: {used}")

print("shopper: search, read, review")
page = call(list_products, 200, client=anonymous, search=f"keyboard {run}")
check(page.total >= 1 and page.items[0].id == keyboard.id, f"search found {page.items}")
product = call(get_product, 200, client=anonymous, id=keyboard.id)
check(product.name == keyboard.name and product.stock == 10, f"product: {product}")
review = call(create_product_review, 201, client=shopper, id=keyboard.id,
              body=CreateReviewRequest(rating=5, comment="Lovely to type on."))
check(review.rating == 5 and review.user_id == user.id, f"review: {review}")
problem = call(create_product_review, 409, client=shopper, id=keyboard.id,
               body=CreateReviewRequest(rating=4))
check(problem.code == "already_reviewed", f"second review: {problem}")
product = call(get_product, 200, client=anonymous, id=keyboard.id)
check(product.review_count == 1 and product.avg_rating == 5, f"rating: {product}")

print("admin: subscribe a webhook endpoint to order events")
hook = call(create_webhook, 201, client=admin, body=CreateWebhookRequest(
    url=start_receiver(), events=["order.*"], description="journey fulfilment"))
check(hook.secret.startswith("whsec_") and hook.is_active, f"endpoint: {hook}")

print("shopper: order two products, list orders, cancel")
order = call(create_order, 201, client=shopper, idempotency_key=f"journey-{run}",
             body=CreateOrderRequest(items=[
                 OrderItemRequest(product_id=keyboard.id, quantity=2),
                 OrderItemRequest(product_id=cable.id, quantity=1)]))
check(isinstance(order, OrderOut) and order.status == OrderStatus.PENDING, f"order: {order}")
check(Decimal(order.total_price) == Decimal("109.48"), f"total: {order.total_price}")
check(len(order.items) == 2, f"lines: {order.items}")
replay = call(create_order, 201, client=shopper, idempotency_key=f"journey-{run}",
              body=CreateOrderRequest(items=[
                  OrderItemRequest(product_id=keyboard.id, quantity=2),
                  OrderItemRequest(product_id=cable.id, quantity=1)]))
check(replay.id == order.id, "the idempotency key replays the first order")
short = call(create_order, 409, client=shopper,
             body=CreateOrderRequest(items=[OrderItemRequest(product_id=cable.id, quantity=1000)]))
check(short.code == "insufficient_stock", f"oversell: {short}")
kept = call(create_order, 201, client=shopper,
            body=CreateOrderRequest(items=[OrderItemRequest(product_id=cable.id, quantity=2)]))
orders = call(list_orders, 200, client=shopper)
check(orders.total == 2 and [o.id for o in orders.items] == [kept.id, order.id],
      f"orders newest first: {[o.id for o in orders.items]}")
cancelled = call(cancel_order, 200, client=shopper, id=order.id)
check(cancelled.status == OrderStatus.CANCELLED, f"cancelled: {cancelled.status}")
check(call(get_product, 200, client=anonymous, id=keyboard.id).stock == 10, "stock returned")
again = call(cancel_order, 409, client=shopper, id=order.id)
check(again.code == "invalid_status_transition", f"second cancel: {again}")
check(order.payment_due_at is not None and order.payment_due_at > order.created_at,
      f"due after placing: {order.payment_due_at}")
check(cancelled.payment_due_at is None, f"no longer due: {cancelled.payment_due_at}")
history = call(get_order_history, 200, client=shopper, id=order.id)
check([(h.to_status, h.actor) for h in history.items]
      == [(OrderStatus.PENDING, OrderActor.USER), (OrderStatus.CANCELLED, OrderActor.USER)],
      f"history: {history.items}")

print("fulfilment: the order.created webhook arrives, signed; the shopper sees the events")
deadline = time.monotonic() + 30
created = []
while not created and time.monotonic() < deadline:
    created = [(h, b) for h, b in WebhookReceiver.received
               if json.loads(b)["type"] == "order.created"
               and json.loads(b)["data"]["order"]["id"] == order.id]
    time.sleep(0.1)
check(created, f"order.created reached the endpoint: {len(WebhookReceiver.received)} posts")
headers, body = created[0]
check(verify_standard_webhook(hook.secret, headers, body), "the webhook signature verifies")
event = json.loads(body)
check(str(event["id"]) == {k.lower(): v for k, v in headers.items()}["webhook-id"]
      and event["sequence"] == 1 and event["aggregate_type"] == "order", f"event: {event}")
deliveries = call(list_webhook_deliveries, 200, client=admin, id=hook.id)
check(any(d.event_id == event["id"] and d.status.value == "succeeded" for d in deliveries.items),
      f"deliveries: {deliveries.items}")
mine = call(list_my_events, 200, client=shopper, types="order.*")
check([e.type_ for e in mine.items if e.aggregate_id == order.id][:2]
      == ["order.created", "order.cancelled"], f"my events: {[e.type_ for e in mine.items]}")

print("admin: change the shopper's role, read the sales report")
changed = call(admin_change_user_role, 200, client=admin, id=user.id,
               body=ChangeRoleRequest(role="admin"))
check(changed.role == "admin", f"role: {changed}")
check(call(get_current_user, 200, client=shopper).role == "admin", "the role applies at once")
call(admin_change_user_role, 200, client=admin, id=user.id, body=ChangeRoleRequest(role="user"))
forbidden = call(admin_get_sales_report, 403, client=shopper)
check(forbidden.code == "forbidden", f"shopper reads the report: {forbidden}")
today = datetime.datetime.now(datetime.timezone.utc).date()
report = call(admin_get_sales_report, 200, client=admin, from_=today, to=today, top=5)
check(report.total_orders == 1 and report.orders_by_status.cancelled == 1,
      f"report orders: {report.total_orders}, {report.orders_by_status}")
check(Decimal(report.total_revenue) == Decimal(kept.total_price) == Decimal("19.00"),
      f"revenue: {report.total_revenue}")
check([p.product_id for p in report.top_products] == [cable.id], f"top: {report.top_products}")

print("guest: fill a cart held by its token; shopper: merge it, check it out")
guest = call(create_cart, 201, client=anonymous)
check(len(guest.token) == 64 and guest.items == [], f"guest cart: {guest}")
cable_variant = kept.items[0].variant_id  # the cable's default variant, as the order copied it
filled = call(set_cart_item, 200, client=anonymous, id=guest.id, variant_id=cable_variant,
              x_cart_token=guest.token, body=SetQuantityRequest(quantity=2))
check(Decimal(filled.subtotal) == Decimal("19.00") and filled.problems == [], f"cart: {filled}")
missing = call(get_cart, 404, client=anonymous, id=guest.id)
check(missing.code == "not_found", f"a guest cart without its token: {missing}")
own = call(create_cart, 201, client=shopper)
merged = call(merge_cart, 200, client=shopper, id=own.id,
              body=MergeRequest(cart_token=guest.token))
check([(i.variant_id, i.quantity) for i in merged.items] == [(cable_variant, 2)],
      f"merged: {merged.items}")
call(get_cart, 404, client=anonymous, id=guest.id, x_cart_token=guest.token)
placed = call(checkout_cart, 201, client=shopper, id=own.id, idempotency_key=f"cart-{run}")
check(isinstance(placed, OrderOut) and Decimal(placed.total_price) == Decimal("19.00"),
      f"cart order: {placed}")
replayed = call(checkout_cart, 201, client=shopper, id=own.id, idempotency_key=f"cart-{run}")
check(replayed.id == placed.id, "the idempotency key replays the cart's order")
converted = call(checkout_cart, 409, client=shopper, id=own.id, idempotency_key=f"other-{run}")
check(converted.code == "cart_converted", f"second checkout: {converted}")

print("shopper: pay an order through Stripe (localstripe); its webhook pays the order")
order = call(create_order, 201, client=shopper,
             body=CreateOrderRequest(items=[OrderItemRequest(product_id=keyboard.id, quantity=2)]))
check(Decimal(order.total_price) == Decimal("99.98"), f"total: {order.total_price}")
payment = call(create_payment, 201, client=shopper, id=order.id, idempotency_key=f"pay-{run}",
               body=CreatePaymentRequest(provider="stripe"))
check(payment.status == PaymentStatus.PENDING and payment.client_secret
      and payment.reference.startswith("pi_"), f"payment: {payment}")
check(Decimal(payment.amount) == Decimal("99.98"), f"amount: {payment.amount}")
intent = stripe_js_confirm(payment.reference, "pm_card_visa")
check(intent["status"] == "succeeded", f"intent at localstripe: {intent['status']}")
deadline = time.monotonic() + 30
while True:
    paid = call(get_order, 200, client=shopper, id=order.id)
    if paid.status == OrderStatus.PAID or time.monotonic() > deadline:
        break
    time.sleep(0.2)
check(paid.status == OrderStatus.PAID, f"the webhook did not pay the order: {paid.status}")
history = call(get_order_history, 200, client=shopper, id=order.id)
check([(h.to_status, h.actor, h.reason) for h in history.items][-1:]
      == [(OrderStatus.PAID, OrderActor.SYSTEM, "payment_captured")], f"history: {history.items}")
payments = call(list_order_payments, 200, client=shopper, id=order.id)
check(payments.total == 1 and payments.items[0].status == PaymentStatus.CAPTURED
      and Decimal(payments.items[0].captured) == Decimal("99.98"), f"payments: {payments.items}")
again = call(create_payment, 409, client=shopper, id=order.id,
             body=CreatePaymentRequest(provider="stripe", payment_method="pm_card_visa"))
check(again.code == "order_not_payable", f"paying a paid order: {again}")

print("admin: refund half of the payment")
refunded = call(admin_refund_payment, 200, client=admin, id=payment.id,
                idempotency_key=f"refund-{run}",
                body=RefundRequest(amount="49.99", reason="one keyboard returned"))
check(refunded.status == PaymentStatus.PARTIALLY_REFUNDED
      and Decimal(refunded.refunded) == Decimal("49.99"), f"refunded: {refunded}")
check([(Decimal(r.amount), r.reason) for r in refunded.refunds]
      == [(Decimal("49.99"), "one keyboard returned")], f"refunds: {refunded.refunds}")
seen = call(list_order_payments, 200, client=shopper, id=order.id).items[0]
check(seen.status == PaymentStatus.PARTIALLY_REFUNDED and len(seen.refunds) == 1
      and Decimal(seen.refunded) == Decimal("49.99"), f"the shopper sees the refund: {seen}")
check(call(get_order, 200, client=shopper, id=order.id).status == OrderStatus.PAID,
      "a partial refund leaves the order paid")

print(f"sdk journey: {STEPS} calls through the generated client, all as documented")
