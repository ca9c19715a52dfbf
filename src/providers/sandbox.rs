//! The built-in sandbox provider: no network, deterministic outcomes, so
//! approved payments reach `succeeded` or `failed` out of the box.
//!
//! Rules (documented in docs/providers.md):
//! - a merchant id containing `decline` fails with `card_declined`;
//! - a merchant id containing `insufficient` fails with `insufficient_funds`;
//! - anything else succeeds with transaction id `sbx_` + 16 hex characters
//!   derived from the forward reference (the same reference always gets the
//!   same id, like a provider honouring an idempotency key).

use sha2::{Digest, Sha256};

use futures_util::future::BoxFuture;

use super::{ForwardRequest, Provider};
use crate::store::ForwardOutcome;

#[derive(Debug, Default)]
pub struct Sandbox;

impl Sandbox {
    pub fn decide(req: &ForwardRequest) -> ForwardOutcome {
        let failure = |code: &str, message: &str| ForwardOutcome::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        if req.merchant_id.contains("decline") {
            failure("card_declined", "sandbox: the merchant id asks for a decline")
        } else if req.merchant_id.contains("insufficient") {
            failure("insufficient_funds", "sandbox: the merchant id asks for insufficient funds")
        } else {
            let digest = Sha256::digest(req.reference.as_bytes());
            ForwardOutcome::Succeeded { transaction_id: format!("sbx_{}", &hex::encode(digest)[..16]) }
        }
    }
}

impl Provider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome> {
        Box::pin(async move { Sandbox::decide(req) })
    }

    fn status<'a>(&'a self, req: &'a ForwardRequest, _: Option<&'a str>) -> BoxFuture<'a, ForwardOutcome> {
        self.forward(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(merchant: &str) -> ForwardRequest {
        ForwardRequest {
            reference: "fwd_1".into(),
            payment_id: "pay_1".into(),
            agent_id: "agt_1".into(),
            amount: rust_decimal::Decimal::ONE,
            currency: crate::money::Currency::Usd,
            merchant_id: merchant.into(),
            merchant_category: None,
            rail: "card".into(),
            description: None,
        }
    }

    #[test]
    fn outcomes_are_deterministic() {
        assert_eq!(Sandbox::decide(&req("aws.amazon.com")), Sandbox::decide(&req("aws.amazon.com")));
        assert!(matches!(Sandbox::decide(&req("aws.amazon.com")), ForwardOutcome::Succeeded { .. }));
        assert!(matches!(
            Sandbox::decide(&req("shop-decline.example")),
            ForwardOutcome::Failed { ref code, .. } if code == "card_declined"
        ));
        assert!(matches!(
            Sandbox::decide(&req("insufficient.example")),
            ForwardOutcome::Failed { ref code, .. } if code == "insufficient_funds"
        ));
    }
}
