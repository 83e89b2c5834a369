DROP TABLE payments_idempotency;
DROP TABLE payments_provider_events;
DROP TABLE payments_refunds;
DROP TABLE payments;
