//! The event use cases: [`streams`] (Server-Sent Events and lists over the outbox).

pub mod streams;
