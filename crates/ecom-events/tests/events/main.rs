//! ecom-events against the real PostgreSQL: the event lists, the live streams over a real
//! socket, and the NATS bridge against a `nats-server -js` of the test's own.

mod nats;
mod streams;
mod support;
