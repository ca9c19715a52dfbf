//! Provider simulators: axum servers on 127.0.0.1:0 started by the tests.

pub mod circle;
pub mod lithic;
pub mod turnkey;
