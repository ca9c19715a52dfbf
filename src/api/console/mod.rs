//! The approver web console at `/console`: server-rendered HTML, no
//! JavaScript. Approvers sign in with their token; the session cookie is
//! HttpOnly, SameSite=Strict and (outside `--dev`) Secure, and every form
//! that changes something carries the session's CSRF token.

mod pages;

use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::auth::CredentialSlot;
use crate::api::client_ip::ClientAddr;
use crate::api::AppState;
use crate::api::PathParams;
use crate::auth;
use crate::error::{Error, ErrorCode};
use crate::service::approvals::{self, Verdict};
use crate::service::console::{self, SESSION_HOURS};
use crate::store::{ConsoleSession, Slice};

const COOKIE: &str = "purser_console";
/// The same bound as the API's `comment`.
const MAX_COMMENT: usize = 2000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(home))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(decide))
}

/// The signed-in approver, if the cookie names a live session used from a
/// network the approver's token allows (elsewhere, a copied cookie is no
/// session).
async fn session(
    state: &AppState,
    jar: &CookieJar,
    ClientAddr(client): &ClientAddr,
) -> Result<Option<ConsoleSession>, Error> {
    let Some(cookie) = jar.get(COOKIE) else { return Ok(None) };
    let session = console::session(&state.svc, cookie.value()).await?;
    Ok(session.filter(|s| auth::network_allows(&s.approver.allowed_cidrs, *client)))
}

/// Set by the redirect after a decision. Anything the page cannot read (an
/// unknown notice, a repeated parameter) just shows no banner.
#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct Notice {
    /// Selects a banner from a fixed set: `approved`, `vote_recorded`,
    /// `rejected`, `expired`, `already_decided` (other values show none).
    notice: Option<String>,
    /// The payment id the banner names (escaped).
    payment: Option<String>,
}

/// Console page (HTML)
///
/// Server-rendered HTML, no JavaScript. Without a live session (no cookie,
/// signed out, older than 8 hours, or the approver was revoked) it is the
/// sign-in form, which posts the approver token to `/console/login`. With
/// one it is the dashboard: up to 100 pending approvals, soonest-expiring
/// first, each with the amount, merchant and category, the agent, the
/// agent's spend today against its daily limit, the approvals so far
/// against the quorum, why it needs review, earlier votes and comments, the
/// time left, and a form to approve or deny with an optional comment; and
/// up to 15 recently decided approvals. Every form carries the session's
/// CSRF token. All text is HTML-escaped.
#[utoipa::path(
    get,
    path = "/console",
    operation_id = "consoleHome",
    tag = "console",
    security((), ("consoleSession" = [])),
    params(Notice),
    responses(
        (status = 200, description = "The sign-in page or the dashboard.", content_type = "text/html", body = String),
        (status = 503, description = "The store is unreachable, or an agent's policy is not loaded; an HTML error \
            page.", content_type = "text/html", body = String),
    )
)]
async fn home(
    State(state): State<Arc<AppState>>,
    client: ClientAddr,
    jar: CookieJar,
    notice: Result<Query<Notice>, QueryRejection>,
) -> Response {
    let notice = notice.map(|Query(n)| n).unwrap_or_default();
    let result = async {
        let Some(session) = session(&state, &jar, &client).await? else {
            return Ok(Html(pages::sign_in(None).into_string()).into_response());
        };
        let pending = state.svc.store.approvals("pending", Slice::first(100)).await?;
        let mut rows = Vec::with_capacity(pending.len());
        for approval in pending {
            let spend = approvals::spend_today(&state.svc, &approval.agent.id).await?;
            rows.push((approval, spend));
        }
        let mut recent = Vec::new();
        for status in ["approved", "rejected", "expired"] {
            recent.extend(state.svc.store.approvals(status, Slice::first(10)).await?);
        }
        recent.sort_by(|a, b| b.decided_at.cmp(&a.decided_at));
        recent.truncate(15);
        let notice = pages::notice_text(notice.notice.as_deref(), notice.payment.as_deref());
        let page = pages::dashboard(&session, &rows, &recent, notice.as_deref(), state.svc.clock.now());
        Ok::<_, Error>(Html(page.into_string()).into_response())
    }
    .await;
    result.unwrap_or_else(error_page)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ConsoleLoginForm)]
struct LoginForm {
    /// The approver token (`psr_appr_...`).
    token: String,
}

