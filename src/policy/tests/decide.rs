//! The whole decision: the kill switch, card authorizations, what is
//! reserved, the warning marks, and amounts in a currency the policy does
//! not accept.

use super::*;

fn decide_with(
    p: &Policy,
    pay: &PaymentFacts,
    spend: &SpendSnapshot,
    halted: Option<&str>,
    channel: Channel,
) -> Verdict {
    let mut spend = spend.clone();
    spend.velocity.resize(p.velocity_rules(&low()).len(), 0);
    let at = Snapshot { agent: low(), spend: &spend, halted, now: noon() };
    p.decide(pay, &at, channel)
}

fn decide(p: &Policy, pay: &PaymentFacts, spend: &SpendSnapshot) -> Verdict {
    decide_with(p, pay, spend, None, Channel::Request)
}

#[test]
fn the_kill_switch_denies_first_and_reserves_nothing() {
    let p = policy("per_tx_limit = \"50.00\"\ndaily_limit = \"100.00\"\n");
    let v = decide_with(&p, &cloud("10.00"), &seen(), Some("incident 42"), Channel::Request);
    assert_deny(&v.decision, &[ReasonCode::KillSwitch]);
    assert_eq!(v.decision.reasons[0].message, "all payments are halted: incident 42");
    assert_eq!((v.reserved, v.crossings.len()), (Decimal::ZERO, 0));
    // With failing rules too, the switch comes first and the rules follow.
    let v = decide_with(&p, &cloud("60.00"), &seen(), Some("incident 42"), Channel::Request);
    assert_deny(&v.decision, &[ReasonCode::KillSwitch, ReasonCode::PerTxLimit]);
}

#[test]
fn a_card_authorization_cannot_wait_for_a_person() {
    let p = policy("per_tx_limit = \"50.00\"\napproval_threshold = \"20.00\"\n");
    let asked = decide_with(&p, &cloud("30.00"), &seen(), None, Channel::Request);
    assert_eq!(asked.decision.outcome, Outcome::RequireApproval);
    assert_eq!(asked.reserved, d("30.00"), "a payment waiting for approval holds its amount");
    let card = decide_with(&p, &cloud("30.00"), &seen(), None, Channel::CardAuthorization);
    assert_deny(&card.decision, &[ReasonCode::ApprovalRequired]);
    assert_eq!(card.reserved, Decimal::ZERO);
    assert_approve(&decide_with(&p, &cloud("20.00"), &seen(), None, Channel::CardAuthorization).decision);
}

#[test]
fn reserves_amount_and_fee_unless_denied() {
    let p = policy("per_tx_limit = \"50.00\"\ndaily_limit = \"100.00\"\n");
    let mut with_fee = cloud("40.00");
    with_fee.fee = d("0.50");
    assert_eq!(decide(&p, &with_fee, &seen()).reserved, d("40.50"));
    assert_eq!(decide(&p, &cloud("50.01"), &seen()).reserved, Decimal::ZERO);
}

#[test]
fn a_warning_mark_is_crossed_once_exactly_at_eighty_percent() {
    let p = policy("per_tx_limit = \"50.00\"\ndaily_limit = \"100.00\"\nweekly_limit = \"1000.00\"\n");
    let spent = |day: &str| SpendSnapshot { day: d(day), week: d(day), ..seen() };
    let v = decide(&p, &cloud("10.00"), &spent("70.00"));
    assert_eq!(v.crossings, [Crossing { window: "daily", spent: d("80.00"), limit: d("100.00") }]);
    assert!(decide(&p, &cloud("9.99"), &spent("70.00")).crossings.is_empty(), "one cent short of the mark");
    assert!(decide(&p, &cloud("5.00"), &spent("80.00")).crossings.is_empty(), "already past: not again");
    assert!(decide(&p, &cloud("40.00"), &spent("70.00")).crossings.is_empty(), "denied: nothing crossed");
}

#[test]
fn messages_name_the_currency_the_amount_was_paid_in() {
    let p = policy("currencies = [\"USD\", \"USDC\"]\nper_tx_limit = \"50.00\"\ndaily_limit = \"100.00\"\n");
    let mut eur = cloud("70.00");
    eur.currency = Currency::Eur;
    let v = decide(&p, &eur, &seen());
    assert_deny(&v.decision, &[ReasonCode::PerTxLimit, ReasonCode::CurrencyNotAllowed]);
    assert_eq!(
        v.decision.reasons[0].message,
        "amount 70.00 EUR is above the per-transaction limit of 50.00 USD"
    );
    let mut usdc = cloud("60.000001");
    usdc.currency = Currency::Usdc;
    let spent = SpendSnapshot { day: d("45.00"), ..seen() };
    let v = decide(&p, &usdc, &spent);
    let messages: Vec<&str> = v.decision.reasons.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "amount 60.000001 USDC is above the per-transaction limit of 50.00 USD",
            "daily limit of 100.00 USD would be exceeded: 45.00 spent, 60.000001 USDC attempted",
        ]
    );
}

#[test]
fn a_frozen_agent_under_the_kill_switch_hears_of_both() {
    let p = policy("per_tx_limit = \"50.00\"\n");
    let frozen = AgentFacts { frozen: true, ..low() };
    let mut spend = seen();
    spend.velocity.resize(p.velocity_rules(&frozen).len(), 0);
    let at = Snapshot { agent: frozen, spend: &spend, halted: Some("drill"), now: noon() };
    let v = p.decide(&cloud("10.00"), &at, Channel::Request);
    assert_deny(&v.decision, &[ReasonCode::KillSwitch, ReasonCode::AgentFrozen]);
}
