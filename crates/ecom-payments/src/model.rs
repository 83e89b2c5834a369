//! Rows and domain types of payments: statuses and the moves between them.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use ecom_core::Money;

use crate::schema::{payments, payments_refunds};

ecom_core::string_enum! {
    /// Where a payment is: `pending → authorized → captured → partially_refunded →
    /// refunded`, `pending → captured`, `captured → refunded`, `pending → failed`,
    /// `pending | authorized → cancelled`. Never backwards.
    #[derive(AsExpression, FromSqlRow)]
    #[serde(rename_all = "snake_case")]
    #[strum(serialize_all = "snake_case")]
    #[diesel(sql_type = Text)]
    pub enum PaymentStatus {
        Pending,
        Authorized,
        Captured,
        PartiallyRefunded,
        Refunded,
        Failed,
        Cancelled,
    }
}

/// What to do with a reported status, given the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A move forward: store it.
    Forward,
    /// The payment is already there (amounts may still grow, e.g. another partial refund).
    Same,
    /// Backwards or sideways (a late `authorized` after `captured`, anything after a final
    /// status): ignored, not an error, since events and API answers arrive in any order.
    Ignore,
}

impl PaymentStatus {
    /// Position on the one-way path; every allowed move goes to a strictly higher rank.
    /// `failed` and `cancelled` are final and rank above everything they can follow.
    pub fn rank(self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Authorized => 1,
            PaymentStatus::Captured => 2,
            PaymentStatus::PartiallyRefunded => 3,
            PaymentStatus::Refunded => 4,
            PaymentStatus::Failed | PaymentStatus::Cancelled => 5,
        }
    }

    /// Whether the contract allows going from `self` to `to` (a different status).
    pub fn can_become(self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, to),
            (Pending, Authorized | Captured | Failed | Cancelled)
                | (Authorized, Captured | Cancelled)
                | (Captured, PartiallyRefunded | Refunded)
                | (PartiallyRefunded, Refunded)
        )
    }

    /// How a reported status applies to a payment that is `self`.
    pub fn step_to(self, to: PaymentStatus) -> Step {
        if self == to {
            Step::Same
        } else if self.can_become(to) {
            Step::Forward
        } else {
            Step::Ignore
        }
    }

    /// `pending` or `authorized`: at most one such payment per order.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Pending | PaymentStatus::Authorized)
    }

    /// Money was taken and (part of it) is still held: refunds are possible.
    pub fn is_refundable(self) -> bool {
        matches!(
            self,
            PaymentStatus::Captured | PaymentStatus::PartiallyRefunded
        )
    }

    /// The status after refunds totalling `refunded` of `captured`.
    pub fn after_refunds(refunded: Money, captured: Money) -> PaymentStatus {
        if refunded >= captured {
            PaymentStatus::Refunded
        } else if refunded.is_zero() {
            PaymentStatus::Captured
        } else {
            PaymentStatus::PartiallyRefunded
        }
    }
}

impl ToSql<Text, Pg> for PaymentStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for PaymentStatus {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse()
            .map_err(|_| format!("`{text}` is not a payment status").into())
    }
}

ecom_core::string_enum! {
    /// Who moves the money: Stripe, or an administrator recording a transfer or cash.
    #[derive(AsExpression, FromSqlRow)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    #[diesel(sql_type = Text)]
    #[schema(as = PaymentProvider)]
    pub enum Provider {
        Stripe,
        Manual,
    }
}

impl ToSql<Text, Pg> for Provider {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for Provider {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse()
            .map_err(|_| format!("`{text}` is not a payment provider").into())
    }
}

/// A payment row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub user_id: i64,
    pub provider: Provider,
    pub status: PaymentStatus,
    /// The order's total when the payment was made.
    pub amount: Money,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
    /// ISO 4217, lower case (Stripe's spelling).
    pub currency: String,
    pub reference: Option<String>,
    pub client_secret: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new payment row, `pending` with nothing authorized yet.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = payments)]
pub struct NewPayment<'a> {
    pub order_id: i64,
    pub user_id: i64,
    pub provider: Provider,
    pub amount: Money,
    pub currency: &'a str,
}

/// A refund row: money given back from a payment's capture.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(table_name = payments_refunds, belongs_to(Payment), check_for_backend(diesel::pg::Pg))]
pub struct Refund {
    pub id: i64,
    pub payment_id: i64,
    pub amount: Money,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::{self, *};
    use super::Step;
    use ecom_core::Money;

    #[test]
    fn every_allowed_move_goes_up_in_rank() {
        for &from in PaymentStatus::ALL {
            for &to in PaymentStatus::ALL {
                if from.can_become(to) {
                    assert!(from.rank() < to.rank(), "{from} → {to} goes up");
                }
            }
        }
    }

    #[test]
    fn the_contract_moves_are_forward() {
        let moves = [
            (Pending, Authorized),
            (Authorized, Captured),
            (Captured, PartiallyRefunded),
            (PartiallyRefunded, Refunded),
            (Pending, Captured),
            (Captured, Refunded),
            (Pending, Failed),
            (Pending, Cancelled),
            (Authorized, Cancelled),
        ];
        for (from, to) in moves {
            assert_eq!(from.step_to(to), Step::Forward, "{from} → {to}");
        }
        let allowed = PaymentStatus::ALL
            .iter()
            .flat_map(|&f| PaymentStatus::ALL.iter().map(move |&t| (f, t)))
            .filter(|&(f, t)| f.can_become(t))
            .count();
        assert_eq!(allowed, moves.len(), "no move beyond the contract's");
    }

    #[test]
    fn backwards_and_sideways_reports_are_ignored() {
        let ignored = [
            (Authorized, Pending),
            (Captured, Authorized),
            (Captured, Pending),
            (Refunded, Captured),
            (PartiallyRefunded, Captured),
            (Failed, Captured),
            (Cancelled, Authorized),
            (Cancelled, Captured),
            (Captured, Cancelled),
            (Captured, Failed),
            (Authorized, Failed),
            (Refunded, PartiallyRefunded),
        ];
        for (from, to) in ignored {
            assert_eq!(from.step_to(to), Step::Ignore, "{from} → {to}");
        }
        for &status in PaymentStatus::ALL {
            assert_eq!(status.step_to(status), Step::Same);
        }
    }

    #[test]
    fn final_statuses_take_no_move() {
        for from in [Refunded, Failed, Cancelled] {
            for &to in PaymentStatus::ALL {
                assert!(!from.can_become(to), "{from} is final ({to})");
            }
        }
    }

    #[test]
    fn refunds_decide_between_captured_partial_and_refunded() {
        let m = |s: &str| s.parse::<Money>().expect("money");
        assert_eq!(PaymentStatus::after_refunds(m("0"), m("10")), Captured);
        assert_eq!(
            PaymentStatus::after_refunds(m("4.99"), m("10")),
            PartiallyRefunded
        );
        assert_eq!(PaymentStatus::after_refunds(m("10.00"), m("10")), Refunded);
    }

    #[test]
    fn statuses_read_and_write_in_snake_case() {
        assert_eq!(PartiallyRefunded.as_str(), "partially_refunded");
        assert_eq!(
            "partially_refunded".parse::<PaymentStatus>().ok(),
            Some(PartiallyRefunded)
        );
        assert_eq!(
            serde_json::to_value(Cancelled).expect("serializes"),
            serde_json::json!("cancelled")
        );
    }
}