/// Sign in to the console (HTML form)
///
/// Checks the approver token (unknown or revoked: the sign-in page again,
/// with `401`) and starts an 8-hour session: sets the `purser_console`
/// cookie (`HttpOnly`, `SameSite=Strict`, `Path=/console`, `Max-Age` 8
/// hours, `Secure` except in `--dev` mode) and redirects to `/console`.
/// Audited (`console.sign_in`). A body that is not a form with a `token` is
/// `400` (an HTML page); a post from another origin is `403`.
#[utoipa::path(
    post,
    path = "/console/login",
    operation_id = "consoleLogin",
    tag = "console",
    security(()),
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in; see `/console`.",
         headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = "Not a form the console sends: an HTML page.", content_type = "text/html",
         body = String),
        (status = 401, description = "Not a valid (live) approver token: the sign-in page with an error.",
         content_type = "text/html", body = String),
        (status = 403, description = "A cross-origin `Origin` (a form posted from another site): the sign-in \
            page with an error; no session.", content_type = "text/html", body = String),
        (status = 503, description = "The store is unreachable; nothing was changed. An HTML error page.",
         content_type = "text/html", body = String),
    )
)]
async fn login(
    State(state): State<Arc<AppState>>,
    client: ClientAddr,
    Extension(slot): Extension<CredentialSlot>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    // Login CSRF: another site must not sign a visitor in (to a session of
    // the attacker's choosing, or to probe tokens).
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, Html(pages::sign_in(Some(CROSS_ORIGIN)).into_string()))
            .into_response();
    }
    let Ok(Form(form)) = form else { return bad_form() };
    let approver = match approvals::approver_for_token(&state.svc, form.token.trim()).await {
        Ok(Some(approver)) => approver,
        Ok(None) => {
            let page = pages::sign_in(Some("That token is not a valid approver token."));
            return (StatusCode::UNAUTHORIZED, Html(page.into_string())).into_response();
        }
        Err(e) => return error_page(e),
    };
    let ClientAddr(address) = client;
    if !auth::network_allows(&approver.allowed_cidrs, address) {
        // A refused use of a real credential: the limits middleware audits
        // and counts it from the slot and the code.
        slot.recognise(&approvals::approver_actor(&approver, address).name);
        let page = pages::sign_in(Some("This approver token may not be used from this address."));
        let mut response = (StatusCode::FORBIDDEN, Html(page.into_string())).into_response();
        response.extensions_mut().insert(ErrorCode::IpNotAllowed);
        return response;
    }
    let session_id = match console::sign_in(&state.svc, &approver, address).await {
        Ok(id) => id,
        Err(e) => return error_page(e),
    };
    let cookie = Cookie::build((COOKIE, session_id))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        // Plain http is allowed only in dev mode (localhost).
        .secure(!state.config.dev)
        .max_age(time::Duration::hours(SESSION_HOURS))
        .build();
    (jar.add(cookie), Redirect::to("/console")).into_response()
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ConsoleCsrfForm)]
struct CsrfForm {
    /// The session's CSRF token, from the page's form.
    csrf: String,
}

/// Sign out of the console (HTML form)
///
/// Ends the session when `csrf` matches it, clears the cookie in any case,
/// and redirects to `/console`. A body that is not a form with `csrf` is
/// `400` (an HTML page).
#[utoipa::path(
    post,
    path = "/console/logout",
    operation_id = "consoleLogout",
    tag = "console",
    security((), ("consoleSession" = [])),
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed out; see `/console`.",
         headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = "Not a form the console sends: an HTML page.", content_type = "text/html",
         body = String),
    )
)]
async fn logout(
    State(state): State<Arc<AppState>>,
    client: ClientAddr,
    jar: CookieJar,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return bad_form() };
    if let Ok(Some(session)) = session(&state, &jar, &client).await {
        if auth::ct_eq(&session.csrf_token, &form.csrf) {
            if let Some(cookie) = jar.get(COOKIE) {
                // Best effort: the cookie is cleared below either way.
                let _ = console::sign_out(&state.svc, cookie.value()).await;
            }
        }
    }
    (jar.remove(Cookie::build(COOKIE).path("/console")), Redirect::to("/console")).into_response()
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ConsoleDecideForm)]
struct DecideForm {
    /// The session's CSRF token, from the page's form.
    csrf: String,
    /// Optional, at most 2000 characters; blank counts as none.
    #[serde(default)]
    #[schema(max_length = 2000)]
    comment: String,
}

