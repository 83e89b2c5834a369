DROP TABLE order_idempotency;
