//! Property test of the payment ledger: any sequence of cancels, refunds, fulfilments and
//! captures keeps every cent of the charge kept, canceled or refunded, and never refunds
//! money (or units) twice.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Cancel(Option<(usize, i64)>),
    Refund(usize, i64, Option<RestockType>),
    RefundShipping(Option<i64>),
    Fulfil(usize, i64),
    Capture,
}

fn op() -> impl Strategy<Value = Op> {
    let restock = prop_oneof![
        Just(None),
        Just(Some(RestockType::Cancel)),
        Just(Some(RestockType::Return)),
        Just(Some(RestockType::NoRestock)),
    ];
    prop_oneof![
        proptest::option::of((0..2usize, 1..4i64)).prop_map(Op::Cancel),
        (0..2usize, 1..4i64, restock).prop_map(|(l, q, r)| Op::Refund(l, q, r)),
        proptest::option::of(0..600i64).prop_map(Op::RefundShipping),
        (0..2usize, 1..4i64).prop_map(|(l, q)| Op::Fulfil(l, q)),
        Just(Op::Capture),
    ]
}

const LINES: [&str; 2] = ["L1", "L2"];

/// Applies `op`; `None` when the domain refuses it (the state stays as it was).
fn apply(o: &FastOrder, led: &Ledger, op: &Op, n: usize) -> Option<(FastOrder, Ledger)> {
    match op {
        Op::Cancel(lines) => {
            let lines = lines.map(|(l, q)| vec![lq(LINES[l], q)]);
            cancel(o, led, &cancel_req(lines), 1)
                .ok()
                .map(|(o, l, _)| (o, l))
        }
        Op::Refund(l, q, restock) => {
            let req = refund_req(vec![rl(LINES[*l], *q, *restock)], None);
            refund(o, led, &req, &format!("r{n}"))
                .ok()
                .map(|(o, l, _)| (o, l))
        }
        Op::RefundShipping(cents) => {
            let shipping = match cents {
                None => ShippingRefund::Full,
                Some(c) => ShippingRefund::Amount(Money(Decimal::new(*c, 2))),
            };
            let req = refund_req(Vec::new(), Some(shipping));
            refund(o, led, &req, &format!("r{n}"))
                .ok()
                .map(|(o, l, _)| (o, l))
        }
        Op::Fulfil(l, q) => {
            let req = FulfilRequest {
                lines: Some(vec![lq(LINES[*l], *q)]),
                ..Default::default()
            };
            fulfil(o, led, &req, 1, &format!("f{n}"))
                .ok()
                .map(|(o, l, _)| (o, l))
        }
        Op::Capture => capture(o, led, &Actor::default(), 1)
            .ok()
            .map(|(o, l, _)| (o, l)),
    }
}

fn check(o: &FastOrder, led: &Ledger) -> Result<(), TestCaseError> {
    let p = payment(o, led);
    prop_assert_eq!(p.charged, m("44.27"), "the charge never moves");
    prop_assert_eq!(
        p.kept.0 + p.canceled.0 + p.refunded.0,
        p.charged.0,
        "every cent is kept, canceled or refunded: {:?}",
        p
    );
    prop_assert_eq!(p.refundable, p.kept, "{:?}", p);
    prop_assert!(p.kept.0 >= Decimal::ZERO, "{:?}", p);
    prop_assert!(p.refunded.0 >= Decimal::ZERO && p.canceled.0 >= Decimal::ZERO);
    for e in &led.lines {
        prop_assert!(e.refunded <= e.fulfilled, "units refunded twice: {:?}", e);
        prop_assert!(e.returned <= e.refunded && e.refund_canceled <= e.canceled);
        prop_assert!(e.fulfilled + e.canceled <= e.ordered, "{:?}", e);
    }
    for line in &o.lines {
        prop_assert!(line.total_amount.unwrap_or_default().0 >= Decimal::ZERO);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_cent_charged_is_kept_canceled_or_refunded_once(ops in proptest::collection::vec(op(), 1..14)) {
        let mut o = fixture();
        let mut led = Ledger::default();
        let mut cart = o.clone();
        cart.status = Some(OrderStatus::Cart);
        record_charge(&mut led, &cart, &o, 0);
        check(&o, &led)?;
        for (n, op) in ops.iter().enumerate() {
            if let Some((next_o, next_led)) = apply(&o, &led, op, n) {
                prop_assert!(
                    next_led.total_refunded().0 <= next_led.charge.as_ref().map_or(Decimal::ZERO, |c| c.amount.0),
                    "more refunded than charged"
                );
                o = next_o;
                led = next_led;
                check(&o, &led)?;
            }
        }
    }
}