/// Approve or deny from the console (HTML form)
///
/// The console's approve and deny buttons: the same vote as `POST
/// /v1/approvals/{id}/approve` and `/deny`, cast by the signed-in approver.
/// Without a live session it redirects to `/console` (the sign-in page).
/// CSRF: `csrf` must be the session's token, and a request whose `Origin`
/// header is present and names another origin than its `Host` is refused;
/// both give `403`. The outcome is shown as a banner after the redirect.
#[utoipa::path(
    post,
    path = "/console/approvals/{id}/{verdict}",
    operation_id = "consoleDecide",
    tag = "console",
    security((), ("consoleSession" = [])),
    params(
        ("id" = String, Path, description = "Approval id (`apv_...`)."),
        ("verdict" = String, Path, pattern = "^(approve|deny)$", description = "`approve` or `deny` (anything \
            else: `404`, HTML)."),
    ),
    request_body(content = DecideForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Decided (or not signed in). `Location` is \
            `/console?notice=<notice>&payment=<payment id>` with `notice` one of `approved`, `vote_recorded`, \
            `rejected`, `expired`, `already_decided`; or `/console` without a live session.",
         headers(("Location" = String))),
        (status = 400, description = "Not a form the console sends, or a comment over 2000 characters: an HTML \
            page; nothing was changed.", content_type = "text/html", body = String),
        (status = 403, description = "CSRF token mismatch or cross-origin `Origin`; nothing was changed.",
         content_type = "text/html", body = String),
        (status = 404, description = "No such approval, or a verdict other than `approve`/`deny`.",
         content_type = "text/html", body = String),
        (status = 503, description = "The store is unreachable or the policy concerned is not loaded; an HTML \
            error page.", content_type = "text/html", body = String),
    )
)]
async fn decide(
    State(state): State<Arc<AppState>>,
    client: ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    PathParams((id, verdict)): PathParams<(String, String)>,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return bad_form() };
    let result = async {
        // What the request names and says is checked before who sends it,
        // so an unreadable request is refused whether signed in or not.
        let verdict = match verdict.as_str() {
            "approve" => Verdict::Approve,
            "deny" => Verdict::Deny,
            _ => return Err(Error::NotFound("route")),
        };
        let comment = Some(form.comment.trim().to_owned()).filter(|c| !c.is_empty());
        if comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
            let text = format!("Comments are limited to {MAX_COMMENT} characters. Nothing was changed.");
            return Ok((StatusCode::BAD_REQUEST, Html(pages::message(&text).into_string())).into_response());
        }
        let Some(session) = session(&state, &jar, &client).await? else {
            return Ok(Redirect::to("/console").into_response());
        };
        // SameSite=Strict keeps other sites' forms from carrying the cookie;
        // the token proves the form was rendered for this session.
        if !auth::ct_eq(&session.csrf_token, &form.csrf) || !same_origin(&headers) {
            return Ok((
                StatusCode::FORBIDDEN,
                Html(pages::message("This form has expired. Reload the console.").into_string()),
            )
                .into_response());
        }
        let notice =
            match approvals::vote(&state.svc, &session.approver, client.0, &id, verdict, comment).await {
                Ok(approval) => match (verdict, approval.status.as_str()) {
                    (Verdict::Approve, "approved") => "approved",
                    (Verdict::Approve, _) => "vote_recorded",
                    (Verdict::Deny, _) => "rejected",
                },
                Err(Error::Conflict { code: ErrorCode::ApprovalExpired, .. }) => "expired",
                Err(Error::Conflict { .. }) => "already_decided",
                Err(e) => return Err(e),
            };
        let payment = state.svc.store.approval(&id).await?.map(|a| a.payment.id).unwrap_or_default();
        Ok(Redirect::to(&format!("/console?notice={notice}&payment={payment}")).into_response())
    }
    .await;
    result.unwrap_or_else(error_page)
}

const CROSS_ORIGIN: &str = "Sign in from this console's own page: a form from another site was refused.";

/// A state-changing request must come from a page of this origin when the
/// browser says where it comes from.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    match (headers.get("origin").and_then(|o| o.to_str().ok()), host) {
        (None, _) | (Some("null"), None) => true,
        (Some(origin), Some(host)) => origin.split("://").nth(1) == Some(host),
        _ => false,
    }
}

/// A console form that is not what the console's pages send.
fn bad_form() -> Response {
    let page = pages::message("That form could not be read. Reload the console and try again.");
    (StatusCode::BAD_REQUEST, Html(page.into_string())).into_response()
}

fn error_page(e: Error) -> Response {
    let status = match &e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Store(_) | Error::PolicyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(error = %e, "console request failed");
    }
    let text = match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            "purser cannot reach its store right now. Nothing was changed; try again.".to_owned()
        }
        _ => e.to_string(),
    };
    (status, Html(pages::message(&text).into_string())).into_response()
}
