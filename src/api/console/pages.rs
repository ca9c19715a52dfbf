//! The console's HTML. maud escapes every interpolated value, so merchant
//! ids, comments and names can never inject markup.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::clock::parse_ts;
use crate::model::{Approval, Payment};
use crate::service::approvals::SpendToday;
use crate::store::ConsoleSession;

const STYLE: &str = r#"
:root { --ink:#1d2433; --muted:#5b6475; --line:#d9dee7; --bg:#f5f7fa; --ok:#1a7f37; --no:#b42318; --warn:#9a6700; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--ink); background:var(--bg); }
header { display:flex; justify-content:space-between; align-items:center; padding:14px 28px; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
main { max-width:1100px; margin:0 auto; padding:24px 28px 48px; }
h2 { font-size:16px; margin:28px 0 12px; }
.muted { color:var(--muted); }
.notice { padding:12px 16px; border-radius:8px; background:#e8f3ec; border:1px solid #b7dfc3; margin-bottom:16px; }
.notice.bad { background:#fdecea; border-color:#f3b8b2; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:18px 20px; margin-bottom:16px; }
.card .top { display:flex; justify-content:space-between; gap:16px; flex-wrap:wrap; }
.amount { font-size:24px; font-weight:650; }
.facts { display:grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap:8px 20px; margin:12px 0; }
.facts div { overflow-wrap:anywhere; }
.facts div span { display:block; font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
.reasons { margin:8px 0 12px; padding-left:18px; }
.left { font-weight:600; color:var(--warn); }
form.decide { display:flex; gap:10px; align-items:flex-end; flex-wrap:wrap; margin-top:8px; }
form.decide label { flex:1 1 320px; }
textarea, input[type=password] { width:100%; padding:8px 10px; border:1px solid var(--line); border-radius:6px; font:inherit; }
textarea { min-height:44px; }
button { padding:9px 18px; border-radius:6px; border:1px solid transparent; font:inherit; font-weight:600; cursor:pointer; }
button.approve { background:var(--ok); color:#fff; }
button.deny { background:#fff; color:var(--no); border-color:var(--no); }
button.plain { background:#fff; border-color:var(--line); }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:9px 12px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); background:#fafbfc; }
.status-approved { color:var(--ok); font-weight:600; } .status-rejected { color:var(--no); font-weight:600; } .status-expired { color:var(--muted); font-weight:600; }
.signin { max-width:420px; margin:80px auto; }
.nowrap { white-space:nowrap; }
"#;

fn layout(title: &str, header_right: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · purser" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { h1 { "purser · approvals" } div { (header_right) } }
                main { (body) }
            }
        }
    }
}

pub fn sign_in(error: Option<&str>) -> Markup {
    let body = html! {
        div.card.signin {
            h2 { "Sign in" }
            p.muted { "Paste the approver token an administrator gave you (it starts with psr_appr_)." }
            @if let Some(e) = error { p.notice.bad role="alert" { (e) } }
            form method="post" action="/console/login" {
                label { "Approver token" input #token type="password" name="token" autocomplete="off" required; }
                p { button.approve type="submit" { "Sign in" } }
            }
        }
    };
    layout("Sign in", html! {}, body)
}

pub fn message(text: &str) -> Markup {
    layout(
        "purser",
        html! {},
        html! { div.card { p { (text) } p { a href="/console" { "Back to the console" } } } },
    )
}

/// The banner after an action, from a fixed set (the query string can only
/// choose among these, never inject text beyond an escaped payment id).
pub fn notice_text(notice: Option<&str>, payment: Option<&str>) -> Option<String> {
    let payment = payment.unwrap_or("the payment");
    Some(match notice? {
        "approved" => format!("Approved: {payment} is being paid."),
        "vote_recorded" => format!("Your approval of {payment} is recorded; more approvals are needed."),
        "rejected" => format!("Denied: {payment} was rejected and its amount released."),
        "expired" => format!("Too late: the approval for {payment} had expired."),
        "already_decided" => format!("Someone already decided {payment}."),
        _ => return None,
    })
}

fn money(p: &Payment) -> String {
    format!("{} {}", p.amount, p.currency)
}

/// "2026-11-26 17:00 UTC" from a stored RFC 3339 timestamp.
fn readable_time(ts: &str) -> String {
    parse_ts(ts).map_or_else(|| ts.to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

fn time_left(expires_at: &str, now: DateTime<Utc>) -> String {
    let Some(deadline) = parse_ts(expires_at) else { return "unknown".to_owned() };
    let left = deadline - now;
    if left <= chrono::Duration::zero() {
        return "expired".to_owned();
    }
    let (h, m) = (left.num_hours(), left.num_minutes() % 60);
    if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{} min", m.max(1))
    }
}

pub fn dashboard(
    session: &ConsoleSession,
    pending: &[(Approval, SpendToday)],
    recent: &[Approval],
    notice: Option<&str>,
    now: DateTime<Utc>,
) -> Markup {
    let csrf = &session.csrf_token;
    let header_right = html! {
        span.muted { "Signed in as " strong { (session.approver.name) } " " }
        form method="post" action="/console/logout" style="display:inline" {
            input type="hidden" name="csrf" value=(csrf);
            button.plain type="submit" { "Sign out" }
        }
    };
    let body = html! {
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        h2 { "Waiting for you (" (pending.len()) ")" }
        @if pending.is_empty() { p.muted #empty { "Nothing is waiting for approval." } }
        @for (a, spend) in pending {
            @let p = &a.payment;
            @let mine = a.votes.iter().any(|v| v.approver_id == session.approver.id);
            section.card.pending data-approval=(a.id) data-payment=(p.id) {
                div.top {
                    div {
                        div.amount { (money(p)) }
                        div { "to " strong { (p.merchant_id) } " · " (p.merchant_category.as_deref().unwrap_or("no category")) }
                    }
                    div { "Time left: " span.left { (time_left(&a.expires_at, now)) } }
                }
                div.facts {
                    div { span { "Agent" } (a.agent.name) " (" (a.agent.id) ")" }
                    div { span { "Agent's spend today" } (spend.spent)
                        @if let Some(limit) = &spend.limit { " of " (limit) } " " (spend.currency) }
                    div { span { "Approvals" } (a.votes.iter().filter(|v| v.decision == "approve").count()) " of " (a.approvals_required) }
                    div { span { "Payment" } (p.id) }
                    @if let Some(d) = &p.description { div { span { "Description" } (d) } }
                }
                div { "Why it needs review:" }
                ul.reasons { @for r in &p.decision.reasons { li { (r.message) } } }
                @for v in &a.votes {
                    p.muted { (v.approver_name) " voted " (v.decision) @if let Some(c) = &v.comment { ": “" (c) "”" } }
                }
                @if mine {
                    p.muted { "You have approved this; it needs another approver." }
                } @else {
                    form.decide method="post" {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "Comment (optional)" textarea name="comment" maxlength="2000" {} }
                        button.approve type="submit" formaction={ "/console/approvals/" (a.id) "/approve" } { "Approve" }
                        button.deny type="submit" formaction={ "/console/approvals/" (a.id) "/deny" } { "Deny" }
                    }
                }
            }
        }
        h2 { "Recent decisions" }
        @if recent.is_empty() { p.muted { "No decisions yet." } } @else {
            table #recent {
                thead { tr { th { "Decided" } th { "Agent" } th { "Merchant" } th { "Amount" } th { "Outcome" } th { "By" } } }
                tbody {
                    @for a in recent {
                        tr {
                            td.nowrap { (a.decided_at.as_deref().map(readable_time).unwrap_or_default()) }
                            td { (a.agent.name) }
                            td { (a.payment.merchant_id) }
                            td.nowrap { (money(&a.payment)) }
                            td { span class={ "status-" (a.status) } { (a.status) } }
                            td {
                                @for v in &a.votes {
                                    div { (v.approver_name) " (" (v.decision) ")" @if let Some(c) = &v.comment { ": " (c) } }
                                }
                                @if a.votes.is_empty() { span.muted { "deadline passed" } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Approvals", header_right, body)
}
